"""Offline diff of two stack configs, every change classified by the field-effect table.

No engine, no cloud: this runs on two `Pulumi.<stack>.yaml` files in a pull request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from components.config import (
    INHERITED_FIELDS,
    DeploymentSpec,
    Environment,
    StackConfig,
    StrategyType,
)
from components.defaults import effective
from components.effects import EditContext, rule_for


class Change(StrEnum):
    """The six words a change is classified with."""

    IN_PLACE = "in-place"
    RESTART = "restart"
    REPLACE = "replace"
    FORBIDDEN = "forbidden"
    CREATE = "create"
    DELETE = "delete"


BLOCKING_ON_REPLACE = (Change.REPLACE, Change.DELETE)


@dataclass(frozen=True)
class FieldChange:
    path: str
    before: Any
    after: Any
    effect: Change
    reason: str
    resources: tuple[str, ...]
    #: Set when the NEW file's `allowReplacements` covers this change.
    allowance: str | None = None
    #: What the running system feels: downtime class, surge capacity, lost warm capacity.
    impact: str = ""

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

    @property
    def summary(self) -> dict[str, int]:
        counts = {c.value: 0 for c in Change}
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
            if c.effect is Change.FORBIDDEN
            or (gate and c.effect in BLOCKING_ON_REPLACE and c.allowance is None)
        ]

    def to_json(self) -> dict[str, Any]:
        return {"changes": [c.to_json() for c in self.changes], "summary": self.summary}


def _dump(model: Any, *, inherited: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = model.model_dump(by_alias=True, mode="json")
    if inherited:
        for key in INHERITED_FIELDS:
            data.pop(key, None)
    return data


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


def _classify(
    path: str, before: Any, after: Any, ctx: EditContext, owner: str | None
) -> FieldChange:
    rule = rule_for(path)
    effect, reason = rule.resolve(ctx)
    change = Change(effect.value)
    return FieldChange(
        path,
        before,
        after,
        change,
        reason,
        _resources(rule.resources, owner),
        impact=impact(change, rule.path, reason, ctx.new),
    )


def _named(
    old: tuple[Any, ...],
    new: tuple[Any, ...],
    kind: str,
    old_stack: StackConfig,
    new_stack: StackConfig,
) -> list[FieldChange]:
    olds = {item.name: item for item in old}
    news = {item.name: item for item in new}
    changes: list[FieldChange] = []
    is_dep = kind == "deployments"
    for name in [*olds, *(n for n in news if n not in olds)]:
        o, n = olds.get(name), news.get(name)
        path = f"{kind}.{name}"
        if o is None:
            changes.append(
                FieldChange(
                    path,
                    None,
                    _dump(n, inherited=is_dep),
                    Change.CREATE,
                    f"new {kind[:-1]}",
                    (path,),
                    impact="new endpoint" if is_dep else "new capacity",
                )
            )
        elif n is None:
            changes.append(
                FieldChange(
                    path,
                    _dump(o, inherited=is_dep),
                    None,
                    Change.DELETE,
                    f"{kind[:-1]} removed: its resources are deleted",
                    (path,),
                    impact="endpoint removed; all pods deleted"
                    if is_dep
                    else "GPU capacity removed; pods on it are evicted",
                )
            )
        else:
            ctx = EditContext(o, n, old_stack, new_stack)
            for leaf, b, a in _leaves(_dump(o, inherited=is_dep), _dump(n, inherited=is_dep), path):
                changes.append(_classify(leaf, b, a, ctx, name))
    return changes


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
    result.changes += _named(old.deployments, new.deployments, "deployments", old, new)
    _apply_allowances(result, new)
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


def impact(change: Change, rule_path: str, reason: str, item: Any) -> str:
    if change is Change.RESTART and isinstance(item, DeploymentSpec):
        return restart_forecast(item)
    if change is not Change.REPLACE:
        return ""
    if "blue-green" in reason:
        return "create-before-delete: new version ready before the switch; 2x capacity"
    if rule_path.startswith("nodePools") or rule_path.startswith("cluster."):
        return "lost warm GPU capacity until new nodes join"
    if rule_path in (
        "deployments[].name",
        "namespace",
        "target",
        "cluster.name",
        "deployments[].namespace",
    ):
        return "new endpoint; delete-before-create (downtime)"
    return "delete-before-create: the resource is recreated (downtime)"


def _apply_allowances(result: DiffResult, new: StackConfig) -> None:
    for i, ch in enumerate(result.changes):
        if ch.effect not in BLOCKING_ON_REPLACE:
            continue
        for allow in new.allow_replacements:
            if ch.path == allow.path or ch.path.startswith(allow.path + "."):
                result.changes[i] = FieldChange(
                    ch.path,
                    ch.before,
                    ch.after,
                    ch.effect,
                    ch.reason,
                    ch.resources,
                    allow.reason,
                    ch.impact,
                )
                break
