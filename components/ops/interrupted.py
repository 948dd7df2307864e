"""Finishing an operation that was interrupted: what the next operation on the stack does
first, with the stack's lock held (the mechanics are in :mod:`servestack.ops.recovery`)."""

from __future__ import annotations

import os
import uuid
from typing import Any

from servestack.config import reader
from servestack.config.stackfile import write_atomic
from servestack.ops import records, recovery
from servestack.ops.engine_errors import engine_error
from servestack.ops.execute import execute, up
from servestack.ops.lock import now
from servestack.ops.records import FINAL, Operation, OperationStatus
from servestack.ops.workspace import Workspace


def recover(ws: Workspace, stack: str) -> list[str]:
    """Finish an operation on ``stack`` that was interrupted; call with the stack's lock.

    Returns what was done, one line each (also told to ``ws.say`` as it happens); nothing
    when no operation was interrupted.
    """
    journal = recovery.read_journal(ws.state, stack)
    if journal is None:
        return []
    old = records.load(ws.state, journal.operation)
    interrupted = OperationStatus.interrupted
    if old is not None and old.status in FINAL and old.status is not interrupted:
        recovery.remove_journal(ws.state, stack)  # died after its record was final
        return []
    if (old is None or old.status is not interrupted) and not recovery.dead(
        journal.pid, journal.host, journal.pid_start
    ):
        # Its process lives but the lock was free: another host, or a bug. Leave it be.
        return [f"operation {journal.operation} is still recorded as running: left alone"]
    say = ws.say or (lambda _line: None)
    lines = [
        f"operation {journal.operation} on stack {stack} was interrupted "
        f"(pid {journal.pid} on {journal.host}, while applying {journal.phase}): finishing it"
    ]
    say(lines[0])
    # The engine's environment over this process's: PULUMI_BACKEND_URL set by the user is
    # only in the latter (the engine inherits it).
    backend = recovery.diy_backend_dir({**os.environ, **ws.runner.env()})
    wait = recovery.ORPHAN_WAIT_SECONDS if ws.lock_timeout is None else ws.lock_timeout
    lines += recovery.clear_engine_leftovers(journal, backend, ws.project.name, stack, say, wait)
    lines += recovery.clear_pending_operations(
        ws.runner.cli, ws.project_dir, stack, ws.state / "tmp", say
    )
    path = ws.stack_file(stack)
    current = reader.read_text(path)
    if current not in (journal.before_text, journal.target_text):
        lines += _converge(ws, journal, old, lines, say)
        return lines
    if current != journal.target_text:
        lines.append("the stack file still held the old config: wrote the interrupted change")
    fix = Operation(
        id=uuid.uuid4().hex[:12],
        stack=stack,
        deployment=old.deployment if old else None,
        changes=old.changes if old else [],
        kind="recovery",
        recovers=journal.operation,
        cleanup=lines,
    )
    records.save(ws.state, fix)
    scoped = bool(journal.scope)
    then = journal.then_text
    if journal.phase == "applied" and then is not None:
        # Killed between two updates of an operation in steps: the first is applied.
        lines.append("its first update was applied: applying its next one")
        execute(ws, fix, journal.target_text, then, None, scoped=scoped)
    else:
        first = execute(
            ws, fix, journal.before_text, journal.target_text, None, scoped=scoped, then_text=then
        )
        if first and then is not None:
            execute(ws, fix, journal.target_text, then, None, scoped=scoped)
    line = f"finished interrupted operation {journal.operation}: {fix.status} (operation {fix.id})"
    say(line)
    lines.append(line)
    _mark_interrupted(
        ws, journal, old, {"operation": fix.id, "status": str(fix.status), "cleanup": lines}
    )
    return lines


def _mark_interrupted(
    ws: Workspace, journal: recovery.Journal, old: Operation | None, how: dict[str, Any]
) -> None:
    if old is None:
        return
    old.status = OperationStatus.interrupted
    old.error = old.error or (
        f"process {journal.pid} on {journal.host} ended before the operation did (killed?)"
    )
    old.recovered_by = how
    records.save(ws.state, old)


def _converge(
    ws: Workspace,
    journal: recovery.Journal,
    old: Operation | None,
    lines: list[str],
    say: recovery.Say,
) -> list[str]:
    """The stack file was edited since the interruption: apply the interrupted config once
    more (the stack file stays as edited), then leave the edited one to the
    operation that found it.

    The interrupted update wrote no checkpoint: objects it created exist outside the state.
    Applied again, they are recorded (a create is an upsert), so that the edited config,
    applied next, deletes those it no longer has instead of leaving them behind.
    """
    line = (
        "the stack file was edited after the interruption: applying the interrupted "
        "change's config once more first (objects it created are not in the state yet)"
    )
    say(line)
    done = [line]
    if journal.then_text is not None:
        line = (
            "its next update is not applied: the edited stack file decides what runs "
            "(run the operation again)"
        )
        say(line)
        done.append(line)
    names = frozenset(journal.scope) if journal.scope else None
    fix = Operation(
        id=uuid.uuid4().hex[:12],
        stack=journal.stack,
        deployment=old.deployment if old else None,
        changes=old.changes if old else [],
        kind="recovery",
        recovers=journal.operation,
        cleanup=[*lines, line],
    )
    fix.status = OperationStatus.running
    records.save(ws.state, fix)
    try:
        fix.result = up(ws, journal.stack, None, fix.id, text=journal.target_text, names=names)
        fix.status = OperationStatus.succeeded
        write_atomic(ws.state / "last-good" / f"{journal.stack}.yaml", journal.target_text)
        line = f"applied the interrupted change's config again (operation {fix.id})"
    except Exception as exc:  # the engine's failure, whatever its kind
        fix.status, fix.error = OperationStatus.failed, engine_error(exc)
        line = (
            f"could not apply the interrupted change's config again: {fix.error}; objects it "
            "created may be left outside the state"
        )
    fix.finished_at = now()
    records.save(ws.state, fix)
    say(line)
    done.append(line)
    how = {"operation": fix.id, "status": str(fix.status), "cleanup": [*lines, *done]}
    _mark_interrupted(ws, journal, old, how)
    recovery.remove_journal(ws.state, journal.stack)
    return done
