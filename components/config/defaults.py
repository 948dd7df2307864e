"""Per-environment defaults, applied where a deployment leaves a field out.

| field (omitted)          | development | staging      | production              |
|--------------------------|-------------|--------------|-------------------------|
| replicas                 | 1           | 2            | 2                       |
| autoscaling              | off         | off          | on: 2..10 at 70 % CPU   |
| PodDisruptionBudget      | never       | if > 1 pod   | if > 1 pod              |
| rolling maxSurge         | 1           | 25%          | 1                       |
| rolling maxUnavailable   | 1           | 0            | 0                       |
| loadBalancer             | on          | on           | on                      |
| monitoring               | off         | off          | on (default SLO)        |
| topologySpread.node      | off         | off          | prefer                  |
| topologySpread.zone      | off         | off          | off                     |

Production prefers (ScheduleAnyway) rather than requires spreading over nodes: with GPUs
scarce, a surge pod that would unbalance the spread still starts instead of staying Pending.

The default SLO (production): p99 latency 500 ms, 1 % errors, 99.5 % of replicas available.

The table is part of the public contract: changing a default changes running systems.
"""

from __future__ import annotations

from dataclasses import dataclass

from servestack.config.models import (
    Autoscaling,
    DeploymentSpec,
    Environment,
    LoadBalancerSpec,
    Monitoring,
    Processing,
    Spread,
    StrategyType,
)

MONITORING_OFF = Monitoring(enabled=False)


@dataclass(frozen=True)
class EnvDefaults:
    replicas: int
    autoscaling: Autoscaling | None
    disruption_budget: bool
    max_surge: int | str
    max_unavailable: int | str
    monitoring: Monitoring = MONITORING_OFF
    node_spread: Spread = Spread.off
    zone_spread: Spread = Spread.off


ENV_DEFAULTS: dict[Environment, EnvDefaults] = {
    Environment.development: EnvDefaults(1, None, False, 1, 1),
    Environment.staging: EnvDefaults(2, None, True, "25%", 0),
    Environment.production: EnvDefaults(
        2,
        Autoscaling(enabled=True, min_replicas=2, max_replicas=10, target_cpu_utilization=70),
        True,
        1,
        0,
        Monitoring(),
        node_spread=Spread.prefer,
    ),
}


@dataclass(frozen=True)
class Effective:
    """A deployment's settings after defaults: what the builders render."""

    replicas: int
    autoscaling: Autoscaling | None
    load_balancer: LoadBalancerSpec | None
    disruption_budget: bool
    max_surge: int | str
    max_unavailable: int | str
    #: None when monitoring is off.
    monitoring: Monitoring | None = None
    node_spread: Spread = Spread.off
    zone_spread: Spread = Spread.off

    @property
    def autoscaled(self) -> bool:
        return self.autoscaling is not None


def effective(spec: DeploymentSpec) -> Effective:
    d = ENV_DEFAULTS[spec.environment]
    autoscaling = spec.autoscaling if spec.autoscaling is not None else d.autoscaling
    if autoscaling is not None and not autoscaling.enabled:
        autoscaling = None
    replicas = spec.replicas if spec.replicas is not None else d.replicas
    if autoscaling is None and spec.processing is Processing.async_:
        # Queue workers are always scaled by KEDA; without bounds they stay at `replicas`
        # (at least one: a worker pool of zero would never drain its queue).
        autoscaling = Autoscaling(
            min_replicas=max(replicas, 1),
            max_replicas=max(replicas, 1),
            target_cpu_utilization=None,
        )
    if not spec.active:
        autoscaling = None
    lb: LoadBalancerSpec | None = None
    if spec.processing is Processing.sync:
        lb = spec.load_balancer if spec.load_balancer is not None else LoadBalancerSpec()
    most = autoscaling.min_replicas if autoscaling else replicas
    strategy = spec.strategy
    rolling = strategy.type is StrategyType.rolling
    monitoring = spec.monitoring if spec.monitoring is not None else d.monitoring
    spread = spec.topology_spread
    return Effective(
        node_spread=spread.node if spread.node is not None else d.node_spread,
        zone_spread=spread.zone if spread.zone is not None else d.zone_spread,
        monitoring=monitoring if monitoring.enabled else None,
        replicas=replicas if spec.active else 0,
        autoscaling=autoscaling,
        load_balancer=lb,
        disruption_budget=spec.active and d.disruption_budget and most > 1,
        max_surge=strategy.max_surge if rolling and strategy.max_surge is not None else d.max_surge,
        max_unavailable=strategy.max_unavailable
        if rolling and strategy.max_unavailable is not None
        else d.max_unavailable,
    )
