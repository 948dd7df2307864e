"""Pure builders for a model's monitoring: scrape config, SLO rules, dashboard, scrape policy.

prometheus-operator CRDs (ServiceMonitor for sync models, PodMonitor for async workers,
PrometheusRule), a Grafana dashboard ConfigMap for the sidecar, and a NetworkPolicy that
admits the monitoring namespace on the metrics port. Every PromQL text comes from
:class:`Queries`, which the promotion gate uses too, so rules, dashboard and gate agree.

Scraped series carry two target labels set by relabelling: ``model_deployment`` (the
deployment's name) and ``track`` (``stable`` or ``canary``), next to the usual ``namespace``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from servestack.config.models import DeploymentSpec, Monitoring, Processing, StrategyType
from servestack.contract import labels
from servestack.manifests import naming, workload
from servestack.manifests.provenance import opt, src

Manifest = dict[str, Any]

API_VERSION = "monitoring.coreos.com/v1"
#: Label the Grafana sidecar (kube-prometheus-stack's default) discovers dashboards by.
DASHBOARD_LABEL = "grafana_dashboard"
#: Target labels every scraped series of a deployment carries.
DEPLOYMENT_LABEL = "model_deployment"
TRACK_LABEL = "track"
#: Rate window of the recording rules.
WINDOW = "5m"
QUANTILES = (0.5, 0.95, 0.99)
#: How long a condition must hold before its alert fires.
FOR = {
    "errorRate": "5m",
    "latency": "5m",
    "replicasUnavailable": "10m",
    "gpuSaturation": "15m",
    "canaryWorse": "5m",
}
#: GPU utilisation (DCGM_FI_DEV_GPU_UTIL, percent) above which a GPU counts as saturated.
GPU_SATURATION_PERCENT = 90
#: The canary is worse than stable when its error ratio exceeds stable's by more than this
#: share of the SLO's error ratio, or its p99 exceeds stable's by more than this share of the
#: SLO's p99. (Margins, not factors: adjacent latency buckets differ by 1.3x to 2.5x, so a p99
#: ratio would refuse a canary one bucket slower however fast both are.)
CANARY_ERROR_MARGIN = 0.5
CANARY_LATENCY_MARGIN = 0.2


def _prom_label(key: str) -> str:
    """A Kubernetes label key as Prometheus' discovery meta label spells it."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", key)


def _q(value: str) -> str:
    return json.dumps(value)  # a PromQL string literal ("..." with JSON escapes)


@dataclass(frozen=True)
class Queries:
    """Every PromQL expression of one deployment's monitoring."""

    namespace: str
    name: str
    mon: Monitoring
    #: The ``track`` label (the pods' slot) of the stable track and of the canary's.
    slots: tuple[str, str] = (naming.STABLE, naming.CANARY)

    @classmethod
    def of(cls, spec: DeploymentSpec, mon: Monitoring) -> Queries:
        slots = (
            naming.slot(spec, naming.STABLE),
            naming.slot(spec, naming.CANARY),
        )
        return cls(spec.namespace, spec.name, mon, slots)

    # -- selectors ------------------------------------------------------------------------
    def selector(self, *extra: str) -> str:
        m = self.mon.metrics
        parts = [
            f"namespace={_q(self.namespace)}",
            f"{DEPLOYMENT_LABEL}={_q(self.name)}",
            f"{m.route_label}={_q(m.route)}",
            *extra,
        ]
        return "{" + ",".join(parts) + "}"

    @property
    def by(self) -> str:
        return f"namespace, {DEPLOYMENT_LABEL}, {TRACK_LABEL}"

    # -- raw expressions (what the recording rules record) --------------------------------
    def request_rate(self, window: str = WINDOW, *extra: str) -> str:
        sel = self.selector(*extra)
        return f"sum by ({self.by}) (rate({self.mon.metrics.requests}{sel}[{window}]))"

    def error_ratio(self, window: str = WINDOW, *extra: str) -> str:
        m = self.mon.metrics
        errors = self.selector(*extra, f'{m.status_label}=~"5.."')
        total = self.selector(*extra)
        return (
            f"sum by ({self.by}) (rate({m.requests}{errors}[{window}]))"
            f" / sum by ({self.by}) (rate({m.requests}{total}[{window}]))"
        )

    def quantile(self, q: float, window: str = WINDOW, *extra: str) -> str:
        sel = self.selector(*extra)
        bucket = f"{self.mon.metrics.request_duration}_bucket"
        return f"histogram_quantile({q}, sum by ({self.by}, le) (rate({bucket}{sel}[{window}])))"

    # -- recorded series ------------------------------------------------------------------
    @staticmethod
    def record(what: str) -> str:
        return f"{DEPLOYMENT_LABEL}_{TRACK_LABEL}:{what}"

    @staticmethod
    def quantile_record(q: float) -> str:
        return Queries.record(f"request_duration_seconds:p{round(q * 100)}_rate{WINDOW}")

    def recorded(self, series: str, track: str | None = None) -> str:
        parts = [f"namespace={_q(self.namespace)}", f"{DEPLOYMENT_LABEL}={_q(self.name)}"]
        if track is not None:
            parts.append(f"{TRACK_LABEL}={_q(track)}")
        return series + "{" + ",".join(parts) + "}"

    # -- thresholds -----------------------------------------------------------------------
    @property
    def max_error_ratio(self) -> float:
        return self.mon.slo.error_rate_percent / 100

    @property
    def max_p99_seconds(self) -> float:
        return self.mon.slo.latency_p99_ms / 1000

    @property
    def canary_error_margin(self) -> float:
        return self.max_error_ratio * CANARY_ERROR_MARGIN

    @property
    def canary_latency_margin_seconds(self) -> float:
        return self.max_p99_seconds * CANARY_LATENCY_MARGIN


RATE = Queries.record(f"requests:rate{WINDOW}")
ERRORS = Queries.record(f"request_errors:ratio_rate{WINDOW}")


def _num(x: float) -> str:
    return repr(round(x, 9))


def tracks(spec: DeploymentSpec) -> tuple[str, ...]:
    if spec.strategy.type is StrategyType.canary:
        return (naming.STABLE, naming.CANARY)
    return (naming.STABLE,)


class _Fields:
    """Field names relative to the deployment, when the monitoring block is the user's."""

    def __init__(self, spec: DeploymentSpec) -> None:
        self.own = spec.monitoring is not None

    def __call__(self, *keys: str) -> tuple[str, ...]:
        return tuple(f"monitoring.{k}" for k in keys) if self.own else ()

    @property
    def presence(self) -> tuple[str, ...]:
        """Fields deciding whether the monitoring resources exist."""
        return ("monitoring.enabled",) if self.own else ("monitoring.enabled", "environment")


_SELECTOR_KEYS = ("metrics.routeLabel", "metrics.route")


def _relabelings() -> list[Manifest]:
    return [
        {
            "sourceLabels": [f"__meta_kubernetes_pod_label_{_prom_label(labels.NAME)}"],
            "targetLabel": DEPLOYMENT_LABEL,
        },
        {
            "sourceLabels": [f"__meta_kubernetes_pod_label_{_prom_label(labels.TRACK)}"],
            "targetLabel": TRACK_LABEL,
        },
    ]


def scrape_monitor(spec: DeploymentSpec, mon: Monitoring) -> Manifest:
    """ServiceMonitor (sync: through the Service) or PodMonitor (async workers: no Service)."""
    f = _Fields(spec)
    sync = spec.processing is Processing.sync
    endpoint: Manifest = {
        "path": src(mon.scrape.path, *f("scrape.path")),
        "interval": src(f"{mon.scrape.interval_seconds}s", *f("scrape.intervalSeconds")),
        "scheme": "http",
        "relabelings": _relabelings(),
    }
    if mon.scrape.port is None:
        # The Service's (sync) or the container's (async) port name.
        endpoint["port"] = opt("http", *f("scrape.port"))
    else:
        key = "targetPort" if sync else "portNumber"
        endpoint[key] = opt(mon.scrape.port, *f("scrape.port"))
    body: Manifest = {
        "selector": {"matchLabels": {labels.NAME: src(spec.name, "name")}},
        "namespaceSelector": {"matchNames": [src(spec.namespace, "namespace")]},
    }
    if sync:
        body["endpoints"] = [endpoint]
    else:
        body["podMetricsEndpoints"] = [endpoint]
    return {
        "apiVersion": API_VERSION,
        "kind": "ServiceMonitor" if sync else "PodMonitor",
        "metadata": workload.metadata(spec, spec.name),
        "spec": body,
    }


#: The alerts in the order of the rule group (config keys under ``monitoring.alerts``).
ALERT_KEYS = ("errorRate", "latency", "replicasUnavailable", "gpuSaturation", "canaryWorse")


def _alert(
    name: str,
    expr: str,
    expr_from: tuple[str, ...],
    key: str,
    mon: Monitoring,
    f: _Fields,
    summary: str,
) -> Manifest:
    """One alerting rule. Which alert sits at a position of the list depends on which of
    those before it (and this one) are enabled: those toggles are ``via`` of its values."""
    alert = getattr(mon.alerts, re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower())
    shift = f(*(f"alerts.{k}.enabled" for k in ALERT_KEYS[: ALERT_KEYS.index(key) + 1]))
    return opt(
        {
            "alert": name,
            "expr": src(expr, *expr_from, via=shift),
            "for": FOR[key],
            "labels": {
                "severity": src(alert.severity.value, *f(f"alerts.{key}.severity"), via=shift)
            },
            "annotations": {"summary": summary},
        },
        *f(f"alerts.{key}.enabled"),
        via=shift,
    )


def rule_groups(spec: DeploymentSpec, mon: Monitoring) -> list[Manifest]:
    """The rule groups of the PrometheusRule (what `promtool check rules` reads)."""
    f = _Fields(spec)
    q = Queries.of(spec, mon)
    m = ("name", "namespace", *f(*_SELECTOR_KEYS))
    records: list[Manifest] = [
        {"record": RATE, "expr": src(q.request_rate(), *m, *f("metrics.requests"))},
        {
            "record": ERRORS,
            "expr": src(q.error_ratio(), *m, *f("metrics.requests", "metrics.statusLabel")),
        },
        *(
            {
                "record": Queries.quantile_record(quant),
                "expr": src(q.quantile(quant), *m, *f("metrics.requestDuration")),
            }
            for quant in QUANTILES
        ),
    ]
    p99 = Queries.quantile_record(0.99)
    ns = ("name", "namespace")
    alerts: list[Manifest] = []
    if mon.alerts.error_rate.enabled:
        expr = f"{q.recorded(ERRORS)} > {_num(q.max_error_ratio)}"
        alerts.append(
            _alert(
                "ModelErrorRatioOverSLO",
                expr,
                (*ns, *f("slo.errorRatePercent")),
                "errorRate",
                mon,
                f,
                "{{ $labels.model_deployment }} ({{ $labels.track }}) answers "
                "{{ $value | humanizePercentage }} errors",
            )
        )
    if mon.alerts.latency.enabled:
        expr = f"{q.recorded(p99)} > {_num(q.max_p99_seconds)}"
        alerts.append(
            _alert(
                "ModelLatencyP99OverSLO",
                expr,
                (*ns, *f("slo.latencyP99Ms")),
                "latency",
                mon,
                f,
                "{{ $labels.model_deployment }} ({{ $labels.track }}) p99 is "
                "{{ $value | humanizeDuration }}",
            )
        )
    if mon.alerts.replicas_unavailable.enabled:
        workloads = [naming.workload_name(spec)]
        if spec.strategy.type is StrategyType.canary:
            workloads.append(naming.deployment_name(spec, naming.CANARY))
        sel = f"namespace={_q(spec.namespace)},deployment=~{_q('|'.join(workloads))}"
        expr = (
            f"sum by (namespace, deployment) (kube_deployment_status_replicas_available{{{sel}}})"
            f" / sum by (namespace, deployment) (kube_deployment_spec_replicas{{{sel}}})"
            f" < {_num(mon.slo.availability_percent / 100)}"
        )
        because = (*naming.workload_fields(spec), "namespace", *f("slo.availabilityPercent"))
        alerts.append(
            _alert(
                "ModelReplicasUnavailable",
                expr,
                because,
                "replicasUnavailable",
                mon,
                f,
                "{{ $labels.deployment }} has {{ $value | humanizePercentage }} "
                "of its replicas available",
            )
        )
    if mon.alerts.gpu_saturation.enabled:
        sel = f"namespace={_q(spec.namespace)},pod=~{_q(spec.name + '-.*')}"
        expr = f"avg by (namespace, pod) (DCGM_FI_DEV_GPU_UTIL{{{sel}}}) > {GPU_SATURATION_PERCENT}"
        alerts.append(
            _alert(
                "ModelGpuSaturated",
                expr,
                ns,
                "gpuSaturation",
                mon,
                f,
                "{{ $labels.pod }} GPUs are {{ $value }} % busy",
            )
        )
    if mon.alerts.canary_worse.enabled and spec.strategy.type is StrategyType.canary:
        expr = canary_worse_expr(q)
        alerts.append(
            opt(
                _alert(
                    "ModelCanaryWorseThanStable",
                    expr,
                    # stableSlot: which slot's series are the stable track's.
                    (*ns, *f("slo.errorRatePercent", "slo.latencyP99Ms"), "stableSlot"),
                    "canaryWorse",
                    mon,
                    f,
                    "the canary of {{ $labels.model_deployment }} is worse than stable",
                ),
                "strategy.type",
            )
        )
    return [
        {"name": f"{spec.name}.recording", "rules": records},
        {"name": f"{spec.name}.alerts", "rules": alerts},
    ]


def canary_worse_expr(q: Queries) -> str:
    """Canary error ratio above stable's plus its margin, or its p99 above stable's plus its
    margin (the promotion gate applies the same two tests)."""
    p99 = Queries.quantile_record(0.99)
    stable, canary = q.slots
    canary_err = f"max without ({TRACK_LABEL}) ({q.recorded(ERRORS, canary)})"
    stable_err = f"max without ({TRACK_LABEL}) ({q.recorded(ERRORS, stable)})"
    canary_p99 = f"max without ({TRACK_LABEL}) ({q.recorded(p99, canary)})"
    stable_p99 = f"max without ({TRACK_LABEL}) ({q.recorded(p99, stable)})"
    return (
        f"({canary_err} > {stable_err} + {_num(q.canary_error_margin)})"
        f" or ({canary_p99} > {stable_p99} + {_num(q.canary_latency_margin_seconds)})"
    )


def prometheus_rule(spec: DeploymentSpec, mon: Monitoring) -> Manifest:
    return {
        "apiVersion": API_VERSION,
        "kind": "PrometheusRule",
        "metadata": workload.metadata(spec, spec.name),
        "spec": {"groups": rule_groups(spec, mon)},
    }


def dashboard_panels(spec: DeploymentSpec, mon: Monitoring) -> list[tuple[str, str, list[str]]]:
    """(title, unit, PromQL expressions) of each dashboard panel."""
    q = Queries.of(spec, mon)
    pods = f'namespace={_q(spec.namespace)},pod=~{_q(spec.name + "-.*")},container!=""'
    gpus = f"namespace={_q(spec.namespace)},pod=~{_q(spec.name + '-.*')}"
    workloads = f"namespace={_q(spec.namespace)},deployment=~{_q(spec.name + '(-.*)?')}"
    return [
        ("Request rate", "reqps", [q.recorded(RATE)]),
        (
            "Latency p50 / p95 / p99",
            "s",
            [q.recorded(Queries.quantile_record(x)) for x in QUANTILES],
        ),
        ("Error ratio", "percentunit", [q.recorded(ERRORS)]),
        (
            "CPU (cores)",
            "none",
            [f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{pods}}}[{WINDOW}]))"],
        ),
        (
            "Memory (working set)",
            "bytes",
            [f"sum by (pod) (container_memory_working_set_bytes{{{pods}}})"],
        ),
        (
            "GPU utilisation",
            "percent",
            [f"avg by (pod) (DCGM_FI_DEV_GPU_UTIL{{{gpus}}})"],
        ),
        (
            "Replicas available",
            "none",
            [f"sum by (deployment) (kube_deployment_status_replicas_available{{{workloads}}})"],
        ),
    ]


def dashboard(spec: DeploymentSpec, mon: Monitoring) -> Manifest:
    """A Grafana dashboard (JSON model) for the sidecar, one panel per metric."""
    panels = []
    for i, (title, unit, exprs) in enumerate(dashboard_panels(spec, mon)):
        panels.append(
            {
                "id": i + 1,
                "type": "timeseries",
                "title": title,
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [
                    {"refId": chr(ord("A") + j), "expr": e, "legendFormat": "__auto"}
                    for j, e in enumerate(exprs)
                ],
            }
        )
    board = {
        "uid": f"servestack-{spec.namespace}-{spec.name}"[:40],
        "title": f"servestack / {spec.namespace} / {spec.name}",
        "tags": ["servestack"],
        "schemaVersion": 39,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "panels": panels,
    }
    text = json.dumps(board, indent=2, sort_keys=True)
    meta = workload.metadata(spec, naming.child_name(spec.name, naming.DASHBOARD))
    meta["labels"] = {**meta["labels"], DASHBOARD_LABEL: "1"}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {f"{spec.name}.json": src(text, "name", "namespace")},
    }


def scrape_policy(spec: DeploymentSpec, mon: Monitoring) -> Manifest:
    """Admit the monitoring namespace to the metrics port only."""
    f = _Fields(spec)
    port = mon.scrape.port if mon.scrape.port is not None else spec.port
    port_from = f("scrape.port") if mon.scrape.port is not None else ("port", *f("scrape.port"))
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": workload.metadata(spec, naming.child_name(spec.name, naming.METRICS_POLICY)),
        "spec": {
            "podSelector": {"matchLabels": {labels.NAME: src(spec.name, "name")}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {
                                    labels.NAMESPACE_NAME: src(mon.namespace, *f("namespace"))
                                }
                            }
                        }
                    ],
                    "ports": [{"port": src(port, *port_from), "protocol": "TCP"}],
                }
            ],
        },
    }


def manifests(spec: DeploymentSpec, mon: Monitoring) -> list[Manifest]:
    """Every monitoring resource of one deployment, in the order the component registers
    them, each marked with the fields that decide whether it exists."""
    f = _Fields(spec)
    because = ("name", *f.presence)
    return [
        src(scrape_monitor(spec, mon), when=(*because, "processing")),
        src(prometheus_rule(spec, mon), when=because),
        src(dashboard(spec, mon), when=because),
        src(scrape_policy(spec, mon), when=because),
    ]
