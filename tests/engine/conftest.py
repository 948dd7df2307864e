"""Engine tier: the real Pulumi CLI, Python language host and Kubernetes provider (built by
`make engine`), a local file backend, render mode. No mocks anywhere in this tier."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from servestack.engine import Engine, engine_bin, make_project
from tests import stack_text

PASSPHRASE = "engine-tier-test-passphrase"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/engine/" in str(item.fspath):
            item.add_marker(pytest.mark.engine)


@pytest.fixture(scope="session")
def engine_ready() -> Path:
    # No skip: a missing engine is a failure of this tier, with the message saying why.
    return engine_bin()


@dataclass
class Deployed:
    engine: Engine
    project: Path
    stack: str
    base: str
    out: Path

    @property
    def stack_file(self) -> Path:
        return self.project / "stacks" / f"Pulumi.{self.stack}.yaml"


def deploy(tmp: Path, stack: str, text: str | None = None) -> Deployed:
    base = text or stack_text(stack)
    out = tmp / "out"
    engine = Engine(
        tmp / "state", passphrase=PASSPHRASE, extra_env={"SERVESTACK_RENDER_ROOT": str(out)}
    )
    project = make_project(tmp / "project", stacks={stack: base})
    engine.stack(project, stack).up(on_output=lambda _: None)
    return Deployed(engine, project, stack, base, out)


@pytest.fixture(scope="module")
def prod(engine_ready: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    d = deploy(tmp_path_factory.mktemp("prod"), "prod")
    yield d
    d.engine.cli(d.project, "state", "unprotect", "--all", "--yes", "--stack", d.stack)
    d.engine.stack(d.project, d.stack).destroy(on_output=lambda _: None)


@pytest.fixture(scope="module")
def dev(engine_ready: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    d = deploy(tmp_path_factory.mktemp("dev"), "dev")
    yield d
    d.engine.stack(d.project, d.stack).destroy(on_output=lambda _: None)


@pytest.fixture(scope="module")
def staging(engine_ready: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    d = deploy(tmp_path_factory.mktemp("staging"), "staging")
    yield d
    d.engine.stack(d.project, d.stack).destroy(on_output=lambda _: None)


@pytest.fixture(scope="module")
def mig(engine_ready: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    d = deploy(tmp_path_factory.mktemp("mig"), "mig")
    yield d
    d.engine.stack(d.project, d.stack).destroy(on_output=lambda _: None)


@pytest.fixture(scope="module")
def existing(engine_ready: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    d = deploy(tmp_path_factory.mktemp("existing"), "existing")
    yield d
    d.engine.stack(d.project, d.stack).destroy(on_output=lambda _: None)
