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
import json
from collections.abc import Callable
from typing import Any

from servestack import testhook
from servestack.config.models import StackConfig, Target
from servestack.config.stackfile import engine_config_text, write_atomic
from servestack.config.validation import load_stack_config
from servestack.engine.runner import Engine
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


#: How the engine refuses a targeted update whose provider changed since the last update.
PROVIDER_MOVED = "change of providers mixed with --target"


def engine_for(
    ws: Workspace,
    stack: str,
    operation: str,
    config: StackConfig | None = None,
) -> Engine:
    """The engine an operation runs (fast path, every process marked with the operation's
    id: recovery finds those a kill left by it), for ``config`` (or the stack file's)."""
    config = config or load_stack_config(ws.stack_file(stack))
    marked = {**ws.runner.extra_env, recovery.OPERATION_ENV: operation, **FINAL_CHECKPOINT_ONLY}
    return dataclasses.replace(ws.runner, cluster=config.target is Target.cluster, extra_env=marked)


def deployed(engine: Engine, ws: Workspace, stack: str) -> tuple[bool, Any]:
    """Whether the stack exists, and its ``deployedConfig`` output (None: none yet), in one
    CLI run."""
    proc = engine.cli(ws.project_dir, "stack", "output", "--json", "--stack", stack, check=False)
    if proc.returncode != 0:
        if "no stack named" in proc.stderr:
            return False, None
        return True, None  # unreadable: a full run decides nothing wrongly
    try:
        outputs = json.loads(proc.stdout)
    except ValueError:
        return True, None
    return True, outputs.get(SNAPSHOT_OUTPUT) if isinstance(outputs, dict) else None


def ensure_stack(
    engine: Engine, ws: Workspace, stack: str, known: tuple[bool, Any] | None = None
) -> Any:
    """The stack's ``deployedConfig`` output (None: none yet); the stack is created (as
    `pulumi stack init` does, passphrase secrets) when it does not exist. ``known``: what
    :func:`deployed` said with the stack's lock held since (not read again)."""
    exists, found = known if known is not None else deployed(engine, ws, stack)
    if not exists:
        engine.cli(ws.project_dir, "stack", "init", stack, "--secrets-provider", "passphrase")
    return found


def up(
    ws: Workspace,
    stack: str,
    progress: Progress | None,
    operation: str,
    *,
    text: str,
    names: frozenset[str] | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    engine: Engine | None = None,
) -> dict[str, int]:
    """`pulumi up` of ``stack`` on the fast path, applying the stack file ``text`` (the stack
    file's own, or the one an interrupted operation was applying); returns the engine's
    resource changes by kind. ``names``: only those deployments (:mod:`servestack.ops.scope`).

    The config goes to the engine as `--config-file` (see
    :func:`servestack.config.stackfile.engine_config_text`): the program reads it from a
    copy of ``text``, whatever its size.
    """
    engine = engine or engine_for(ws, stack, operation, config=parse_text(text, stack))
    whole = engine
    args: list[str] = []
    if names:
        engine = dataclasses.replace(
            engine, extra_env={**engine.extra_env, SCOPE_ENV: ",".join(sorted(names))}
        )
        args += [f"--target={urn}" for urn in targets(stack, ws.project.name, names)]
        args.append("--target-dependents")
    handed = ws.state / "inflight" / f"{stack}.program.yaml"
    write_atomic(handed, text)
    engine_file = ws.state / "inflight" / f"{stack}.engine.yaml"
    write_atomic(engine_file, engine_config_text(text, handed.resolve()))
    args += ["--config-file", str(engine_file.resolve())]
    testhook.pause("engine")  # tests kill here: before the engine's first step
    try:
        return engine.update(ws.project_dir, stack, *args, on_output=progress, on_event=on_event)
    except Exception as exc:
        if not names or PROVIDER_MOVED not in str(exc):
            raise
    # The stack's provider changed since its last update (its render directory, say): the
    # engine moves every resource to it, which only a whole update may do. What the refused
    # update applied before it stopped, a whole update applies again (fixed names, one field
    # manager: it converges).
    if progress is not None:
        progress(f"stack {stack}: its provider changed since the last update: updating all of it")
    return up(ws, stack, progress, operation, text=text, on_event=on_event, engine=whole)


def execute(
    ws: Workspace,
    op: Operation,
    before_text: str,
    target_text: str,
    progress: Progress | None,
    *,
    scoped: bool = True,
    on_event: Callable[[Any], None] | None = None,
    then_text: str | None = None,
    known: tuple[bool, Any] | None = None,
) -> bool:
    """Write ``target_text`` to the stack file and run `pulumi up`; roll back on failure.
    Returns whether ``target_text`` was applied.

    ``then_text``: the stack file the operation applies next, in an update of its own (an
    operation in steps). Applied, ``target_text`` is the last good config, the operation
    stays running and its journal stays, naming ``then_text``: whoever finds it after a
    kill applies both (:mod:`servestack.ops.interrupted`).

    ``known``: the stack's existence and ``deployedConfig`` output as the plan read them,
    with the stack's lock held since and nothing applied (see :func:`ensure_stack`).

    A first SIGINT is left to the engine, which got it too (Ctrl-C signals the whole
    process group) and stops cleanly; the operation then ends ``interrupted`` and keeps its
    journal.
    """
    stack = op.stack
    path = ws.stack_file(stack)
    last_good = ws.state / "last-good" / f"{stack}.yaml"
    journal = recovery.Journal.start(op.id, stack, before_text, target_text)
    journal.then_text = then_text
    target = parse_text(target_text, str(path))
    engine = engine_for(ws, stack, op.id, config=target)
    names: frozenset[str] | None = None
    op.status, op.phase = OperationStatus.running, journal.phase
    records.save(ws.state, op)
    recovery.write_journal(ws.state, journal)
    final = False
    try:
        write_atomic(path, target_text)
        testhook.pause("stack-written")
        with recovery.GracefulInterrupt(ws.say or progress) as interrupt:
            try:
                found = ensure_stack(engine, ws, stack, known=known)
                names = scope(found, target) if scoped else None
                if names:
                    journal.scope = sorted(names)
                    recovery.write_journal(ws.state, journal)
                op.result = up(
                    ws,
                    stack,
                    progress,
                    op.id,
                    text=target_text,
                    names=names,
                    on_event=on_event,
                    engine=engine,
                )
                testhook.pause("engine-done")  # tests kill here: state written, record not final
                failure: Exception | None = None
            except Exception as exc:  # the engine's failure, whatever its kind
                failure = exc
        if failure is not None and interrupt.interrupted:
            op.status = OperationStatus.interrupted
            op.error = (
                "stopped by SIGINT; the engine stopped cleanly. The stack file holds the new "
                f"config; the next operation on stack {stack} finishes the change"
            )
            return False
        if failure is None:
            write_atomic(last_good, target_text)
            if then_text is not None:
                op.stages = [*(op.stages or []), op.result or {}]
                journal.phase = "applied"
                recovery.write_journal(ws.state, journal)
                testhook.pause("step-applied")  # tests kill here: between two updates
                return True
            op.status = OperationStatus.succeeded
            final = True
            return True
        op.error = engine_error(failure)
        failed = ws.state / "failed" / f"{stack}-{op.id}.yaml"
        write_atomic(failed, target_text)
        good = last_good.read_text(encoding="utf-8") if last_good.exists() else before_text
        journal.phase, journal.target_text, journal.then_text = "rollback", good, None
        # Back to the good config: the same deployments when it is the one this started from.
        names = names if good == before_text else None
        journal.scope = sorted(names) if names else None
        op.phase = journal.phase
        records.save(ws.state, op)
        recovery.write_journal(ws.state, journal)
        write_atomic(path, good)
        try:
            up(ws, stack, progress, op.id, text=good, names=names)
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
        return False
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
