"""Operation records: `.servestack/operations/<operation>.json`, one per operation.

A record is written when the operation starts and again at each step; once its status is
final it no longer changes (but for ``recovered_by``, when a later operation finishes an
interrupted one).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from servestack.config.stackfile import write_atomic
from servestack.ops import recovery
from servestack.ops.lock import now, process_start


class OperationStatus(StrEnum):
    """Where an operation is. Records store the value (``"succeeded"``, ...)."""

    pending = "pending"
    running = "running"
    succeeded = "succeeded"
    #: ``up`` failed and the last good config was applied again.
    rolled_back = "rolled_back"
    #: ``up`` failed and so did the rollback.
    failed = "failed"
    #: Its process stopped (SIGINT, or killed) before the record was final.
    interrupted = "interrupted"

    @property
    def final(self) -> bool:
        return self in FINAL


#: Statuses after which an operation's record no longer changes (but for `recovered_by`).
FINAL = frozenset(
    {
        OperationStatus.succeeded,
        OperationStatus.rolled_back,
        OperationStatus.failed,
        OperationStatus.interrupted,
    }
)


@dataclass
class Operation:
    id: str
    stack: str
    deployment: str | None
    status: OperationStatus = OperationStatus.pending
    started_at: str = field(default_factory=now)
    finished_at: str | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None
    #: An operation in several updates: the engine's resource changes of each update
    #: before the last (whose are ``result``).
    stages: list[dict[str, Any]] | None = None
    error: str | None = None
    rollback: dict[str, Any] | None = None
    #: The process that runs it: a record left ``running`` by a dead pid is ``interrupted``.
    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)
    pid_start: str | None = field(default_factory=lambda: process_start(os.getpid()))
    #: ``change``, or ``recovery`` (finishing the interrupted operation ``recovers``).
    kind: str = "change"
    recovers: str | None = None
    #: What the cleanup before a recovery found and did.
    cleanup: list[str] | None = None
    #: For an interrupted operation: the operation that finished it, and how that went.
    recovered_by: dict[str, Any] | None = None
    #: What is being applied: ``apply`` (the change), ``rollback`` (the last good config),
    #: ``done`` once the record is final.
    phase: str | None = None
    #: ``wait`` (the caller waits), ``thread`` (in the caller's process, ``wait=False``)
    #: or ``worker`` (a detached process: `--no-wait`), with its log file.
    runner: str = "wait"
    log: str | None = None
    #: What the user was told about the edits (e.g. a derived image).
    notes: list[str] | None = None
    #: The deployment's fields once the operation is final (after the change if it
    #: succeeded, as before it otherwise), in the platform client's units.
    fields: dict[str, Any] | None = None
    #: A stack-wide operation (`servestack up`) that succeeded: each deployment whose release
    #: (model version and image) it changed, with the release it runs now.
    releases: dict[str, dict[str, str]] | None = None

    def __post_init__(self) -> None:
        self.status = OperationStatus(self.status)  # a str when read back from a record

    def to_json(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, OperationStatus) else v for k, v in vars(self).items()}

    def adopt(self) -> None:
        """This process runs the operation from now on (a worker, after the CLI started it)."""
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self.pid_start = process_start(self.pid)


def record_path(state: Path, op_id: str) -> Path:
    return state / "operations" / f"{op_id}.json"


def save(state: Path, op: Operation) -> None:
    write_atomic(record_path(state, op.id), json.dumps(op.to_json(), indent=2))


def load(state: Path, op_id: str) -> Operation | None:
    try:
        data = json.loads(record_path(state, op_id).read_text("utf-8"))
        return Operation(**data)
    except (OSError, ValueError, TypeError):
        return None


def read(state: Path, op_id: str) -> dict[str, Any]:
    """An operation's record as a dict; a record left pending or running by a process that
    is gone reads ``interrupted``.

    Raises:
        KeyError: there is no such operation.
    """
    path = record_path(state, op_id)
    if not path.exists():
        raise KeyError(f"no operation {op_id}")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    live = (OperationStatus.pending, OperationStatus.running)
    if data.get("status") in live and recovery.dead(
        int(data.get("pid") or 0), str(data.get("host")), data.get("pid_start")
    ):
        data["status"] = OperationStatus.interrupted.value
        data["error"] = (
            f"process {data['pid']} on {data['host']} ended before the operation did "
            f"(killed?); the next operation on stack {data['stack']} finishes the change"
        )
    if data.get("started_at") and data.get("finished_at"):
        took = datetime.fromisoformat(data["finished_at"]) - datetime.fromisoformat(
            data["started_at"]
        )
        data["duration_seconds"] = round(took.total_seconds(), 3)
    return data
