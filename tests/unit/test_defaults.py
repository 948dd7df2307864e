"""Per-environment defaults: the table in components/defaults.py is public contract."""

from __future__ import annotations

from typing import Any

import pytest

from servestack import Autoscaling, Environment, HealthCheck, LoadBalancerSpec
from servestack.config.defaults import ENV_DEFAULTS, Effective, EnvDefaults, effective
from servestack.config.models import Alert, Monitoring, Severity, Slo, Spread
from tests.unit.specs import deployment

QUEUE = {"kind": "rabbitmq", "name": "jobs", "connectionSecret": "rabbit-conn"}
PROD_AUTOSCALING = Autoscaling(
    enabled=True, min_replicas=2, max_replicas=10, target_cpu_utilization=70
)


def test_env_defaults_table() -> None:
    assert dict(ENV_DEFAULTS) == {
        Environment.development: EnvDefaults(1, None, False, 1, 1),
        Environment.staging: EnvDefaults(2, None, True, "25%", 0),
        Environment.production: EnvDefaults(
            2, PROD_AUTOSCALING, True, 1, 0, Monitoring(), node_spread=Spread.prefer
        ),
    }
    # Production prefers spreading replicas over nodes; zones are the team's to choose.
    assert {(d.node_spread, d.zone_spread) for d in ENV_DEFAULTS.values()} == {
        (Spread.off, Spread.off),
        (Spread.prefer, Spread.off),
    }
    # Development and staging: monitoring off.
    assert ENV_DEFAULTS[Environment.development].monitoring == Monitoring(enabled=False)
    assert ENV_DEFAULTS[Environment.staging].monitoring == Monitoring(enabled=False)


def test_production_monitors_with_an_slo() -> None:
    mon = effective(deployment(environment="production")).monitoring
    assert mon is not None
    assert mon.slo == Slo(latency_p99_ms=500, error_rate_percent=1.0, availability_percent=99.5)
    assert mon.alerts.error_rate == Alert(enabled=True, severity=Severity.critical)
    assert mon.metrics.requests == "model_requests_total"
    assert mon.metrics.request_duration == "model_request_duration_seconds"
    assert (mon.scrape.path, mon.scrape.interval_seconds, mon.namespace) == (
        "/metrics",
        30,
        "monitoring",
    )


@pytest.mark.parametrize(
    ("environment", "block", "on"),
    [
        ("development", None, False),
        ("staging", None, False),
        ("production", None, True),
        ("development", {}, True),
        ("production", {"enabled": False}, False),
    ],
)
def test_a_monitoring_block_overrides_the_environment(
    environment: str, block: dict[str, Any] | None, on: bool
) -> None:
    extra = {} if block is None else {"monitoring": block}
    assert (effective(deployment(environment=environment, **extra)).monitoring is not None) is on


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        (
            "development",
            Effective(
                replicas=1,
                autoscaling=None,
                load_balancer=LoadBalancerSpec(),
                disruption_budget=False,
                max_surge=1,
                max_unavailable=1,
            ),
        ),
        (
            "staging",
            Effective(
                replicas=2,
                autoscaling=None,
                load_balancer=LoadBalancerSpec(),
                disruption_budget=True,
                max_surge="25%",
                max_unavailable=0,
            ),
        ),
        (
            "production",
            Effective(
                replicas=2,
                autoscaling=PROD_AUTOSCALING,
                load_balancer=LoadBalancerSpec(),
                disruption_budget=True,
                max_surge=1,
                max_unavailable=0,
                monitoring=Monitoring(),
                node_spread=Spread.prefer,
            ),
        ),
    ],
)
def test_omitted_fields_take_environment_defaults(environment: str, expected: Effective) -> None:
    assert effective(deployment(environment=environment)) == expected


@pytest.mark.parametrize(
    ("environment", "overrides", "replicas", "autoscaling", "budget"),
    [
        # A disruption budget needs more than one pod to protect.
        ("staging", {"replicas": 1}, 1, None, False),
        ("staging", {"replicas": 3}, 3, None, True),
        ("development", {"replicas": 3}, 3, None, False),
        ("production", {"autoscaling": {"enabled": False}}, 2, None, True),
        ("production", {"autoscaling": {"enabled": False}, "replicas": 1}, 1, None, False),
        (
            "production",
            {"autoscaling": {"minReplicas": 1, "maxReplicas": 4, "targetCpuUtilization": 70}},
            2,
            Autoscaling(min_replicas=1, max_replicas=4, target_cpu_utilization=70),
            False,
        ),
        (
            "development",
            {"autoscaling": {"minReplicas": 2, "maxReplicas": 4, "targetCpuUtilization": 70}},
            1,
            Autoscaling(min_replicas=2, max_replicas=4, target_cpu_utilization=70),
            False,
        ),
        (
            "staging",
            {"autoscaling": {"minReplicas": 2, "maxReplicas": 4, "targetCpuUtilization": 70}},
            2,
            Autoscaling(min_replicas=2, max_replicas=4, target_cpu_utilization=70),
            True,
        ),
    ],
)
def test_explicit_settings_win(
    environment: str,
    overrides: dict[str, Any],
    replicas: int,
    autoscaling: Autoscaling | None,
    budget: bool,
) -> None:
    eff = effective(deployment(environment=environment, **overrides))
    assert (eff.replicas, eff.autoscaling, eff.disruption_budget, eff.autoscaled) == (
        replicas,
        autoscaling,
        budget,
        autoscaling is not None,
    )


@pytest.mark.parametrize("environment", list(Environment))
@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="defaults"),
        pytest.param({"replicas": 5}, id="replicas"),
        pytest.param(
            {"autoscaling": {"minReplicas": 3, "maxReplicas": 9, "targetCpuUtilization": 70}},
            id="autoscaling",
        ),
        pytest.param({"processing": "async", "queue": QUEUE, "loadBalancer": None}, id="async"),
    ],
)
def test_stopped_deployment_has_no_pods_no_autoscaler_no_budget(
    environment: Environment, overrides: dict[str, Any]
) -> None:
    eff = effective(deployment(environment=environment, active=False, **overrides))
    assert (eff.replicas, eff.autoscaling, eff.disruption_budget, eff.autoscaled) == (
        0,
        None,
        False,
        False,
    )


def test_stopped_sync_deployment_keeps_its_load_balancer() -> None:
    lb = {"algorithm": "ip_hash"}
    eff = effective(deployment(active=False, loadBalancer=lb))
    assert eff.load_balancer == LoadBalancerSpec.model_validate(lb)


@pytest.mark.parametrize(
    ("environment", "overrides", "bounds"),
    [
        # Without autoscaling, KEDA holds queue workers at `replicas` (at least one).
        (
            "development",
            {},
            Autoscaling(min_replicas=1, max_replicas=1, target_cpu_utilization=None),
        ),
        ("staging", {}, Autoscaling(min_replicas=2, max_replicas=2, target_cpu_utilization=None)),
        (
            "development",
            {"replicas": 4},
            Autoscaling(min_replicas=4, max_replicas=4, target_cpu_utilization=None),
        ),
        (
            "development",
            {"replicas": 0},
            Autoscaling(min_replicas=1, max_replicas=1, target_cpu_utilization=None),
        ),
        (
            "development",
            {"autoscaling": {"enabled": False}, "replicas": 3},
            Autoscaling(min_replicas=3, max_replicas=3, target_cpu_utilization=None),
        ),
        # Production's default autoscaler applies to queue workers too.
        ("production", {}, PROD_AUTOSCALING),
        (
            "development",
            {"autoscaling": {"minReplicas": 1, "maxReplicas": 3}},
            Autoscaling(min_replicas=1, max_replicas=3),
        ),
    ],
)
def test_async_workers_are_always_scaled(
    environment: str, overrides: dict[str, Any], bounds: Autoscaling
) -> None:
    eff = effective(
        deployment(environment=environment, processing="async", queue=QUEUE, **overrides)
    )
    assert (eff.autoscaling, eff.load_balancer) == (bounds, None)


def test_sync_load_balancer_is_the_given_one() -> None:
    lb = {"algorithm": "least_connections", "healthCheck": {"path": "/ready"}}
    assert effective(deployment(loadBalancer=lb)).load_balancer == LoadBalancerSpec(
        algorithm="least_connections", health_check=HealthCheck(path="/ready")
    )


@pytest.mark.parametrize(
    ("environment", "strategy", "surge", "unavailable"),
    [
        ("development", {"maxSurge": "50%"}, "50%", 1),
        ("staging", {"maxUnavailable": 1}, "25%", 1),
        ("production", {"maxSurge": 2, "maxUnavailable": "10%"}, 2, "10%"),
        ("production", {"type": "blue_green"}, 1, 0),
    ],
)
def test_rolling_parameters(
    environment: str, strategy: dict[str, Any], surge: int | str, unavailable: int | str
) -> None:
    eff = effective(deployment(environment=environment, strategy=strategy))
    assert (eff.max_surge, eff.max_unavailable) == (surge, unavailable)


@pytest.mark.parametrize(
    ("environment", "spread", "expected"),
    [
        ("production", {}, (Spread.prefer, Spread.off)),
        ("staging", {}, (Spread.off, Spread.off)),
        ("production", {"node": "off"}, (Spread.off, Spread.off)),
        ("development", {"zone": "require"}, (Spread.off, Spread.require)),
        ("production", {"zone": "prefer"}, (Spread.prefer, Spread.prefer)),
    ],
)
def test_topology_spread_keys_left_out_take_the_environment_default(
    environment: str, spread: dict[str, str], expected: tuple[Spread, Spread]
) -> None:
    eff = effective(deployment(environment=environment, topologySpread=spread))
    assert (eff.node_spread, eff.zone_spread) == expected
