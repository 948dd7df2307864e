"""What every command prints and how it ends: exit codes, error lines, result tables.

Values are shown as the stack file writes them (YAML flow style, camelCase keys), so that a
reader can copy what a table says back into a stack file.
"""

from __future__ import annotations

import json
import os
import re
from enum import Enum, IntEnum
from typing import Any, NoReturn

import typer
from pydantic.alias_generators import to_camel
from rich.console import Console
from rich.table import Table

from servestack.ops import live


class ExitCode(IntEnum):
    """Exit codes of every command (docs/concepts.md; CI checks them)."""

    OK = 0
    #: The input is invalid: a stack file, an option, a deployment or stack that is not there.
    INVALID = 1
    #: Refused: a forbidden change, a replacement or deletion the gate or production blocks,
    #: a confirmation not given, an unhealthy canary.
    REFUSED = 2
    #: The update failed (and was rolled back), or a watched rollout did not complete.
    FAILED = 3
    #: Another operation holds the stack past --lock-timeout (or at once with --no-queue).
    BUSY = 4
    #: Ctrl-C stopped the engine; the next operation on the stack finishes the change.
    INTERRUPTED = 130


#: Width of tables without a terminal (CI logs, pipes): the review's four columns keep
#: paths readable, and nothing re-wraps the lines. `COLUMNS`, when set, overrides it.
PIPE_WIDTH = 120


def make_console(*, stderr: bool = False) -> Console:
    """Every console of the CLI: the terminal's width, or without a terminal PIPE_WIDTH
    (rich's own fallback, 80, hard-wraps wider tables and breaks their boxes)."""
    out = Console(stderr=stderr)
    if not out.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
        out.width = PIPE_WIDTH
    return out


console = make_console()
#: Errors and refusals: on stderr, so that `--format markdown > comment.md` holds none.
errors = make_console(stderr=True)


def fail(message: str, code: ExitCode = ExitCode.INVALID) -> NoReturn:
    """Print ``message`` (one line per problem, never wrapped) and exit with ``code``."""
    style = "bold red" if code is ExitCode.REFUSED else "red"
    errors.print(message, style=style, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def refuse(reason: str) -> NoReturn:
    fail(f"refused: {reason}", ExitCode.REFUSED)


# --- values in the stack file's dialect ---------------------------------------------------------

#: A string YAML reads back as the same string without quotes, in flow style too.
_PLAIN = re.compile(r"[A-Za-z0-9_./-][A-Za-z0-9_./:@+-]*(?<!:)")
#: Plain words YAML reads as something other than a string.
_NOT_STRINGS = re.compile(
    r"(?i:true|false|yes|no|on|off|y|n|null|~)|[-+]?(\d[\d_]*)?\.?\d[\d_]*([eE][-+]?\d+)?"
    r"|0x[0-9a-fA-F_]+|0o?[0-7_]+|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)|\d+:[0-5]?\d(:[0-5]?\d)*"
)


def flow(value: Any) -> str:
    """``value`` as YAML flow style with camelCase keys: ``{minReplicas: 2, maxReplicas: 6}``.

    YAML reads the text back as the same value (keys camelCased); strings are quoted only
    where YAML would read them as something else.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return flow(value.value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{to_camel(str(k))}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    text = str(value)
    if _PLAIN.fullmatch(text) and not _NOT_STRINGS.fullmatch(text):
        return text
    return json.dumps(text, ensure_ascii=False)  # a YAML double-quoted scalar


def cell(value: Any) -> str:
    """A table cell: text as it is (messages, times, `2000 millicores`), data as :func:`flow`."""
    return value if isinstance(value, str) else flow(value)


# --- operation results and live state -----------------------------------------------------------

#: The rows of a result table, in order (the keys of `servestack.ops` results).
RESULT_ROWS = (
    "name",
    "status",
    "model_type",
    "model_version",
    "image",
    "environment",
    "active",
    "replicas",
    "autoscaling",
    "cpu",
    "memory",
    "gpu",
    "strategy",
    "canary",
    "updated_at",
    "error",
    "rollback",
    "recovered_by",
)
UNITS = {"cpu": "millicores", "memory": "MiB"}


def show_result(result: dict[str, Any]) -> None:
    op = result.get("operation_id")
    title = f"operation {op}" if op else f"deployment {result.get('name', '')}"
    table = Table(show_header=False, title=title)
    table.add_column()
    table.add_column(overflow="fold")  # an image digest stays whole
    for key in RESULT_ROWS:
        value = result.get(key)
        if value is None:
            continue
        table.add_row(key, f"{value} {UNITS[key]}" if key in UNITS else cell(value))
    console.print(table)


def line(text: str, style: str | None = None) -> None:
    """One line of live state, never wrapped or cut: names, images and the scheduler's
    messages stay whole (and greppable) at any width, piped output included."""
    console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)


def show_live(state: live.LiveState) -> None:
    for w in state.workloads:
        table = Table(title=f"Deployment {w.name} (namespace {state.namespace})")
        # "pods": of every ReplicaSet, so an old pod still running shows as pods > updated.
        for col in ("desired", "updated", "ready", "available", "pods"):
            table.add_column(col, justify="right")
        table.add_row(str(w.desired), str(w.updated), str(w.ready), str(w.available), str(w.total))
        console.print(table)
        # ReplicaSets as lines, not a table: a table cuts long names and images to its width.
        for name, rev, image, n, ready in w.replica_sets:
            line(f"  replicaset {name} revision {rev}: {n} pods, {ready} ready, image {image}")
        for kind, status, message in w.conditions:
            line(f"  condition {kind}={status}: {message}")
        for text in w.pending:
            line(f"  pending {text}", style="yellow")
        for text in w.events:
            line(f"  event {text}", style="dim")
    for name in state.missing:
        line(f"Deployment {name}: not found", style="red")
    if state.autoscaler:
        hpa = Table(title="autoscaler")
        for col in ("metric", "current", "target"):
            hpa.add_column(col)
        for row in state.autoscaler:
            hpa.add_row(*row)
        console.print(hpa)
        for kind, status, message in state.autoscaler_conditions:
            line(f"  autoscaler {kind}={status}: {message}")
    if state.rolled_out:
        line("rolled out")
    else:
        line("rollout in progress")
        for w in state.workloads:
            if not w.rolled_out:
                line(f"  {w.progress()}")
