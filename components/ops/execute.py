"""One application of a stack file: write it, run `pulumi up`, roll back if that fails.

A journal (:mod:`servestack.ops.recovery`) says what is being applied until the record is
final, so that the next operation can finish the job if this process dies.
"""

from __future__ import annotations

import dataclasses

from servestack import testhook
from servestack.config.models import Target
from servestack.config.stackfile import write_atomic
from servestack.config.validation import load_stack_config
from servestack.ops import records, recovery
from servestack.ops.engine_errors import engine_error
from servestack.ops.lock import now
from servestack.ops.records import Operation, OperationStatus
from servestack.ops.workspace import Progress, Workspace


def up(ws: Workspace, stack: str, progress: Progress | None, operation: str) -> dict[str, int]:
    """`pulumi up` of ``stack``; returns the engine's resource changes by kind."""
    target = load_stack_config(ws.stack_file(stack)).target
    # Every engine process carries the operation's id: recovery finds those a kill left.
    marked = {**ws.runner.extra_env, recovery.OPERATION_ENV: operation}
    engine = dataclasses.replace(ws.runner, cluster=target is Target.cluster, extra_env=marked)
    st = engine.stack(ws.project_dir, stack)
    res = st.up(on_output=progress or (lambda _: None))
    return {str(k): v for k, v in (res.summary.resource_changes or {}).items()}


def execute(
    ws: Workspace, op: Operation, before_text: str, target_text: str, progress: Progress | None
) -> None:
    """Write ``target_text`` to the stack file and run `pulumi up`; roll back on failure.

    A first SIGINT is left to the engine, which got it too (Ctrl-C signals the whole
    process group) and stops cleanly; the operation then ends ``interrupted`` and keeps its
    journal.
    """
    stack = op.stack
    path = ws.stack_file(stack)
    last_good = ws.state / "last-good" / f"{stack}.yaml"
    journal = recovery.Journal.start(op.id, stack, before_text, target_text)
    op.status, op.phase = OperationStatus.running, journal.phase
    records.save(ws.state, op)
    recovery.write_journal(ws.state, journal)
    final = False
    try:
        write_atomic(path, target_text)
        testhook.pause("stack-written")
        with recovery.GracefulInterrupt(ws.say or progress) as interrupt:
            try:
                op.result = up(ws, stack, progress, op.id)
                failure: Exception | None = None
            except Exception as exc:  # the engine's failure, whatever its kind
                failure = exc
        if failure is not None and interrupt.interrupted:
            op.status = OperationStatus.interrupted
            op.error = (
                "stopped by SIGINT; the engine stopped cleanly. The stack file holds the new "
                f"config; the next operation on stack {stack} finishes the change"
            )
            return
        if failure is None:
            op.status = OperationStatus.succeeded
            write_atomic(last_good, target_text)
            final = True
            return
        op.error = engine_error(failure)
        failed = ws.state / "failed" / f"{stack}-{op.id}.yaml"
        write_atomic(failed, target_text)
        good = last_good.read_text(encoding="utf-8") if last_good.exists() else before_text
        journal.phase, journal.target_text = "rollback", good
        op.phase = journal.phase
        records.save(ws.state, op)
        recovery.write_journal(ws.state, journal)
        write_atomic(path, good)
        try:
            up(ws, stack, progress, op.id)
            op.rollback = {"status": OperationStatus.succeeded.value, "failed_config": str(failed)}
        except Exception as rb_exc:
            op.rollback = {
                "status": OperationStatus.failed.value,
                "error": engine_error(rb_exc),
                "failed_config": str(failed),
            }
        succeeded = op.rollback["status"] == OperationStatus.succeeded
        op.status = OperationStatus.rolled_back if succeeded else OperationStatus.failed
        final = True
    except KeyboardInterrupt:  # a second Ctrl-C: stop now; the next operation cleans up
        op.status = OperationStatus.interrupted
        op.error = "stopped at once by a second SIGINT; the next operation cleans up"
        raise
    finally:
        op.finished_at = now()
        if final:
            op.phase = "done"
        records.save(ws.state, op)
        if final:
            recovery.remove_journal(ws.state, stack)
