"""An operation as a transaction on one stack: plan (lock, edit, validate, classify), then
apply (record, `pulumi up`, roll back on failure), one at a time per stack."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from servestack import testhook
from servestack.config import paths, reader
from servestack.config.errors import ConfigError, Problem
from servestack.config.models import Environment, StackConfig
from servestack.config.stackfile import get_value, set_value, write_atomic
from servestack.ops import records
from servestack.ops.describe import describe, find_deployment
from servestack.ops.detach import start as detach_worker
from servestack.ops.edits import Edits, notes_of
from servestack.ops.execute import execute
from servestack.ops.interrupted import recover
from servestack.ops.lock import StackLock
from servestack.ops.records import Operation, OperationStatus
from servestack.ops.workspace import Progress, Workspace
from servestack.review import allowances
from servestack.review.diff import Change, DiffResult, FieldChange, diff_configs
from servestack.review.predict import Prediction, parse_text, predict

#: Edits applied in several updates, one after the other (``promote --shift``): each set is
#: meant for the text the previous one produced, and each result is a valid stack file.
Steps = list[Edits]


class OperationRefused(Exception):
    """The change is forbidden, or needs a confirmation that was not given."""

    def __init__(self, message: str, diff: DiffResult | None = None) -> None:
        super().__init__(message)
        self.diff = diff


@dataclass
class Plan:
    stack: str
    deployment: str | None
    before_text: str
    after_text: str
    before: StackConfig
    after: StackConfig
    diff: DiffResult
    #: The stack's lock, held from before the stack file was read until the operation ends.
    lock: StackLock | None = None
    #: What was done about an interrupted operation before this plan read the stack file.
    recovered: list[str] = field(default_factory=list)
    #: What the user should know about the edits (e.g. a derived image): shown with the
    #: review, kept in the record and the result.
    notes: list[str] = field(default_factory=list)
    #: Whether the update may run on the changed deployments alone (servestack.ops.scope);
    #: `servestack up` applies the whole stack.
    scoped: bool = True
    #: Told every engine event of the update (the progress of `servestack up`).
    on_event: Callable[[Any], None] | None = None
    #: Stack files applied, each by an update of its own, before ``after_text`` (an
    #: operation in several steps; ``diff`` is the whole change's).
    steps: list[str] = field(default_factory=list)
    #: Each update's own prediction, the last one's included (several steps only).
    stages: list[Prediction] = field(default_factory=list)
    #: Whether the stack exists and its ``deployedConfig`` output, when the plan read them
    #: with its lock held (:func:`servestack.ops.execute.deployed`): the first update uses
    #: them instead of reading the whole checkpoint again. None: not read.
    deployed: tuple[bool, Any] | None = None

    @property
    def needs_confirmation(self) -> list[FieldChange]:
        return [c for c in self.diff.changes if c.effect in (Change.REPLACE, Change.DELETE)]

    def release(self) -> None:
        """Give up the stack's lock without applying (idempotent; :func:`apply` releases it
        itself when the operation ends)."""
        if self.lock is not None:
            self.lock.release()


def plan(
    ws: Workspace,
    stack: str,
    edits: Edits | Callable[[str], Edits | Steps],
    deployment: str | None = None,
    *,
    operation: str = "edit",
) -> Plan:
    """Lock the stack, apply edits to its file's text (not the file), validate and classify.

    The stack's lock is taken first (waiting up to ``ws.lock_timeout``) and kept by the
    returned plan until :func:`apply` ends or :meth:`Plan.release`. With the lock held, an
    operation that was interrupted on this stack is finished first (see
    :mod:`servestack.ops.interrupted`). ``edits`` may be a function of the stack file's
    current text, so that edits computed from the file see the file they are applied to.

    Raises:
        StackBusy: another operation holds the stack's lock past the timeout.
        ConfigError: the stack file or the edited config is invalid (one line per problem).
        OperationRefused: the change is forbidden.
    """
    testhook.pause("before-lock")
    lock = StackLock(ws.state, stack)
    lock.acquire(operation, timeout=ws.lock_timeout, on_wait=ws.on_lock_wait)
    try:
        recovered = recover(ws, stack)
        p = _plan(ws, stack, edits, deployment)
    except BaseException:
        lock.release()
        raise
    p.lock = lock
    p.recovered = recovered
    return p


def _plan(
    ws: Workspace,
    stack: str,
    edits: Edits | Callable[[str], Edits | Steps],
    deployment: str | None,
) -> Plan:
    path = ws.stack_file(stack)
    before_text = reader.read_text(path)
    before = parse_text(before_text, str(path))
    if deployment is not None:
        # Before the edits: they would say "cannot edit: no item named ..." instead.
        find_deployment(before, deployment)
    made: Edits | Steps
    if callable(edits):
        try:
            made = edits(before_text)
        except KeyError as exc:
            where = paths.deployment(deployment) if deployment else ""
            raise ConfigError([Problem(where, f"not found: {exc.args[0]}")], str(path)) from None
    else:
        made = edits
    stages: list[Prediction] = []
    if isinstance(made, list):
        # Several updates: each step's prediction, then the whole change's for the review.
        text, config = before_text, before
        for step in made:
            stages.append(predict(text, step, source=str(path), before=config))
            text, config = stages[-1].text, stages[-1].after
        notes = [n for step in made for n in notes_of(step)]
        found = Prediction(before_text, text, before, config, diff_configs(before, config))
    else:
        notes = notes_of(made)
        found = predict(before_text, made, source=str(path), before=before)
    diff = found.diff
    forbidden = [c for c in diff.changes if c.effect is Change.FORBIDDEN]
    if forbidden:
        raise OperationRefused("; ".join(f"{c.path}: {c.reason}" for c in forbidden), diff)
    if found.unread:
        # Never a success that changes nothing: the stack file would say what runs does not.
        raise OperationRefused(
            "; ".join(
                f"{c.path}: {_shown(c.after)} changes nothing: {c.reason}{_instead(stack, c)}"
                for c in found.unread
            ),
            diff,
        )
    return Plan(
        stack,
        deployment,
        before_text,
        found.text,
        before,
        found.after,
        diff,
        notes=notes,
        steps=[s.text for s in stages[:-1]],
        stages=stages,
    )


def _instead(stack: str, change: FieldChange) -> str:
    """The operation that does what an unread replicas edit meant."""
    path = paths.FieldPath.parse(change.path)
    if path.rest == "replicas" and change.reason.startswith("replicas is owned"):
        return f"; use servestack scale {stack} {path.item_name} --min N --max M"
    return ""


def _shown(value: Any) -> str:
    return json.dumps(value) if value is not None else "(removed)"


def apply(
    ws: Workspace,
    p: Plan,
    *,
    wait: bool = True,
    progress: Progress | None = None,
    detach: bool = False,
) -> dict[str, Any]:
    """Write the planned stack file and run `pulumi up`; roll back on failure.

    The plan's stack lock is released when the operation ends. With ``wait=False`` the
    operation runs on in a thread of this process (which therefore lives until it ends),
    or, with ``detach=True``, in a worker process of its own (:mod:`servestack.ops.worker`)
    that takes the lock over and outlives this one: what `--no-wait` does.

    Raises:
        OperationRefused: production replacements or deletions without an allowance in the
            stack file (`servestack:allowReplacements`), whatever the caller confirmed.
    """
    lock, p.lock = p.lock, None
    if lock is None or not lock.held:
        raise RuntimeError("apply() needs a plan that holds its stack's lock: plan() again")
    gated = [c for c in p.diff.blocking(fail_on_replace=False) if c.effect is not Change.FORBIDDEN]
    if gated:
        lock.release()
        raise OperationRefused(
            "production refuses replacements and deletions without an allowance: "
            + "; ".join(
                f"{c.path} (add to servestack:allowReplacements: {allowances.entry_text(c)})"
                for c in gated
            ),
            p.diff,
        )
    op = Operation(
        id=uuid.uuid4().hex[:12],
        stack=p.stack,
        deployment=p.deployment,
        changes=[c.to_json() for c in p.diff.changes],
        notes=p.notes or None,
        runner="wait" if wait else "worker" if detach else "thread",
    )
    try:
        lock.describe(f"{lock.operation} (operation {op.id})")
        records.save(ws.state, op)
        if not wait and detach:
            detach_worker(ws, op, lock, _handed(p))
    except BaseException:
        lock.release()
        raise
    if wait:
        run(ws, p, op, progress, lock)
        return result(p, op)
    if not detach:
        threading.Thread(target=run, args=(ws, p, op, progress, lock), daemon=False).start()
    started = {"operation_id": op.id, "status": OperationStatus.running.value}
    return {**started, "changes": op.changes, **({"notes": p.notes} if p.notes else {})}


def _handed(p: Plan) -> dict[str, Any]:
    """What a worker needs to apply ``p`` (it parses and classifies the texts again)."""
    return {
        "stack": p.stack,
        "deployment": p.deployment,
        "before_text": p.before_text,
        "after_text": p.after_text,
        "notes": p.notes,
        "steps": p.steps,
    }


def result(p: Plan, op: Operation) -> dict[str, Any]:
    """What the caller gets back: the deployment's fields (after the change if it
    succeeded, before it otherwise) and the operation's outcome."""
    out: dict[str, Any] = dict(op.fields or {})
    out.update(
        {
            "updated_at": op.finished_at,
            "operation_id": op.id,
            "status": op.status.value,
            "changes": op.changes,
        }
    )
    if op.notes:
        out["notes"] = op.notes
    if op.error:
        out["error"] = op.error
    if op.rollback:
        out["rollback"] = op.rollback
    return out


def _fields(p: Plan, op: Operation) -> dict[str, Any] | None:
    if p.deployment is None or not any(d.name == p.deployment for d in p.after.deployments):
        return None
    config = p.after if op.status is OperationStatus.succeeded else p.before
    return describe(find_deployment(config, p.deployment), config)


def _releases(p: Plan, op: Operation) -> dict[str, dict[str, str]] | None:
    """For a stack-wide update that succeeded: the deployments whose model version or image
    it changed, with what they run now (the release history reads them)."""
    if p.deployment is not None or op.status is not OperationStatus.succeeded:
        return None
    before = {d.name: (d.model.version, d.model.image) for d in p.before.deployments}
    changed = {
        d.name: {"model_version": d.model.version, "image": d.model.image}
        for d in p.after.deployments
        if before.get(d.name) not in (None, (d.model.version, d.model.image))
    }
    return changed or None


def run(ws: Workspace, p: Plan, op: Operation, progress: Progress | None, lock: StackLock) -> None:
    """Apply the plan as operation ``op`` (in this thread), then release the lock."""
    try:
        used = allowances.used(p.diff, p.after)
        if used and Environment.production in (p.before.environment, p.after.environment):
            # The engine cannot delete what the last update protected and this one no
            # longer registers: first an update with the entries and without the edit,
            # which lifts the protection of what they name (servestack.program.production).
            armed = set_value(
                p.before_text,
                "allowReplacements",
                get_value(p.after_text, "allowReplacements"),
            )
            execute(ws, op, p.before_text, armed, progress, scoped=p.scoped, known=p.deployed)
            if op.status is not OperationStatus.succeeded:
                return
            p.deployed = None  # that update changed it
        texts = [*p.steps, p.after_text]
        prev = p.before_text
        for i, text in enumerate(texts):
            # Each update's journal names the next one: a kill between them is finished
            # by the next operation on the stack (servestack.ops.interrupted).
            later = texts[i + 1] if i + 1 < len(texts) else None
            applied = execute(
                ws,
                op,
                prev,
                text,
                progress,
                scoped=p.scoped,
                on_event=p.on_event,
                then_text=later,
                known=p.deployed,
            )
            p.deployed = None  # the next update's is this one's
            if not applied:
                return
            prev = text
        if used and op.status is OperationStatus.succeeded:
            # An entry allows one edit: once applied, it goes from the stack file.
            done = allowances.without(p.after_text, used)
            write_atomic(ws.stack_file(p.stack), done)
            write_atomic(ws.state / "last-good" / f"{p.stack}.yaml", done)
    finally:
        try:
            if op.status.final:
                op.fields = _fields(p, op)
                op.releases = _releases(p, op)
                records.save(ws.state, op)
        finally:
            lock.release()
