"""One operation at a time per stack, with real processes: the stack lock is an OS file
lock, so what counts is what separate processes see. No engine needed: a lock is taken
before anything else happens."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from servestack.engine import make_project
from servestack.ops import operations as ops
from servestack.ops.lock import StackBusy, StackLock, process_start
from tests import REPO

#: A process that takes a stack's lock, says so through a file, and holds it until told.
HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from servestack.ops.lock import StackLock
    state, stack, ready, go = sys.argv[1:5]
    lock = StackLock(Path(state), stack)
    lock.acquire("servestack scale " + stack + " bert-sentiment", timeout=0)
    Path(ready).write_text("locked")
    while not Path(go).exists():
        time.sleep(0.02)
    lock.release()
    """
)


def _wait_for(path: Path, proc: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 120
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"{what} ended early: {proc.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never got ready")
        time.sleep(0.02)


class Holding:
    def __init__(self, state: Path, stack: str, tmp: Path) -> None:
        self.ready, self.go = tmp / f"{stack}.ready", tmp / f"{stack}.go"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(state), stack, str(self.ready), str(self.go)],
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        _wait_for(self.ready, self.proc, "the lock holder")

    def release(self) -> None:
        self.go.touch()
        assert self.proc.wait(timeout=60) == 0


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / ".servestack"


@pytest.fixture
def holder(state: Path, tmp_path: Path) -> Iterator[Holding]:
    h = Holding(state, "dev", tmp_path)
    yield h
    if h.proc.poll() is None:
        h.proc.kill()
        h.proc.wait()


def test_second_operation_fails_at_once_naming_the_holder(state: Path, holder: Holding) -> None:
    start = time.monotonic()
    with pytest.raises(StackBusy) as info:
        StackLock(state, "dev").acquire("servestack scale dev other", timeout=0)
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert message.startswith(
        f"stack dev is busy (not waiting: --no-queue): the lock is held by pid "
        f"{holder.proc.pid} on {socket.gethostname()}, running servestack scale dev "
        "bert-sentiment since 20"
    ), message
    assert info.value.holder is not None and info.value.holder.pid == holder.proc.pid
    assert info.value.holder.pid_start == process_start(holder.proc.pid)


def test_second_operation_waits_with_a_message_then_runs(state: Path, holder: Holding) -> None:
    told: list[str] = []

    def on_wait(h: object) -> None:
        told.append(h.describe())  # type: ignore[attr-defined]
        holder.release()  # the holder ends while we wait

    lock = StackLock(state, "dev")
    lock.acquire("servestack scale dev other", timeout=120, on_wait=on_wait)
    try:
        assert told == [told[0]] and told[0].startswith(f"pid {holder.proc.pid} on ")
        data = json.loads(lock.path.read_text())
        assert (data["pid"], data["operation"]) == (os.getpid(), "servestack scale dev other")
    finally:
        lock.release()
    assert lock.path.read_text() == ""  # who held it is not left behind


def test_waiting_ends_at_the_timeout(state: Path, holder: Holding) -> None:
    start = time.monotonic()
    with pytest.raises(StackBusy, match=r"stack dev is busy after waiting 1s: .*pid"):
        StackLock(state, "dev").acquire("x", timeout=1.0)
    assert 1.0 <= time.monotonic() - start < 10


def test_other_stacks_are_not_held_up(state: Path, holder: Holding) -> None:
    with StackLock(state, "prod") as lock:
        lock.acquire("servestack scale prod x", timeout=0)
        assert lock.held


def test_a_killed_holder_leaves_no_lock(state: Path, holder: Holding) -> None:
    holder.proc.send_signal(signal.SIGKILL)
    holder.proc.wait()
    with StackLock(state, "dev") as lock:
        lock.acquire("after the kill", timeout=0)  # the kernel released it with the process
        assert lock.held


def test_the_lock_is_not_reentrant_within_a_process(state: Path) -> None:
    with StackLock(state, "dev") as first:
        first.acquire("one", timeout=0)
        with pytest.raises(StackBusy):
            StackLock(state, "dev").acquire("two", timeout=0)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    text = (REPO / "stacks" / "Pulumi.dev.yaml").read_text()
    return make_project(tmp_path / "project", stacks={"dev": text})


def _servestack(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "servestack", "-C", str(project), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_cli_no_queue_exits_4_naming_the_holder(project: Path, tmp_path: Path) -> None:
    h = Holding(project / ".servestack", "dev", tmp_path)
    try:
        res = _servestack(
            project, "scale", "dev", "bert-sentiment", "--replicas", "2", "--no-queue"
        )
    finally:
        h.release()
    assert res.returncode == 4, res
    assert "Traceback" not in res.stdout + res.stderr
    assert (
        f"stack dev is busy (not waiting: --no-queue): the lock is held by pid {h.proc.pid} on "
        f"{socket.gethostname()}, running servestack scale dev bert-sentiment since"
    ) in " ".join(res.stderr.split())
    before = (REPO / "stacks" / "Pulumi.dev.yaml").read_text()
    assert (project / "stacks" / "Pulumi.dev.yaml").read_text() == before


def test_cli_lock_timeout_waits_visibly_then_gives_up(project: Path, tmp_path: Path) -> None:
    h = Holding(project / ".servestack", "dev", tmp_path)
    try:
        res = _servestack(
            project, "scale", "dev", "bert-sentiment", "--replicas", "2", "--lock-timeout", "1"
        )
    finally:
        h.release()
    out = " ".join(res.stdout.split())
    assert res.returncode == 4, res
    assert f"waiting for the stack: held by pid {h.proc.pid} on " in out
    assert "waiting up to 1s (--lock-timeout, --no-queue)" in out
    assert "stack dev is busy after waiting 1s" in res.stderr


def test_plan_holds_the_lock_until_released(project: Path) -> None:
    ws = ops.Workspace(project)
    ws.lock_timeout = 0
    p = ops.plan(ws, "dev", {"deployments.bert-sentiment.replicas": 2}, "bert-sentiment")
    with pytest.raises(StackBusy):
        ops.plan(ws, "dev", {"deployments.bert-sentiment.replicas": 3}, "bert-sentiment")
    p.release()
    ops.plan(ws, "dev", {"deployments.bert-sentiment.replicas": 3}, "bert-sentiment").release()


def test_a_refused_plan_releases_the_lock(project: Path) -> None:
    ws = ops.Workspace(project)
    ws.lock_timeout = 0
    with pytest.raises(ops.OperationRefused):
        ops.plan(ws, "dev", {"deployments.bert-sentiment.model.type": "vision"})
    ops.plan(ws, "dev", {"deployments.bert-sentiment.replicas": 3}, "bert-sentiment").release()


def test_operation_record_of_a_dead_process_reads_interrupted(project: Path) -> None:
    ws = ops.Workspace(project)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    op = ops.Operation(id="deadbeef0001", stack="dev", deployment="bert-sentiment")
    # A start time no process has: even if the pid is reused meanwhile, it reads as gone.
    op.status, op.pid, op.pid_start = "running", gone.pid, "0"
    ops._save(ws, op)
    data = ops.get_operation(op.id, ws)
    assert data["status"] == "interrupted"
    assert data["error"] == (
        f"process {gone.pid} on {socket.gethostname()} ended before the operation did "
        "(killed?); the next operation on stack dev finishes the change"
    )
    live = ops.Operation(id="live00000001", stack="dev", deployment="bert-sentiment")
    live.status = "running"  # this very process: alive
    ops._save(ws, live)
    assert ops.get_operation(live.id, ws)["status"] == "running"
