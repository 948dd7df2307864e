"""The project an operation works on, and the engine that applies it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from servestack.engine.project import find_project, load_project
from servestack.engine.runner import Engine
from servestack.ops.lock import DEFAULT_TIMEOUT_SECONDS, Holder

Progress = Callable[[str], None]


@dataclass
class Workspace:
    """A servestack Pulumi project on disk and the engine that applies it.

    ``Workspace()`` is the project around the current directory (looking upward for
    `Pulumi.yaml`); ``Workspace(project_dir=...)`` names one. Stack files are read from the
    project's ``stackConfigDir``.
    """

    project_dir: Path = field(default_factory=lambda: find_project().root)
    engine: Engine | None = None
    #: Seconds an operation waits for another one on the same stack (0: not at all,
    #: None: as long as it takes).
    lock_timeout: float | None = DEFAULT_TIMEOUT_SECONDS
    #: Told who holds the stack's lock when an operation has to wait for it.
    on_lock_wait: Callable[[Holder | None], None] | None = None
    #: Told what the cleanup after an interrupted operation did, as it does it.
    say: Progress | None = None

    def __post_init__(self) -> None:
        self.project = load_project(Path(self.project_dir))
        self.project_dir = self.project.root
        if self.engine is None:
            self.engine = Engine(self.project.engine_state, project_dir=self.project.root)

    @property
    def runner(self) -> Engine:
        assert self.engine is not None  # set by __post_init__
        return self.engine

    @property
    def state(self) -> Path:
        return self.project.state

    def stack_file(self, stack: str) -> Path:
        return self.project.stack_file(stack)
