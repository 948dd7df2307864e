"""`servestack` command line: validate stack files, review changes, explain previews.

Exit codes: 0 fine; 1 invalid input (the message names the file and field); 2 a blocking
change (forbidden, or a replacement/deletion where the gate applies).
"""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from servestack.config.errors import ConfigError
from servestack.config.validation import load_stack_config
from servestack.review import report
from servestack.review.diff import diff_configs
from servestack.review.explain import explain_preview

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="servestack: ML model serving on Kubernetes with Pulumi.",
)

EXIT_INVALID = 1
EXIT_BLOCKED = 2


class Format(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


class FailOn(StrEnum):
    REPLACE = "replace"
    FORBIDDEN = "forbidden"


@app.callback()
def _root(
    cwd: Annotated[
        Path | None,
        typer.Option(
            "-C", "--cwd", help="run as if started in DIR (the Pulumi project is found from it)"
        ),
    ] = None,
    max_file_bytes: Annotated[
        int | None,
        typer.Option(
            "--max-file-bytes",
            min=1,
            metavar="BYTES",
            help="refuse stack files larger than this (default 8 MiB; "
            "env SERVESTACK_MAX_STACK_FILE_BYTES)",
        ),
    ] = None,
) -> None:
    if cwd is not None:
        try:
            os.chdir(cwd)
        except OSError as exc:
            _fail(f"-C {cwd}: {exc.strerror}")
    if max_file_bytes is not None:
        # The environment carries it to every reader, the stack program's included.
        os.environ["SERVESTACK_MAX_STACK_FILE_BYTES"] = str(max_file_bytes)


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

    try:
        project = init_project(directory, name=name, virtualenv=virtualenv)
    except ConfigError as err:
        _fail(err.render())
        return
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


def _fail(message: str, code: int = EXIT_INVALID) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def _stack_name(path: Path) -> str:
    name = path.name
    return name[len("Pulumi.") : -len(".yaml")] if name.startswith("Pulumi.") else name


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Pulumi.<stack>.yaml files")],
) -> None:
    """Validate stack files; one line per problem."""
    bad = False
    for f in files:
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
    if bad:
        raise typer.Exit(EXIT_INVALID)


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
    try:
        before = load_stack_config(old)
        after = load_stack_config(new)
    except ConfigError as err:
        _fail(err.render())
        return
    result = diff_configs(before, after)
    blocking = result.blocking(fail_on is FailOn.REPLACE)
    if fmt is Format.json:
        typer.echo(report.diff_json(result, blocking))
    elif fmt is Format.markdown:
        typer.echo(report.diff_markdown(result, blocking, stack=_stack_name(new)), nl=False)
    else:
        typer.echo(report.diff_text(result, blocking, color=sys.stdout.isatty()), nl=False)
    if blocking:
        raise typer.Exit(EXIT_BLOCKED)


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
    try:
        data: Any = json.loads(preview.read_text(encoding="utf-8"))
    except OSError as exc:
        _fail(f"{preview}: cannot read: {exc.strerror}")
        return
    except json.JSONDecodeError as exc:
        _fail(f"{preview}: not JSON from `pulumi preview --json` (line {exc.lineno}: {exc.msg})")
        return
    if not isinstance(data, dict) or not isinstance(data.get("steps", []), list):
        _fail(f"{preview}: expected an object with a 'steps' list (pulumi preview --json)")
        return
    stack = None
    if stack_file is not None:
        try:
            stack = load_stack_config(stack_file)
        except ConfigError as err:
            _fail(err.render())
            return
    base = None
    if base_file is not None:
        try:
            base = load_stack_config(base_file)
        except ConfigError as err:
            _fail(err.render())
            return
    steps = explain_preview(data, stack, base)
    if fmt is Format.json:
        typer.echo(report.explain_json(steps))
    elif fmt is Format.markdown:
        typer.echo(report.explain_markdown(steps), nl=False)
    else:
        typer.echo(report.explain_text(steps, color=sys.stdout.isatty()), nl=False)
    if fail_on_unexpected and any(s.unexpected for s in steps):
        raise typer.Exit(EXIT_BLOCKED)


def main() -> None:
    from servestack.ops.commands import register

    register(app)
    try:
        app()
    except ConfigError as err:  # bad input anywhere: its lines, no traceback
        typer.echo(err.render(), err=True)
        sys.exit(EXIT_INVALID)


if __name__ == "__main__":
    main()
