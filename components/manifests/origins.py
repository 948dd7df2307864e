"""Where a deployment's effective settings come from: its own fields or its environment.

:func:`servestack.config.defaults.effective` fills what a deployment leaves out from the
per-environment defaults. The builders record provenance, so for each effective setting
they need the fields an edit of would change it. Rather than restate the branches of
``effective``, this module asks it: it runs ``effective`` on the deployment with one field
edited at a time (every value of a switch, a few values of a number) and notes which
settings moved.

A setting's *own* field (``autoscaling.minReplicas`` for the minimum, ``replicas`` for the
count) and the environment (whose defaults fill what is left out) are its direct sources;
any other field that moves it only chooses which source applies (``via``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from servestack.config.defaults import effective
from servestack.config.models import DeploymentSpec, Environment, Processing, StrategyType

#: Autoscaling attributes and their config keys.
BOUNDS = {
    "min_replicas": "minReplicas",
    "max_replicas": "maxReplicas",
    "target_cpu_utilization": "targetCpuUtilization",
    "target_memory_utilization": "targetMemoryUtilization",
    "target_gpu_utilization": "targetGpuUtilization",
    "scale_down_stabilization_seconds": "scaleDownStabilizationSeconds",
}
#: Effective setting -> the fields that are its value when set.
OWN: dict[str, tuple[str, ...]] = {
    "replicas": ("replicas",),
    "max_surge": ("strategy.maxSurge",),
    "max_unavailable": ("strategy.maxUnavailable",),
    # Queue workers without bounds of their own are held at their replica count.
    **{attr: (f"autoscaling.{key}", "replicas") for attr, key in BOUNDS.items()},
}


@dataclass(frozen=True)
class Source:
    """Fields (relative to the deployment) a setting comes from, and those choosing it."""

    fields: tuple[str, ...] = ()
    via: tuple[str, ...] = ()


@dataclass(frozen=True)
class Origins:
    replicas: Source = Source()
    #: Decide whether an autoscaler exists (and so whether the Deployment sets replicas).
    autoscaled: tuple[str, ...] = ()
    #: Autoscaling attribute -> its source (empty without an autoscaler).
    bounds: Mapping[str, Source] = field(default_factory=dict)
    #: Decide whether the PodDisruptionBudget exists.
    budget: tuple[str, ...] = ()
    max_surge: Source = Source()
    max_unavailable: Source = Source()


NO_ORIGINS = Origins()


def _observe(spec: DeploymentSpec) -> dict[str, Any]:
    eff = effective(spec)
    scaler = eff.autoscaling
    seen: dict[str, Any] = {
        "replicas": eff.replicas,
        "autoscaled": scaler is not None,
        "budget": eff.disruption_budget,
        "max_surge": eff.max_surge,
        "max_unavailable": eff.max_unavailable,
    }
    for attr in BOUNDS:
        seen[attr] = getattr(scaler, attr) if scaler is not None else None
    return seen


def _numbers(current: int | None, *, optional: bool) -> set[int | None]:
    found: set[int | None] = {1, 2, (current or 0) + 1}
    if optional:
        found.add(None)
    found.discard(current)
    return found


def _edits(spec: DeploymentSpec) -> Iterator[tuple[str, DeploymentSpec]]:
    """The deployment with one field edited, for each field and a few values of it."""

    def edited(**update: Any) -> DeploymentSpec:
        return spec.model_copy(update=update)

    yield "active", edited(active=not spec.active)
    for env in Environment:
        if env is not spec.environment:
            yield "environment", edited(environment=env)
    for processing in Processing:
        if processing is not spec.processing:
            yield "processing", edited(processing=processing)
    for value in _numbers(spec.replicas, optional=True):
        yield "replicas", edited(replicas=value)
    section = spec.autoscaling
    if section is not None:

        def scaled(**update: Any) -> DeploymentSpec:
            return edited(autoscaling=section.model_copy(update=update))

        yield "autoscaling.enabled", scaled(enabled=not section.enabled)
        for attr, key in BOUNDS.items():
            current = getattr(section, attr)
            for value in _numbers(current, optional=attr.startswith("target_")):
                yield f"autoscaling.{key}", scaled(**{attr: value})
    strategy = spec.strategy
    for kind in StrategyType:
        if kind is not strategy.type:
            yield "strategy.type", edited(strategy=strategy.model_copy(update={"type": kind}))
    for attr, key in (("max_surge", "maxSurge"), ("max_unavailable", "maxUnavailable")):
        for step in {None, 0, 1, "50%"} - {getattr(strategy, attr)}:
            yield f"strategy.{key}", edited(strategy=strategy.model_copy(update={attr: step}))


def _shape(spec: DeploymentSpec) -> tuple[Any, ...]:
    """What ``effective`` reads: deployments alike in it have the same origins."""
    return (
        spec.environment,
        spec.processing,
        spec.replicas,
        spec.active,
        spec.autoscaling,
        spec.strategy.type,
        spec.strategy.max_surge,
        spec.strategy.max_unavailable,
    )


def origins(spec: DeploymentSpec) -> Origins:
    return _origins(_shape(spec), spec)


_CACHE: dict[tuple[Any, ...], Origins] = {}


def _origins(shape: tuple[Any, ...], spec: DeploymentSpec) -> Origins:
    found = _CACHE.get(shape)
    if found is None:
        if len(_CACHE) >= 1024:
            _CACHE.clear()
        found = _CACHE[shape] = _derive(spec)
    return found


def _derive(spec: DeploymentSpec) -> Origins:
    base = _observe(spec)
    moves: dict[str, set[str]] = {key: set() for key in base}
    for name, edited in _edits(spec):
        seen = _observe(edited)
        for key, value in seen.items():
            if value != base[key]:
                moves[key].add(name)

    def source(key: str) -> Source:
        direct = {*OWN.get(key, ()), "environment"}
        return Source(
            tuple(sorted(moves[key] & direct)),
            tuple(sorted(moves[key] - direct)),
        )

    return Origins(
        replicas=source("replicas"),
        autoscaled=tuple(sorted(moves["autoscaled"])),
        bounds={attr: source(attr) for attr in BOUNDS} if base["autoscaled"] else {},
        budget=tuple(sorted(moves["budget"])),
        max_surge=source("max_surge"),
        max_unavailable=source("max_unavailable"),
    )
