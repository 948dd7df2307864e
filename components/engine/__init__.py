"""Running the Pulumi engine, and the Pulumi projects it runs: discovery, backends, init."""

from servestack.engine.project import Project, find_project, init_project, load_project
from servestack.engine.runner import (
    CHECKOUT,
    Engine,
    EngineLocation,
    EngineMissing,
    engine_bin,
    find_engine,
    make_project,
)

__all__ = [
    "CHECKOUT",
    "Engine",
    "EngineLocation",
    "EngineMissing",
    "Project",
    "engine_bin",
    "find_engine",
    "find_project",
    "init_project",
    "load_project",
    "make_project",
]
