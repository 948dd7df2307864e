"""Every Prometheus metric the model server exposes: names, labels and buckets live here only.

servestack's monitoring defaults (SLO queries, alert rules) refer to these names; change them
together.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

# -- names (the exposed series get _bucket/_sum/_count and _total suffixes as usual) --------
REQUEST_DURATION = "model_request_duration_seconds"  # histogram
REQUESTS = "model_requests"  # counter, exposed as model_requests_total
REQUESTS_TOTAL = REQUESTS + "_total"
LOADED = "model_loaded"  # gauge: 1 once the model is loaded and /ready answers 200
INFLIGHT = "model_inflight_requests"  # gauge: /predict requests being handled
INFO = "model"  # info, exposed as model_info{model_id,model_version} 1
INFO_SERIES = INFO + "_info"

# -- labels ---------------------------------------------------------------------------------
ROUTE = "route"  # one of ROUTES, or OTHER_ROUTE for any other path (bounded cardinality)
STATUS = "status"  # HTTP status code as text: "200", "422", "500", "503", ...
REQUEST_LABELS = (ROUTE, STATUS)

PREDICT_ROUTE = "/predict"
ROUTES = (PREDICT_ROUTE, "/health", "/ready", "/metrics")
OTHER_ROUTE = "other"

# Latency buckets (seconds, upper bounds; +Inf is added). Dense enough between 5 ms and
# 1 s for p50/p95/p99 estimates with histogram_quantile; an SLO threshold should be one of
# these bounds so that "fraction of requests under the threshold" is exact.
LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    0.75,
    1.0,
    2.5,
)

# The text format, version 0.0.4: what /metrics serves.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# No *_created series next to every counter and histogram.
disable_created_metrics()

# A registry of our own (not the process-global default): the server's series plus the
# usual process_*/python_* collectors.
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

request_duration = Histogram(
    REQUEST_DURATION,
    "Time from the server receiving a request to its response being sent, by route and status.",
    REQUEST_LABELS,
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
requests = Counter(
    REQUESTS,
    "Requests answered, by route and HTTP status code.",
    REQUEST_LABELS,
    registry=REGISTRY,
)
loaded = Gauge(LOADED, "1 once the model is loaded and the server is ready.", registry=REGISTRY)
inflight = Gauge(INFLIGHT, "/predict requests being handled right now.", registry=REGISTRY)
info = Info(INFO, "The model this server serves.", registry=REGISTRY)

# Series that exist from the start with value 0, so rate() over a window that starts before
# the first request sees the whole increase (a series born at 5 would lose those 5).
for _status in ("200", "500"):
    request_duration.labels(PREDICT_ROUTE, _status)
    requests.labels(PREDICT_ROUTE, _status)


def route_label(path: str) -> str:
    return path if path in ROUTES else OTHER_ROUTE


def exposition() -> bytes:
    return generate_latest(REGISTRY)
