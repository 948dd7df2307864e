"""Start the example model server (examples/model-server) as a real uvicorn subprocess on
127.0.0.1 and a free port, and import its modules (model_server, loadtest) in tests."""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from harness.poll import wait_for

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "model-server"
HOST = "127.0.0.1"
# Deadlines, not sleeps: generous, because importing scikit-learn on a busy 2-core machine
# (Go builds beside the tests) has taken minutes. SERVESTACK_TEST_START_TIMEOUT overrides.
START_TIMEOUT_S = float(os.environ.get("SERVESTACK_TEST_START_TIMEOUT", "300"))


def example_module(name: str) -> ModuleType:
    """Import model_server.* or loadtest from examples/model-server (not an installed package)."""
    if str(EXAMPLE) not in sys.path:
        sys.path.insert(0, str(EXAMPLE))
    return importlib.import_module(name)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class ModelServer:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    client: httpx.Client
    before_gate: Any = None  # set by fixtures that hold loading back with a gate file

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def get(self, path: str) -> httpx.Response:
        return self.client.get(self.url + path)

    def predict(self, instances: list[list[float]]) -> httpx.Response:
        return self.client.post(self.url + "/predict", json={"instances": instances})

    def metrics_text(self) -> str:
        r = self.get("/metrics")
        r.raise_for_status()
        return r.text

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        def ready() -> bool:
            self._alive()
            try:
                return self.get("/ready").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(f"{self.url}/ready == 200", ready, timeout, every=0.05)

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(lines[-n:])

    def _alive(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"model server exited with {self.proc.returncode}:\n{self.log_tail()}"
            )
        return True

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def _clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MODEL_", "UVICORN_")) and k not in ("PORT", "HOST")
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    # Keep the server from touching anything but /tmp-like places.
    env["HOME"] = env.get("TMPDIR", "/tmp")
    env.update(extra)
    return env


def start_model_server(
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    *,
    name: str = "model-server",
    use_main: bool = False,
    attempts: int = 3,
) -> ModelServer:
    """Start the server and wait for /health (not /ready). use_main: `python -m model_server`
    with PORT in the environment instead of the uvicorn command line."""
    log_dir.mkdir(parents=True, exist_ok=True)
    last_error = ""
    for attempt in range(attempts):
        port = free_port()
        log = log_dir / f"{name}-{attempt}.log"
        if use_main:
            cmd = [sys.executable, "-m", "model_server"]
            full_env = _clean_env({**(env or {}), "PORT": str(port)})
        else:
            cmd = [
                sys.executable,
                "-m",
                "uvicorn",
                "model_server.app:app",
                "--host",
                HOST,
                "--port",
                str(port),
                "--workers",
                "1",
                "--no-access-log",
            ]
            full_env = _clean_env(env or {})
        with log.open("wb") as out:
            proc = subprocess.Popen(
                cmd, cwd=EXAMPLE, env=full_env, stdout=out, stderr=subprocess.STDOUT
            )
        server = ModelServer(proc, port, log, httpx.Client(timeout=30.0, trust_env=False))

        def healthy(s: ModelServer = server) -> bool:
            if s.proc.poll() is not None:
                return True  # stop waiting: it exited
            try:
                return s.get("/health").status_code == 200
            except httpx.TransportError:
                return False

        try:
            wait_for(f"{server.url}/health", healthy, START_TIMEOUT_S, every=0.05)
        except TimeoutError:
            tail = server.log_tail()
            server.stop()
            raise RuntimeError(f"{name} did not answer /health:\n{tail}") from None
        if proc.poll() is None:
            return server
        last_error = server.log_tail()
        server.stop()
        if "address already in use" not in last_error.lower():
            break  # a real failure, not a lost race for the port
    raise RuntimeError(f"{name} exited during start-up:\n{last_error}")
