"""Where a deployment's effective settings come from: its own fields or its environment.

:func:`servestack.config.defaults.effective` fills what a deployment leaves out from the
per-environment defaults. The builders record provenance, so they need to know, for each
effective setting, which fields an edit of would change it. That is this module: it follows
the same branches as ``effective`` and names the fields instead of computing values. The
provenance test edits every field and checks the two agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from servestack.config.defaults import ENV_DEFAULTS
from servestack.config.models import DeploymentSpec, Processing, StrategyType

#: Autoscaling attributes and their config keys.
BOUNDS = {
    "min_replicas": "minReplicas",
    "max_replicas": "maxReplicas",
    "target_cpu_utilization": "targetCpuUtilization",
    "target_memory_utilization": "targetMemoryUtilization",
    "target_gpu_utilization": "targetGpuUtilization",
    "scale_down_stabilization_seconds": "scaleDownStabilizationSeconds",
}


@dataclass(frozen=True)
class Origins:
    """Fields (relative to the deployment) behind each effective setting.

    ``*_via`` fields choose where a value comes from without being its value (see
    :mod:`servestack.manifests.provenance`).
    """

    replicas: tuple[str, ...] = ()
    replicas_via: tuple[str, ...] = ()
    #: Decide whether an autoscaler exists (and so whether the Deployment sets replicas).
    autoscaled: tuple[str, ...] = ()
    #: Autoscaling attribute -> fields its value comes from.
    bounds: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    bounds_via: tuple[str, ...] = ()
    #: Decide whether the PodDisruptionBudget exists.
    budget: tuple[str, ...] = ()
    budget_via: tuple[str, ...] = ()
    max_surge: tuple[str, ...] = ()
    max_unavailable: tuple[str, ...] = ()


NO_ORIGINS = Origins()


def origins(spec: DeploymentSpec) -> Origins:
    defaults = ENV_DEFAULTS[spec.environment]
    section = spec.autoscaling
    sync = spec.processing is Processing.sync
    own_replicas = ("replicas",) if spec.replicas is not None else ("environment",)
    # The autoscaler a deployment has while active: its own section, the environment's, or
    # (queue workers without one) fixed bounds at the replica count.
    if section is not None:
        chosen_enabled = section.enabled
        source: Mapping[str, tuple[str, ...]] = {
            attr: (f"autoscaling.{key}",) for attr, key in BOUNDS.items()
        }
        switch: tuple[str, ...] = ("autoscaling.enabled",)
    else:
        chosen_enabled = defaults.autoscaling is not None
        source = {attr: ("environment",) for attr in BOUNDS}
        switch = ("environment",)
    scaled = chosen_enabled or not sync
    if not chosen_enabled:
        source = {"min_replicas": own_replicas, "max_replicas": own_replicas}
    bounds = source if spec.active and scaled else {}

    autoscaled: list[str] = ["processing"]
    if scaled:
        autoscaled.append("active")
    if sync and spec.active:
        autoscaled += switch

    most = source["min_replicas"] if scaled else own_replicas
    budget: list[str] = []
    if spec.active:
        budget.append("environment")
        if defaults.disruption_budget:
            budget += most
    if defaults.disruption_budget:
        budget.append("active")

    rolling = spec.strategy.type is StrategyType.rolling
    return Origins(
        replicas=own_replicas if spec.active else (),
        replicas_via=("active",),
        autoscaled=tuple(dict.fromkeys(autoscaled)),
        bounds=bounds,
        bounds_via=switch if spec.active and scaled else (),
        budget=tuple(dict.fromkeys(budget)),
        budget_via=switch + ("processing",),
        max_surge=("strategy.maxSurge",)
        if rolling and spec.strategy.max_surge is not None
        else ("environment",),
        max_unavailable=("strategy.maxUnavailable",)
        if rolling and spec.strategy.max_unavailable is not None
        else ("environment",),
    )
