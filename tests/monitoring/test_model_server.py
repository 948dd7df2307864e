"""The example model server (examples/model-server) as a real uvicorn process on 127.0.0.1:
probes, real predictions, fault injection, /metrics, and the bounded load generator."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.poll import wait_for
from tests.monitoring.conftest import (
    BAD_CANARY_ERROR_RATE,
    BAD_CANARY_LATENCY_MS,
    MODEL_ID,
    MODEL_VERSION,
)
from tests.monitoring.servers import EXAMPLE, ModelServer, example_module

metrics = example_module("model_server.metrics")
config = example_module("model_server.config")
loadtest = example_module("loadtest")

SETOSA = [5.1, 3.5, 1.4, 0.2]  # first row of the iris data set, class 0
VIRGINICA = [6.9, 3.1, 5.4, 2.1]


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text)[(name, frozenset(labels.items()))]


# -- probes ---------------------------------------------------------------------------------


def test_ready_is_503_until_the_model_is_loaded(ready_server: ModelServer):
    # Recorded by the fixture while MODEL_SERVER_LOAD_GATE held loading back: up (liveness)
    # but not ready, and /predict refused.
    before = ready_server.before_gate
    assert before.health == 200
    assert before.ready == 503 and before.ready_body == {"status": "loading"}
    assert before.predict == 503
    assert value(before.metrics, metrics.LOADED) == 0
    assert value(before.metrics, metrics.REQUESTS_TOTAL, route="/ready", status="503") == 1
    assert value(before.metrics, metrics.REQUESTS_TOTAL, route="/predict", status="503") == 1
    # After the gate file appeared, the model loaded.
    body = ready_server.get("/ready").json()
    assert body["status"] == "ready" and body["test_accuracy"] > 0.8
    assert ready_server.get("/health").status_code == 200
    assert value(ready_server.metrics_text(), metrics.LOADED) == 1


def test_port_comes_from_the_environment(ready_server: ModelServer):
    # ready_server runs `python -m model_server` with PORT set (as the container's CMD does
    # with ${PORT}); it answers there, with MODEL_ID/MODEL_VERSION from its environment.
    assert ready_server.get("/health").status_code == 200
    body = ready_server.get("/ready").json()
    assert (body["model_id"], body["model_version"]) == (MODEL_ID, MODEL_VERSION)


# -- predictions ----------------------------------------------------------------------------


def test_predictions_come_from_a_trained_model(ready_server: ModelServer):
    data = example_module("model_server.model").load_split()
    r = ready_server.predict([[float(v) for v in row] for row in data.x_test])
    assert r.status_code == 200, r.text
    body = r.json()
    predicted = body["predictions"]
    assert len(predicted) == len(data.y_test) == 45
    accuracy = sum(int(p == y) for p, y in zip(predicted, data.y_test, strict=True)) / len(
        predicted
    )
    assert accuracy > 0.8, accuracy
    assert body["model_id"] == MODEL_ID and body["model_version"] == MODEL_VERSION
    for probs in body["probabilities"]:
        assert len(probs) == 3 and abs(sum(probs) - 1) < 1e-3

    known = ready_server.predict([SETOSA, VIRGINICA]).json()
    assert known["predictions"] == [0, 2]
    assert known["labels"] == ["setosa", "virginica"]


@pytest.mark.parametrize(
    "body",
    [
        {"instances": [[1.0, 2.0, 3.0]]},  # 3 features, the model takes 4
        {"instances": []},
        {"instances": [["a", "b", "c", "d"]]},
        {"rows": [SETOSA]},
    ],
)
def test_predict_rejects_malformed_input(ready_server: ModelServer, body: object):
    r = ready_server.client.post(ready_server.url + "/predict", json=body)
    assert r.status_code == 422, r.text


def test_openapi_describes_predict_with_a_valid_example(ready_server: ModelServer):
    """A client generated from /openapi.json sends rows of the model's width (the example
    is accepted as it stands, and the schema's row length is the model's feature count)."""
    doc = ready_server.get("/openapi.json").json()
    body = doc["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    schema = doc["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]
    (example,) = schema["examples"]
    row = schema["properties"]["instances"]["items"]
    assert row["minItems"] == row["maxItems"] == len(example["instances"][0]) == 4
    r = ready_server.client.post(ready_server.url + "/predict", json=example)
    assert r.status_code == 200, r.text
    assert r.json()["labels"] == ["setosa"]


# -- metrics --------------------------------------------------------------------------------


def test_metrics_expose_the_documented_names(ready_server: ModelServer):
    before = ready_server.metrics_text()
    n0 = value(before, metrics.REQUESTS_TOTAL, route="/predict", status="200")
    c0 = value(before, metrics.REQUEST_DURATION + "_count", route="/predict", status="200")
    for _ in range(5):
        assert ready_server.predict([SETOSA]).status_code == 200
    r = ready_server.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text

    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert fams[metrics.REQUEST_DURATION].type == "histogram"
    assert fams[metrics.REQUESTS].type == "counter"
    assert fams[metrics.LOADED].type == "gauge"
    assert fams[metrics.INFLIGHT].type == "gauge"
    assert value(text, metrics.REQUESTS_TOTAL, route="/predict", status="200") == n0 + 5
    assert value(text, metrics.REQUEST_DURATION + "_count", route="/predict", status="200") == (
        c0 + 5
    )
    bounds = sorted(
        float(s.labels["le"])
        for s in fams[metrics.REQUEST_DURATION].samples
        if s.name.endswith("_bucket")
        and s.labels["route"] == "/predict"
        and s.labels["status"] == "200"
    )
    assert bounds == [*metrics.LATENCY_BUCKETS, float("inf")]
    assert value(text, metrics.LOADED) == 1
    assert value(text, metrics.INFLIGHT) == 0  # nothing in flight between requests
    assert value(text, metrics.INFO_SERIES, model_id=MODEL_ID, model_version=MODEL_VERSION) == 1
    # Unknown paths share one label value; no *_created series.
    ready_server.get("/no/such/path")
    text = ready_server.metrics_text()
    assert value(text, metrics.REQUESTS_TOTAL, route="other", status="404") >= 1
    assert "_created" not in text


# -- fault injection ------------------------------------------------------------------------


def test_fault_injector_is_exact_and_evenly_spread():
    for rate in (0.0, 0.05, 0.1, 0.25, 1 / 3, 0.5, 1.0):
        faults = config.FaultInjector(config.Settings(error_rate=rate))
        fails = [faults.next()[0] for _ in range(1000)]
        for n in (10, 100, 999, 1000):
            assert sum(fails[:n]) == int(n * rate), (rate, n)
    with pytest.raises(config.ConfigError):
        config.Settings.from_env({"MODEL_SERVER_ERROR_RATE": "1.5"})
    with pytest.raises(config.ConfigError):
        config.Settings.from_env({"MODEL_SERVER_EXTRA_LATENCY_MS": "fast"})


def test_bad_canary_fails_and_is_slow(bad_canary: ModelServer):
    before = bad_canary.metrics_text()
    fails0 = value(before, metrics.REQUESTS_TOTAL, route="/predict", status="500")
    fast0 = value(
        before, metrics.REQUEST_DURATION + "_bucket", route="/predict", status="200", le="0.025"
    )
    n = 200
    report = asyncio.run(loadtest.run_load(bad_canary.url, n, 4, max_seconds=120))
    assert report.completed == n and report.transport_errors == 0
    # 25 % within 2 %; the injector spreads failures evenly, so any 200 in a row hold 50.
    assert abs(report.errors / report.completed - BAD_CANARY_ERROR_RATE) <= 0.02
    assert report.status_counts == {"200": 150, "500": 50}
    assert report.p50 is not None and report.p50 >= BAD_CANARY_LATENCY_MS / 1000
    text = bad_canary.metrics_text()
    assert value(text, metrics.REQUESTS_TOTAL, route="/predict", status="500") - fails0 == 50
    # On the server, too, every one took >= 30 ms: none landed in a bucket at or below 25 ms.
    fast = value(
        text, metrics.REQUEST_DURATION + "_bucket", route="/predict", status="200", le="0.025"
    )
    assert fast - fast0 == 0


# -- the load generator ---------------------------------------------------------------------


def test_loadtest_cli_is_bounded_and_reports_percentiles(ready_server: ModelServer):
    n = 300
    out = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE / "loadtest.py"),
            "--url",
            ready_server.url,
            "--requests",
            str(n),
            "--concurrency",
            "8",
            "--max-seconds",
            "60",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(out.stdout)
    assert report["completed"] == n and report["ok"] == n and report["errors"] == 0
    assert not report["timed_out"]
    assert 0 < report["p50"] <= report["p95"] <= report["p99"] <= report["max"]
    assert report["wall_seconds"] < 60


def test_loadtest_stops_at_its_time_cap(bad_canary: ModelServer):
    # 1000 requests at >= 30 ms each, 2 at a time, would take over 15 s: the 1 s cap stops it.
    report = asyncio.run(loadtest.run_load(bad_canary.url, 1000, 2, max_seconds=1.0, timeout=5.0))
    assert report.timed_out
    assert report.completed < 1000
    assert report.wall_seconds < 1.0 + 5.0 + 1.0  # cap + one request's timeout + slack


def test_loadtest_refuses_other_hosts():
    for url in ("http://192.0.2.1:8080", "http://example.com", "https://127.0.0.1:8080"):
        with pytest.raises(ValueError, match="refusing"):
            asyncio.run(loadtest.run_load(url, 1, 1, max_seconds=1))
    with pytest.raises(ValueError):
        asyncio.run(loadtest.run_load("http://127.0.0.1:1", 0, 1, max_seconds=1))


def test_percentile_is_nearest_rank():
    xs = [float(i) for i in range(1, 101)]
    assert loadtest.percentile(xs, 50) == 50
    assert loadtest.percentile(xs, 99) == 99
    assert loadtest.percentile(xs, 100) == 100
    assert loadtest.percentile([7.0], 99) == 7.0


def test_wait_for_has_a_deadline():
    with pytest.raises(TimeoutError, match="waiting for never"):
        wait_for("never", lambda: False, 0.2, every=0.05)
