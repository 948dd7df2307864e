"""Where the Pulumi engine is: the documented discovery order, without importing pulumi.

First hit wins:
    1. ``SERVESTACK_ENGINE_BIN``: a directory holding `pulumi`, `pulumi-language-python` and
       `pulumi-resource-kubernetes` (run hermetically; the checkout's `make` targets hand
       their own build over this way);
    2. a `pulumi` on ``PATH``: the user's own CLI, with the user's plugins and home.

The package knows nothing of the repository it is developed in: an installed wheel and an
editable install find the engine the same way.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

ENGINE_BINARIES = ("pulumi", "pulumi-language-python", "pulumi-resource-kubernetes")


class EngineMissing(RuntimeError):
    """The engine binaries are not there; the message says how to build them."""


@dataclass(frozen=True)
class EngineLocation:
    bin_dir: Path
    #: Where it was found: ``SERVESTACK_ENGINE_BIN`` or ``PATH``.
    source: str
    #: Run with a private PULUMI_HOME and plugin downloads off (our own build).
    hermetic: bool


def find_engine() -> EngineLocation:
    """The engine to run, in the documented discovery order.

    Raises:
        EngineMissing: none was found; the message says how to get one.
    """
    configured = os.environ.get("SERVESTACK_ENGINE_BIN")
    if configured:
        path = Path(configured)
        missing = [b for b in ENGINE_BINARIES if not (path / b).exists()]
        if missing:
            raise EngineMissing(
                f"SERVESTACK_ENGINE_BIN={path} lacks {', '.join(missing)}: it must hold "
                + ", ".join(ENGINE_BINARIES)
            )
        return EngineLocation(path, "SERVESTACK_ENGINE_BIN", hermetic=True)
    on_path = shutil.which("pulumi")
    if on_path:
        return EngineLocation(Path(on_path).resolve().parent, "PATH", hermetic=False)
    raise EngineMissing(
        "no Pulumi engine found: install the Pulumi CLI on PATH, or set "
        "SERVESTACK_ENGINE_BIN to a directory with " + ", ".join(ENGINE_BINARIES)
    )


def engine_bin() -> Path:
    return find_engine().bin_dir
