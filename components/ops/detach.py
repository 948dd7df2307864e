"""Starting an operation's worker process (`--no-wait`): see :mod:`servestack.ops.worker`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from servestack.engine.runner import DEFAULT_PASSPHRASE_ENV, Engine
from servestack.ops import records
from servestack.ops.lock import StackLock, process_start
from servestack.ops.records import Operation
from servestack.ops.workspace import Workspace

#: What the command says on the pipe once the record names the worker.
GO = b"go"


def plan_path(state: Path, op_id: str) -> Path:
    return state / "operations" / f"{op_id}.plan"


def log_path(state: Path, op_id: str) -> Path:
    return state / "operations" / f"{op_id}.log"


def engine_of(plan: dict[str, Any]) -> Engine:
    """The engine a worker runs: the one of the workspace that started it."""
    cfg = plan["engine"]
    return Engine(
        Path(cfg["state_dir"]),
        extra_env=dict(cfg["extra_env"]),
        project_dir=Path(cfg["project_dir"]) if cfg["project_dir"] else None,
        backend_url=cfg["backend_url"],
        cluster=cfg["cluster"],
    )


def start(ws: Workspace, op: Operation, lock: StackLock, plan: dict[str, Any]) -> None:
    """Start the worker for ``op`` and hand it ``lock``; returns at once. ``plan`` is what
    the worker applies (stack, deployment, before_text, after_text, notes). ``op``'s record
    then names the worker's pid and its log."""
    engine = ws.runner
    # The worker runs the same engine; its passphrase goes through the environment, never
    # to disk.
    plan = {
        **plan,
        "project_dir": str(ws.project_dir),
        "engine": {
            "state_dir": str(engine.state_dir),
            "extra_env": engine.extra_env,
            "project_dir": str(engine.project_dir) if engine.project_dir else None,
            "backend_url": engine.backend_url,
            "cluster": engine.cluster,
        },
    }
    env = dict(os.environ)
    if engine.passphrase is not None:
        env[DEFAULT_PASSPHRASE_ENV] = engine.passphrase
    plan_path(ws.state, op.id).write_text(json.dumps(plan), encoding="utf-8")
    log = log_path(ws.state, op.id)
    go_read, go_write = os.pipe()
    lock_fd = lock.hand_over()
    try:
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "servestack.ops.worker", op.id]
                + ["--lock-fd", str(lock_fd), "--go-fd", str(go_read)],
                cwd=ws.project_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=(lock_fd, go_read),
                start_new_session=True,
                env=env,
            )
    except BaseException:
        os.close(go_write)
        raise
    finally:
        os.close(go_read)
    try:
        op.pid, op.pid_start, op.log = proc.pid, process_start(proc.pid), str(log)
        records.save(ws.state, op)
    except BaseException:
        os.close(go_write)  # no "go": the worker exits without applying anything
        raise
    os.write(go_write, GO)
    os.close(go_write)
    lock.let_go()
