"""Part 1 of `make demo`: `pulumi up` the dev stack in render mode, then preview one edit
per effect class against that state and show what the real engine says about each.

Everything is local: the state lives in `.pulumi-state/`, manifests in `out/dev/`, and the
engine works on a scratch copy of the project in `.servestack/demo/` (the engine writes an
encryption salt into stack files; the repository's own stack files stay untouched).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness import REPO
from servestack.engine import Engine, EngineMissing, make_project
from servestack.review.explain import explain_preview
from servestack.review.predict import predict

STACK = "dev"
#: Demo-only passphrase for the local dev stack (it holds no secrets). Set
#: PULUMI_CONFIG_PASSPHRASE to use your own.
DEMO_PASSPHRASE = "servestack-demo-only"


def passphrase() -> str:
    return os.environ.get("PULUMI_CONFIG_PASSPHRASE", DEMO_PASSPHRASE)


EDITS: list[tuple[str, str, Any]] = [
    ("scale out", "deployments.bert-sentiment.replicas", 3),
    ("stop the model", "deployments.bert-sentiment.active", False),
    ("more CPU", "deployments.bert-sentiment.resources.cpu", 4),
    ("new log level", "deployments.bert-sentiment.env.LOG_LEVEL", "info"),
    ("switch to blue-green", "deployments.bert-sentiment.strategy.type", "blue_green"),
    ("swap llm for stt", "deployments.bert-sentiment.model.type", "stt"),
]


def _rows_for(
    engine: Engine,
    project: Path,
    base: str,
    path: str,
    value: Any,
) -> tuple[str, str, str]:
    stack_file = project / "stacks" / f"Pulumi.{STACK}.yaml"
    found = predict(base, {path: value})
    stack_file.write_text(found.text, encoding="utf-8")
    try:
        old, new = found.before, found.after
        predicted = ", ".join(sorted({c.effect.value for c in found.diff.changes})) or "none"
        preview = engine.preview_json(project, STACK)
        if preview["_exitCode"] != 0:
            lines = [
                d.get("message", "")
                for d in preview.get("diagnostics", [])
                if d.get("severity") == "error"
            ]
            message = next(
                (m for m in lines if "servestack" in m or "refused" in m),
                lines[0] if lines else preview["_stderr"],
            )
            return predicted, "refused", message.strip().splitlines()[-1][:220]
        steps = explain_preview(preview, new, old)
        ops = "; ".join(f"{s.op} {s.kind}/{s.name}" for s in steps if s.kind != "Stack")
        fields = sorted({f for s in steps for f in s.fields})
        return predicted, ops or "no changes", ", ".join(fields)
    finally:
        stack_file.write_text(base, encoding="utf-8")


def run(console: Console, root: Path) -> int:
    """Render mode, with state, manifests and the scratch project under ``root``."""
    try:
        engine = Engine(
            root / ".pulumi-state",
            passphrase=passphrase(),
            # The demo is the embedded default: a local file backend, whatever the user has.
            backend_url=f"file://{root / '.pulumi-state' / 'backend'}",
            extra_env={"SERVESTACK_RENDER_ROOT": str(root / "out")},
        )
        version = engine.version()
    except EngineMissing as err:
        console.print(f"[red]{err}[/red]")
        return 1
    base = (REPO / "stacks" / f"Pulumi.{STACK}.yaml").read_text(encoding="utf-8")
    project = make_project(root / ".servestack" / "demo", stacks={STACK: base})
    console.rule(f"part 1: render mode — Pulumi {version}, local state")
    console.print(
        f"1/3  pulumi up --yes on stack [bold]{STACK}[/bold] (manifests only; no cluster, no cloud)"
    )
    stack = engine.stack(project, STACK)
    started = time.monotonic()
    result = stack.up(on_output=lambda line: None)
    took = time.monotonic() - started
    summary = result.summary.resource_changes or {}
    console.print(
        f"     done in {took:.0f}s: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.items()))
    )
    out_dir = root / "out" / STACK
    files = sorted(p.relative_to(root) for p in out_dir.rglob("*.yaml"))
    console.print(f"     {len(files)} manifests in [bold]{out_dir.relative_to(root)}/[/bold]:")
    for f in files:
        console.print(f"       {f}")
    console.print("\n2/3  pulumi preview right after: ", end="")
    again = engine.preview_json(project, STACK)
    changed = {k: v for k, v in (again.get("changeSummary") or {}).items() if k != "same"}
    console.print("[green]no changes[/green]" if not changed else f"[red]{changed}[/red]")

    console.print("\n3/3  one edit per effect class, previewed by the real engine:\n")
    table = Table(show_lines=True)
    for col in ("edit", "table says", "the engine plans", "traced back to"):
        table.add_column(col, overflow="fold")
    for label, path, value in EDITS:
        predicted, ops, fields = _rows_for(engine, project, base, path, value)
        short = path.removeprefix("deployments.")
        table.add_row(
            f"{label}\n[dim]{escape(short)} = {escape(str(value))}[/dim]",
            predicted,
            escape(ops.replace("; ", "\n")),
            escape(fields.replace(", ", "\n")),
        )
    console.print(table)
    return 0
