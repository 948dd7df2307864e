"""`servestack up` and `servestack preview`: a whole stack, as its stack file says, on the
fast path (:mod:`servestack.ops.execute`), reviewed like an operation.

The review compares the config the stack last deployed (its ``deployedConfig`` output) with
the stack file, through the same field-effect table as every operation; production refuses
what its gate refuses, before the engine starts. The update is journaled, so a kill is
finished by the next servestack command (:mod:`servestack.ops.interrupted`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from servestack import testhook
from servestack.config import reader
from servestack.config.models import CloudProvider, StackConfig
from servestack.manifests import node_pools
from servestack.manifests.render import render_stack
from servestack.ops.execute import deployed, engine_for
from servestack.ops.interrupted import recover
from servestack.ops.lock import StackLock
from servestack.ops.transaction import Plan
from servestack.ops.workspace import Workspace
from servestack.program import production
from servestack.review.diff import DiffResult, diff_configs
from servestack.review.predict import parse_text

#: The resources of an update that no manifest stands for: the stack itself, and the
#: engine's builtin provider (the program reads its last outputs through it).
_ENGINE_RESOURCES = 2


def plan_up(ws: Workspace, stack: str, *, operation: str) -> Plan:
    """Lock the stack, finish an interrupted operation, and review the stack file against
    what is deployed. The plan holds the lock (see :func:`servestack.ops.transaction.plan`)."""
    testhook.pause("before-lock")
    lock = StackLock(ws.state, stack)
    lock.acquire(operation, timeout=ws.lock_timeout, on_wait=ws.on_lock_wait)
    try:
        recovered = recover(ws, stack)
        p = review(ws, stack)
    except BaseException:
        lock.release()
        raise
    p.lock, p.recovered = lock, recovered
    return p


def review(ws: Workspace, stack: str) -> Plan:
    """The stack file against the deployed config (no lock; nothing applied)."""
    path = ws.stack_file(stack)
    text = reader.read_text(path)
    after = parse_text(text, str(path))
    # Read once: the update reuses it (Plan.deployed), under the lock this review ran with.
    known = deployed(engine_for(ws, stack, "review"), ws, stack)
    before = production.previous(known[1]).config
    notes = []
    if before is None:
        notes.append(f"stack {stack} has no deployed config yet: its first update creates it all")
        diff = DiffResult(environment=after.environment)
    else:
        diff = diff_configs(before, after)
    # The text the last update applied is not kept, only its config: an allowance's two-step
    # deletion (servestack.ops.transaction.run) starts from the stack file as it is.
    return Plan(
        stack,
        None,
        text,
        text,
        before or after,
        after,
        diff,
        notes=notes,
        scoped=False,
        deployed=known,
    )


#: Steps whose outputs event is not a registered resource finishing: the old half of a
#: replacement (its URN is the new half's) and discards.
_NOT_FINISHING = frozenset({"delete-replaced", "discard", "discard-replaced"})


@dataclass
class Progress:
    """Resources the engine has finished, out of those the program registers, and those it
    deleted (the program no longer has them); told to ``on_change`` as each one finishes."""

    total: int
    on_change: Callable[[str], None] = lambda _text: None
    finished: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    started: float = field(default_factory=time.monotonic)

    def event(self, event: dict[str, Any]) -> None:
        """An engine event (`--event-log` JSON): a resource's outputs mean its step is done.
        Counted by URN: a replacement's steps share one."""
        outputs = event.get("resOutputsEvent")
        if not isinstance(outputs, dict):
            return
        meta = outputs.get("metadata") or {}
        urn, op = str(meta.get("urn")), meta.get("op")
        if op == "delete":
            self.deleted.add(urn)
        elif op not in _NOT_FINISHING:
            self.finished.add(urn)
        self.on_change(self.text())

    def text(self) -> str:
        elapsed = time.monotonic() - self.started
        gone = f", {len(self.deleted)} deleted" if self.deleted else ""
        return f"{len(self.finished)}/{self.total} resources{gone}, {elapsed:.0f}s"


def resource_count(config: StackConfig, stack: str) -> int:
    """How many resources the program registers for ``config``: every resource and
    component the renderer knows of (the same builders), each pool's component and, with
    provider `local`, its Nodes (the renderer has neither), the stack and the builtin
    provider."""
    rendered = render_stack(config, stack)
    components = {c for c in rendered.components.values() if c is not None}
    pools = sum(f"nodePools.{p.name}" not in components for p in config.node_pools)
    if config.cluster.provider is CloudProvider.local:
        pools += sum(len(node_pools.local_nodes(p, config.cluster)) for p in config.node_pools)
    return (
        len(rendered.resources)
        + len(components)
        + len(rendered.stand_ins)
        + pools
        + _ENGINE_RESOURCES
    )


def engine_preview(ws: Workspace, stack: str, on_output: Callable[[str], None]) -> dict[str, int]:
    """The engine's own preview of the stack file (writes nothing): steps by kind."""
    engine = engine_for(ws, stack, "preview")
    res = engine.stack(ws.project_dir, stack).preview(on_output=on_output)
    return {str(k): int(v) for k, v in (res.change_summary or {}).items()}
