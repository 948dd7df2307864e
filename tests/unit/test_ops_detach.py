"""`--no-wait` returns at once (issue 19 item 5): the operation runs on in a worker process of
its own, which holds the stack's lock and names itself in the record; killed, it reads
``interrupted`` and the lock is free. No engine runs: the worker is stopped (testhook) right
after it wrote the stack file, before `pulumi up`."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from servestack.cli import app
from servestack.engine import make_project
from servestack.ops import operations as ops
from servestack.ops.lock import StackBusy, StackLock, process_alive
from servestack.testhook import DIR_ENV, ENV
from tests import REPO

DEV = (REPO / "stacks" / "Pulumi.dev.yaml").read_text()
REPLICAS = "deployments.bert-sentiment.replicas"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = make_project(tmp_path / "project", stacks={"dev": DEV})
    monkeypatch.setenv(ENV, "stack-written")
    monkeypatch.setenv(DIR_ENV, str(tmp_path / "pause"))
    monkeypatch.chdir(root)
    started: list[int] = []
    yield root
    for ready in (tmp_path / "pause").glob("stack-written.*.ready"):
        started.append(int(ready.name.split(".")[1]))
    for pid in started:
        if process_alive(pid):
            os.kill(pid, signal.SIGKILL)


def _paused_worker(project: Path, op_id: str) -> int:
    """The worker's pid once it stopped after writing the stack file (before `pulumi up`)."""
    pause = project.parent / "pause"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready = list(pause.glob("stack-written.*.ready"))
        if ready:
            return int(ready[0].name.split(".")[1])
        time.sleep(0.05)
    log = (project / ".servestack" / "operations" / f"{op_id}.log").read_text()
    raise AssertionError(f"the worker never reached the stack-written point:\n{log}")


def _kill_and_check(ws: ops.Workspace, op_id: str, pid: int) -> None:
    op = ops.get_operation(op_id, ws)
    assert (op["status"], op["phase"], op["runner"], op["pid"]) == (
        "running",
        "apply",
        "worker",
        pid,
    )
    assert pid != os.getpid()
    assert op["changes"][0]["path"] == REPLICAS
    # The worker holds the stack's lock: another operation has to wait for it.
    with pytest.raises(StackBusy, match=f"pid {pid} "):
        StackLock(ws.state, "dev").acquire("test", timeout=0)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    op = ops.get_operation(op_id, ws)
    assert op["status"] == "interrupted", op
    assert f"process {pid} " in op["error"]
    # The kernel released the lock with the worker; its journal is left for recovery.
    with StackLock(ws.state, "dev") as lock:
        lock.acquire("test", timeout=0)
    assert (ws.state / "inflight" / "dev.json").exists()


def test_apply_detached_returns_at_once_and_the_worker_holds_the_lock(project: Path) -> None:
    ws = ops.Workspace(project)
    ws.lock_timeout = 0
    p = ops.plan(ws, "dev", {REPLICAS: 2}, "bert-sentiment")
    began = time.monotonic()
    started = ops.apply(ws, p, wait=False, detach=True)
    assert time.monotonic() - began < 5
    assert started["status"] == "running"
    assert p.lock is None  # handed over: this process no longer has it
    pid = _paused_worker(project, started["operation_id"])
    assert "replicas: 2" in ws.stack_file("dev").read_text()
    _kill_and_check(ws, started["operation_id"], pid)


def test_cli_no_wait_returns_with_the_id_and_operation_shows_the_record(project: Path) -> None:
    res = CliRunner().invoke(
        app, ["scale", "dev", "bert-sentiment", "--replicas", "2", "--no-wait"]
    )
    assert res.exit_code == 0, res.output
    assert "running" in res.output
    ids = [p.stem for p in (project / ".servestack" / "operations").glob("*.json")]
    assert len(ids) == 1
    assert (
        f"operation {ids[0]} runs on in its own process; servestack operation {ids[0]} shows it"
    ) in res.output
    pid = _paused_worker(project, ids[0])
    shown = CliRunner().invoke(app, ["operation", ids[0]])
    assert shown.exit_code == 0, shown.output
    assert "stack dev, deployment bert-sentiment; phase apply; run by worker" in shown.output
    assert f"  in-place {REPLICAS}: - -> 2\n" in shown.output
    assert f"log: {project}/.servestack/operations/{ids[0]}.log" in shown.output
    ws = ops.Workspace(project)
    _kill_and_check(ws, ids[0], pid)
