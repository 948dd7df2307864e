"""`servestack <op> <stack> <deployment>`: operations as reviewed stack edits.

Each command prints the classified diff first, asks before a replacement or deletion
(unless ``--yes``), shows the engine's progress, and ends with a one-screen result. Errors
end the command through :func:`servestack.cli.app.exit_for`.
"""

from __future__ import annotations

import importlib
import re
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from servestack.cli import units
from servestack.cli.app import app
from servestack.cli.output import (
    ExitCode,
    cell,
    console,
    fail,
    line,
    refuse,
    show_live,
    show_result,
)
from servestack.config import paths
from servestack.config.models import StrategyType, Target
from servestack.config.validation import load_stack_config
from servestack.ops import live
from servestack.ops.records import OperationStatus
from servestack.review import report

if TYPE_CHECKING:
    from servestack.ops import operations as ops
else:

    class _Operations:
        """`servestack.ops.operations`, imported on first use: `servestack diff` and
        `validate` never load the engine runner (and pulumi) just to register commands."""

        def __getattr__(self, name: str) -> Any:
            return getattr(importlib.import_module("servestack.ops.operations"), name)

    ops = _Operations()

YES = Annotated[
    bool,
    typer.Option(
        "--yes",
        "-y",
        help="do not ask before replacements, deletions, or resources below the GPU floor",
    ),
]
NO_WAIT = Annotated[bool, typer.Option("--no-wait", help="return at once with an operation id")]
# One operation at a time per stack (servestack.ops.lock). `--no-wait` already means "return
# an operation id at once", so not waiting for another operation is `--no-queue`.
LOCK_TIMEOUT = Annotated[
    float,
    typer.Option(
        "--lock-timeout",
        min=0,
        metavar="SECONDS",
        help="how long to wait while another operation runs on the stack",
    ),
]
NO_QUEUE = Annotated[
    bool,
    typer.Option("--no-queue", help="fail at once if another operation runs on the stack"),
]
DEFAULT_LOCK_TIMEOUT = 600.0


def workspace(lock_timeout: float = DEFAULT_LOCK_TIMEOUT, no_queue: bool = False) -> ops.Workspace:
    """The project around the current directory (`-C DIR` changes it), and its backend."""
    ws = ops.Workspace()
    console.print(f"project {ws.project_dir}; backend {ws.runner.backend}", style="dim")
    ws.lock_timeout = 0 if no_queue else lock_timeout

    def waiting(holder: Any) -> None:
        who = holder.describe() if holder else "another operation"
        console.print(
            f"waiting for the stack: held by {who}; waiting up to {ws.lock_timeout:.0f}s "
            "(--lock-timeout, --no-queue)",
            style="yellow",
            markup=False,
        )

    ws.on_lock_wait = waiting
    ws.say = lambda text: console.print(text, style="yellow", markup=False)
    return ws


def run(
    ctx: typer.Context,
    ws: ops.Workspace,
    stack: str,
    deployment: str | None,
    edits: ops.Edits | Callable[[str], ops.Edits | ops.Steps],
    *,
    yes: bool,
    wait: bool = True,
) -> None:
    """Plan, show, confirm, apply, report (exit codes: :class:`ExitCode`)."""
    # The command's own name, for the lock holder's record (`servestack scale ...`).
    command = ctx.info_name
    p = ops.plan(
        ws,
        stack,
        edits,
        deployment,
        operation=f"servestack {command} {stack} {deployment or ''}".strip(),
    )
    try:
        _confirm_and_apply(ws, p, yes=yes, wait=wait)
    finally:
        p.release()


def can_ask() -> bool:
    """Whether a question can be asked: stdin is a terminal."""
    return sys.stdin.isatty()


def _confirm_and_apply(ws: ops.Workspace, p: ops.Plan, *, yes: bool, wait: bool) -> None:
    console.print(
        report.diff_text(p.diff, [], color=console.is_terminal, width=console.width),
        end="",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    for note in p.notes:  # what the edits derived (servestack.ops.edits.NotedEdits)
        line(f"note: {note}")
    if not p.diff.changes:
        console.print("nothing to do")
        return
    if p.needs_confirmation and not yes:
        if not can_ask():
            refuse("this replaces or deletes resources; pass --yes")
        if not typer.confirm("This replaces or deletes resources. Apply?"):
            refuse("not confirmed at the prompt")
    low = units.below_floor(p.before, p.after)
    if low and not yes:
        if not can_ask():
            refuse("; ".join(low) + "; pass --yes if this is meant")
        for text in low:
            line(text, style="yellow")
        if not typer.confirm("Apply below the GPU floor?"):
            refuse("not confirmed at the prompt")
    with console.status("pulumi up ...") as status:
        result = ops.apply(
            ws,
            p,
            wait=wait,
            # --no-wait: a worker process of its own runs it, and this command ends now.
            detach=not wait,
            progress=lambda text: status.update(f"pulumi up: {text.strip()[:100]}"),
        )
    show_result(result)
    if not wait:
        op = result["operation_id"]
        line(f"operation {op} runs on in its own process; servestack operation {op} shows it")
    if result.get("status") in (OperationStatus.rolled_back, OperationStatus.failed):
        raise typer.Exit(ExitCode.FAILED)
    if result.get("status") == OperationStatus.interrupted:
        raise typer.Exit(ExitCode.INTERRUPTED)


def _show_metrics(config: Any, deployment: str, prometheus: str | None) -> None:
    """Each track's request rate, error ratio and p99 (last 5m), if a Prometheus is set."""
    from servestack.ops import gate

    try:
        found = gate.live_figures(config, deployment, prometheus=prometheus)
    except gate.GateError as err:
        console.print(f"no live figures: {err}", style="yellow", markup=False)
        return
    if found is None:
        return
    table = Table(title=f"live (Prometheus, last {gate.DEFAULT_WINDOW})")
    for col in ("track", "figures"):
        table.add_column(col)
    for track, figures in found.items():
        table.add_row(track, figures.text())
    console.print(table)


def _check_canary(stack: str, deployment: str, prometheus: str | None, window: str) -> None:
    """The promotion gate (:mod:`servestack.ops.gate`): refused with the figures if unhealthy."""
    from servestack.engine.project import find_project
    from servestack.ops import gate

    config = load_stack_config(find_project().stack_file(stack))
    verdict = gate.check(config, deployment, prometheus=prometheus, window=window)
    if not verdict.ok:
        fail(verdict.render(), ExitCode.REFUSED)
    console.print(verdict.render(), markup=False)


@app.command()
def status(
    stack: str,
    deployment: str,
    watch: Annotated[
        bool, typer.Option("--watch", help="follow a rollout until it completes")
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="seconds --watch waits for the rollout at most")
    ] = 600,
    prometheus: Annotated[
        str | None,
        typer.Option(
            "--prometheus",
            metavar="URL",
            help="show live figures from this Prometheus "
            "(default: the deployment's monitoring.prometheusUrl)",
        ),
    ] = None,
) -> None:
    """Show a deployment's settings; its live figures when a Prometheus is configured; on
    a cluster target, its live state too."""
    ws = workspace()
    show_result(ops.status(stack, deployment, ws))
    config = load_stack_config(ws.stack_file(stack))
    _show_metrics(config, deployment, prometheus)
    if config.target is not Target.cluster:
        console.print("target: render (no live state; `servestack:target: cluster` has it)")
        return
    spec = ops.find_deployment(config, deployment)
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = live.read(spec, config)
        except Exception as exc:  # the client's connection and API errors
            fail(f"cannot read the cluster: {exc}")
        show_live(state)
        if not watch or state.rolled_out:
            return
        if time.monotonic() > deadline:
            behind = "; ".join(
                [w.progress() for w in state.workloads if not w.rolled_out]
                + [f"{name} not found" for name in state.missing]
            )
            line(f"rollout not complete after {timeout:g} s (--timeout): {behind}", "red")
            raise typer.Exit(ExitCode.FAILED)
        time.sleep(2)
        console.rule()


@app.command()
def scale(
    ctx: typer.Context,
    stack: str,
    deployment: str,
    replicas: Annotated[int | None, typer.Option("--replicas")] = None,
    min_replicas: Annotated[int | None, typer.Option("--min")] = None,
    max_replicas: Annotated[int | None, typer.Option("--max")] = None,
    yes: YES = False,
    no_wait: NO_WAIT = False,
    lock_timeout: LOCK_TIMEOUT = DEFAULT_LOCK_TIMEOUT,
    no_queue: NO_QUEUE = False,
) -> None:
    """Set fixed replicas, or the autoscaler's bounds."""
    base = paths.deployment(deployment)
    edits: ops.Edits = {}
    if replicas is not None:
        edits[f"{base}.replicas"] = replicas
    if min_replicas is not None:
        edits[f"{base}.autoscaling.minReplicas"] = min_replicas
    if max_replicas is not None:
        edits[f"{base}.autoscaling.maxReplicas"] = max_replicas
    if not edits:
        raise typer.BadParameter("give --replicas, or --min/--max")
    run(ctx, workspace(lock_timeout, no_queue), stack, deployment, edits, yes=yes, wait=not no_wait)


@app.command()
def resources(
    ctx: typer.Context,
    stack: str,
    deployment: str,
    cpu: Annotated[
        str | None,
        typer.Option(
            metavar="CPU", help="per replica, as in the stack file: cores (4, 0.5) or 500m"
        ),
    ] = None,
    memory: Annotated[
        str | None,
        typer.Option(
            metavar="MEMORY", help="per replica, as in the stack file, with a unit: 512Mi, 8Gi"
        ),
    ] = None,
    yes: YES = False,
    no_wait: NO_WAIT = False,
    lock_timeout: LOCK_TIMEOUT = DEFAULT_LOCK_TIMEOUT,
    no_queue: NO_QUEUE = False,
) -> None:
    """Change CPU and memory per replica (Kubernetes quantities, as in the stack file)."""
    if cpu is None and memory is None:
        raise typer.BadParameter("give --cpu and/or --memory")
    edits = units.resource_edits(deployment, cpu, memory)
    run(ctx, workspace(lock_timeout, no_queue), stack, deployment, edits, yes=yes, wait=not no_wait)


@app.command()
def stop(
    ctx: typer.Context,
    stack: str,
    deployment: str,
    yes: YES = False,
    lock_timeout: LOCK_TIMEOUT = DEFAULT_LOCK_TIMEOUT,
    no_queue: NO_QUEUE = False,
) -> None:
    """Remove every pod; keep the endpoint and the whole config."""
    edits = ops.resource_edits(deployment, active=False)
    run(ctx, workspace(lock_timeout, no_queue), stack, deployment, edits, yes=yes)


@app.command()
def start(
    ctx: typer.Context,
    stack: str,
    deployment: str,
    yes: YES = False,
    lock_timeout: LOCK_TIMEOUT = DEFAULT_LOCK_TIMEOUT,
    no_queue: NO_QUEUE = False,
) -> None:
    """Start a stopped deployment with its previous settings."""
    edits = ops.resource_edits(deployment, active=True)
    run(ctx, workspace(lock_timeout, no_queue), stack, deployment, edits, yes=yes)


@app.command("set-model")
def set_model(
    ctx: typer.Context,
    stack: str,
    deployment: str,
    version: Annotated[str, typer.Option("--version")],
    image: Annotated[str | None, typer.Option("--image")] = None,
    strategy: Annotated[StrategyType, typer.Option("--strategy")] = StrategyType.rolling,
    weight: Annotated[
        int | None, typer.Option("--weight", help="canary traffic share in percent")
    ] = None,
    yes: YES = False,
    lock_timeout: LOCK_TIMEOUT = DEFAULT_LOCK_TIMEOUT,
    no_queue: NO_QUEUE = False,
) -> None:
    """Roll out a new model version (rolling, blue_green, or canary at --weight %)."""
    # Edits computed from the stack file's text as read under the stack's lock: an
    # operation that ran meanwhile is not undone.
    run(
        ctx,
        workspace(lock_timeout, no_queue),
        stack,
        deployment,
        lambda text: ops.set_model_edits(
            text, deployment, version=version, image=image, strategy=strategy, weight=weight
        ),
        yes=yes,
    )


@app.command()
def promote(
    ctx: typer.Context,
    stack: str,
    deployment: str,
    yes: YES = False,
    lock_timeout: LOCK_TIMEOUT = DEFAULT_LOCK_TIMEOUT,
    no_queue: NO_QUEUE = False,
    check: Annotated[
        bool,
        typer.Option("--check", help="promote only if live metrics say the canary is healthy"),
    ] = False,
    prometheus: Annotated[
        str | None,
        typer.Option(
            "--prometheus",
            metavar="URL",
            help="Prometheus to ask (default: the deployment's monitoring.prometheusUrl)",
        ),
    ] = None,
    window: Annotated[
        str, typer.Option("--window", help="how far back --check looks (e.g. 5m)")
    ] = "5m",
    shift: Annotated[
        bool,
        typer.Option(
            "--shift",
            help="no re-roll: the canary takes all traffic and grows to the stable count, "
            "then the old stable track goes (two updates; both tracks full in between)",
        ),
    ] = False,
) -> None:
    """Make the canary the stable version and remove the canary track (with --shift: the
    canary's own pods become the stable track)."""
    if check:
        _check_canary(stack, deployment, prometheus, window)

    def edits(text: str) -> ops.Edits | ops.Steps:
        if shift:
            return ops.shift_steps(text, deployment)
        return ops.promote_edits(text, deployment)

    run(ctx, workspace(lock_timeout, no_queue), stack, deployment, edits, yes=yes)


@app.command()
def rollback(
    ctx: typer.Context,
    stack: str,
    deployment: str,
    yes: YES = False,
    lock_timeout: LOCK_TIMEOUT = DEFAULT_LOCK_TIMEOUT,
    no_queue: NO_QUEUE = False,
    to_previous: Annotated[
        bool,
        typer.Option(
            "--to-previous",
            help="back to the release (model version and image) before the current one, "
            "from the operation history",
        ),
    ] = False,
) -> None:
    """Remove the canary; the stable version takes all traffic again. With --to-previous:
    back to the previous release, whatever the strategy."""
    ws = workspace(lock_timeout, no_queue)

    def edits(text: str) -> ops.Edits:
        if not to_previous:
            return ops.rollback_edits(text, deployment)
        # Read under the stack's lock, with the text: no operation runs in between.
        history = ops.release_history(ws.state, stack, deployment)
        return ops.rollback_to_previous_edits(text, deployment, history)

    run(ctx, ws, stack, deployment, edits, yes=yes)


@app.command()
def delete(
    ctx: typer.Context,
    stack: str,
    deployment: str,
    confirm: Annotated[str, typer.Option("--confirm", help="repeat the deployment's name")],
    yes: YES = False,
    lock_timeout: LOCK_TIMEOUT = DEFAULT_LOCK_TIMEOUT,
    no_queue: NO_QUEUE = False,
) -> None:
    """Delete a deployment (its resources go; the stack file loses its entry)."""
    if confirm != deployment:
        refuse(f"--confirm must repeat {deployment!r}")
    run(
        ctx,
        workspace(lock_timeout, no_queue),
        stack,
        None,
        lambda text: ops.delete_edits(text, deployment),
        yes=yes,
    )


@app.command()
def operation(op_id: str) -> None:
    """Status and result of an operation started with --no-wait."""
    ws = workspace()
    try:
        result = ops.get_operation(op_id, ws)
    except KeyError as err:
        fail(str(err.args[0]))
    show_result(result)
    _show_operation(result)


def _show_operation(record: dict[str, Any]) -> None:
    """What `get_operation` adds to the result: where, the phase, the timings, the planned
    changes and what the engine did."""
    where = f"stack {record.get('stack')}"
    if record.get("deployment"):
        where += f", deployment {record['deployment']}"
    line(f"{where}; phase {record.get('phase') or '-'}; run by {record.get('runner', 'wait')}")
    # To the second: the milliseconds only keep records in order.
    started, finished = (
        re.sub(r"\.\d+", "", str(record.get(k) or "-")) for k in ("started_at", "finished_at")
    )
    line(f"started {started}; finished {finished}")
    for change in record.get("changes") or []:
        before, after = (change.get(k) for k in ("before", "after"))
        line(
            f"  {change.get('effect')} {change.get('path')}: "
            f"{'-' if before is None else cell(before)} -> {'-' if after is None else cell(after)}"
        )
    for note in record.get("notes") or []:
        line(f"note: {note}")
    if record.get("result"):
        line(f"engine: {cell(record['result'])}")
    if record.get("log"):
        line(f"log: {record['log']}")
