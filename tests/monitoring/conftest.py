"""Fixtures for the monitoring tier: real model-server subprocesses on 127.0.0.1, and the
Prometheus binaries built by tools/build-prometheus.sh."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class BeforeGate:
    """What a server answered while its model loading was held back by the gate file."""

    health: int
    ready: int
    ready_body: object
    predict: int
    metrics: str


@pytest.fixture(scope="module")
def ready_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    """One fault-free server with its model loaded, shared by a module's tests.

    Started as `python -m model_server` with PORT in the environment (the other fixtures use
    the uvicorn command line, so both are covered), and with MODEL_SERVER_LOAD_GATE: before
    opening the gate it records what the server answered while not ready (server.before_gate),
    which makes the 503 window certain rather than a race."""
    tmp = tmp_path_factory.mktemp("ready-server")
    gate = tmp / "load-gate"
    for start in _factory(tmp):
        s = start(
            {
                "MODEL_ID": MODEL_ID,
                "MODEL_VERSION": MODEL_VERSION,
                "MODEL_SERVER_LOAD_GATE": str(gate),
            },
            name="ready",
            use_main=True,
        )
        ready = s.get("/ready")
        s.before_gate = BeforeGate(
            health=s.get("/health").status_code,
            ready=ready.status_code,
            ready_body=ready.json(),
            predict=s.predict([[5.1, 3.5, 1.4, 0.2]]).status_code,
            metrics=s.metrics_text(),
        )
        gate.touch()
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
