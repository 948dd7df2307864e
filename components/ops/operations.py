"""One-call operations on a model deployment, applied as reviewed edits of the stack file.

Every operation edits `stacks/Pulumi.<stack>.yaml` (comments and order kept), validates it,
classifies the change with the field-effect table, runs `pulumi up` on the real engine and
records the outcome. When `up` fails, the last configuration that succeeded is re-applied
and the failed one is kept for inspection: nothing the user wrote is lost.

This module is the public API (:func:`update_model_deployment`, :func:`get_operation`,
:func:`status`); the parts live in sibling modules and are re-exported here:

- :mod:`~servestack.ops.workspace`: the project and its engine;
- :mod:`~servestack.ops.edits`: the stack-file edits of each operation;
- :mod:`~servestack.ops.transaction`: plan (lock, edit, validate, classify) and apply;
- :mod:`~servestack.ops.execute`: one `pulumi up` with its rollback;
- :mod:`~servestack.ops.records`: operation records and their statuses;
- :mod:`~servestack.ops.releases`: a deployment's releases, from the operation records;
- :mod:`~servestack.ops.interrupted`: finishing an operation that was killed;
- :mod:`~servestack.ops.engine_errors`: what went wrong, from the engine's output;
- :mod:`~servestack.ops.worker`: an operation that outlives its command (`--no-wait`).

State kept per project under `.servestack/`: `last-good/<stack>.yaml`,
`failed/<stack>-<operation>.yaml`, `operations/<operation>.json`, `locks/<stack>.lock`
(one operation at a time per stack: :mod:`servestack.ops.lock`) and
`inflight/<stack>.json` (what a killed operation was doing: :mod:`servestack.ops.recovery`).
"""

from __future__ import annotations

from typing import Any

from servestack.config.models import StrategyType
from servestack.config.validation import load_stack_config
from servestack.ops import records
from servestack.ops.describe import describe, find_deployment
from servestack.ops.edits import (
    Edits,
    NotedEdits,
    delete_edits,
    promote_edits,
    resource_edits,
    rollback_edits,
    rollback_to_previous_edits,
    set_model_edits,
    shift_steps,
)
from servestack.ops.engine_errors import engine_error
from servestack.ops.floors import below_floor
from servestack.ops.interrupted import recover
from servestack.ops.records import FINAL, Operation, OperationStatus
from servestack.ops.releases import Release
from servestack.ops.releases import history as release_history
from servestack.ops.transaction import OperationRefused, Plan, Steps, apply, plan
from servestack.ops.workspace import Progress, Workspace

__all__ = [
    "FINAL",
    "Edits",
    "NotedEdits",
    "Operation",
    "OperationRefused",
    "OperationStatus",
    "Plan",
    "Progress",
    "Release",
    "Steps",
    "StrategyType",
    "Workspace",
    "apply",
    "delete_edits",
    "describe",
    "engine_error",
    "find_deployment",
    "get_operation",
    "plan",
    "promote_edits",
    "recover",
    "release_history",
    "resource_edits",
    "rollback_edits",
    "rollback_to_previous_edits",
    "set_model_edits",
    "shift_steps",
    "status",
    "update_model_deployment",
]


def _save(ws: Workspace, op: Operation) -> None:
    records.save(ws.state, op)


def get_operation(op_id: str, ws: Workspace | None = None) -> dict[str, Any]:
    """An operation's record, as a platform client reads it: its status and phase, the
    stack and deployment, the planned ``changes``, ``started_at``/``finished_at`` (and
    ``duration_seconds`` once it ended), the engine's resource changes (``result``),
    ``error``/``rollback`` when it failed, and the deployment's fields once it is final.
    A record left running by a process that is gone reads ``interrupted``.

    Raises:
        KeyError: there is no such operation.
    """
    ws = ws or Workspace()
    data = records.read(ws.state, op_id)
    fields = data.pop("fields", None) or {}
    return {**fields, **data, "operation_id": data["id"], "updated_at": data.get("finished_at")}


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
    allow_below_floor: bool = False,
) -> dict[str, Any]:
    """Change a deployment the way the platform client does, as a reviewed stack edit.

    Args:
        stack: stack name (`dev`, `staging`, `prod`).
        deployment: the deployment's name.
        active: False stops it (no pods, config kept), True starts it again.
        replicas: fixed replica count (used when autoscaling is off).
        cpu: CPU per replica in millicores.
        memory: memory per replica in MiB.
        wait: False returns at once with ``operation_id``; see :func:`get_operation`. The
            operation runs on in a (non-daemon) thread of this process, which lives until
            it ends; the CLI's `--no-wait` runs it in a process of its own instead.
        allow_replace: proceed even if the change replaces or deletes a resource.
        allow_below_floor: proceed even if ``cpu`` or ``memory`` takes a deployment with
            GPUs below :data:`servestack.ops.floors.GPU_FLOOR` (1 core, 1 GiB): such a value
            is far more often a unit mistake (``cpu=4`` meant as 4 cores) than meant.

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
        low = below_floor(p.before, p.after)
        if low and not allow_below_floor:
            raise OperationRefused(
                "; ".join(low) + " (cpu is in millicores and memory in MiB here; pass "
                "allow_below_floor=True if this is meant)",
                p.diff,
            )
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
