"""Running the Pulumi engine, and the Pulumi projects it runs: discovery, backends, init.

Lazy (PEP 562): the project helpers load without pulumi; the runner loads on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    **dict.fromkeys(
        ("Project", "find_project", "init_project", "load_project"), "servestack.engine.project"
    ),
    **dict.fromkeys(
        (
            "EngineLocation",
            "EngineMissing",
            "engine_bin",
            "find_engine",
        ),
        "servestack.engine.discovery",
    ),
    **dict.fromkeys(("Engine", "make_project"), "servestack.engine.runner"),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'servestack.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


if TYPE_CHECKING:
    from servestack.engine.discovery import EngineLocation as EngineLocation
    from servestack.engine.discovery import EngineMissing as EngineMissing
    from servestack.engine.discovery import engine_bin as engine_bin
    from servestack.engine.discovery import find_engine as find_engine
    from servestack.engine.project import Project as Project
    from servestack.engine.project import find_project as find_project
    from servestack.engine.project import init_project as init_project
    from servestack.engine.project import load_project as load_project
    from servestack.engine.runner import Engine as Engine
    from servestack.engine.runner import make_project as make_project
