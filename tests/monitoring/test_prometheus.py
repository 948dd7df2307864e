"""The real Prometheus (built by tools/build-prometheus.sh) scraping two model servers, a
"stable" and a "bad canary", while the bounded load generator drives both; plus promtool
on a rules file and a rules unit test. Marked `prometheus`; never skipped: a missing build is
built, a failed build fails."""

from __future__ import annotations

import asyncio
import bisect
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.monitoring.conftest import ServerFactory
from tests.monitoring.prom import Prometheus, prometheus_bin_dir
from tests.monitoring.servers import example_module

pytestmark = pytest.mark.prometheus

metrics = example_module("model_server.metrics")
loadtest = example_module("loadtest")

P99_STABLE = (
    "histogram_quantile(0.99, sum by (le) "
    '(rate(model_request_duration_seconds_bucket{track="stable",route="/predict"}[1m])))'
)
ERROR_RATIO_CANARY = (
    'sum(rate(model_requests_total{track="canary",route="/predict",status=~"5.."}[1m]))'
    ' / sum(rate(model_requests_total{track="canary",route="/predict"}[1m]))'
)
CANARY_ERROR_RATE = 0.2
REQUESTS = 400
#: One request at a time per server: the client then times what the server serves (plus
#: loopback), not a queue in front of it. At 8, a busy machine put the client's p99 at 2.6x
#: the server's (0.33 s against 0.125 s), a real difference that the histogram cannot see.
CONCURRENCY = 1


@pytest.fixture(scope="module")
def bin_dir() -> Path:
    return prometheus_bin_dir()


def bucket_index(seconds: float) -> int:
    """Index of the histogram bucket (upper bounds LATENCY_BUCKETS, then +Inf) holding a value."""
    return bisect.bisect_left(metrics.LATENCY_BUCKETS, seconds)


@pytest.fixture
def stable_and_canary(model_servers: ServerFactory) -> Iterator[dict[str, str]]:
    # Both sleep 20..80 ms (uniform, seeded) per /predict, so the latency distribution spans
    # several buckets and a p99 comparison means something; the canary also fails 20 %.
    latency = {"MODEL_SERVER_EXTRA_LATENCY_MS": "20", "MODEL_SERVER_LATENCY_JITTER_MS": "60"}
    stable = model_servers({**latency, "MODEL_VERSION": "v1"}, name="stable")
    canary = model_servers(
        {**latency, "MODEL_VERSION": "v2", "MODEL_SERVER_ERROR_RATE": str(CANARY_ERROR_RATE)},
        name="canary",
    )
    stable.wait_ready()
    canary.wait_ready()
    yield {"stable": stable.url, "canary": canary.url}


def test_prometheus_sees_what_the_load_test_measured(
    bin_dir: Path, stable_and_canary: dict[str, str], tmp_path: Path
):
    urls = stable_and_canary
    targets = {track: [url.removeprefix("http://")] for track, url in urls.items()}
    with Prometheus.start(tmp_path / "prom", targets, bin_dir=bin_dir) as prom:
        # A scrape of each loaded server before any /predict: the baseline (all zeros).
        for track in urls:
            prom.wait_until(
                lambda t=track: prom.value(f'{metrics.LOADED}{{track="{t}"}}') == 1,
                30,
                f"a scrape of the {track} server with its model loaded",
            )

        async def both() -> list[loadtest.Report]:
            return list(
                await asyncio.gather(
                    *(
                        loadtest.run_load(url, REQUESTS, CONCURRENCY, max_seconds=60)
                        for url in urls.values()
                    )
                )
            )

        stable_report, canary_report = asyncio.run(both())
        for r in (stable_report, canary_report):
            assert r.completed == REQUESTS and not r.timed_out and r.transport_errors == 0

        # Until a scrape after the last request has landed.
        for track, report in (("stable", stable_report), ("canary", canary_report)):
            expr = f'sum({metrics.REQUESTS_TOTAL}{{track="{track}",route="/predict"}})'
            prom.wait_until(
                lambda e=expr, n=report.completed: prom.value(e) == n,
                30,
                f"Prometheus to have scraped all {report.completed} {track} requests",
            )

        p99 = prom.value(P99_STABLE)
        assert p99 is not None
        client_p99 = stable_report.p99
        assert client_p99 is not None
        print(
            f"stable: client p50={stable_report.p50} p95={stable_report.p95} "
            f"p99={client_p99}; Prometheus p99={p99:.4f}"
        )
        # Within one histogram bucket of what the client measured.
        assert abs(bucket_index(p99) - bucket_index(client_p99)) <= 1, (p99, client_p99)
        assert stable_report.errors == 0
        assert prom.value(ERROR_RATIO_CANARY.replace("canary", "stable")) == 0

        ratio = prom.value(ERROR_RATIO_CANARY)
        assert ratio is not None
        print(f"canary: error ratio {ratio:.4f} (load test: {canary_report.errors}/{REQUESTS})")
        assert abs(ratio - CANARY_ERROR_RATE) <= 0.03
        assert abs(canary_report.errors / REQUESTS - CANARY_ERROR_RATE) <= 0.02

        # The `track` label came from static_configs; model_info carries the version.
        info = prom.query(f"{metrics.INFO_SERIES}")
        assert isinstance(info, list)
        assert {(s.labels["track"], s.labels["model_version"]) for s in info} == {
            ("stable", "v1"),
            ("canary", "v2"),
        }


RULES = textwrap.dedent(
    """\
    groups:
      - name: model-server
        rules:
          - record: track:model_request_errors:ratio_rate1m
            expr: |
              sum by (track) (rate(model_requests_total{route="/predict",status=~"5.."}[1m]))
              / sum by (track) (rate(model_requests_total{route="/predict"}[1m]))
          - alert: ModelServerErrorRatioHigh
            expr: track:model_request_errors:ratio_rate1m > 0.05
            for: 2m
            labels:
              severity: page
            annotations:
              summary: "{{ $labels.track }} answers {{ $value | humanizePercentage }} errors"
    """
)

# Samples every 15 s: since Prometheus 3 a [1m] range excludes its left end, so a 1m
# interval would leave one sample per window and no rate.
RULES_TEST = textwrap.dedent(
    """\
    rule_files: [rules.yml]
    evaluation_interval: 15s
    tests:
      - interval: 15s
        input_series:
          - series: 'model_requests_total{route="/predict",status="200",track="canary"}'
            values: '0+80x40'
          - series: 'model_requests_total{route="/predict",status="500",track="canary"}'
            values: '0+20x40'
          - series: 'model_requests_total{route="/predict",status="200",track="stable"}'
            values: '0+100x40'
          - series: 'model_requests_total{route="/predict",status="500",track="stable"}'
            values: '0+0x40'
        promql_expr_test:
          - expr: track:model_request_errors:ratio_rate1m
            eval_time: 5m
            exp_samples:
              - labels: 'track:model_request_errors:ratio_rate1m{track="canary"}'
                value: 0.2
              - labels: 'track:model_request_errors:ratio_rate1m{track="stable"}'
                value: 0
        alert_rule_test:
          - alertname: ModelServerErrorRatioHigh
            eval_time: 5m
            exp_alerts:
              - exp_labels:
                  severity: page
                  track: canary
                exp_annotations:
                  summary: "canary answers 20% errors"
    """
)


def test_promtool_checks_and_unit_tests_rules(bin_dir: Path, tmp_path: Path):
    promtool = str(bin_dir / "promtool")
    (tmp_path / "rules.yml").write_text(RULES, encoding="utf-8")
    (tmp_path / "rules_test.yml").write_text(RULES_TEST, encoding="utf-8")

    ok = subprocess.run(
        [promtool, "check", "rules", "rules.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "SUCCESS: 2 rules found" in ok.stdout

    tested = subprocess.run(
        [promtool, "test", "rules", "rules_test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout

    # And a broken rule is caught.
    (tmp_path / "bad.yml").write_text(RULES.replace("sum by (track)", "sum by track"), "utf-8")
    bad = subprocess.run(
        [promtool, "check", "rules", "bad.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0
