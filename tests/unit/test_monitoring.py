"""The monitoring builders: scrape config, PrometheusRule, dashboard and scrape policy, as data.

The rules are also run through the real promtool (tests/monitoring/test_rules.py); here the
shapes, names, thresholds and the provenance of the values are held exactly.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from servestack.config.defaults import effective
from servestack.config.errors import ConfigError
from servestack.config.models import Monitoring
from servestack.config.validation import parse_stack
from servestack.manifests import model, monitoring
from servestack.manifests.render import Key, render_stack
from servestack.manifests.sample import sample_stack
from tests.unit.specs import deployment, deployment_raw, stack_raw

CANARY = {"type": "canary", "weight": 10, "canaryVersion": "v3", "canaryImage": "r.io/m:3"}
QUEUE = {"kind": "kafka", "name": "jobs", "connectionSecret": "kafka-conn"}


def kinds(spec: Any) -> list[tuple[str, str]]:
    return [(m["kind"], m["metadata"]["name"]) for m in model.plan(spec).monitoring]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, []),
        ({"environment": "staging"}, []),
        (
            {"environment": "production"},
            [
                ("ServiceMonitor", "bert"),
                ("PrometheusRule", "bert"),
                ("ConfigMap", "bert-dashboard"),
                ("NetworkPolicy", "bert-metrics"),
            ],
        ),
        ({"environment": "production", "monitoring": {"enabled": False}}, []),
        (
            {"processing": "async", "queue": QUEUE, "monitoring": {}},
            [
                ("PodMonitor", "bert"),
                ("PrometheusRule", "bert"),
                ("ConfigMap", "bert-dashboard"),
                ("NetworkPolicy", "bert-metrics"),
            ],
        ),
    ],
)
def test_which_resources_exist(overrides: dict[str, Any], expected: list[Any]) -> None:
    assert kinds(deployment(**overrides)) == expected


def test_service_monitor_scrapes_the_service_port_and_labels_the_track() -> None:
    spec = deployment(environment="production")
    sm = monitoring.scrape_monitor(spec, Monitoring())
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["spec"] == {
        "selector": {"matchLabels": {"app.kubernetes.io/name": "bert"}},
        "namespaceSelector": {"matchNames": ["models"]},
        "endpoints": [
            {
                "port": "http",
                "path": "/metrics",
                "interval": "30s",
                "scheme": "http",
                "relabelings": [
                    {
                        "sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
                        "targetLabel": "model_deployment",
                    },
                    {
                        "sourceLabels": ["__meta_kubernetes_pod_label_servestack_io_track"],
                        "targetLabel": "track",
                    },
                ],
            }
        ],
    }


def test_pod_monitor_for_async_workers_with_an_explicit_port() -> None:
    spec = deployment(processing="async", queue=QUEUE)
    mon = Monitoring.model_validate({"scrape": {"port": 9100, "intervalSeconds": 15}})
    pm = monitoring.scrape_monitor(spec, mon)
    assert pm["kind"] == "PodMonitor"
    (endpoint,) = pm["spec"]["podMetricsEndpoints"]
    assert (endpoint["portNumber"], endpoint["interval"]) == (9100, "15s")
    assert "port" not in endpoint and "endpoints" not in pm["spec"]
    policy = monitoring.scrape_policy(spec, mon)
    assert policy["spec"]["ingress"] == [
        {
            "from": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                    }
                }
            ],
            "ports": [{"port": 9100, "protocol": "TCP"}],
        }
    ]


def test_scrape_policy_admits_the_configured_namespace_on_the_model_port() -> None:
    spec = deployment(port=9000)
    policy = monitoring.scrape_policy(spec, Monitoring(namespace="observability"))
    assert policy["metadata"]["name"] == "bert-metrics"
    assert policy["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "bert"}}
    assert policy["spec"]["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}
    ]
    assert policy["spec"]["ingress"][0]["ports"] == [{"port": 9000, "protocol": "TCP"}]


def _rules(spec: Any, mon: Monitoring) -> dict[str, dict[str, Any]]:
    groups = monitoring.rule_groups(spec, mon)
    return {r.get("record") or r["alert"]: r for g in groups for r in g["rules"]}


def test_recording_rules_per_track() -> None:
    rules = _rules(deployment(namespace="models"), Monitoring())
    sel = 'namespace="models",model_deployment="bert",route="/predict"'
    by = "namespace, model_deployment, track"
    assert rules["model_deployment_track:requests:rate5m"]["expr"] == (
        f"sum by ({by}) (rate(model_requests_total{{{sel}}}[5m]))"
    )
    assert rules["model_deployment_track:request_errors:ratio_rate5m"]["expr"] == (
        f'sum by ({by}) (rate(model_requests_total{{{sel},status=~"5.."}}[5m]))'
        f" / sum by ({by}) (rate(model_requests_total{{{sel}}}[5m]))"
    )
    for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        assert rules[f"model_deployment_track:request_duration_seconds:{name}_rate5m"]["expr"] == (
            f"histogram_quantile({q}, sum by ({by}, le) "
            f"(rate(model_request_duration_seconds_bucket{{{sel}}}[5m])))"
        )


def test_alert_thresholds_and_severities_come_from_the_slo() -> None:
    mon = Monitoring.model_validate(
        {
            "slo": {"latencyP99Ms": 250, "errorRatePercent": 2, "availabilityPercent": 99},
            "alerts": {"latency": {"severity": "critical"}},
        }
    )
    rules = _rules(deployment(strategy=CANARY), mon)
    rec = 'namespace="models",model_deployment="bert"'
    assert rules["ModelErrorRatioOverSLO"]["expr"] == (
        f"model_deployment_track:request_errors:ratio_rate5m{{{rec}}} > 0.02"
    )
    assert rules["ModelLatencyP99OverSLO"]["expr"] == (
        f"model_deployment_track:request_duration_seconds:p99_rate5m{{{rec}}} > 0.25"
    )
    assert rules["ModelLatencyP99OverSLO"]["labels"] == {"severity": "critical"}
    assert rules["ModelErrorRatioOverSLO"]["labels"] == {"severity": "critical"}
    assert rules["ModelGpuSaturated"]["labels"] == {"severity": "warning"}
    replicas = rules["ModelReplicasUnavailable"]["expr"]
    assert 'deployment=~"bert|bert-canary"' in replicas and replicas.endswith("< 0.99")
    # Canary: more errors than stable by half the SLO's error ratio (2 % -> 0.01) ...
    assert "+ 0.01)" in rules["ModelCanaryWorseThanStable"]["expr"]
    # ... or a p99 slower than stable's by more than 20 % of the SLO's (250 ms -> 0.05 s).
    assert "+ 0.05)" in rules["ModelCanaryWorseThanStable"]["expr"]


@pytest.mark.parametrize(
    ("strategy", "alerts", "expected"),
    [
        (
            {},
            {},
            [
                "ModelErrorRatioOverSLO",
                "ModelLatencyP99OverSLO",
                "ModelReplicasUnavailable",
                "ModelGpuSaturated",
            ],
        ),
        (
            CANARY,
            {},
            [
                "ModelErrorRatioOverSLO",
                "ModelLatencyP99OverSLO",
                "ModelReplicasUnavailable",
                "ModelGpuSaturated",
                "ModelCanaryWorseThanStable",
            ],
        ),
        (
            CANARY,
            {"latency": {"enabled": False}, "canaryWorse": {"enabled": False}},
            ["ModelErrorRatioOverSLO", "ModelReplicasUnavailable", "ModelGpuSaturated"],
        ),
    ],
)
def test_alert_toggles(
    strategy: dict[str, Any], alerts: dict[str, Any], expected: list[str]
) -> None:
    spec = deployment(strategy=strategy) if strategy else deployment()
    mon = Monitoring.model_validate({"alerts": alerts})
    (_, group) = monitoring.rule_groups(spec, mon)
    assert [r["alert"] for r in group["rules"]] == expected


def test_blue_green_replicas_alert_watches_the_versioned_deployment() -> None:
    spec = deployment(strategy={"type": "blue_green"})
    expr = _rules(spec, Monitoring())["ModelReplicasUnavailable"]["expr"]
    assert f'deployment=~"{model.naming.workload_name(spec)}"' in expr


def test_metric_names_are_configurable() -> None:
    mon = Monitoring.model_validate(
        {
            "metrics": {
                "requests": "http_requests_total",
                "requestDuration": "http_request_duration_seconds",
                "statusLabel": "code",
                "routeLabel": "handler",
                "route": "/v1/predict",
            }
        }
    )
    rules = _rules(deployment(), mon)
    errors = rules["model_deployment_track:request_errors:ratio_rate5m"]["expr"]
    assert (
        'http_requests_total{namespace="models",model_deployment="bert",handler="/v1/predict",code=~"5.."}'
        in errors
    )
    p99 = rules["model_deployment_track:request_duration_seconds:p99_rate5m"]["expr"]
    assert "http_request_duration_seconds_bucket{" in p99


def test_dashboard_has_a_panel_per_metric_and_the_sidecar_label() -> None:
    cm = monitoring.dashboard(deployment(), Monitoring())
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert list(cm["data"]) == ["bert.json"]
    board = json.loads(cm["data"]["bert.json"])
    assert [p["title"] for p in board["panels"]] == [
        "Request rate",
        "Latency p50 / p95 / p99",
        "Error ratio",
        "CPU (cores)",
        "Memory (working set)",
        "GPU utilisation",
        "Replicas available",
    ]
    latency = board["panels"][1]["targets"]
    assert [t["expr"].split("{")[0] for t in latency] == [
        "model_deployment_track:request_duration_seconds:p50_rate5m",
        "model_deployment_track:request_duration_seconds:p95_rate5m",
        "model_deployment_track:request_duration_seconds:p99_rate5m",
    ]
    # The panels read exactly the recorded series the PrometheusRule writes.
    recorded = {r["record"] for r in monitoring.rule_groups(deployment(), Monitoring())[0]["rules"]}
    used = {t["expr"].split("{")[0] for p in board["panels"][:3] for t in p["targets"]}
    assert used <= recorded


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            {"slo": {"errorRatePercent": 0}},
            "deployments.bert.monitoring.slo.errorRatePercent: 0 is not allowed: input should be "
            "greater than 0",
        ),
        (
            {"scrape": {"path": "metrics"}},
            "deployments.bert.monitoring.scrape.path: 'metrics' must start with '/'",
        ),
        (
            {"metrics": {"requests": "bad-name"}},
            "deployments.bert.monitoring.metrics.requests: 'bad-name' is not a Prometheus "
            "metric name",
        ),
        (
            {"alerts": {"latency": {"severity": "page"}}},
            "deployments.bert.monitoring.alerts.latency.severity:",
        ),
        ({"scrapeInterval": 5}, "deployments.bert.monitoring: unknown key 'scrapeInterval'"),
    ],
)
def test_bad_monitoring_config_names_the_field(block: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_stack(stack_raw(deployment_raw(monitoring=block)))
    assert message in str(err.value)


def test_provenance_names_the_fields_behind_the_values() -> None:
    rendered = render_stack(sample_stack("karpenter"))
    rule = rendered.resources[Key("kubernetes:monitoring.coreos.com/v1:PrometheusRule", "chat")]
    latency = ("spec", "groups", 1, "rules", 1, "expr")
    assert rule.manifest["spec"]["groups"][1]["rules"][1]["alert"] == "ModelLatencyP99OverSLO"
    assert "deployments.chat.monitoring.slo.latencyP99Ms" in rule.cause(latency, "update").direct
    policy = rendered.resources[
        Key("kubernetes:networking.k8s.io/v1:NetworkPolicy", "chat-metrics")
    ]
    port = ("spec", "ingress", 0, "ports", 0, "port")
    assert policy.manifest["spec"]["ingress"][0]["ports"][0]["port"] == 9100
    assert rule.cause((), "add").direct >= {"deployments.chat.monitoring.enabled"}
    assert policy.cause(port, "update").direct == {"deployments.chat.monitoring.scrape.port"}


def test_env_default_monitoring_is_traced_to_the_environment() -> None:
    config = parse_stack(stack_raw(deployment_raw(), environment="production"))
    rendered = render_stack(config)
    rule = rendered.resources[Key("kubernetes:monitoring.coreos.com/v1:PrometheusRule", "bert")]
    assert {"environment", "deployments.bert.monitoring.enabled"} <= rule.cause((), "add").direct
    assert effective(config.deployments[0]).monitoring == Monitoring()
