"""Fixtures for the monitoring tier: real model-server subprocesses on 127.0.0.1, and the
Prometheus binaries built by tools/build-prometheus.sh."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from tests.monitoring.servers import ModelServer, start_model_server

ServerFactory = Callable[..., ModelServer]

MODEL_ID = "iris-test"
MODEL_VERSION = "v1.2.3"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "prometheus: runs the Prometheus server/promtool built by tools/build-prometheus.sh",
    )


def _factory(log_dir: Path) -> Iterator[ServerFactory]:
    started: list[ModelServer] = []

    def start(env: Mapping[str, str] | None = None, **kw: object) -> ModelServer:
        s = start_model_server(log_dir, env, **kw)  # type: ignore[arg-type]
        started.append(s)
        return s

    try:
        yield start
    finally:
        for s in started:
            s.stop()


@pytest.fixture
def model_servers(tmp_path: Path) -> Iterator[ServerFactory]:
    """start(env, name=..., use_main=...) -> ModelServer (up, /health 200); all stopped after."""
    yield from _factory(tmp_path / "logs")


@pytest.fixture(scope="module")
def ready_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    """One fault-free server with its model loaded, shared by a module's tests. Started as
    `python -m model_server` with PORT in the environment (the uvicorn command line is used
    by the other fixtures), so that path is covered too."""
    for start in _factory(tmp_path_factory.mktemp("ready-server")):
        s = start(
            {"MODEL_ID": MODEL_ID, "MODEL_VERSION": MODEL_VERSION}, name="ready", use_main=True
        )
        s.wait_ready()
        yield s


BAD_CANARY_ERROR_RATE = 0.25
BAD_CANARY_LATENCY_MS = 30


@pytest.fixture(scope="module")
def bad_canary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    """A server that answers 25 % of /predict with 500 and sleeps 30 ms on each."""
    for start in _factory(tmp_path_factory.mktemp("bad-canary")):
        s = start(
            {
                "MODEL_SERVER_ERROR_RATE": str(BAD_CANARY_ERROR_RATE),
                "MODEL_SERVER_EXTRA_LATENCY_MS": str(BAD_CANARY_LATENCY_MS),
            },
            name="bad-canary",
        )
        s.wait_ready()
        yield s
