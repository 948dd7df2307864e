"""`servestack up STACK` and `servestack preview STACK`: a whole stack on the fast path.

`pulumi up` stays the plain path on the same state (see docs/operations.md, "Applying a
whole stack"); these apply the stack file as it is, reviewed like an operation, with one
checkpoint write per update and a journal that the next servestack command finishes from
if this one is killed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Annotated, Any

import typer

from servestack.cli.app import app
from servestack.cli.operations import (
    DEFAULT_LOCK_TIMEOUT,
    LOCK_TIMEOUT,
    NO_QUEUE,
    can_ask,
    workspace,
)
from servestack.cli.output import ExitCode, console, line, refuse, show_result
from servestack.ops.records import OperationStatus
from servestack.review import report

if TYPE_CHECKING:
    from servestack.ops import stack_up
    from servestack.ops import transaction as tx
else:

    class _Lazy:
        """A module imported on first use (it brings pulumi)."""

        def __init__(self, name: str) -> None:
            self._name = name

        def __getattr__(self, attr: str) -> Any:
            return getattr(importlib.import_module(self._name), attr)

    stack_up = _Lazy("servestack.ops.stack_up")
    tx = _Lazy("servestack.ops.transaction")

UP_YES = Annotated[bool, typer.Option("--yes", "-y", help="apply without asking")]


def _show_review(p: Any) -> None:
    for note in p.notes:
        line(f"note: {note}")
    if not p.diff.changes and p.notes:
        return  # a first update: nothing to compare with
    console.print(
        report.diff_text(p.diff, [], color=console.is_terminal, width=console.width),
        end="",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def up(
    stack: str,
    yes: UP_YES = False,
    lock_timeout: LOCK_TIMEOUT = DEFAULT_LOCK_TIMEOUT,
    no_queue: NO_QUEUE = False,
) -> None:
    """Apply the whole stack as its stack file says (the fast path of `pulumi up`)."""
    ws = workspace(lock_timeout, no_queue)
    p = stack_up.plan_up(ws, stack, operation=f"servestack up {stack}")
    try:
        _show_review(p)
        if not yes:
            if not can_ask():
                refuse(f"servestack up {stack} applies the whole stack; pass --yes")
            if not typer.confirm(f"Apply stack {stack}?"):
                refuse("not confirmed at the prompt")
        with console.status("pulumi up ...") as status:
            counter = stack_up.Progress(
                stack_up.resource_count(p.after, stack),
                on_change=lambda text: status.update(f"pulumi up: {text}"),
            )
            p.on_event = counter.event
            result = tx.apply(ws, p)
        line(f"{counter.text()}")
    finally:
        p.release()
    show_result(result)
    if result.get("status") in (OperationStatus.rolled_back, OperationStatus.failed):
        raise typer.Exit(ExitCode.FAILED)
    if result.get("status") == OperationStatus.interrupted:
        raise typer.Exit(ExitCode.INTERRUPTED)


@app.command()
def preview(stack: str) -> None:
    """Review the stack file against what is deployed, then the engine's own preview."""
    ws = workspace()
    p = stack_up.review(ws, stack)
    _show_review(p)
    blocking = p.diff.blocking(fail_on_replace=False)
    if blocking:
        refuse("; ".join(f"{c.path}: {c.effect.value}: {c.reason}" for c in blocking))
    with console.status("pulumi preview ...") as status:
        res = stack_up.engine_preview(ws, stack, lambda text: status.update(text.strip()[:100]))
    line("engine preview: " + ", ".join(f"{n} {kind}" for kind, n in sorted(res.items())))
