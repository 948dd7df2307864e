"""One application of a stack file: write it, run `pulumi up`, roll back if that fails.

A journal (:mod:`servestack.ops.recovery`) says what is being applied until the record is
final, so that the next operation can finish the job if this process dies.

Every update servestack runs is on the fast path:

* the file backend writes the checkpoint once, when the update ends
  (``PULUMI_SKIP_CHECKPOINTS``), instead of rewriting the whole state after every step: at
  100 deployments that is most of an update's time. A kill before that write leaves the
  state as the last update left it while objects of this one exist: the journal names the
  config being applied, and the next servestack command applies it again before anything
  else (:mod:`servestack.ops.interrupted`). That converges because every object has a fixed
  name and one field manager (server-side apply makes a create an upsert; a delete of what
  is gone is no error);
* an update whose config differs from the deployed one only inside some deployments runs
  the program and the engine on those deployments alone (:mod:`servestack.ops.scope`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from servestack import testhook
from servestack.config.models import StackConfig, Target
from servestack.config.stackfile import write_atomic
from servestack.config.validation import load_stack_config
from servestack.ops import records, recovery
from servestack.ops.engine_errors import engine_error
from servestack.ops.lock import now
from servestack.ops.records import Operation, OperationStatus
from servestack.ops.scope import scope, targets
from servestack.ops.workspace import Progress, Workspace
from servestack.program.production import SNAPSHOT_OUTPUT
from servestack.program.stack import SCOPE_ENV
from servestack.review.predict import parse_text

#: The engine's environment for every update servestack runs: one checkpoint write, at the
#: end (see the module docstring).
FINAL_CHECKPOINT_ONLY = {"PULUMI_SKIP_CHECKPOINTS": "true"}


def engine_for(
    ws: Workspace,
    stack: str,
    operation: str,
    config_file: Path | None = None,
    config: StackConfig | None = None,
    *,
    create: bool = True,
) -> Any:
    """The Automation API stack an operation's engine runs on (fast path, marked with the
    operation's id: recovery finds the processes a kill left by it), for ``config`` (or the
    one in ``config_file``, or the stack file's)."""
    config = config or load_stack_config(config_file or ws.stack_file(stack))
    target = config.target
    marked = {**ws.runner.extra_env, recovery.OPERATION_ENV: operation, **FINAL_CHECKPOINT_ONLY}
    engine = dataclasses.replace(ws.runner, cluster=target is Target.cluster, extra_env=marked)
    return engine.stack(ws.project_dir, stack, create=create)


def deployed_scope(st: Any, config: StackConfig) -> frozenset[str] | None:
    """The deployments an update to ``config`` touches (None: all), from the stack's
    ``deployedConfig`` output (:mod:`servestack.ops.scope`)."""
    try:
        outputs = st.outputs()
    except Exception:  # no state yet, or unreadable: a full run decides nothing wrongly
        return None
    deployed = outputs.get(SNAPSHOT_OUTPUT)
    return scope(deployed.value if deployed is not None else None, config)


def up(
    ws: Workspace,
    stack: str,
    progress: Progress | None,
    operation: str,
    *,
    names: frozenset[str] | None = None,
    config_file: Path | None = None,
    on_event: Callable[[Any], None] | None = None,
    st: Any = None,
) -> dict[str, int]:
    """`pulumi up` of ``stack`` on the fast path; returns the engine's resource changes by
    kind. ``names``: only those deployments (see :mod:`servestack.ops.scope`);
    ``config_file``: apply that config instead of the stack file (recovery)."""
    st = st or engine_for(ws, stack, operation, config_file)
    scoped: dict[str, Any] = {}
    if names:
        st.workspace.env_vars[SCOPE_ENV] = ",".join(sorted(names))
        scoped = {"target": targets(stack, ws.project.name, names), "target_dependents": True}
    res = st.up(
        on_output=progress or (lambda _: None),
        on_event=on_event,
        config_file=str(config_file) if config_file else None,
        **scoped,
    )
    return {str(k): v for k, v in (res.summary.resource_changes or {}).items()}


def execute(
    ws: Workspace,
    op: Operation,
    before_text: str,
    target_text: str,
    progress: Progress | None,
    *,
    scoped: bool = True,
    on_event: Callable[[Any], None] | None = None,
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
    target = parse_text(target_text, str(path))
    st = engine_for(ws, stack, op.id, config=target)
    names = deployed_scope(st, target) if scoped else None
    journal.scope = sorted(names) if names else None
    op.status, op.phase = OperationStatus.running, journal.phase
    records.save(ws.state, op)
    recovery.write_journal(ws.state, journal)
    final = False
    try:
        write_atomic(path, target_text)
        testhook.pause("stack-written")
        with recovery.GracefulInterrupt(ws.say or progress) as interrupt:
            try:
                op.result = up(ws, stack, progress, op.id, names=names, on_event=on_event, st=st)
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
        # Back to the good config: the same deployments when it is the one this started from.
        names = names if good == before_text else None
        journal.scope = sorted(names) if names else None
        op.phase = journal.phase
        records.save(ws.state, op)
        recovery.write_journal(ws.state, journal)
        write_atomic(path, good)
        try:
            up(ws, stack, progress, op.id, names=names)
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
