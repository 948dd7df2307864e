"""Review commands: `init`, `validate`, `diff`, `explain` (offline; no engine)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from servestack.cli.app import app
from servestack.cli.output import ExitCode, console, fail
from servestack.config import reader
from servestack.config.errors import ConfigError
from servestack.config.stackfile import ENV_STRING_LIMIT, plain_config_bytes
from servestack.config.validation import load_stack_config
from servestack.review import report
from servestack.review.capacity import Fit, next_rollouts
from servestack.review.diff import diff_configs
from servestack.review.explain import explain_preview


class Format(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


class FailOn(StrEnum):
    REPLACE = "replace"
    FORBIDDEN = "forbidden"


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="where to create the project")],
    name: Annotated[
        str | None, typer.Option(help="project name (default: the directory's)")
    ] = None,
    virtualenv: Annotated[
        str,
        typer.Option(help="the project's virtualenv, relative to it (Pulumi creates it if absent)"),
    ] = "venv",
) -> None:
    """Create a Pulumi project that uses servestack: `pulumi up` runs it as it is."""
    from servestack.engine.project import init_project

    project = init_project(directory, name=name, virtualenv=virtualenv)
    typer.echo(f"created {project.name} in {project.root}:")
    for path in sorted(p for p in project.root.rglob("*") if p.is_file()):
        typer.echo(f"  {path.relative_to(project.root)}")
    setup = (
        f"python -m venv {virtualenv} && {virtualenv}/bin/pip install -r requirements.txt, then "
        if virtualenv == "venv"
        else ""
    )
    typer.echo(
        f"next: {setup}pulumi stack init dev && pulumi up (or servestack validate stacks/*.yaml)"
    )


def _stack_name(path: Path) -> str:
    name = path.name
    return name[len("Pulumi.") : -len(".yaml")] if name.startswith("Pulumi.") else name


def _project_stack_files() -> list[Path]:
    """The stack files of the project around the current directory (its stackConfigDir)."""
    from servestack.engine.project import find_project

    project = find_project()
    found = [project.stack_file(stack) for stack in project.stacks()]
    if not found:
        fail(f"{project.stack_config_dir}: no Pulumi.<stack>.yaml files (stackConfigDir)")
    return found


@app.command()
def validate(
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Pulumi.<stack>.yaml files (default: every stack file of the project)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Validate stack files; one line per problem."""
    bad = False
    for f in files or _project_stack_files():
        try:
            cfg = load_stack_config(f)
        except ConfigError as err:
            typer.echo(err.render(), err=True)
            bad = True
            continue
        typer.echo(
            f"{f}: ok ({cfg.environment.value}, {len(cfg.deployments)} deployments, "
            f"{len(cfg.node_pools)} node pools)"
        )
        size = plain_config_bytes(reader.read_text(f))
        if size > ENV_STRING_LIMIT:
            typer.echo(
                f"{f}: note: a plain `pulumi up` cannot start this stack: Pulumi hands the "
                f"program its config in one environment variable, {size:,} bytes here, and "
                f"Linux allows {ENV_STRING_LIMIT:,}; `servestack up` hands it over in a file"
            )
        # Valid at rest; a rollout from here may still never finish: said before any edit.
        for v in next_rollouts(cfg):
            said = [f"its next rollout {v.text}"] if v.fit is Fit.CANNOT_FINISH else []
            for line in said + list(v.notes):
                typer.echo(f"{f}: warning: {v.path}: {line}")
    if bad:
        raise typer.Exit(ExitCode.INVALID)


@app.command()
def diff(
    old: Annotated[Path, typer.Argument(help="stack file before the change")],
    new: Annotated[Path, typer.Argument(help="stack file after the change")],
    fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.text,
    fail_on: Annotated[
        FailOn, typer.Option("--fail-on", help="also block on replacements and deletions")
    ] = FailOn.FORBIDDEN,
) -> None:
    """Classify every changed field between two stack files (offline)."""
    result = diff_configs(load_stack_config(old), load_stack_config(new))
    blocking = result.blocking(fail_on is FailOn.REPLACE)
    if fmt is Format.json:
        typer.echo(report.diff_json(result, blocking))
    elif fmt is Format.markdown:
        typer.echo(report.diff_markdown(result, blocking, stack=_stack_name(new)), nl=False)
    else:
        typer.echo(
            report.diff_text(result, blocking, color=console.is_terminal, width=console.width),
            nl=False,
        )
    if blocking:
        raise typer.Exit(ExitCode.REFUSED)


def _read_preview(preview: Path) -> dict[str, Any]:
    try:
        data: Any = json.loads(preview.read_text(encoding="utf-8"))
    except OSError as exc:
        fail(f"{preview}: cannot read: {exc.strerror}")
    except json.JSONDecodeError as exc:
        fail(f"{preview}: not JSON from `pulumi preview --json` (line {exc.lineno}: {exc.msg})")
    if not isinstance(data, dict) or not isinstance(data.get("steps", []), list):
        fail(f"{preview}: expected an object with a 'steps' list (pulumi preview --json)")
    return data


@app.command()
def explain(
    preview: Annotated[Path, typer.Argument(help="output of `pulumi preview --json`")],
    stack_file: Annotated[
        Path | None, typer.Option("--stack-file", help="the stack file the preview was made from")
    ] = None,
    base_file: Annotated[
        Path | None,
        typer.Option("--base-stack-file", help="the stack file last deployed (narrows causes)"),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.text,
    fail_on_unexpected: Annotated[
        bool,
        typer.Option(
            "--fail-on-unexpected", help="exit 2 when the engine does more than the table says"
        ),
    ] = False,
) -> None:
    """Trace each step of a real preview to the config field that caused it."""
    data = _read_preview(preview)
    stack = load_stack_config(stack_file) if stack_file is not None else None
    base = load_stack_config(base_file) if base_file is not None else None
    steps = explain_preview(data, stack, base)
    # With both files, the rollouts' capacity verdicts (review.capacity) come along.
    verdicts = diff_configs(base, stack) if stack is not None and base is not None else None
    if fmt is Format.json:
        typer.echo(report.explain_json(steps, verdicts))
    elif fmt is Format.markdown:
        typer.echo(report.explain_markdown(steps, capacity=verdicts), nl=False)
    else:
        typer.echo(
            report.explain_text(
                steps, color=console.is_terminal, width=console.width, capacity=verdicts
            ),
            nl=False,
        )
    if fail_on_unexpected and any(s.unexpected for s in steps):
        raise typer.Exit(ExitCode.REFUSED)
