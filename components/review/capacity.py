"""Capacity verdicts: whether the rollout an edit starts can finish in its pool.

For every edited deployment that rolls, replaces, scales or adds pods, the review compares
the rollout's peak with what its pool can hold (:mod:`servestack.config.capacity`):

* **fits as is**: the peak fits the nodes the pool runs now;
* **needs K more nodes**: the pool's autoscaler can add them (up to ``maxNodes``);
* **cannot finish**: even the least the rollout needs to make progress (one surge pod, the
  whole new colour of a blue-green switch, the whole canary track) never fits: the new pods
  stay Pending for ever. Production refuses it like a forbidden edit; the other
  environments warn with the same words.

Which pods an edit starts is read from the builders' own Deployments before and after the
edit (:mod:`servestack.manifests.render`): a track whose pod template changes rolls by its
own ``maxSurge``/``maxUnavailable``, a new Deployment (a canary track, a blue-green colour)
starts all its pods beside the old ones, a removed one frees room. The other deployments
sharing the pool count with their pods at rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from servestack.config import capacity as cap
from servestack.config import paths
from servestack.config.defaults import effective
from servestack.config.gpu import GPU_RESOURCE, GpuType
from servestack.config.models import CloudProvider, DeploymentSpec, StackConfig, StrategyType
from servestack.contract import labels
from servestack.manifests import naming
from servestack.manifests.render import Rendered

DEPLOYMENT = labels.DEPLOYMENT_TYPE


class Fit(StrEnum):
    FITS = "fits"
    NEEDS_NODES = "needs nodes"
    CANNOT_FINISH = "cannot finish"


@dataclass(frozen=True)
class Track:
    """One Deployment of a model deployment across an edit (pods None: absent)."""

    canary: bool
    before: int | None
    after: int | None
    rolls: bool
    max_surge: int = 0
    max_unavailable: int = 0
    #: The canary's Deployment, which takes the stable track (``promote --shift``).
    promoted: bool = False

    @property
    def word(self) -> str:
        return "the canary" if self.canary or self.promoted else "the stable track"


def _resolve(value: Any, pods: int, *, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    share = int(str(value).rstrip("%")) * pods
    return -(-share // 100) if round_up else share // 100


def _deployments(build: Rendered) -> dict[str, dict[str, Any]]:
    return {
        key.name: record.manifest
        for key, record in build.resources.items()
        if key.type == DEPLOYMENT
    }


def _pods(manifest: Mapping[str, Any], spec: DeploymentSpec) -> int:
    replicas = manifest["spec"].get("replicas")
    return int(replicas) if replicas is not None else cap.at_rest_pods(spec)


def tracks(
    old: Rendered, new: Rendered, old_spec: DeploymentSpec | None, new_spec: DeploymentSpec
) -> list[Track]:
    """The model's Deployments before and after an edit."""
    before, after = _deployments(old), _deployments(new)
    was_canary = _canary_name(old_spec)
    canary = _canary_name(new_spec)
    out = []
    for name in [*before, *(n for n in after if n not in before)]:
        b, a = before.get(name), after.get(name)
        pods_b = _pods(b, old_spec) if b is not None and old_spec is not None else None
        pods_a = _pods(a, new_spec) if a is not None else None
        surge = unavailable = 0
        if a is not None and pods_a:
            rolling = a["spec"]["strategy"]["rollingUpdate"]
            surge = _resolve(rolling["maxSurge"], pods_a, round_up=True)
            unavailable = _resolve(rolling["maxUnavailable"], pods_a, round_up=False)
        rolls = (
            b is not None
            and a is not None
            and bool(pods_a)
            and b["spec"]["template"] != a["spec"]["template"]
        )
        is_canary = name == canary or (a is None and name == was_canary)
        promoted = a is not None and b is not None and name == was_canary and name != canary
        out.append(Track(is_canary, pods_b, pods_a, rolls, surge, unavailable, promoted))
    return out


def _canary_name(spec: DeploymentSpec | None) -> str | None:
    """The name of the canary track's Deployment (None: no canary)."""
    if spec is None or spec.strategy.type is not StrategyType.canary:
        return None
    return naming.deployment_name(spec, naming.CANARY)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _gpus(spec: DeploymentSpec, pods: int) -> str:
    gpu = spec.resources.gpu
    if not (gpu.count and gpu.type):
        return ""
    resource = cap.gpu_resource(spec.resources)
    said = cap.amount(pods * gpu.count, resource, gpu.type)
    return f" = {said} GPU" if resource == GPU_RESOURCE else f" = {said}"


def forecast(ts: list[Track], spec: DeploymentSpec) -> str:
    """What the edit does to the model's pods, track by track (the restart rows' impact):
    what starts, then what rolls, then what goes."""
    autoscaled = effective(spec).autoscaling is not None
    added = [t for t in ts if t.before is None and t.after]
    starts, rolls, goes = [], [], []
    for t in ts:
        if t.rolls and t.after:
            floor = " (autoscaler minimum)" if autoscaled and not t.canary else ""
            whose = "the canary's " if t.canary else ""
            extra = f"{_plural(t.max_surge, 'extra pod')}{_gpus(spec, t.max_surge)}"
            rolls.append(f"rolls {whose}{_plural(t.after, 'pod')}{floor}; surge needs {extra}")
        elif t.before is None and t.after:
            what = "creates the canary track" if t.canary else "starts the new colour"
            starts.append(f"{what}: {_plural(t.after, 'pod')}{_gpus(spec, t.after)}")
        elif t.after is None and t.before:
            if t.canary:
                goes.append(f"removes the canary track ({_plural(t.before, 'pod')})")
            elif any(o.promoted for o in ts):
                goes.append(f"then removes the old stable track ({_plural(t.before, 'pod')})")
            elif added:
                goes.append(f"the old colour's {_plural(t.before, 'pod')} go after the switch")
            else:
                goes.append(f"removes {_plural(t.before, 'pod')}")
        elif t.promoted:
            grows = f"scales the canary {t.before} -> {t.after} pods" if t.before != t.after else ""
            what = "its pods take the stable track unchanged"
            rolls.append(f"{grows}; {what}" if grows else what)
        elif t.before is not None and t.after is not None and t.before != t.after:
            rolls.append(f"scales {t.word} {t.before} -> {t.after} pods")
    parts = starts + rolls + goes
    if not parts:
        return ""
    stable_touched = any(
        not t.canary and (t.rolls or t.promoted or t.before != t.after) for t in ts
    )
    if not stable_touched and any(not t.canary for t in ts):
        parts.append("stable pods untouched")
    return "; ".join(parts)


@dataclass(frozen=True)
class Verdict:
    deployment: str
    fit: Fit
    pool: str
    #: One line with the numbers: the pool's room and the peak.
    text: str
    remedies: tuple[str, ...] = ()
    nodes_now: int = 0
    nodes_needed: int | None = None
    nodes_max: int = 0
    peak_pods: int = 0
    notes: tuple[str, ...] = field(default=())
    #: The pool's room and the rollout's peak, in GPUs (``8 x A100``, ``11 x A100``).
    room: str = ""
    peak: str = ""

    @property
    def path(self) -> str:
        return paths.deployment(self.deployment)

    def line(self) -> str:
        out = f"{self.path}: {self.text}"
        if self.notes:
            out += "; " + "; ".join(self.notes)
        return out

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "deployment": self.deployment,
            "verdict": self.fit.value,
            "pool": self.pool,
            "text": self.text,
            "nodesNow": self.nodes_now,
            "nodesNeeded": self.nodes_needed,
            "nodesMax": self.nodes_max,
            "peakPods": self.peak_pods,
            "room": self.room,
            "peak": self.peak,
        }
        if self.remedies:
            out["remedies"] = list(self.remedies)
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def _peak(ts: list[Track]) -> tuple[int, int, str]:
    """(pods at the peak, the least that lets the rollout progress, how the peak is made).

    A rolling track progresses with one surge pod at a time (none when ``maxUnavailable``
    lets it stop an old pod first), and tracks take turns: the least is the pods they keep
    plus the largest single step. A new Deployment (canary track, blue-green colour) needs
    all its pods beside the old colour, which stays until the switch."""
    # A removed Deployment goes last (the engine deletes after every update, and a
    # shift's second update removes it): it stays while the others grow.
    changing = any(t.rolls or (t.after or 0) > (t.before or 0) for t in ts)
    kept = surge = step = 0
    words = []
    for t in ts:
        after = t.after or 0
        if t.rolls:
            kept += after
            surge += t.max_surge
            step = max(step, 0 if t.max_unavailable or not t.max_surge else 1)
            more = f" + maxSurge {t.max_surge}" if t.max_surge else ""
            words.append(
                f"{_plural(after, 'canary pod') if t.canary else _plural(after, 'replica')}{more}"
            )
        elif t.after is None:
            # A removed Deployment stays until what replaces it is ready.
            stays = (t.before or 0) if changing else 0
            kept += stays
            if stays:
                old = "the old stable track" if any(o.promoted for o in ts) else "the old colour"
                words.append(f"{stays} of {old}")
        elif after:
            kept += after
            if t.canary or t.promoted:
                words.append(_plural(after, "canary pod"))
            elif t.before is None:
                words.append(f"{after} of the new colour")
            else:
                words.append(_plural(after, "replica"))
    return kept + surge, kept + step, " + ".join(words)


#: Deployments sharing the pool a verdict names (the others are counted).
BESIDES_SHOWN = 5
#: The last stacks' pods at rest by GPU type (see :func:`_census`), each kept with its stack.
_CENSUS: dict[tuple[int, GpuType], tuple[StackConfig, _Census]] = {}


@dataclass(frozen=True)
class _Census:
    """The pods at rest on one GPU type, by deployment and by shape, counted once per stack:
    the same for every edited deployment of one review (a review of 1,000 edited
    deployments asked for them 2 million times, and grouped them by shape 3,000 times)."""

    #: Each deployment's pods at rest, by name, in the stack's order.
    pods: dict[str, list[cap.Amounts]]
    #: Every pod, grouped as :func:`servestack.config.capacity.shapes_of` groups them.
    everyone: cap.Shapes
    #: Each deployment with pods: (its place among them, its shape, how many).
    own: dict[str, tuple[int, cap.Shape, int]]
    #: The places of the first two deployments of each shape.
    firsts: dict[cap.Shape, tuple[int, ...]]

    @classmethod
    def of(cls, stack: StackConfig, gpu: GpuType) -> _Census:
        pods = {d.name: cap.demand(d) for d in cap.sharing(stack, gpu)}
        own: dict[str, tuple[int, cap.Shape, int]] = {}
        firsts: dict[cap.Shape, tuple[int, ...]] = {}
        for i, (name, mine) in enumerate((n, p) for n, p in pods.items() if p):
            shape = cap.shape_of(mine[0])  # a deployment's pods are one shape
            own[name] = (i, shape, len(mine))
            firsts[shape] = (*firsts.get(shape, ()), i)[:2]
        everyone = cap.shapes_of([pod for mine in pods.values() for pod in mine])
        return cls(pods, everyone, own, firsts)

    def without(self, name: str) -> cap.Shapes:
        """:func:`~servestack.config.capacity.shapes_of` of every pod but ``name``'s,
        without going through the pods."""
        if name not in self.own:
            return self.everyone
        at, mine, count = self.own[name]
        placed = []
        for shape, n in self.everyone:
            first = self.firsts[shape][0]
            if shape == mine:
                n -= count
                if not n:
                    continue
                # The next deployment of that shape, when ``name`` was its first.
                first = self.firsts[shape][1] if first == at else first
            placed.append((first, shape, n))
        return tuple((shape, n) for _, shape, n in sorted(placed))


def _census(stack: StackConfig, gpu: GpuType) -> _Census:
    """The stack's :class:`_Census` of ``gpu``, kept for the last few stacks (a stack is
    frozen, so its pods do not change)."""
    key = (id(stack), gpu)
    found = _CENSUS.get(key)
    if found is None or found[0] is not stack:
        if len(_CENSUS) >= 8:
            _CENSUS.clear()
        found = (stack, _Census.of(stack, gpu))
        _CENSUS[key] = found
    return found[1]


def verdict(
    ts: list[Track],
    spec: DeploymentSpec,
    old: StackConfig,
    new: StackConfig,
) -> Verdict | None:
    """The capacity verdict of the edit of ``spec`` (None: it starts no pods, or its pods
    belong to no modelled pool)."""
    gpu = spec.resources.gpu.type
    if gpu is None or not any(t.rolls or (t.after or 0) > (t.before or 0) for t in ts):
        return None
    pool = cap.pools_by_gpu(new).get(gpu)
    if pool is None:
        return None
    census = _census(new, gpu)
    others = {n: pods for n, pods in census.pods.items() if n != spec.name}
    rest = census.without(spec.name)
    running = cap.pack_shapes(_census(old, gpu).everyone, pool)
    now = max(pool.min_nodes, running if running is not None else pool.max_nodes)
    pod = cap.pod_requests(spec)
    peak, least, how = _peak(ts)
    need = cap.pack_shapes(cap.plus(rest, pod, peak), pool)
    each = spec.resources.gpu.count
    resource = cap.gpu_resource(spec.resources)
    total = (peak * each) + cap.total(rest, resource)
    if each != 1:
        how += f", {cap.amount(each, resource, gpu)} each"
    sharing = [(n, pods) for n, pods in others.items() if pods and pods[0].get(resource)]
    besides = ", ".join(
        f"{n} {cap.amount(len(pods) * pods[0][resource], resource, gpu)}"
        for n, pods in sharing[:BESIDES_SHOWN]
    )
    if len(sharing) > BESIDES_SHOWN:
        besides += f" and {len(sharing) - BESIDES_SHOWN} more deployments"
    if besides:
        how += f"; besides, at rest: {besides}"
    numbers = f"{cap.amount(total, resource, gpu)} at its peak ({how})"
    base: dict[str, Any] = {
        "deployment": spec.name,
        "pool": pool.name,
        "nodes_now": now,
        "nodes_max": pool.max_nodes,
        "peak_pods": peak,
        "notes": _ceiling(spec, rest, pool),
        "room": pool.holds(resource),
        "peak": cap.amount(total, resource, gpu),
    }
    if need is not None and need <= now:
        text = f"fits as is: {pool.label} ({_plural(now, 'node')}) holds {numbers}"
        return Verdict(fit=Fit.FITS, text=text, nodes_needed=need, **base)
    if need is not None:
        more = need - now
        text = (
            f"needs {_plural(more, 'more node')} in {pool.label} ({now} -> {need}; its "
            f"autoscaler adds up to maxNodes {pool.max_nodes}) for {numbers}"
        )
        return Verdict(fit=Fit.NEEDS_NODES, text=text, nodes_needed=need, **base)
    binding = _binding(cap.plus(rest, pod, peak), pool, resource)
    holds = f"{pool.label} holds at most {pool.holds(resource)}{binding}"
    slow = cap.pack_shapes(cap.plus(rest, pod, least), pool)
    if slow is not None:
        text = (
            f"finishes, slower: {holds}, not the {numbers}; surge pods beyond its room wait "
            "until old pods make way"
        )
        fit = Fit.FITS if slow <= now else Fit.NEEDS_NODES
        return Verdict(fit=fit, text=text, nodes_needed=slow, **base)
    text = f"cannot finish: {holds}; this rollout needs {numbers}"
    remedies = _remedies(ts, spec, pool, rest, peak)
    return Verdict(fit=Fit.CANNOT_FINISH, text=text, remedies=remedies, **base)


def _binding(pods: cap.Shapes, pool: cap.Pool, resource: str) -> str:
    """Which resources run out, when it is not (only) the GPUs (or slices)."""
    nodes = pool.node_list()
    short = [
        name
        for name in (cap.CPU, cap.MEMORY, cap.STORAGE, resource, cap.PODS)
        if cap.total(pods, name) > sum(n.allocatable.get(name, 0) for _, n in nodes)
    ]
    if resource in short:
        return ""
    if not short:
        return f", yet the pods do not pack onto its {_plural(len(nodes), 'node')}"
    return f", and its nodes run out of allocatable {', '.join(short)} before that"


def _nodes_for(pods: cap.Shapes, pool: cap.Pool) -> int | None:
    """Nodes of the pool's (first) shape the pods would need, however many the pool has."""
    p, node = pool.pools[0], pool.nodes[0]
    wide = cap.Pool(
        pool.gpu,
        (p.model_copy(update={"min_nodes": 1000, "max_nodes": 1000}),),
        (node,),
        pool.provider,
    )
    return cap.pack_shapes(pods, wide)


def _remedies(
    ts: list[Track],
    spec: DeploymentSpec,
    pool: cap.Pool,
    others: cap.Shapes,
    peak: int,
) -> tuple[str, ...]:
    pod = cap.pod_requests(spec)
    bound = "minNodes" if pool.provider is CloudProvider.local else "maxNodes"
    out = []
    nodes = _nodes_for(cap.plus(others, pod, peak), pool)
    if nodes is not None:
        out.append(
            f"raise {paths.node_pool(pool.pools[-1].name, bound)} to "
            f"{nodes - pool.max_nodes + pool.ceiling(pool.pools[-1])}"
        )
    stable = next((t for t in ts if not t.canary and t.rolls and t.after), None)
    if stable is not None and spec.strategy.type is StrategyType.rolling and stable.after:
        n = stable.after
        out.append(
            f"set {paths.deployment(spec.name, 'strategy')} maxSurge: 0 and "
            f"maxUnavailable: 1: each old pod stops before its successor starts, so "
            f"{n - 1} of {n} replicas serve during the rollout"
        )
    stable_pods = (stable.after or 0) if stable is not None else 0
    surge = stable.max_surge if stable is not None else 0
    batch = next(
        (
            r
            for r in range(stable_pods - 1, 0, -1)
            if cap.pack_shapes(cap.plus(others, pod, r + surge), pool) is not None
        ),
        None,
    )
    if batch is not None and effective(spec).autoscaling is None:
        out.append(
            f"roll in batches: scale {spec.name} to {_plural(batch, 'replica')} first "
            "(servestack scale), "
            f"apply the edit, then scale back to {stable_pods}"
        )
    return tuple(out)


def _ceiling(spec: DeploymentSpec, others: cap.Shapes, pool: cap.Pool) -> tuple[str, ...]:
    """An autoscaled deployment whose ceiling the pool cannot hold: say where it stops."""
    eff = effective(spec)
    if eff.autoscaling is None:
        return ()
    top = eff.autoscaling.max_replicas
    pod = cap.pod_requests(spec)
    extra = cap.canary_pods(spec)

    def holds(replicas: int) -> bool:
        return cap.pack_shapes(cap.plus(others, pod, replicas + extra), pool) is not None

    if holds(top):
        return ()
    low, high = 0, top  # holds(low) or low == 0; not holds(high)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if holds(mid) else (low, mid)
    fits = low
    return (
        f"the autoscaler's ceiling (maxReplicas {top}) does not fit {pool.label}: "
        f"replicas above {fits} stay Pending",
    )


def next_rollouts(stack: StackConfig) -> list[Verdict]:
    """The verdict of each GPU deployment's next rollout of all its pods (a new image, say)
    from the stack as it is: what `validate` warns about before any edit is made."""
    out = []
    for spec in stack.deployments:
        eff = effective(spec)
        pods = cap.at_rest_pods(spec)
        if spec.resources.gpu.type is None or not pods:
            continue
        ts: list[Track] = []
        if spec.strategy.type is StrategyType.blue_green:
            ts += [Track(False, pods, None, False), Track(False, None, pods, False)]
        else:
            surge = _resolve(eff.max_surge, pods, round_up=True)
            unavailable = _resolve(eff.max_unavailable, pods, round_up=False)
            ts.append(Track(False, pods, pods, True, surge, unavailable))
        canary = cap.canary_pods(spec)
        if canary:
            ts.append(Track(True, canary, canary, True, canary, 0))
        found = verdict(ts, spec, stack, stack)
        if found is not None:
            out.append(found)
    return out
