"""`servestack <op> <stack> <deployment>`: operations as reviewed stack edits.

Each command prints the classified diff first, asks before a replacement or deletion
(unless ``--yes``), shows the engine's progress, and ends with a one-screen result.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from components import ops
from components.config import StrategyType
from components.engine import Engine, EngineMissing
from components.errors import ConfigError
from components.review import report

console = Console()
YES = Annotated[bool, typer.Option("--yes", "-y", help="do not ask before replacements")]
PROJECT = Annotated[
    Path | None,
    typer.Option("--project", help="Pulumi project directory (default: the current one)"),
]
NO_WAIT = Annotated[bool, typer.Option("--no-wait", help="return at once with an operation id")]


def workspace(project: Path | None) -> ops.Workspace:
    root = (project or Path.cwd()).resolve()
    if not (root / "Pulumi.yaml").exists():
        raise typer.BadParameter(f"{root} has no Pulumi.yaml (use --project)")
    return ops.Workspace(root, Engine(root / ".pulumi-state", use_login=True))


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
    ):
        if key in result and result[key] is not None:
            value = result[key]
            if key == "cpu":
                value = f"{value} millicores"
            elif key == "memory":
                value = f"{value} MiB"
            table.add_row(key, str(value))
    console.print(table)


def run(
    ctx_ws: ops.Workspace,
    stack: str,
    deployment: str | None,
    edits: ops.Edits,
    *,
    yes: bool,
    wait: bool = True,
) -> None:
    """Plan, show, confirm, apply, report. Exit 1 on invalid input, 2 on refusal, 3 on a
    failed update (after rollback)."""
    try:
        p = ops.plan(ctx_ws, stack, edits, deployment)
    except ConfigError as err:
        console.print(err.render(), style="red", markup=False)
        raise typer.Exit(1) from None
    except ops.OperationRefused as err:
        console.print(f"refused: {err}", style="bold red", markup=False)
        raise typer.Exit(2) from None
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


def run_text_edit(
    project: Path | None,
    stack: str,
    deployment: str,
    make_edits: Callable[[str], ops.Edits],
    *,
    yes: bool,
    target: str | None = None,
) -> None:
    """Edits computed from the stack file's current text, then :func:`run`."""
    ws = workspace(project)
    text = ws.stack_file(stack).read_text(encoding="utf-8")
    try:
        edits = make_edits(text)
    except ConfigError as err:
        console.print(err.render(), style="red", markup=False)
        raise typer.Exit(1) from None
    except KeyError as err:
        console.print(f"{deployment}: {err}", style="red", markup=False)
        raise typer.Exit(1) from None
    run(ws, stack, target, edits, yes=yes)


def register(app: typer.Typer) -> None:
    @app.command()
    def status(stack: str, deployment: str, project: PROJECT = None) -> None:
        """Show a deployment's settings in the platform's units."""
        ws = workspace(project)
        try:
            _show_result(ops.status(stack, deployment, ws))
        except ConfigError as err:
            console.print(err.render(), style="red", markup=False)
            raise typer.Exit(1) from None

    @app.command()
    def scale(
        stack: str,
        deployment: str,
        replicas: Annotated[int | None, typer.Option("--replicas")] = None,
        min_replicas: Annotated[int | None, typer.Option("--min")] = None,
        max_replicas: Annotated[int | None, typer.Option("--max")] = None,
        yes: YES = False,
        project: PROJECT = None,
        no_wait: NO_WAIT = False,
    ) -> None:
        """Set fixed replicas, or the autoscaler's bounds."""
        base = f"deployments.{deployment}"
        edits: ops.Edits = {}
        if replicas is not None:
            edits[f"{base}.replicas"] = replicas
        if min_replicas is not None:
            edits[f"{base}.autoscaling.minReplicas"] = min_replicas
        if max_replicas is not None:
            edits[f"{base}.autoscaling.maxReplicas"] = max_replicas
        if not edits:
            raise typer.BadParameter("give --replicas, or --min/--max")
        run(workspace(project), stack, deployment, edits, yes=yes, wait=not no_wait)

    @app.command()
    def resources(
        stack: str,
        deployment: str,
        cpu: Annotated[int | None, typer.Option(help="millicores per replica")] = None,
        memory: Annotated[int | None, typer.Option(help="MiB per replica")] = None,
        yes: YES = False,
        project: PROJECT = None,
        no_wait: NO_WAIT = False,
    ) -> None:
        """Change CPU (millicores) and memory (MiB) per replica."""
        try:
            edits = ops.resource_edits(deployment, cpu=cpu, memory=memory)
        except ConfigError as err:
            console.print(err.render(), style="red", markup=False)
            raise typer.Exit(1) from None
        run(workspace(project), stack, deployment, edits, yes=yes, wait=not no_wait)

    @app.command()
    def stop(stack: str, deployment: str, yes: YES = False, project: PROJECT = None) -> None:
        """Remove every pod; keep the endpoint and the whole config."""
        run(
            workspace(project),
            stack,
            deployment,
            ops.resource_edits(deployment, active=False),
            yes=yes,
        )

    @app.command()
    def start(stack: str, deployment: str, yes: YES = False, project: PROJECT = None) -> None:
        """Start a stopped deployment with its previous settings."""
        run(
            workspace(project),
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
        project: PROJECT = None,
    ) -> None:
        """Roll out a new model version (rolling, blue_green, or canary at --weight %)."""
        run_text_edit(
            project,
            stack,
            deployment,
            lambda text: ops.set_model_edits(
                text, deployment, version=version, image=image, strategy=strategy, weight=weight
            ),
            yes=yes,
            target=deployment,
        )

    @app.command()
    def promote(stack: str, deployment: str, yes: YES = False, project: PROJECT = None) -> None:
        """Make the canary the stable version and remove the canary track."""
        run_text_edit(
            project,
            stack,
            deployment,
            lambda text: ops.promote_edits(text, deployment),
            yes=yes,
            target=deployment,
        )

    @app.command()
    def rollback(stack: str, deployment: str, yes: YES = False, project: PROJECT = None) -> None:
        """Remove the canary; the stable version takes all traffic again."""
        run_text_edit(
            project,
            stack,
            deployment,
            lambda text: ops.rollback_edits(text, deployment),
            yes=yes,
            target=deployment,
        )

    @app.command()
    def delete(
        stack: str,
        deployment: str,
        confirm: Annotated[str, typer.Option("--confirm", help="repeat the deployment's name")],
        yes: YES = False,
        project: PROJECT = None,
    ) -> None:
        """Delete a deployment (its resources go; the stack file loses its entry)."""
        if confirm != deployment:
            console.print(f"refused: --confirm must repeat {deployment!r}", style="bold red")
            raise typer.Exit(2)
        run_text_edit(
            project, stack, deployment, lambda text: ops.delete_edits(text, deployment), yes=yes
        )

    @app.command()
    def operation(op_id: str, project: PROJECT = None) -> None:
        """Status and result of an operation started with --no-wait."""
        try:
            _show_result(ops.get_operation(op_id, workspace(project)))
        except KeyError as err:
            console.print(str(err), style="red")
            raise typer.Exit(1) from None
