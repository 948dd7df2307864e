"""Processes left running, found by the marker in their environment and ended: the
mechanism recovery uses for a killed operation's engine processes, and the session check
of tests/conftest.py. Real processes, orphaned the way the engine's plugins are (a process
group of their own, parent gone)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from servestack.ops import recovery
from servestack.ops.lock import process_alive
from servestack.ops.recovery import end_processes, processes_marked
from tests import REPO

MARK = "SERVESTACK_TEST_LEFTOVER"

#: Starts a sleeper in a session of its own, prints its pid and exits: the sleeper is
#: reparented to init, as the engine's plugins are when the engine is killed.
ORPHAN = textwrap.dedent(
    """
    import subprocess, sys
    child = subprocess.Popen(
        [sys.executable, "-c", sys.argv[1]], start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    print(child.pid, flush=True)
    """
)
SLEEPER = "import time; time.sleep(300)"
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"


def orphan(env: dict[str, str], code: str = SLEEPER) -> int:
    out = subprocess.run(
        [sys.executable, "-c", ORPHAN, code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(out.stdout.strip())
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}/environ").read_bytes() == b"":  # not exec'd yet
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return pid


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_an_orphan_is_found_by_its_marker_and_ended() -> None:
    op = uuid.uuid4().hex
    pid = orphan({MARK: op})
    other = orphan({MARK: "another-operation"})
    try:
        assert os.getppid() != pid
        found = processes_marked(MARK, op)
        assert [p.pid for p in found] == [pid]
        assert "time.sleep(300)" in found[0].cmdline
        said: list[str] = []
        lines = end_processes(MARK, op, "operation x", said.append)
        assert lines == said
        assert lines == [
            f"ended pid {pid} ({found[0].cmdline}) with SIGTERM, left running by operation x"
        ]
        assert not alive(pid)
        assert processes_marked(MARK, op) == []
        assert alive(other), "a process with another marker value is not touched"
    finally:
        for p in (pid, other):
            if alive(p):
                os.kill(p, signal.SIGKILL)


def test_a_process_that_ignores_sigterm_gets_sigkill() -> None:
    op = uuid.uuid4().hex
    pid = orphan({MARK: op}, STUBBORN)
    try:
        time.sleep(0.5)  # let it install its handler
        lines = end_processes(MARK, op, "operation y", lambda _line: None, grace=0.5)
        assert len(lines) == 1 and lines[0].startswith(f"ended pid {pid} (")
        assert "with SIGKILL" in lines[0]
        assert not alive(pid)
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


LEAKY = """
import subprocess, sys

def test_leaks() -> None:
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"],
                     start_new_session=True)

def test_leaks_nothing() -> None:
    subprocess.run([sys.executable, "-c", "pass"], check=True)
"""


def _inner_session(tmp_path: Path, select: str) -> subprocess.CompletedProcess[str]:
    """A pytest session of its own with tests/conftest.py as a plugin."""
    (tmp_path / "test_leaky.py").write_text(LEAKY)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider"]
        + ["-c", os.devnull, "--rootdir", str(tmp_path), f"--basetemp={tmp_path / 'tmp'}"]
        + [f"{tmp_path / 'test_leaky.py'}::{select}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_process_that_outlives_the_test_session_fails_it(tmp_path: Path) -> None:
    proc = _inner_session(tmp_path, "test_leaks")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out  # the test passed; the leftover failed the session
    assert "1 passed" in out
    assert "1 process(es) started by this test session outlived it:" in out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("pid "))
    pid = int(line.split()[1].rstrip(":"))
    assert "time.sleep(300)" in line
    assert f"ended pid {pid} (" in out
    assert not alive(pid)


def test_a_session_that_leaves_nothing_passes(tmp_path: Path) -> None:
    proc = _inner_session(tmp_path, "test_leaks_nothing")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "outlived" not in proc.stdout


def test_a_pulumi_that_outlives_the_wait_is_ended_and_its_lock_goes(tmp_path: Path) -> None:
    """The interrupted operation's `pulumi` still holds the engine's stack lock after the
    wait: it is ended with the plugins, and the lock it leaves is removed."""
    op = uuid.uuid4().hex
    pid = orphan({recovery.OPERATION_ENV: op})  # stands for the `pulumi` CLI
    lock = tmp_path / ".pulumi" / "locks" / "organization" / "proj" / "dev" / "x.json"
    lock.parent.mkdir(parents=True)
    host = socket.gethostname()
    lock.write_text(json.dumps({"pid": pid, "hostname": host, "timestamp": "t"}))
    journal = recovery.Journal(op, "dev", 1, host, None, "apply", "", "")
    said: list[str] = []
    try:
        lines = recovery.clear_engine_leftovers(
            journal, tmp_path, "proj", "dev", said.append, wait=0.5
        )
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    assert lines == [
        f"pulumi pid {pid} still holds {lock}: left alone",
        lines[1],
        f"removed the engine's stale stack lock {lock} (pulumi pid {pid} is gone; locked at t)",
    ]
    assert lines[1].startswith(f"ended pid {pid} (") and "with SIGTERM" in lines[1]
    assert f"waiting for pulumi pid {pid}, left running by the interrupted operation" in said
    assert not lock.exists()
    assert not alive(pid)


def test_nothing_left_nothing_said(tmp_path: Path) -> None:
    journal = recovery.Journal(uuid.uuid4().hex, "dev", 1, socket.gethostname(), None, "", "", "")
    said: list[str] = []
    assert recovery.clear_engine_leftovers(journal, tmp_path, "p", "dev", said.append, 0) == []
    assert said == []


def test_a_zombie_is_not_alive() -> None:
    """An ended process its parent has not collected yet (orphans wait for init) is gone:
    a lock or record naming it is stale."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while alive(child.pid):  # exited, not yet waited for: a zombie
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert Path(f"/proc/{child.pid}").exists()
        assert not process_alive(child.pid)
    finally:
        child.wait()


def test_only_a_cluster_kept_on_purpose_may_outlive_the_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With SERVESTACK_KEEP_CLUSTER=1 the local cluster the session started stays running
    (its binaries are under .cluster-bin, a link into the build cache); nothing else does."""
    from tests import conftest

    real = tmp_path / "cache" / "bin"
    real.mkdir(parents=True)
    shutil.copy("/bin/sleep", real / "etcd")
    (tmp_path / ".cluster-bin").symlink_to(real)
    monkeypatch.setattr(conftest, "REPO", tmp_path)
    etcd = subprocess.Popen([str(real / "etcd"), "300"])
    other = subprocess.Popen(["sleep", "300"])
    try:
        monkeypatch.setenv("SERVESTACK_KEEP_CLUSTER", "1")
        assert conftest._kept_on_purpose(recovery.Leftover(etcd.pid, "etcd"))
        assert not conftest._kept_on_purpose(recovery.Leftover(other.pid, "sleep"))
        monkeypatch.delenv("SERVESTACK_KEEP_CLUSTER")
        assert not conftest._kept_on_purpose(recovery.Leftover(etcd.pid, "etcd"))
    finally:
        for proc in (etcd, other):
            proc.kill()
            proc.wait()
