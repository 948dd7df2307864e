"""Where the Pulumi engine is: the documented discovery order, without importing pulumi.

First hit wins:
    1. ``SERVESTACK_ENGINE_BIN``: a directory holding `pulumi`, `pulumi-language-python` and
       `pulumi-resource-kubernetes` (run hermetically, like the checkout's build);
    2. a `pulumi` on ``PATH``: the user's own CLI, with the user's plugins and home;
    3. the checkout's ``.engine/bin`` (`make engine`), when servestack runs from its source tree.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

#: The servestack source checkout this package runs from, or None for an installed wheel.
_ROOT = Path(__file__).resolve().parents[2]
CHECKOUT: Path | None = (
    _ROOT
    if (_ROOT / "tools" / "build-engine.sh").exists() and (_ROOT / "components").is_dir()
    else None
)
ENGINE_BINARIES = ("pulumi", "pulumi-language-python", "pulumi-resource-kubernetes")


class EngineMissing(RuntimeError):
    """The engine binaries are not there; the message says how to build them."""


@dataclass(frozen=True)
class EngineLocation:
    bin_dir: Path
    #: Where it was found: ``SERVESTACK_ENGINE_BIN``, ``PATH`` or ``checkout``.
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
    if CHECKOUT is not None and (CHECKOUT / ".engine" / "bin" / "pulumi").exists():
        return EngineLocation(CHECKOUT / ".engine" / "bin", "checkout", hermetic=True)
    hint = " run `make engine` in the servestack checkout," if CHECKOUT else ""
    raise EngineMissing(
        "no Pulumi engine found:"
        + hint
        + " install the Pulumi CLI on PATH, or set SERVESTACK_ENGINE_BIN to a directory with "
        + ", ".join(ENGINE_BINARIES)
    )


def cluster_tool() -> ModuleType:
    """The checkout's tools/cluster.py (the local control plane of `make cluster`), imported
    by path: tools/ is not a package, and an installed wheel has no such file."""
    name = "servestack_tools_cluster"
    if name in sys.modules:
        return sys.modules[name]
    path = (CHECKOUT or Path.cwd()) / "tools" / "cluster.py"
    if not path.exists():
        raise FileNotFoundError(f"{path}: the local cluster runs from a servestack checkout")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def engine_bin() -> Path:
    return find_engine().bin_dir
