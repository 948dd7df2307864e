"""Offline diff of two stack configs, every change classified by the field-effect table.

No engine, no cloud: this runs on two `Pulumi.<stack>.yaml` files in a pull request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel, ValidationError

from servestack.config.defaults import effective
from servestack.config.models import (
    INHERITED_FIELDS,
    Allowance,
    DeploymentSpec,
    Environment,
    StackConfig,
    StrategyType,
)
from servestack.config.paths import FieldPath
from servestack.contract.effects import (
    UNREAD_FALLBACK,
    EditContext,
    Effect,
    Outcome,
    rule_for,
    unread_reason,
    worst,
)
from servestack.manifests.render import Rendered, render_deployment
from servestack.review import allowances
from servestack.review.capacity import Fit, Verdict, forecast, tracks, verdict

#: The effect vocabulary under the name earlier callers know it by (one enum: Effect).
Change = Effect

BLOCKING_ON_REPLACE = (Effect.REPLACE, Effect.DELETE)


@dataclass(frozen=True)
class FieldChange:
    path: str
    before: Any
    after: Any
    effect: Effect
    reason: str
    resources: tuple[str, ...]
    #: Set when the NEW file's `allowReplacements` covers this change.
    allowance: str | None = None
    #: What the running system feels: downtime class, surge capacity, lost warm capacity.
    impact: str = ""
    #: Not a field's edit: production's refusal of a rollout that cannot finish in its pool.
    capacity: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "before": self.before,
            "after": self.after,
            "effect": self.effect.value,
            "reason": self.reason,
            "resources": list(self.resources),
        }
        if self.allowance is not None:
            out["allowance"] = self.allowance
        if self.impact:
            out["impact"] = self.impact
        return out


@dataclass
class DiffResult:
    changes: list[FieldChange] = field(default_factory=list)
    environment: Environment = Environment.development
    #: The NEW file's `allowReplacements` entries that allow nothing here (see allowances).
    stale: list[Allowance] = field(default_factory=list)
    #: One capacity verdict per edited deployment that starts pods (review.capacity).
    capacity: list[Verdict] = field(default_factory=list)

    @property
    def cannot_finish(self) -> list[Verdict]:
        return [v for v in self.capacity if v.fit is Fit.CANNOT_FINISH]

    @property
    def worst(self) -> Effect | None:
        """The most severe effect of the changes (None: nothing changed)."""
        return worst(c.effect for c in self.changes)

    @property
    def summary(self) -> dict[str, int]:
        counts = {c.value: 0 for c in Effect}
        for ch in self.changes:
            counts[ch.effect.value] += 1
        return counts

    def blocking(self, fail_on_replace: bool) -> list[FieldChange]:
        """Changes that must stop the pipeline.

        Forbidden changes always block. Replacements and deletions block when asked to, and
        always in production, unless the NEW file carries an allowance for them.
        """
        gate = fail_on_replace or self.environment is Environment.production
        return [
            c
            for c in self.changes
            if c.effect is Effect.FORBIDDEN
            or (gate and c.effect in BLOCKING_ON_REPLACE and c.allowance is None)
        ]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "changes": [c.to_json() for c in self.changes],
            "summary": self.summary,
        }
        if self.stale:
            out["stale"] = [a.model_dump(by_alias=True, mode="json") for a in self.stale]
        if self.capacity:
            out["capacity"] = [v.to_json() for v in self.capacity]
        return out


def _dump(model: Any, inherited: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A model as YAML-shaped data. A deployment's fields equal to the ``inherited`` stack
    values are left out: their edit is the stack key's."""
    data: dict[str, Any] = model.model_dump(by_alias=True, mode="json")
    for key, value in (inherited or {}).items():
        if data.get(key) == value:
            del data[key]
    return data


#: The stack attributes behind :data:`INHERITED_FIELDS` (those name the YAML keys).
_INHERITED_ATTRS = {
    name for name, f in StackConfig.model_fields.items() if (f.alias or name) in INHERITED_FIELDS
}


def _inherited(stack: StackConfig) -> dict[str, Any]:
    return stack.model_dump(by_alias=True, mode="json", include=_INHERITED_ATTRS)


def _leaves(before: Any, after: Any, path: str) -> list[tuple[str, Any, Any]]:
    """Changed leaves between two JSON-like values. None on one side of a mapping means
    "absent": the other side's leaves are reported one by one."""
    if isinstance(before, dict) or isinstance(after, dict):
        b = before if isinstance(before, dict) else {}
        a = after if isinstance(after, dict) else {}
        if not b and not a and before != after:
            return [(path, before, after)]
        out: list[tuple[str, Any, Any]] = []
        for key in list(b) + [k for k in a if k not in b]:
            out += _leaves(b.get(key), a.get(key), f"{path}.{key}" if path else key)
        return out
    return [] if before == after else [(path, before, after)]


def _resources(kinds: tuple[str, ...], owner: str | None) -> tuple[str, ...]:
    return tuple(f"{k}/{owner}" if owner else k for k in kinds)


def _related(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


class _Reads:
    """What one deployment's manifests are built from, before and after an edit: its two
    builds and the fields their provenance names (built on first need)."""

    def __init__(self, ctx: EditContext, name: str) -> None:
        self.ctx, self.name = ctx, name
        self._named: frozenset[str] | None = None
        self._same = False
        self._builds: tuple[Rendered, Rendered] | None = None

    def _build(self, stack: StackConfig | None) -> Rendered:
        out = Rendered()
        if stack is not None:
            render_deployment(out, stack, self.name)
        return out

    def builds(self) -> tuple[Rendered, Rendered]:
        """The deployment's manifests before and after the edit (built once)."""
        if self._builds is None:
            self._builds = self._build(self.ctx.old_stack), self._build(self.ctx.new_stack)
        return self._builds

    def _load(self) -> frozenset[str]:
        if self._named is None:
            old, new = self.builds()
            self._same = _manifests(old) == _manifests(new)
            self._named = frozenset(
                f
                for build in (old, new)
                for record in build.resources.values()
                for mark in record.marks.values()
                for f in mark.fields | mark.via | (mark.when or frozenset())
            )
        return self._named

    def unread(self, path: str) -> bool:
        """Nothing deployed changes with ``path``: the deployment's manifests are the same
        after the edit, or none of them, before or after, is built from the field."""
        named = self._load()
        return self._same or not any(_related(path, f) for f in named)


def _manifests(build: Rendered) -> dict[Any, Any]:
    return {key: record.manifest for key, record in build.resources.items()}


def _unread_reason(path: str, before: Any, after: Any, spec: DeploymentSpec) -> str:
    reason = unread_reason(path, spec)
    if reason is UNREAD_FALLBACK and (before is None or after is None):
        rel = FieldPath.parse(path).rest
        shown = json.dumps(after if before is None else before)
        return f"{rel}: {shown} is the default the deployment already runs with"
    return reason.format(field=FieldPath.parse(path).rest)


def _classify(
    path: str,
    before: Any,
    after: Any,
    ctx: EditContext,
    owner: str | None,
    reads: _Reads | None = None,
) -> FieldChange:
    rule = rule_for(path)
    outcome = rule.resolve(ctx)
    if (
        reads is not None
        and outcome.effect not in (Effect.NONE, Effect.FORBIDDEN)
        and reads.unread(path)
    ):
        # Nothing deployed reads the field here, before or after: the engine changes nothing.
        outcome = Outcome(Effect.NONE, _unread_reason(path, before, after, ctx.new))
    return FieldChange(
        path,
        before,
        after,
        outcome.effect,
        outcome.reason,
        _resources(rule.resources, owner),
        impact=impact(outcome.effect, outcome.impact, ctx.new),
    )


def _named(
    old: tuple[Any, ...],
    new: tuple[Any, ...],
    kind: str,
    old_stack: StackConfig,
    new_stack: StackConfig,
    verdicts: list[Verdict] | None = None,
) -> list[FieldChange]:
    olds = {item.name: item for item in old}
    old_top = _inherited(old_stack) if kind == "deployments" else None
    new_top = _inherited(new_stack) if kind == "deployments" else None
    news = {item.name: item for item in new}
    changes: list[FieldChange] = []
    is_dep = kind == "deployments"
    for name in [*olds, *(n for n in news if n not in olds)]:
        o, n = olds.get(name), news.get(name)
        path = f"{kind}.{name}"
        if o is None:
            if is_dep and verdicts is not None:
                _capacity(EditContext(n, n, old_stack, new_stack), name, None, [], verdicts)
            changes.append(
                FieldChange(
                    path,
                    None,
                    _dump(n, new_top),
                    Effect.CREATE,
                    f"new {kind[:-1]}",
                    (path,),
                    impact="new endpoint" if is_dep else "new capacity",
                )
            )
        elif n is None:
            changes.append(
                FieldChange(
                    path,
                    _dump(o, old_top),
                    None,
                    Effect.DELETE,
                    f"{kind[:-1]} removed: its resources are deleted",
                    (path,),
                    impact="endpoint removed; all pods deleted"
                    if is_dep
                    else "GPU capacity removed; pods on it are evicted",
                )
            )
        elif o != n or old_top != new_top:
            # Equal models dump equal: most items of a large stack are untouched.
            ctx = EditContext(o, n, old_stack, new_stack)
            before = _dump(o, old_top)
            after = _dump(n, new_top)
            reads = _Reads(ctx, name) if is_dep else None
            rows = [
                _classify(leaf, b, a, ctx, name, reads)
                for leaf, b, a in _leaves(before, after, path)
            ]
            rows = _fold(rows, before, after, n, path)
            if is_dep:
                rows += _env_defaults(o, n, ctx, name, reads, rows)
                if verdicts is not None:
                    rows = _capacity(ctx, name, o, rows, verdicts, reads)
            changes += rows
    return changes


def _capacity(
    ctx: EditContext,
    name: str,
    old: DeploymentSpec | None,
    rows: list[FieldChange],
    verdicts: list[Verdict],
    reads: _Reads | None = None,
) -> list[FieldChange]:
    """The edit's pods track by track: the restart rows' forecast, and the capacity
    verdict of the rollout (appended to ``verdicts``)."""
    new = ctx.new
    assert isinstance(new, DeploymentSpec)
    before, after = (reads or _Reads(ctx, name)).builds()
    if old is None:
        before = Rendered()
    ts = tracks(before, after, old, new)
    if ctx.old_stack is not None and ctx.new_stack is not None:
        found = verdict(ts, new, ctx.old_stack, ctx.new_stack)
        if found is not None:
            verdicts.append(found)
    told = forecast(ts, new)
    if not told:
        return rows
    # A shift restarts nothing: its forecast goes on the row that moves the stable track.
    return [
        replace(r, impact=told)
        if r.effect is Effect.RESTART or r.path.endswith(".stableSlot")
        else r
        for r in rows
    ]


def _refusals(result: DiffResult) -> list[FieldChange]:
    """Production refuses a rollout that cannot finish, like a forbidden edit."""
    if result.environment is not Environment.production:
        return []
    return [
        FieldChange(
            v.path,
            f"pool holds {v.room}",
            f"peak {v.peak}",
            Effect.FORBIDDEN,
            f"production refuses a rollout that {v.text}",
            (f"Deployment/{v.deployment}",),
            impact="remedies: " + "; ".join(v.remedies) if v.remedies else "",
            capacity=True,
        )
        for v in result.cannot_finish
    ]


#: Effects that are never folded into a block's row: each is reviewed (and allowed) alone.
_ALONE = (Effect.FORBIDDEN, Effect.REPLACE, Effect.DELETE)


def _block_defaults(item: Any, key: str) -> Any:
    """The YAML-shaped defaults of the block ``key`` of ``item`` (None: not a block)."""
    for attr, info in type(item).model_fields.items():
        if (info.alias or attr) == key:
            value = getattr(item, attr)
            if isinstance(value, BaseModel):
                try:
                    return type(value)().model_dump(by_alias=True, mode="json")
                except ValidationError:
                    return None
    return None


def _at(data: Any, rel: list[str]) -> Any:
    for part in rel:
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _fold(
    rows: list[FieldChange], before: dict[str, Any], after: dict[str, Any], item: Any, path: str
) -> list[FieldChange]:
    """One row for the settings of a block that takes no effect (``enabled: false``), and
    one for the defaults of a block that is added or removed whole: the rows a reviewer
    acts on stay, the defaults that merely come with a block do not each get one."""
    groups: dict[str, list[FieldChange]] = {}
    for row in rows:
        rel = row.path[len(path) + 1 :].split(".")
        if len(rel) > 1:
            groups.setdefault(rel[0], []).append(row)
    out = list(rows)
    for key, members in groups.items():
        b, a = before.get(key), after.get(key)
        if not isinstance(a, dict) and not isinstance(b, dict):
            continue
        block = f"{path}.{key}"
        # Disabled by the edit, added disabled, or removed while disabled: none of its
        # settings count. (Edits inside a block disabled before and after keep their rows,
        # each saying it is not read.)
        b_off = isinstance(b, dict) and b.get("enabled") is False
        a_off = isinstance(a, dict) and a.get("enabled") is False
        off = (a_off and not b_off) or (a is None and b_off)
        if off:
            folded = [m for m in members if m.effect not in _ALONE]
            note = f"{key} is disabled (its other settings take no effect)"
            shown_b, shown_a = (
                None if v is None else "disabled" if v.get("enabled") is False else "enabled"
                for v in (b, a)
            )
        elif b is None or a is None:
            defaults = _block_defaults(item, key)
            if defaults is None:
                continue
            side = 2 if b is None else 1
            folded = [
                m
                for m in members
                if m.effect not in _ALONE
                and (m.after if side == 2 else m.before)
                == _at(defaults, m.path[len(block) + 1 :].split("."))
            ]
            word = "added" if b is None else "removed"
            note = f"{key} block {word}; {len(folded)} settings at their defaults"
            # "defaults": the whole block is; "added"/"removed": other rows follow.
            whole = "defaults" if len(folded) == len(members) else word
            shown_b = None if b is None else whole
            shown_a = whole if b is None else None
        else:
            continue
        if len(folded) < 2:
            continue
        rep = next(
            (m for m in folded if m.path == f"{block}.enabled"),
            max(folded, key=lambda m: m.effect.severity),
        )
        effect = worst(m.effect for m in folded) or rep.effect
        first = out.index(folded[0])
        out = [r for r in out if r not in folded]
        out.insert(
            min(first, len(out)),
            FieldChange(
                block,
                shown_b,
                shown_a,
                effect,
                f"{note}; {rep.reason}" if effect is not Effect.NONE else note,
                rep.resources,
                impact=rep.impact,
            ),
        )
    return out


def _env_defaults(
    old: DeploymentSpec,
    new: DeploymentSpec,
    ctx: EditContext,
    name: str,
    reads: _Reads | None,
    rows: list[FieldChange],
) -> list[FieldChange]:
    """Rows for the settings a deployment leaves out whose environment's default changed
    (monitoring turns on in production): nothing in the file changed, the system does."""
    if old.environment is new.environment:
        return []
    eo, en = effective(old), effective(new)
    found = []
    for key, unset, b, a in (
        (
            "monitoring",
            old.monitoring is None or new.monitoring is None,
            "enabled" if eo.monitoring else "disabled",
            "enabled" if en.monitoring else "disabled",
        ),
        (
            "autoscaling",
            old.autoscaling is None or new.autoscaling is None,
            _scaling(eo.autoscaling),
            _scaling(en.autoscaling),
        ),
        # Under an autoscaler, it owns the replica count.
        (
            "replicas",
            not en.autoscaled and None in (old.replicas, new.replicas),
            eo.replicas,
            en.replicas,
        ),
        ("strategy.maxSurge", True, eo.max_surge, en.max_surge),
        ("strategy.maxUnavailable", True, eo.max_unavailable, en.max_unavailable),
    ):
        path = f"deployments.{name}.{key}"
        if not unset or b == a or any(_related(r.path, path) for r in rows):
            continue
        # A block's rule is its `enabled` switch's.
        rule_path = f"{path}.enabled" if key in ("monitoring", "autoscaling") else path
        row = _classify(rule_path, b, a, ctx, name, reads)
        env = f"{old.environment.value} -> {new.environment.value}"
        found.append(
            FieldChange(
                path,
                row.before,
                row.after,
                row.effect,
                f"the environment's default ({env}); {row.reason}",
                row.resources,
                impact=row.impact,
            )
        )
    return found


def _scaling(autoscaling: Any) -> str:
    if autoscaling is None:
        return "disabled"
    return f"{autoscaling.min_replicas}..{autoscaling.max_replicas}"


def diff_configs(old: StackConfig, new: StackConfig) -> DiffResult:
    """Every changed field between two validated stacks, classified."""
    result = DiffResult(environment=new.environment)
    top_old = _dump(old)
    top_new = _dump(new)
    for key in ("deployments", "nodePools", "allowReplacements"):
        top_old.pop(key, None)
        top_new.pop(key, None)
    ctx = EditContext(old, new, old, new)
    for leaf, b, a in _leaves(top_old, top_new, ""):
        result.changes.append(_classify(leaf, b, a, ctx, None))
    result.changes += _named(old.node_pools, new.node_pools, "nodePools", old, new)
    result.changes += _named(
        old.deployments, new.deployments, "deployments", old, new, result.capacity
    )
    result.stale = allowances.apply(result, old, new)
    result.changes += _refusals(result)
    return result


def _percent_or_count(value: int | str, replicas: int, *, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    share = int(value.rstrip("%")) * replicas
    return -(-share // 100) if round_up else share // 100


def restart_forecast(spec: DeploymentSpec) -> str:
    """How a rolling restart of this deployment uses capacity."""
    eff = effective(spec)
    pods = eff.autoscaling.min_replicas if eff.autoscaling else eff.replicas
    if pods == 0:
        return "stopped: no pods to roll"
    if spec.strategy.type is StrategyType.blue_green:
        surge = pods
    else:
        surge = _percent_or_count(eff.max_surge, pods, round_up=True)
    gpu = spec.resources.gpu
    extra = f"{surge} extra pod{'s' if surge != 1 else ''}"
    if gpu.count and gpu.type:
        extra += f" = {surge * gpu.count} x {gpu.type.value} GPU"
    floor = " (autoscaler minimum)" if eff.autoscaling else ""
    return f"rolls {pods} pod{'s' if pods != 1 else ''}{floor}; surge needs {extra}"


def impact(effect: Effect, table_impact: str, item: Any) -> str:
    """What the running system feels: a restart's surge forecast for this deployment, or
    the downtime class the table gives the rule."""
    if effect is Effect.RESTART and isinstance(item, DeploymentSpec):
        return restart_forecast(item)
    return table_impact
