"""One-call operations on a model deployment, applied as reviewed edits of the stack file.

Every operation edits `stacks/Pulumi.<stack>.yaml` (comments and order kept), validates it,
classifies the change with the field-effect table, runs `pulumi up` on the real engine and
records the outcome. When `up` fails, the last configuration that succeeded is re-applied
and the failed one is kept for inspection: nothing the user wrote is lost.

State kept per project under `.servestack/`: `last-good/<stack>.yaml`,
`failed/<stack>-<operation>.yaml`, `operations/<operation>.json`, `locks/<stack>.lock`
(one operation at a time per stack: :mod:`servestack.ops.lock`) and
`inflight/<stack>.json` (what a killed operation was doing: :mod:`servestack.ops.recovery`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servestack import testhook
from servestack.config import reader
from servestack.config.defaults import effective
from servestack.config.errors import ConfigError, Problem
from servestack.config.models import (
    DeploymentSpec,
    Environment,
    StackConfig,
    StrategyType,
    Target,
)
from servestack.config.quantities import format_cpu, format_memory
from servestack.config.stackfile import get_value, set_value, write_atomic
from servestack.config.validation import load_stack_config
from servestack.contract import paths
from servestack.engine.project import find_project, load_project
from servestack.engine.runner import Engine
from servestack.ops import recovery
from servestack.ops.lock import DEFAULT_TIMEOUT_SECONDS, Holder, StackLock, now, process_start
from servestack.review import allowances
from servestack.review.diff import Change, DiffResult, FieldChange
from servestack.review.predict import parse_text, predict

Edits = dict[str, Any]
Progress = Callable[[str], None]
#: Statuses after which an operation's record no longer changes (but for `recovered_by`).
FINAL = ("succeeded", "rolled_back", "failed", "interrupted")


class OperationRefused(Exception):
    """The change is forbidden, or needs a confirmation that was not given."""

    def __init__(self, message: str, diff: DiffResult | None = None) -> None:
        super().__init__(message)
        self.diff = diff


@dataclass
class Workspace:
    """A servestack Pulumi project on disk and the engine that applies it.

    ``Workspace()`` is the project around the current directory (looking upward for
    `Pulumi.yaml`); ``Workspace(project_dir=...)`` names one. Stack files are read from the
    project's ``stackConfigDir``.
    """

    project_dir: Path = field(default_factory=lambda: find_project().root)
    engine: Engine | None = None
    #: Seconds an operation waits for another one on the same stack (0: not at all,
    #: None: as long as it takes).
    lock_timeout: float | None = DEFAULT_TIMEOUT_SECONDS
    #: Told who holds the stack's lock when an operation has to wait for it.
    on_lock_wait: Callable[[Holder | None], None] | None = None
    #: Told what the cleanup after an interrupted operation did, as it does it.
    say: Progress | None = None

    def __post_init__(self) -> None:
        self.project = load_project(Path(self.project_dir))
        self.project_dir = self.project.root
        if self.engine is None:
            self.engine = Engine(self.project.engine_state, project_dir=self.project.root)

    @property
    def runner(self) -> Engine:
        assert self.engine is not None  # set by __post_init__
        return self.engine

    @property
    def state(self) -> Path:
        return self.project.state

    def stack_file(self, stack: str) -> Path:
        return self.project.stack_file(stack)


def _now() -> str:
    return now()


def find_deployment(config: StackConfig, name: str) -> DeploymentSpec:
    for dep in config.deployments:
        if dep.name == name:
            return dep
    names = ", ".join(d.name for d in config.deployments)
    raise ConfigError([Problem(paths.deployment(name), f"no such deployment; have: {names}")])


def describe(spec: DeploymentSpec, config: StackConfig) -> dict[str, Any]:
    """A deployment's fields, in the platform client's units (millicores, MiB)."""
    eff = effective(spec)
    gpu = spec.resources.gpu
    out: dict[str, Any] = {
        "name": spec.name,
        "description": spec.description,
        "model_id": spec.model.id,
        "model_version": spec.model.version,
        "model_type": spec.model.type.value,
        "image": spec.model.image,
        "environment": config.environment.value,
        "namespace": config.namespace,
        "processing": spec.processing.value,
        "active": spec.active,
        "replicas": eff.replicas,
        "autoscaling": (
            {
                "min_replicas": eff.autoscaling.min_replicas,
                "max_replicas": eff.autoscaling.max_replicas,
            }
            if eff.autoscaling
            else None
        ),
        "cpu": spec.resources.cpu_millicores,
        "memory": spec.resources.memory_mib,
        "gpu": {"count": gpu.count, "type": gpu.type.value if gpu.type else None},
        "strategy": spec.strategy.type.value,
    }
    if spec.strategy.type is StrategyType.canary:
        out["canary"] = {
            "version": spec.strategy.canary_version,
            "image": spec.strategy.canary_image,
            "weight": spec.strategy.weight,
        }
    return out


def resource_edits(
    deployment: str,
    *,
    active: bool | None = None,
    replicas: int | None = None,
    cpu: int | None = None,
    memory: int | None = None,
) -> Edits:
    """Edits for `update_model_deployment`'s arguments (cpu in millicores, memory in MiB)."""
    base = paths.deployment(deployment)
    edits: Edits = {}
    if active is not None:
        edits[f"{base}.active"] = active
    if replicas is not None:
        edits[f"{base}.replicas"] = replicas
    if cpu is not None:
        if cpu <= 0:
            raise ConfigError([Problem(f"{base}.resources.cpu", f"{cpu} millicores must be > 0")])
        # Whole cores stay a YAML number, as users write them; others are "500m".
        edits[f"{base}.resources.cpu"] = cpu // 1000 if cpu % 1000 == 0 else format_cpu(cpu)
    if memory is not None:
        if memory <= 0:
            raise ConfigError([Problem(f"{base}.resources.memory", f"{memory} MiB must be > 0")])
        edits[f"{base}.resources.memory"] = format_memory(memory * 1024 * 1024)
    return edits


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
    edits: Edits | Callable[[str], Edits],
    deployment: str | None = None,
    *,
    operation: str = "edit",
) -> Plan:
    """Lock the stack, apply edits to its file's text (not the file), validate and classify.

    The stack's lock is taken first (waiting up to ``ws.lock_timeout``) and kept by the
    returned plan until :func:`apply` ends or :meth:`Plan.release`. With the lock held, an
    operation that was interrupted on this stack is finished first (see
    :mod:`servestack.ops.recovery`). ``edits`` may be a function of the stack file's current
    text, so that edits computed from the file see the file they are applied to.

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
    ws: Workspace, stack: str, edits: Edits | Callable[[str], Edits], deployment: str | None
) -> Plan:
    path = ws.stack_file(stack)
    before_text = reader.read_text(path)
    before = parse_text(before_text, str(path))
    if callable(edits):
        try:
            edits = edits(before_text)
        except KeyError as exc:
            where = paths.deployment(deployment) if deployment else ""
            raise ConfigError([Problem(where, f"not found: {exc.args[0]}")], str(path)) from None
    found = predict(before_text, edits, source=str(path), before=before)
    if deployment is not None and deployment not in {d.name for d in before.deployments}:
        find_deployment(before, deployment)
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
    return Plan(stack, deployment, before_text, found.text, before, found.after, diff)


def _instead(stack: str, change: FieldChange) -> str:
    """The operation that does what an unread replicas edit meant."""
    path = paths.FieldPath.parse(change.path)
    if path.rest == "replicas" and change.reason.startswith("replicas is owned"):
        return f"; use servestack scale {stack} {path.item_name} --min N --max M"
    return ""


def _shown(value: Any) -> str:
    return json.dumps(value) if value is not None else "(removed)"


@dataclass
class Operation:
    id: str
    stack: str
    deployment: str | None
    status: str = "pending"
    started_at: str = field(default_factory=_now)
    finished_at: str | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None
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

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _save(ws: Workspace, op: Operation) -> None:
    write_atomic(ws.state / "operations" / f"{op.id}.json", json.dumps(op.to_json(), indent=2))


def get_operation(op_id: str, ws: Workspace | None = None) -> dict[str, Any]:
    """Status and result of an operation started with ``wait=False`` (or any other)."""
    ws = ws or Workspace()
    path = ws.state / "operations" / f"{op_id}.json"
    if not path.exists():
        raise KeyError(f"no operation {op_id}")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if data.get("status") in ("pending", "running") and recovery.dead(
        int(data.get("pid") or 0), str(data.get("host")), data.get("pid_start")
    ):
        data["status"] = "interrupted"
        data["error"] = (
            f"process {data['pid']} on {data['host']} ended before the operation did "
            f"(killed?); the next operation on stack {data['stack']} finishes the change"
        )
    return data


def _load(ws: Workspace, op_id: str) -> Operation | None:
    try:
        data = json.loads((ws.state / "operations" / f"{op_id}.json").read_text("utf-8"))
        return Operation(**data)
    except (OSError, ValueError, TypeError):
        return None


def _up(ws: Workspace, stack: str, progress: Progress | None, operation: str) -> dict[str, int]:
    target = load_stack_config(ws.stack_file(stack)).target
    # Every engine process carries the operation's id: recovery finds those a kill left.
    marked = {**ws.runner.extra_env, recovery.OPERATION_ENV: operation}
    engine = dataclasses.replace(ws.runner, cluster=target is Target.cluster, extra_env=marked)
    st = engine.stack(ws.project_dir, stack)
    res = st.up(on_output=progress or (lambda _: None))
    return {str(k): v for k, v in (res.summary.resource_changes or {}).items()}


def apply(
    ws: Workspace,
    p: Plan,
    *,
    wait: bool = True,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write the planned stack file and run `pulumi up`; roll back on failure.

    The plan's stack lock is released when the operation ends (with ``wait=False``, in the
    thread that runs it).

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
    )
    try:
        lock.describe(f"{lock.operation} (operation {op.id})")
        _save(ws, op)
    except BaseException:
        lock.release()
        raise
    if wait:
        _run(ws, p, op, progress, lock)
        return _result(p, op)
    threading.Thread(target=_run, args=(ws, p, op, progress, lock), daemon=False).start()
    return {"operation_id": op.id, "status": "running", "changes": op.changes}


def _result(p: Plan, op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if p.deployment is not None and any(d.name == p.deployment for d in p.after.deployments):
        out = describe(
            find_deployment(p.after if op.status == "succeeded" else p.before, p.deployment),
            p.after if op.status == "succeeded" else p.before,
        )
    out.update(
        {
            "updated_at": op.finished_at,
            "operation_id": op.id,
            "status": op.status,
            "changes": op.changes,
        }
    )
    if op.error:
        out["error"] = op.error
    if op.rollback:
        out["rollback"] = op.rollback
    return out


def _run(ws: Workspace, p: Plan, op: Operation, progress: Progress | None, lock: StackLock) -> None:
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
            _execute(ws, op, p.before_text, armed, progress)
            if op.status != "succeeded":
                return
        _execute(ws, op, p.before_text, p.after_text, progress)
        if used and op.status == "succeeded":
            # An entry allows one edit: once applied, it goes from the stack file.
            done = allowances.without(p.after_text, used)
            write_atomic(ws.stack_file(p.stack), done)
            write_atomic(ws.state / "last-good" / f"{p.stack}.yaml", done)
    finally:
        lock.release()


def _execute(
    ws: Workspace, op: Operation, before_text: str, target_text: str, progress: Progress | None
) -> None:
    """Write ``target_text`` to the stack file and run `pulumi up`; roll back on failure.

    A journal (:mod:`servestack.ops.recovery`) says what is being applied until the record
    is final, so that the next operation can finish the job if this process dies. A first
    SIGINT is left to the engine, which got it too (Ctrl-C signals the whole process
    group) and stops cleanly; the operation then ends ``interrupted`` and keeps its journal.
    """
    stack = op.stack
    path = ws.stack_file(stack)
    last_good = ws.state / "last-good" / f"{stack}.yaml"
    journal = recovery.Journal.start(op.id, stack, before_text, target_text)
    op.status = "running"
    _save(ws, op)
    recovery.write_journal(ws.state, journal)
    final = False
    try:
        write_atomic(path, target_text)
        testhook.pause("stack-written")
        with recovery.GracefulInterrupt(ws.say or progress) as interrupt:
            try:
                op.result = _up(ws, stack, progress, op.id)
                failure: Exception | None = None
            except Exception as exc:  # the engine's failure, whatever its kind
                failure = exc
        if failure is not None and interrupt.interrupted:
            op.status = "interrupted"
            op.error = (
                "stopped by SIGINT; the engine stopped cleanly. The stack file holds the new "
                f"config; the next operation on stack {stack} finishes the change"
            )
            return
        if failure is None:
            op.status = "succeeded"
            write_atomic(last_good, target_text)
            final = True
            return
        op.error = engine_error(failure)
        failed = ws.state / "failed" / f"{stack}-{op.id}.yaml"
        write_atomic(failed, target_text)
        good = last_good.read_text(encoding="utf-8") if last_good.exists() else before_text
        journal.phase, journal.target_text = "rollback", good
        recovery.write_journal(ws.state, journal)
        write_atomic(path, good)
        try:
            _up(ws, stack, progress, op.id)
            op.rollback = {"status": "succeeded", "failed_config": str(failed)}
        except Exception as rb_exc:
            op.rollback = {
                "status": "failed",
                "error": engine_error(rb_exc),
                "failed_config": str(failed),
            }
        op.status = "rolled_back" if op.rollback["status"] == "succeeded" else "failed"
        final = True
    except KeyboardInterrupt:  # a second Ctrl-C: stop now; the next operation cleans up
        op.status = "interrupted"
        op.error = "stopped at once by a second SIGINT; the next operation cleans up"
        raise
    finally:
        op.finished_at = _now()
        _save(ws, op)
        if final:
            recovery.remove_journal(ws.state, stack)


def recover(ws: Workspace, stack: str) -> list[str]:
    """Finish an operation on ``stack`` that was interrupted; call with the stack's lock.

    Returns what was done, one line each (also told to ``ws.say`` as it happens); nothing
    when no operation was interrupted.
    """
    journal = recovery.read_journal(ws.state, stack)
    if journal is None:
        return []
    old = _load(ws, journal.operation)
    if old is not None and old.status in FINAL and old.status != "interrupted":
        recovery.remove_journal(ws.state, stack)  # died after its record was final
        return []
    if (old is None or old.status != "interrupted") and not recovery.dead(
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
    backend = recovery.diy_backend_dir(ws.runner.env())
    wait = recovery.ORPHAN_WAIT_SECONDS if ws.lock_timeout is None else ws.lock_timeout
    lines += recovery.clear_engine_leftovers(journal, backend, ws.project.name, stack, say, wait)
    lines += recovery.clear_pending_operations(
        ws.runner.cli, ws.project_dir, stack, ws.state / "tmp", say
    )
    path = ws.stack_file(stack)
    current = reader.read_text(path)
    if current not in (journal.before_text, journal.target_text):
        line = "the stack file was edited after the interruption: not finishing the old change"
        say(line)
        lines.append(line)
        _mark_interrupted(ws, journal, old, {"status": "abandoned", "cleanup": lines})
        recovery.remove_journal(ws.state, stack)
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
    _save(ws, fix)
    _execute(ws, fix, journal.before_text, journal.target_text, None)
    line = f"finished interrupted operation {journal.operation}: {fix.status} (operation {fix.id})"
    say(line)
    lines.append(line)
    _mark_interrupted(
        ws, journal, old, {"operation": fix.id, "status": fix.status, "cleanup": lines}
    )
    return lines


def _mark_interrupted(
    ws: Workspace, journal: recovery.Journal, old: Operation | None, how: dict[str, Any]
) -> None:
    if old is None:
        return
    old.status = "interrupted"
    old.error = old.error or (
        f"process {journal.pid} on {journal.host} ended before the operation did (killed?)"
    )
    old.recovered_by = how
    _save(ws, old)


#: Engine lines that say only that something failed, never what.
_GENERIC_ERRORS = re.compile(r"^error: (update failed|preview failed|\d+ errors? occurred:?)$")


def engine_error(exc: Exception) -> str:
    """What went wrong, from the engine's output: the resources' own diagnostics (with the
    resource they are about), not the closing "update failed" or "2 errored"."""
    text = str(exc)
    lines = [ln.strip() for ln in text.splitlines()]
    said: list[str] = []
    resource = ""
    for i, line in enumerate(lines):
        if re.match(r"^[\w.-]+:[\w./-]*:\w+ \(.*\):$", line):
            resource = line[:-1]  # `kubernetes:apps/v1:Deployment (bert-sentiment)`
        elif line.startswith("error: ") and not line.startswith("error: update failed"):
            detail = line if not _GENERIC_ERRORS.match(line) else ""
            # `error: 1 error occurred:` is followed by the errors, one `* ...` line each.
            items = [x[2:] for x in lines[i + 1 : i + 6] if x.startswith("* ")]
            message = "; ".join(filter(None, [detail.removeprefix("error: "), *items]))
            if message:
                said.append(f"{resource}: {message}" if resource else message)
    if said:
        return " | ".join(dict.fromkeys(said))[:500]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return (errors[-1] if errors else lines[-1] if text.strip() else type(exc).__name__)[:500]


def update_model_deployment(
    stack: str,
    deployment: str,
    *,
    active: bool | None = None,
    replicas: int | None = None,
    cpu: int | None = None,
    memory: int | None = None,
    wait: bool = True,
    workspace: Workspace | None = None,
    allow_replace: bool = False,
) -> dict[str, Any]:
    """Change a deployment the way the platform client does, as a reviewed stack edit.

    Args:
        stack: stack name (`dev`, `staging`, `prod`).
        deployment: the deployment's name.
        active: False stops it (no pods, config kept), True starts it again.
        replicas: fixed replica count (used when autoscaling is off).
        cpu: CPU per replica in millicores.
        memory: memory per replica in MiB.
        wait: False returns at once with ``operation_id``; see :func:`get_operation`.
        allow_replace: proceed even if the change replaces or deletes a resource.

    Returns:
        The deployment's fields (name, model id/version/type, image, environment, active,
        replicas, cpu, memory, gpu, ...), ``updated_at``, ``operation_id``, ``status`` and
        the classified ``changes``.
    """
    ws = workspace or Workspace()
    p = plan(
        ws,
        stack,
        resource_edits(deployment, active=active, replicas=replicas, cpu=cpu, memory=memory),
        deployment,
        operation="update_model_deployment",
    )
    try:
        find_deployment(p.after, deployment)
        if p.needs_confirmation and not allow_replace:
            raise OperationRefused(
                "the change replaces or deletes resources: "
                + ", ".join(c.path for c in p.needs_confirmation),
                p.diff,
            )
    except BaseException:
        p.release()
        raise
    return apply(ws, p, wait=wait)


def status(stack: str, deployment: str, workspace: Workspace | None = None) -> dict[str, Any]:
    ws = workspace or Workspace()
    config = load_stack_config(ws.stack_file(stack))
    return describe(find_deployment(config, deployment), config)


# --- model updates ------------------------------------------------------------------------------


def set_model_edits(
    text: str,
    deployment: str,
    *,
    version: str,
    image: str | None,
    strategy: StrategyType,
    weight: int | None = None,
) -> Edits:
    base = paths.deployment(deployment)
    current_image = str(get_value(text, f"{base}.model.image"))
    new_image = image or _retag(current_image, version)
    if strategy is StrategyType.canary:
        return {
            f"{base}.strategy": {
                "type": "canary",
                "weight": weight or 10,
                "canaryVersion": version,
                "canaryImage": new_image,
            }
        }
    return {
        f"{base}.model.version": version,
        f"{base}.model.image": new_image,
        f"{base}.strategy": {"type": strategy.value},
    }


def _retag(image: str, version: str) -> str:
    if "@" in image:
        raise ConfigError([Problem("image", f"{image} is pinned by digest: pass --image")])
    repo, sep, _tag = image.rpartition(":")
    if not sep or "/" in _tag:
        return f"{image}:{version.lstrip('v')}"
    return f"{repo}:{version.lstrip('v')}"


def promote_edits(text: str, deployment: str) -> Edits:
    """The canary becomes the stable version; the canary track goes."""
    base = paths.deployment(deployment)
    strategy = get_value(text, f"{base}.strategy")
    if not isinstance(strategy, dict) or strategy.get("type") != "canary":
        raise ConfigError([Problem(f"{base}.strategy", "no canary to promote")])
    return {
        f"{base}.model.version": strategy["canaryVersion"],
        f"{base}.model.image": strategy["canaryImage"],
        f"{base}.strategy": {"type": "rolling"},
    }


def rollback_edits(text: str, deployment: str) -> Edits:
    """Remove the canary track; the stable version keeps all traffic."""
    base = paths.deployment(deployment)
    strategy = get_value(text, f"{base}.strategy")
    if not isinstance(strategy, dict) or strategy.get("type") != "canary":
        raise ConfigError([Problem(f"{base}.strategy", "no canary to roll back")])
    return {f"{base}.strategy": {"type": "rolling"}}


def delete_edits(text: str, deployment: str) -> Edits:
    deployments = get_value(text, "deployments")
    kept = [d for d in deployments if d.get("name") != deployment]
    if len(kept) == len(deployments):
        raise ConfigError([Problem(paths.deployment(deployment), "no such deployment")])
    return {"deployments": kept}
