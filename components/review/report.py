"""Renderings of review results: a terminal table, a pull-request comment, JSON.

Pull-request markdown puts replacements and deletions first, each with its cause and
downtime class; everything else is in collapsible sections; the summary line stays at the
top even when the body is trimmed to fit a comment.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from io import StringIO
from typing import Any

from rich.console import Console
from rich.table import Table

from servestack.config.models import Environment
from servestack.contract.effects import Effect
from servestack.review import allowances
from servestack.review.allowances import entry_text
from servestack.review.capacity import Fit
from servestack.review.diff import DiffResult, FieldChange
from servestack.review.explain import StepExplanation

#: Most severe first: the table's one severity order.
ORDER = tuple(sorted(Effect, key=lambda e: e.severity, reverse=True))
STYLE = {
    Effect.FORBIDDEN: "bold red",
    Effect.REPLACE: "bold red",
    Effect.DELETE: "red",
    Effect.RESTART: "yellow",
    Effect.CREATE: "green",
    Effect.IN_PLACE: "cyan",
    Effect.NONE: "dim",
}
#: GitHub comments hold 65,536 characters; keep room for the workflow's own text.
MARKDOWN_LIMIT = 60_000


def _value(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, dict) and "name" in v:
        return f"({v['name']}: {len(v)} settings)"
    text = json.dumps(v) if isinstance(v, dict | list) else str(v)
    return text if len(text) <= 60 else text[:57] + "..."


#: Width of the text tables unless the caller knows its terminal's (the CLI's consoles).
WIDTH = 120


def summary_line(summary: dict[str, int]) -> str:
    return " · ".join(f"{k} {summary[k.value]}" for k in ORDER)


def _sorted(changes: Iterable[FieldChange]) -> list[FieldChange]:
    return sorted(changes, key=lambda c: ORDER.index(c.effect))


def diff_text(
    result: DiffResult, blocking: list[FieldChange], *, color: bool = True, width: int = WIDTH
) -> str:
    table = Table(title="servestack diff", show_lines=False, expand=False)
    for col in ("effect", "field", "before -> after", "why / impact"):
        table.add_column(col, overflow="fold")
    for ch in _sorted(result.changes):
        why = ch.reason + (f"\n[dim]{ch.impact}[/dim]" if ch.impact else "")
        if ch.allowance:
            why += f"\n[green]allowed: {ch.allowance}[/green]"
        table.add_row(
            f"[{STYLE[ch.effect]}]{ch.effect.value}[/]",
            ch.path,
            f"{_value(ch.before)} -> {_value(ch.after)}",
            why,
        )
    buf = StringIO()
    console = Console(file=buf, force_terminal=color, no_color=not color, width=width)
    if result.changes:
        console.print(table)
    else:
        console.print("no changes")
    console.print(summary_line(result.summary))
    for ch in blocking:
        console.print(f"[bold red]BLOCKED[/] {ch.path}: {ch.effect.value} ({ch.reason})")
        if ch.effect in allowances.GATED:
            console.print(f"  to allow it, add to servestack:allowReplacements: {entry_text(ch)}")
    for entry in result.stale:
        console.print(f"[yellow]{allowances.stale_text(entry)}[/]")
    for line, fit in capacity_lines(result):
        console.print(f"[{CAPACITY_STYLE[fit]}]{line}[/]", highlight=False)
    return buf.getvalue()


CAPACITY_STYLE = {Fit.FITS: "green", Fit.NEEDS_NODES: "cyan", Fit.CANNOT_FINISH: "bold red"}


def capacity_lines(result: DiffResult) -> list[tuple[str, Fit]]:
    """One line per capacity verdict, then the remedies of a rollout that cannot finish
    (a warning outside production, where the same verdict is a refused row)."""
    out = []
    refused = result.environment is Environment.production
    for v in result.capacity:
        head = "capacity"
        if v.fit is Fit.CANNOT_FINISH:
            head = "REFUSED capacity" if refused else "WARNING capacity"
        out.append((f"{head} {v.line()}", v.fit))
        out += [(f"  remedy: {r}", v.fit) for r in v.remedies]
    return out


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_rows(changes: list[FieldChange], *, impact: bool) -> list[str]:
    head = "| field | before → after | cause |" + (" downtime / capacity |" if impact else "")
    rule = "|---|---|---|" + ("---|" if impact else "")
    rows = [head, rule]
    for ch in changes:
        cells = [
            f"`{ch.path}`",
            _md_escape(f"{_value(ch.before)} → {_value(ch.after)}"),
            _md_escape(ch.reason),
        ]
        if impact:
            note = ch.impact or "-"
            if ch.allowance:
                note += f" — allowed: {ch.allowance}"
            cells.append(_md_escape(note))
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def diff_markdown(
    result: DiffResult, blocking: list[FieldChange], *, stack: str = "", limit: int = MARKDOWN_LIMIT
) -> str:
    title = f"### servestack review{f' — `{stack}`' if stack else ''}"
    head = [title, "", f"**{summary_line(result.summary)}**", ""]
    if blocking:
        head.append(
            f"> :no_entry: **{len(blocking)} blocking change(s)**: "
            + ", ".join(f"`{c.path}` ({c.effect.value})" for c in blocking)
        )
        head.append(
            "> Production refuses replacements and deletions unless the stack file "
            "lists them under `servestack:allowReplacements` with a reason."
        )
        head += [f"> `{entry_text(c)}`" for c in blocking if c.effect in allowances.GATED]
        head.append("")
    if result.stale:
        head += [f"> :warning: {allowances.stale_text(e)}" for e in result.stale] + [""]
    by = {e: [c for c in result.changes if c.effect is e] for e in ORDER}
    body = capacity_markdown(result)
    first = by[Effect.FORBIDDEN] + by[Effect.REPLACE] + by[Effect.DELETE]
    if first:
        body += ["#### Replacements, deletions and refused edits", ""]
        body += _md_rows(first, impact=True) + [""]
    for effect, label in (
        (Effect.RESTART, "Pod restarts"),
        (Effect.CREATE, "Created"),
        (Effect.IN_PLACE, "In-place updates"),
        (Effect.NONE, "No change (nothing deployed reads the field)"),
    ):
        items = by[effect]
        if items:
            body += [f"<details><summary>{label} ({len(items)})</summary>", ""]
            body += _md_rows(items, impact=effect is Effect.RESTART)
            body += ["", "</details>", ""]
    if not result.changes:
        body.append("No config changes.")
    return _trim(head, body, limit)


def capacity_markdown(result: DiffResult) -> list[str]:
    """The capacity verdicts as a pull-request section (first: a refusal belongs on top)."""
    if not result.capacity:
        return []
    body = ["#### Capacity", ""]
    for v in result.capacity:
        mark = {
            Fit.FITS: ":white_check_mark:",
            Fit.NEEDS_NODES: ":heavy_plus_sign:",
            Fit.CANNOT_FINISH: ":no_entry:",
        }[v.fit]
        if v.fit is Fit.CANNOT_FINISH and result.environment is not Environment.production:
            mark = ":warning:"
        body.append(f"- {mark} `{v.path}`: {_md_escape(v.text)}")
        body += [f"  - {_md_escape(n)}" for n in v.notes]
        body += [f"  - remedy: {_md_escape(r)}" for r in v.remedies]
    return body + [""]


def _trim(head: list[str], body: list[str], limit: int) -> str:
    text = "\n".join(head + body)
    if len(text) <= limit:
        return text + "\n"
    kept: list[str] = []
    size = len("\n".join(head)) + 200
    for line in body:
        if size + len(line) + 1 > limit:
            break
        kept.append(line)
        size += len(line) + 1
    if kept.count("<details>") or any(k.startswith("<details>") for k in kept):
        opened = sum(k.startswith("<details>") for k in kept)
        closed = sum(k == "</details>" for k in kept)
        kept += ["</details>"] * (opened - closed)
    omitted = len(body) - len(kept)
    kept += [
        "",
        f"_…output trimmed: {omitted} more lines. Run `servestack diff` locally or "
        "see the JSON artifact for everything._",
    ]
    return "\n".join(head + kept) + "\n"


def diff_json(result: DiffResult, blocking: list[FieldChange]) -> str:
    data = result.to_json()
    data["blocking"] = [c.path for c in blocking]
    return json.dumps(data, indent=2)


# --- explain ---------------------------------------------------------------------------------


def explain_summary(steps: list[StepExplanation]) -> dict[str, int]:
    counts = {c.value: 0 for c in Effect}
    for s in steps:
        if s.observed is not None:
            counts[s.observed.value] += 1
    counts["unexpected"] = sum(s.unexpected for s in steps)
    return counts


def explain_summary_line(steps: list[StepExplanation]) -> str:
    """The counts of what the table shows: the engine's operations, what the table says,
    and the surprises (never a count of a column the table does not have)."""
    ops: dict[str, int] = {}
    says: dict[str, int] = {}
    for s in _sorted_steps(steps):
        ops[s.op] = ops.get(s.op, 0) + 1
        says[s.says] = says.get(s.says, 0) + 1
    engine = ", ".join(f"{k} {v}" for k, v in ops.items()) or "nothing"
    table = ", ".join(f"{k} {v}" for k, v in says.items()) or "nothing"
    unexpected = sum(s.unexpected for s in steps)
    return f"engine: {engine} · table says: {table} · unexpected {unexpected}"


def _causes(step: StepExplanation, sep: str) -> str:
    """The fields behind a step; candidates as one of several, under their common item."""
    if not step.fields:
        return step.component or "-"
    if not step.candidates or len(step.fields) == 1:
        return sep.join(step.fields)
    item = step.component + "." if step.component else ""
    if item and all(f.startswith(item) for f in step.fields):
        rest = ", ".join(f[len(item) :] for f in step.fields)
        return f"one of {len(step.fields)} fields of {step.component}: {rest}"
    return f"one of {len(step.fields)} fields: " + ", ".join(step.fields)


def _sorted_steps(steps: list[StepExplanation]) -> list[StepExplanation]:
    def key(s: StepExplanation) -> tuple[int, int]:
        return (
            0 if s.unexpected else 1,
            ORDER.index(s.observed) if s.observed in ORDER else len(ORDER),
        )

    return sorted(steps, key=key)


def explain_text(
    steps: list[StepExplanation],
    *,
    color: bool = True,
    width: int = WIDTH,
    capacity: DiffResult | None = None,
) -> str:
    table = Table(title="servestack explain")
    for col in ("engine", "resource", "caused by", "table says", "note"):
        table.add_column(col, overflow="fold")
    for s in _sorted_steps(steps):
        style = STYLE.get(s.observed, "") if s.observed else ""
        table.add_row(
            f"[{style}]{s.op}[/]" if style else s.op,
            f"{s.kind}/{s.name}",
            _causes(s, "\n"),
            s.says,
            "[bold red]UNEXPECTED[/]" if s.unexpected else ", ".join(s.replace_reasons),
        )
    buf = StringIO()
    console = Console(file=buf, force_terminal=color, no_color=not color, width=width)
    console.print(table)
    console.print(explain_summary_line(steps))
    if any(s.candidates for s in steps):
        console.print("one of: the fields are candidates; --stack-file names the edited one")
    for line, fit in capacity_lines(capacity) if capacity is not None else ():
        console.print(f"[{CAPACITY_STYLE[fit]}]{line}[/]", highlight=False)
    return buf.getvalue()


def explain_markdown(
    steps: list[StepExplanation],
    *,
    limit: int = MARKDOWN_LIMIT,
    capacity: DiffResult | None = None,
) -> str:
    head = [
        "### servestack explain — planned operations by config field",
        "",
        f"**{explain_summary_line(steps)}**",
        "",
    ]
    ordered = _sorted_steps(steps)
    major = [s for s in ordered if s.unexpected or s.observed in (Effect.REPLACE, Effect.DELETE)]
    rest = [s for s in ordered if s not in major]

    def rows(items: list[StepExplanation]) -> list[str]:
        out = ["| engine | resource | caused by | table says | note |", "|---|---|---|---|---|"]
        for s in items:
            note = "**unexpected**" if s.unexpected else ", ".join(s.replace_reasons) or "-"
            out.append(
                f"| {s.op} | `{s.kind}/{s.name}` | "
                f"{_md_escape(_causes(s, ', '))} | "
                f"{s.says} | {_md_escape(note)} |"
            )
        return out

    body: list[str] = capacity_markdown(capacity) if capacity is not None else []
    if major:
        body += ["#### Replacements, deletions and surprises", ""] + rows(major) + [""]
    if rest:
        body += [f"<details><summary>Other steps ({len(rest)})</summary>", ""] + rows(rest)
        body += ["", "</details>"]
    if not steps:
        body.append("The preview changes nothing.")
    return _trim(head, body, limit)


def explain_json(steps: list[StepExplanation], capacity: DiffResult | None = None) -> str:
    data: dict[str, Any] = {
        "steps": [s.to_json() for s in steps],
        "summary": explain_summary(steps),
    }
    if capacity is not None and capacity.capacity:
        data["capacity"] = [v.to_json() for v in capacity.capacity]
    return json.dumps(data, indent=2)
