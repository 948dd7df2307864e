"""Operations under stress, with real processes and the real engine (render mode): two
operations at the same moment, `kill -9` at the points that are hard on an operation, and
Ctrl-C. No sleep lines anything up: processes stop at named points (servestack.testhook)
or at a provider write that blocks on a FIFO, and say so through files."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from servestack.config.stackfile import set_value
from servestack.config.validation import load_stack_config
from servestack.engine import Engine, make_project
from servestack.ops import recovery
from servestack.testhook import DIR_ENV, ENV
from tests import REPO
from tests.engine.conftest import PASSPHRASE

STACK = "dev"
BERT = "deployments.bert-sentiment.replicas"
#: Commands that change nothing and take no --yes.
READ_ONLY = {"operation", "status"}


@dataclass
class Project:
    root: Path
    out: Path
    hooks: Path
    engine: Engine

    @property
    def stack_file(self) -> Path:
        return self.root / "stacks" / f"Pulumi.{STACK}.yaml"

    @property
    def backend(self) -> Path:
        """The DIY backend the engine runs on (derived from the engine's own environment)."""
        backend = recovery.diy_backend_dir(self.engine.env())
        assert backend is not None, self.engine.backend
        return backend

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "SERVESTACK_RENDER_ROOT": str(self.out),
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "COLUMNS": "240",
            DIR_ENV: str(self.hooks),
            **extra,
        }

    def start(self, *args: str, pause: str = "", session: bool = False) -> subprocess.Popen[str]:
        """`servestack -C <project> ARGS` as its own process (group leader with ``session``);
        a changing operation gets ``--yes`` (no terminal here to confirm at)."""
        env = self.env(**({ENV: pause} if pause else {}))
        confirm = [] if args[0] in READ_ONLY else ["--yes"]
        return subprocess.Popen(
            [sys.executable, "-m", "servestack", "-C", str(self.root), *args, *confirm],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=session,
        )

    def run(self, *args: str) -> tuple[int, str]:
        proc = self.start(*args)
        out, _ = proc.communicate(timeout=1800)
        return proc.returncode, " ".join(out.split())

    def operations(self) -> list[dict[str, Any]]:
        records = (self.root / ".servestack" / "operations").glob("*.json")
        return sorted((json.loads(p.read_text()) for p in records), key=lambda r: r["started_at"])

    def manifest(self, kind: str, name: str) -> dict[str, Any]:
        return yaml.safe_load(manifest_file(self.out / STACK, kind, name).read_text())

    def checkpoint(self) -> dict[str, Any] | None:
        files = list((self.backend / ".pulumi" / "stacks").glob(f"*/{STACK}.json"))
        try:
            data: dict[str, Any] = json.loads(files[0].read_text())
        except (IndexError, OSError, ValueError):  # not there, or caught mid-write
            return None
        return data

    def pending(self) -> list[dict[str, Any]]:
        data = self.checkpoint() or {}
        latest = (data.get("checkpoint") or {}).get("latest") or {}
        return list(latest.get("pending_operations") or [])

    def preview_changes(self) -> dict[str, int]:
        preview = self.engine.preview_json(self.root, STACK)
        assert preview["_exitCode"] == 0, preview["_stderr"]
        return {k: v for k, v in preview["changeSummary"].items() if k != "same"}


def manifest_file(out: Path, kind: str, name: str) -> Path:
    hits = [
        f
        for f in out.rglob("*.yaml")
        if f.is_file()
        and (doc := yaml.safe_load(f.read_text()))
        and doc.get("kind") == kind
        and doc["metadata"]["name"] == name
    ]
    assert len(hits) == 1, (kind, name, hits)
    return hits[0]


@pytest.fixture
def project(engine_ready: Path, tmp_path: Path) -> Project:
    text = (REPO / "stacks" / f"Pulumi.{STACK}.yaml").read_text()
    root = make_project(tmp_path / "project", stacks={STACK: text})
    out = tmp_path / "out"
    # The same engine state the CLI's Workspace uses: the project's `.pulumi-state`.
    engine = Engine(
        root / ".pulumi-state",
        passphrase=PASSPHRASE,
        extra_env={"SERVESTACK_RENDER_ROOT": str(out)},
        project_dir=root,
    )
    # The project's own file backend, whatever the machine is logged in to (a checkpoint
    # looked for here while the engine writes elsewhere is never seen).
    assert engine.backend == f"file://{root / '.pulumi-state' / 'backend'} (project-local)"
    engine.stack(root, STACK).up(on_output=lambda _: None)
    return Project(root, out, tmp_path / "hooks", engine)


#: How long a test waits for a process to reach a point (a render-mode update of the dev
#: stack takes well under a minute on two loaded cores).
REACH_SECONDS = 300


def wait_until(
    check: Callable[[], Any], what: str, proc: subprocess.Popen[str] | None = None
) -> Any:
    deadline = time.monotonic() + REACH_SECONDS
    while True:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process ended first:\n{proc.communicate()[0]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {REACH_SECONDS} s")
        time.sleep(0.05)


def ready(hooks: Path, point: str, count: int = 1) -> Callable[[], list[Path]]:
    return lambda: (lambda hits: hits if len(hits) >= count else [])(
        sorted(hooks.glob(f"{point}.*.ready"))
    )


def kill_group(proc: subprocess.Popen[str]) -> str:
    os.killpg(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    return out


def test_two_scales_at_once_are_serialised_and_both_land(project: Project) -> None:
    a = project.start("scale", STACK, "bert-sentiment", "--replicas", "3", pause="before-lock")
    b = project.start(
        "scale", STACK, "whisper-batch", "--min", "2", "--max", "4", pause="before-lock"
    )
    wait_until(ready(project.hooks, "before-lock", 2), "both operations at the barrier")
    (project.hooks / "before-lock.go").touch()  # both race for the stack's lock now
    outs = {}
    for name, proc in (("a", a), ("b", b)):
        out, _ = proc.communicate(timeout=1800)
        outs[name] = " ".join(out.split())
        assert proc.returncode == 0, out
    # Exactly one waited, and it was told who held the stack.
    waited = [n for n, out in outs.items() if "waiting for the stack: held by pid" in out]
    assert len(waited) == 1, outs
    other = b if waited == ["a"] else a
    assert f"waiting for the stack: held by pid {other.pid} on " in outs[waited[0]]
    assert "running servestack scale dev" in outs[waited[0]]
    # Both changes are in the stack file...
    config = load_stack_config(project.stack_file)
    deps = {d.name: d for d in config.deployments}
    assert deps["bert-sentiment"].replicas == 3
    scaling = deps["whisper-batch"].autoscaling
    assert scaling is not None and (scaling.min_replicas, scaling.max_replicas) == (2, 4)
    # ... and in the rendered manifests.
    assert project.manifest("Deployment", "bert-sentiment")["spec"]["replicas"] == 3
    scaled = project.manifest("ScaledObject", "whisper-batch")["spec"]
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (2, 4)
    # One after the other: the second started after the first had finished.
    first, second = project.operations()
    assert first["status"] == second["status"] == "succeeded"
    assert first["finished_at"] <= second["started_at"], (first, second)
    assert project.preview_changes() == {}


def engine_processes(op: str) -> list[recovery.Leftover]:
    """The live processes an operation's engine run started (they carry its id)."""
    return recovery.processes_marked(recovery.OPERATION_ENV, op)


def _new_text(project: Project) -> str:
    """The stack file the operation under test writes."""
    return set_value(project.stack_file.read_text(), BERT, 3)


def _finish_with_next_operation(project: Project, interrupted: dict[str, Any]) -> str:
    code, out = project.run("scale", STACK, "whisper-batch", "--max", "5")
    assert code == 0, out
    op = interrupted["id"]
    assert f"operation {op} on stack dev was interrupted" in out
    assert f"finished interrupted operation {op}: succeeded" in out
    config = load_stack_config(project.stack_file)
    deps = {d.name: d for d in config.deployments}
    assert deps["bert-sentiment"].replicas == 3
    assert deps["whisper-batch"].autoscaling is not None
    assert deps["whisper-batch"].autoscaling.max_replicas == 5
    assert project.manifest("Deployment", "bert-sentiment")["spec"]["replicas"] == 3
    assert project.manifest("ScaledObject", "whisper-batch")["spec"]["maxReplicaCount"] == 5
    record = next(r for r in project.operations() if r["id"] == op)
    assert record["status"] == "interrupted"
    assert record["recovered_by"]["status"] == "succeeded"
    assert recovery.read_journal(project.root / ".servestack", STACK) is None
    assert recovery.engine_lock_files(project.backend, "servestack", STACK) == []
    assert project.pending() == []
    assert project.preview_changes() == {}
    # Nothing of the killed operation runs any more, nor of the one that finished it.
    assert engine_processes(op) == []
    assert engine_processes(record["recovered_by"]["operation"]) == []
    return out


def _reports_interrupted(project: Project, op: str) -> None:
    code, out = project.run("operation", op)
    assert code == 0, out
    assert re.search(r"\bstatus\W+interrupted\b", out), out


def test_kill_9_right_after_the_stack_file_is_written(project: Project) -> None:
    new = _new_text(project)
    proc = project.start(
        "scale", STACK, "bert-sentiment", "--replicas", "3", pause="stack-written", session=True
    )
    wait_until(ready(project.hooks, "stack-written"), "the operation at stack-written", proc)
    kill_group(proc)
    assert project.stack_file.read_text() == new  # whole: the new file, written atomically
    (record,) = project.operations()
    assert record["status"] == "running"  # as the killed process left it ...
    _reports_interrupted(project, record["id"])  # ... but its pid is gone
    assert project.manifest("Deployment", "bert-sentiment")["spec"]["replicas"] == 1
    _finish_with_next_operation(project, record)


def _writing(op: str, fifo: Path) -> bool:
    """Whether a process of operation ``op`` has ``fifo`` open (for its write, which blocks:
    the pipe is kept full)."""
    for proc in engine_processes(op):
        fds = Path(f"/proc/{proc.pid}/fd")
        try:
            if any(os.readlink(fd) == str(fifo) for fd in fds.iterdir()):
                return True
        except OSError:  # it ended, or a descriptor closed while listed
            continue
    return False


def test_kill_9_while_the_engine_runs(project: Project) -> None:
    new = _new_text(project)
    # The provider's write of this manifest blocks on a full FIFO: the engine is mid-step
    # for as long as the test wants. The checkpoint is written once, at the end of the
    # update (servestack.ops.execute), so the kill leaves the one from before it.
    target = manifest_file(project.out / STACK, "Deployment", "bert-sentiment")
    target.unlink()
    os.mkfifo(target)
    keeper = os.open(target, os.O_RDWR | os.O_NONBLOCK)  # a reader, so opening never blocks
    with contextlib.suppress(BlockingIOError):
        while True:
            os.write(keeper, b"#" * 4096)
    before = project.checkpoint()
    proc = project.start("scale", STACK, "bert-sentiment", "--replicas", "3", session=True)
    try:
        record = wait_until(
            lambda: (ops := project.operations()) and ops[0].get("phase") == "apply" and ops[0],
            "the operation applying",
            proc,
        )
        wait_until(lambda: _writing(record["id"], target), "the provider writing", proc)
        kill_group(proc)
        # The engine started its plugins in process groups of their own: the kill of the
        # operation's group leaves them running, with init as their parent.
        left = engine_processes(record["id"])
    finally:
        os.close(keeper)
        target.unlink()
    providers = [p for p in left if "pulumi-resource-kubernetes" in p.cmdline]
    assert providers, f"the provider is expected to outlive the kill; left: {left}"
    assert project.checkpoint() == before  # not one step of the killed update recorded
    assert project.pending() == []
    assert project.stack_file.read_text() == new
    locks = recovery.engine_lock_files(project.backend, "servestack", STACK)
    assert len(locks) == 1  # the engine's own lock, left by the kill
    _reports_interrupted(project, record["id"])
    out = _finish_with_next_operation(project, record)
    assert f"removed the engine's stale stack lock {locks[0]}" in out
    # The recovery ended what the kill left, and said so.
    for provider in providers:
        assert f"ended pid {provider.pid} ({' '.join(provider.cmdline.split())}) with SIG" in out


def test_ctrl_c_stops_the_engine_cleanly(project: Project) -> None:
    new = _new_text(project)
    proc = project.start(
        "scale", STACK, "bert-sentiment", "--replicas", "3", pause="program", session=True
    )
    wait_until(ready(project.hooks, "program"), "the stack program mid-update", proc)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does in a terminal
    (project.hooks / "program.go").touch()  # in case the program did not get the signal
    out, _ = proc.communicate(timeout=1800)
    out = " ".join(out.split())
    assert proc.returncode == 130, out
    assert "interrupted: waiting for the engine to stop cleanly" in out
    assert "Traceback" not in out
    assert project.stack_file.read_text() == new
    (record,) = project.operations()
    assert record["status"] == "interrupted"  # recorded by the operation itself
    # The engine stopped cleanly: it released its own lock, and its plugins went with it.
    assert recovery.engine_lock_files(project.backend, "servestack", STACK) == []
    deadline = time.monotonic() + 30
    while engine_processes(record["id"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert engine_processes(record["id"]) == []
    _reports_interrupted(project, record["id"])
    out = _finish_with_next_operation(project, record)
    assert "ended pid" not in out  # nothing was left to end
