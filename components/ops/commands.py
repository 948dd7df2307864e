"""`servestack <op> <stack> <deployment>`: operations as reviewed stack edits.

Each command prints the classified diff first, asks before a replacement or deletion
(unless ``--yes``), shows the engine's progress, and ends with a one-screen result.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from servestack.config.errors import ConfigError
from servestack.config.models import StrategyType, Target
from servestack.config.validation import load_stack_config
from servestack.contract import paths
from servestack.engine.discovery import EngineMissing
from servestack.ops import live
from servestack.ops.lock import StackBusy
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

#: Commands that change a stack (they take the stack lock and record an operation).
OPERATION_COMMANDS = (
    "scale",
    "resources",
    "stop",
    "start",
    "set-model",
    "promote",
    "rollback",
    "delete",
)

console = Console()
YES = Annotated[bool, typer.Option("--yes", "-y", help="do not ask before replacements")]
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
#: Exit code when another operation holds the stack past --lock-timeout (or --no-queue).
EXIT_BUSY = 4
#: Exit code of an operation stopped by Ctrl-C (the next one on the stack finishes it).
EXIT_INTERRUPTED = 130
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
    ws.say = lambda line: console.print(line, style="yellow", markup=False)
    return ws


def _show_result(result: dict[str, Any]) -> None:
    op = result.get("operation_id")
    title = f"operation {op}" if op else f"deployment {result.get('name', '')}"
    table = Table(show_header=False, title=title)
    for key in (
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
    ):
        if key in result and result[key] is not None:
            value = result[key]
            if key == "cpu":
                value = f"{value} millicores"
            elif key == "memory":
                value = f"{value} MiB"
            table.add_row(key, str(value))
    console.print(table)


def _line(text: str, style: str | None = None) -> None:
    """One line of live state, never wrapped or cut: names, images and the scheduler's
    messages stay whole (and greppable) at any width, piped output included."""
    console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)


def _show_live(state: live.LiveState) -> None:
    for w in state.workloads:
        table = Table(title=f"Deployment {w.name} (namespace {state.namespace})")
        # "pods": of every ReplicaSet, so an old pod still running shows as pods > updated.
        for col in ("desired", "updated", "ready", "available", "pods"):
            table.add_column(col, justify="right")
        table.add_row(str(w.desired), str(w.updated), str(w.ready), str(w.available), str(w.total))
        console.print(table)
        # ReplicaSets as lines, not a table: a table cuts long names and images to its width.
        for name, rev, image, n, ready in w.replica_sets:
            _line(f"  replicaset {name} revision {rev}: {n} pods, {ready} ready, image {image}")
        for kind, status, message in w.conditions:
            _line(f"  condition {kind}={status}: {message}")
        for line in w.pending:
            _line(f"  pending {line}", style="yellow")
        for line in w.events:
            _line(f"  event {line}", style="dim")
    for name in state.missing:
        _line(f"Deployment {name}: not found", style="red")
    if state.autoscaler:
        hpa = Table(title="autoscaler")
        for col in ("metric", "current", "target"):
            hpa.add_column(col)
        for row in state.autoscaler:
            hpa.add_row(*row)
        console.print(hpa)
        for kind, status, message in state.autoscaler_conditions:
            _line(f"  autoscaler {kind}={status}: {message}")
    if state.rolled_out:
        _line("rolled out")
    else:
        _line("rollout in progress")
        for w in state.workloads:
            if not w.rolled_out:
                _line(f"  {w.progress()}")


def run(
    ctx_ws: ops.Workspace,
    stack: str,
    deployment: str | None,
    edits: ops.Edits | Callable[[str], ops.Edits],
    *,
    yes: bool,
    wait: bool = True,
) -> None:
    """Plan, show, confirm, apply, report. Exit 1 on invalid input, 2 on refusal, 3 on a
    failed update (after rollback), 4 when another operation holds the stack, 130 when
    Ctrl-C stopped the engine."""
    # The command's own name, for the lock holder's record (`servestack scale ...`).
    command = next((a for a in sys.argv[1:] if a in OPERATION_COMMANDS), "operation")
    try:
        p = ops.plan(
            ctx_ws,
            stack,
            edits,
            deployment,
            operation=f"servestack {command} {stack} {deployment or ''}".strip(),
        )
    except ConfigError as err:
        console.print(err.render(), style="red", markup=False)
        raise typer.Exit(1) from None
    except ops.OperationRefused as err:
        console.print(f"refused: {err}", style="bold red", markup=False)
        raise typer.Exit(2) from None
    except StackBusy as err:
        console.print(str(err), style="bold red", markup=False)
        raise typer.Exit(EXIT_BUSY) from None
    try:
        _confirm_and_apply(ctx_ws, p, yes=yes, wait=wait)
    finally:
        p.release()


def _confirm_and_apply(ctx_ws: ops.Workspace, p: ops.Plan, *, yes: bool, wait: bool) -> None:
    console.print(
        report.diff_text(p.diff, [], color=console.is_terminal),
        end="",
        markup=False,
        highlight=False,
    )
    if not p.diff.changes:
        console.print("nothing to do")
        return
    if p.needs_confirmation and not yes:
        if not os.isatty(0):
            console.print(
                "refused: this replaces or deletes resources; pass --yes", style="bold red"
            )
            raise typer.Exit(2)
        typer.confirm("This replaces or deletes resources. Apply?", abort=True)
    try:
        with console.status("pulumi up ...") as status:
            result = ops.apply(
                ctx_ws,
                p,
                wait=wait,
                progress=lambda line: status.update(f"pulumi up: {line.strip()[:100]}"),
            )
    except EngineMissing as err:
        console.print(str(err), style="red")
        raise typer.Exit(1) from None
    _show_result(result)
    if result.get("status") in ("rolled_back", "failed"):
        raise typer.Exit(3)
    if result.get("status") == "interrupted":
        raise typer.Exit(EXIT_INTERRUPTED)


def run_text_edit(
    stack: str,
    deployment: str,
    make_edits: Callable[[str], ops.Edits],
    *,
    yes: bool,
    target: str | None = None,
    ws: ops.Workspace | None = None,
) -> None:
    """Edits computed from the stack file's text, then :func:`run`. The text is the one
    read under the stack's lock: an operation that ran meanwhile is not undone."""
    run(ws or workspace(), stack, target, make_edits, yes=yes)


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
    """The promotion gate (:mod:`servestack.ops.gate`): exit 2 with the figures if refused."""
    from servestack.engine.project import find_project
    from servestack.ops import gate

    try:
        config = load_stack_config(find_project().stack_file(stack))
        verdict = gate.check(config, deployment, prometheus=prometheus, window=window)
    except ConfigError as err:
        console.print(err.render(), style="red", markup=False)
        raise typer.Exit(1) from None
    except gate.GateError as err:
        console.print(f"refused: {err}", style="bold red", markup=False)
        raise typer.Exit(2) from None
    console.print(verdict.render(), style=None if verdict.ok else "bold red", markup=False)
    if not verdict.ok:
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
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
        try:
            _show_result(ops.status(stack, deployment, ws))
            config = load_stack_config(ws.stack_file(stack))
        except ConfigError as err:
            console.print(err.render(), style="red", markup=False)
            raise typer.Exit(1) from None
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
                console.print(f"cannot read the cluster: {exc}", style="red", markup=False)
                raise typer.Exit(1) from None
            _show_live(state)
            if not watch or state.rolled_out:
                return
            if time.monotonic() > deadline:
                behind = "; ".join(
                    [w.progress() for w in state.workloads if not w.rolled_out]
                    + [f"{name} not found" for name in state.missing]
                )
                _line(f"rollout not complete after {timeout:g} s (--timeout): {behind}", "red")
                raise typer.Exit(3)
            time.sleep(2)
            console.rule()

    @app.command()
    def scale(
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
        ws = workspace(lock_timeout, no_queue)
        run(ws, stack, deployment, edits, yes=yes, wait=not no_wait)

    @app.command()
    def resources(
        stack: str,
        deployment: str,
        cpu: Annotated[int | None, typer.Option(help="millicores per replica")] = None,
        memory: Annotated[int | None, typer.Option(help="MiB per replica")] = None,
        yes: YES = False,
        no_wait: NO_WAIT = False,
        lock_timeout: LOCK_TIMEOUT = DEFAULT_LOCK_TIMEOUT,
        no_queue: NO_QUEUE = False,
    ) -> None:
        """Change CPU (millicores) and memory (MiB) per replica."""
        try:
            edits = ops.resource_edits(deployment, cpu=cpu, memory=memory)
        except ConfigError as err:
            console.print(err.render(), style="red", markup=False)
            raise typer.Exit(1) from None
        ws = workspace(lock_timeout, no_queue)
        run(ws, stack, deployment, edits, yes=yes, wait=not no_wait)

    @app.command()
    def stop(
        stack: str,
        deployment: str,
        yes: YES = False,
        lock_timeout: LOCK_TIMEOUT = DEFAULT_LOCK_TIMEOUT,
        no_queue: NO_QUEUE = False,
    ) -> None:
        """Remove every pod; keep the endpoint and the whole config."""
        run(
            workspace(lock_timeout, no_queue),
            stack,
            deployment,
            ops.resource_edits(deployment, active=False),
            yes=yes,
        )

    @app.command()
    def start(
        stack: str,
        deployment: str,
        yes: YES = False,
        lock_timeout: LOCK_TIMEOUT = DEFAULT_LOCK_TIMEOUT,
        no_queue: NO_QUEUE = False,
    ) -> None:
        """Start a stopped deployment with its previous settings."""
        run(
            workspace(lock_timeout, no_queue),
            stack,
            deployment,
            ops.resource_edits(deployment, active=True),
            yes=yes,
        )

    @app.command("set-model")
    def set_model(
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
        run_text_edit(
            stack,
            deployment,
            lambda text: ops.set_model_edits(
                text, deployment, version=version, image=image, strategy=strategy, weight=weight
            ),
            yes=yes,
            target=deployment,
            ws=workspace(lock_timeout, no_queue),
        )

    @app.command()
    def promote(
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
    ) -> None:
        """Make the canary the stable version and remove the canary track."""
        if check:
            _check_canary(stack, deployment, prometheus, window)
        run_text_edit(
            stack,
            deployment,
            lambda text: ops.promote_edits(text, deployment),
            yes=yes,
            target=deployment,
            ws=workspace(lock_timeout, no_queue),
        )

    @app.command()
    def rollback(
        stack: str,
        deployment: str,
        yes: YES = False,
        lock_timeout: LOCK_TIMEOUT = DEFAULT_LOCK_TIMEOUT,
        no_queue: NO_QUEUE = False,
    ) -> None:
        """Remove the canary; the stable version takes all traffic again."""
        run_text_edit(
            stack,
            deployment,
            lambda text: ops.rollback_edits(text, deployment),
            yes=yes,
            target=deployment,
            ws=workspace(lock_timeout, no_queue),
        )

    @app.command()
    def delete(
        stack: str,
        deployment: str,
        confirm: Annotated[str, typer.Option("--confirm", help="repeat the deployment's name")],
        yes: YES = False,
        lock_timeout: LOCK_TIMEOUT = DEFAULT_LOCK_TIMEOUT,
        no_queue: NO_QUEUE = False,
    ) -> None:
        """Delete a deployment (its resources go; the stack file loses its entry)."""
        if confirm != deployment:
            console.print(f"refused: --confirm must repeat {deployment!r}", style="bold red")
            raise typer.Exit(2)
        run_text_edit(
            stack,
            deployment,
            lambda text: ops.delete_edits(text, deployment),
            yes=yes,
            ws=workspace(lock_timeout, no_queue),
        )

    @app.command()
    def operation(op_id: str) -> None:
        """Status and result of an operation started with --no-wait."""
        try:
            _show_result(ops.get_operation(op_id, workspace()))
        except KeyError as err:
            console.print(str(err), style="red")
            raise typer.Exit(1) from None
