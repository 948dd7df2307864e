"""The `servestack` Typer app, and the one place where an error becomes an exit code.

Commands raise servestack's own exceptions (`ConfigError`, `OperationRefused`, ...);
:func:`exit_for` maps each to its exit code and one-line message, for every command. Usage
errors (a missing option, `--replicas three`) are invalid input too: one line, exit 1 as documented,
never click's 2, which CI reads as "refused".
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from servestack.cli.output import ExitCode, fail
from servestack.config.errors import ConfigError
from servestack.engine.discovery import EngineMissing
from servestack.ops.gate import GateError
from servestack.ops.lock import StackBusy


def exit_for(exc: BaseException) -> tuple[ExitCode, str] | None:
    """The exit code and message of an error a user can act on; None for anything else."""
    if isinstance(exc, ConfigError):
        return ExitCode.INVALID, exc.render()
    # Imported only by the operations (it brings pulumi): if it is not loaded, ``exc`` is
    # not one of its exceptions.
    operations = sys.modules.get("servestack.ops.operations")
    if operations is not None and isinstance(exc, operations.OperationRefused):
        return ExitCode.REFUSED, f"refused: {exc}"
    if isinstance(exc, GateError):
        return ExitCode.REFUSED, f"refused: {exc}"
    if isinstance(exc, StackBusy):
        return ExitCode.BUSY, str(exc)
    if isinstance(exc, EngineMissing):
        return ExitCode.INVALID, str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return ExitCode.INVALID, f"{where}{exc.strerror}"
    return None


@contextmanager
def _usage_errors(args: Sequence[str] | None = None) -> Iterator[None]:
    """A usage error (a missing option, `--replicas three`) as one line, exit 1: invalid input."""
    try:
        yield
    except typer.TyperException as err:
        # Typer's usage errors (its vendored click's UsageError) carry exit code 2. With no
        # arguments at all, the error is the help text (no_args_is_help): shown as it is.
        if err.exit_code != 2 or args == []:
            raise
        ctx = getattr(err, "ctx", None)
        where = ctx.command_path if ctx is not None else "servestack"
        fail(f"{where}: {err.format_message()} (see {where} --help)")


class ServestackGroup(TyperGroup):
    """Runs every command through :func:`exit_for`: no traceback for an error a user can
    act on, on any path (the commands' own code, or a library they call), and every usage
    error on one line."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        with _usage_errors(args):
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: Any) -> Any:
        with _usage_errors():
            try:
                return super().invoke(ctx)
            except Exception as exc:
                found = exit_for(exc)
                if found is None:
                    raise
                fail(found[1], found[0])


app = typer.Typer(
    cls=ServestackGroup,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="servestack: ML model serving on Kubernetes with Pulumi.",
)


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
            fail(f"-C {cwd}: {exc.strerror}")
    if max_file_bytes is not None:
        # The environment carries it to every reader, the stack program's included.
        os.environ["SERVESTACK_MAX_STACK_FILE_BYTES"] = str(max_file_bytes)


def main(args: Sequence[str] | None = None) -> None:
    """The `servestack` console script and `python -m servestack`."""
    app(args=args, prog_name="servestack")
