"""The promotion gate against a real Prometheus (built by tools/build-prometheus.sh).

Three model servers on 127.0.0.1: one stable, one healthy canary and one bad canary that
fails 20 % of /predict (MODEL_SERVER_ERROR_RATE). Prometheus scrapes them as the tracks of
two canary deployments, `bert-sentiment` (the prod stack's, bad canary) and `good`, and
evaluates their rendered recording rules. The bounded load generator drives all three.
Then:

* the recording rules evaluate there, to the figures the load test saw;
* `servestack promote prod bert-sentiment --check --prometheus URL` refuses with figures
  (exit 2, before anything is planned or applied);
* the gate passes the healthy canary, with its figures.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from servestack.config.defaults import effective
from servestack.config.models import DeploymentSpec, Monitoring, StackConfig
from servestack.config.validation import load_stack_config, parse_stack
from servestack.engine import make_project
from servestack.manifests import monitoring
from servestack.ops import gate
from tests.monitoring.conftest import _factory
from tests.monitoring.prom import Prometheus, prometheus_bin_dir
from tests.monitoring.servers import REPO, ModelServer, example_module

pytestmark = pytest.mark.prometheus

loadtest = example_module("loadtest")
metrics = example_module("model_server.metrics")

PROD = load_stack_config(REPO / "stacks" / "Pulumi.prod.yaml")
BAD = "bert-sentiment"  # the prod stack's canary deployment
GOOD = "good"
NAMESPACE = "models"
ERROR_RATE = 0.2
REQUESTS = 300
CONCURRENCY = 6
WINDOW = "1m"
GOOD_RAW: dict[str, Any] = {
    "environment": "production",
    "target": "render",
    "namespace": NAMESPACE,
    "cluster": {"name": "test"},
    "deployments": [
        {
            "name": GOOD,
            "model": {"id": "m", "version": "v1", "type": "tabular", "image": "r.io/m:1"},
            "resources": {"cpu": 1, "memory": "1Gi"},
            "strategy": {
                "type": "canary",
                "weight": 10,
                "canaryVersion": "v2",
                "canaryImage": "r.io/m:2",
            },
        }
    ],
}
GOOD_STACK = parse_stack(GOOD_RAW)


@dataclass
class Live:
    prom: Prometheus
    reports: dict[str, loadtest.Report]


def _spec(config: StackConfig, name: str) -> DeploymentSpec:
    return next(d for d in config.deployments if d.name == name)


def _mon(config: StackConfig, name: str) -> Monitoring:
    mon = effective(_spec(config, name)).monitoring
    assert mon is not None  # production: on by default
    return mon


async def _load(urls: list[str]) -> list[loadtest.Report]:
    """The bounded load test against every server at once."""
    runs = (loadtest.run_load(u, REQUESTS, CONCURRENCY, max_seconds=120) for u in urls)
    return list(await asyncio.gather(*runs))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("gate")
    bin_dir = prometheus_bin_dir()
    latency = {"MODEL_SERVER_EXTRA_LATENCY_MS": "10", "MODEL_SERVER_LATENCY_JITTER_MS": "30"}
    for start in _factory(tmp / "servers"):
        stable = start(latency, name="stable")
        good = start({**latency, "MODEL_VERSION": "v2"}, name="good-canary")
        bad = start(
            {**latency, "MODEL_VERSION": "v2", "MODEL_SERVER_ERROR_RATE": str(ERROR_RATE)},
            name="bad-canary",
        )
        for s in (stable, good, bad):
            s.wait_ready()

        def addr(s: ModelServer) -> list[str]:
            return [s.url.removeprefix("http://")]

        def labels(name: str, track: str) -> dict[str, str]:
            return {"namespace": NAMESPACE, "model_deployment": name, "track": track}

        groups = [
            (labels(BAD, "stable"), addr(stable)),
            (labels(BAD, "canary"), addr(bad)),
            (labels(GOOD, "stable"), addr(stable)),
            (labels(GOOD, "canary"), addr(good)),
        ]
        rules = [
            *monitoring.rule_groups(_spec(PROD, BAD), _mon(PROD, BAD)),
            *monitoring.rule_groups(_spec(GOOD_STACK, GOOD), _mon(GOOD_STACK, GOOD)),
        ]
        with Prometheus.start(
            tmp / "prom", {}, bin_dir=bin_dir, groups=groups, rule_groups=rules
        ) as prom:
            for name, track in ((BAD, "stable"), (BAD, "canary"), (GOOD, "canary")):
                prom.wait_until(
                    lambda n=name, t=track: (
                        prom.value(f'{metrics.LOADED}{{model_deployment="{n}",track="{t}"}}') == 1
                    ),
                    30,
                    f"a scrape of {name}/{track} with its model loaded",
                )

            urls = [s.url for s in (stable, good, bad)]
            reports = dict(zip(("stable", "good", "bad"), asyncio.run(_load(urls)), strict=True))
            for r in reports.values():
                assert r.completed == REQUESTS and not r.timed_out and r.transport_errors == 0
            for name, track in ((BAD, "stable"), (BAD, "canary"), (GOOD, "canary")):
                expr = (
                    f'sum({metrics.REQUESTS_TOTAL}{{model_deployment="{name}",track="{track}",'
                    f'route="/predict"}})'
                )
                prom.wait_until(
                    lambda e=expr: prom.value(e) == REQUESTS, 30, f"all requests of {name}/{track}"
                )
            yield Live(prom, reports)


def test_recording_rules_evaluate_in_prometheus(live: Live) -> None:
    prom = live.prom
    ratio = monitoring.Queries.record("request_errors:ratio_rate5m")
    canary = f'{ratio}{{model_deployment="{BAD}",track="canary"}}'
    # Evaluated every second (evaluation_interval) once the scrapes are in.
    value = prom.wait_until(
        lambda: (v := prom.value(canary)) is not None and abs(v - ERROR_RATE) <= 0.03 and v,
        30,
        "the recorded canary error ratio",
    )
    assert abs(value - ERROR_RATE) <= 0.03
    assert prom.value(f'{ratio}{{model_deployment="{BAD}",track="stable"}}') == 0
    p99 = monitoring.Queries.quantile_record(0.99)
    recorded = prom.wait_until(
        lambda: prom.value(f'{p99}{{model_deployment="{GOOD}",track="canary"}}'), 30, "p99"
    )
    print(f"recorded: bad canary error ratio {value:.4f}, good canary p99 {recorded:.4f}s")
    assert 0.01 <= recorded <= 0.5


def test_promote_check_refuses_the_bad_canary_with_figures(live: Live) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "servestack",
            "-C",
            str(REPO),
            "promote",
            "prod",
            BAD,
            "--check",
            "--prometheus",
            live.prom.url,
            "--window",
            WINDOW,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    print(out.stdout, out.stderr)
    assert out.returncode == 2, out.stdout + out.stderr
    # A refusal goes to stderr, with the figures it was judged on (the CLI's one error path).
    said = out.stderr
    assert f"refused: the canary is not healthy ({BAD}, last {WINDOW})" in said
    assert "canary error ratio" in said and "is over the SLO (1.00%" in said
    assert "Traceback" not in said
    canary_line = next(ln for ln in said.splitlines() if ln.strip().startswith("canary:"))
    errors = float(canary_line.split(", ")[1].split("%")[0])
    assert abs(errors / 100 - ERROR_RATE) <= 0.03
    # Refused before planning: nothing about the engine or the stack lock was printed.
    both = out.stdout + out.stderr
    assert "pulumi" not in both and "project" not in both


def test_gate_passes_the_healthy_canary(live: Live) -> None:
    verdict = gate.check(GOOD_STACK, GOOD, prometheus=live.prom.url, window=WINDOW)
    print(verdict.render())
    assert verdict.ok, verdict.render()
    assert verdict.canary.error_ratio == 0 and verdict.stable.error_ratio == 0
    assert verdict.canary.p99_seconds is not None and verdict.canary.p99_seconds < 0.5
    assert verdict.canary.requests_per_second and verdict.canary.requests_per_second > 0
    assert verdict.render().startswith(f"canary healthy: promoting ({GOOD}, last {WINDOW})")


def test_gate_refuses_the_bad_canary_in_process(live: Live) -> None:
    verdict = gate.check(PROD, BAD, prometheus=live.prom.url, window=WINDOW)
    assert not verdict.ok
    assert verdict.stable.error_ratio == 0
    assert verdict.canary.error_ratio is not None
    assert abs(verdict.canary.error_ratio - ERROR_RATE) <= 0.03


def test_unreachable_prometheus_is_a_refusal(tmp_path: Path) -> None:
    with pytest.raises(gate.GateError, match="cannot query Prometheus"):
        gate.check(GOOD_STACK, GOOD, prometheus="http://127.0.0.1:9", window=WINDOW)


def test_status_shows_the_live_figures(live: Live) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "servestack", "-C", str(REPO), "status", "prod", BAD]
        + ["--prometheus", live.prom.url],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    print(out.stdout)
    assert "live (Prometheus, last 5m)" in out.stdout
    rows = {
        ln.split("│")[1].strip(): ln.split("│")[2].strip()
        for ln in out.stdout.splitlines()
        if ln.count("│") == 3 and ln.split("│")[1].strip() in ("stable", "canary")
    }
    assert set(rows) == {"stable", "canary"}, out.stdout
    assert ", 0.00% errors, p99 " in rows["stable"]
    canary_errors = float(rows["canary"].split(", ")[1].split("%")[0])
    assert abs(canary_errors / 100 - ERROR_RATE) <= 0.03


@pytest.mark.engine
def test_promote_check_promotes_the_healthy_canary(live: Live, tmp_path: Path) -> None:
    """The whole command on the real engine (render mode) in a scratch project: the gate
    passes with the figures, then the canary becomes the stable version."""
    text = yaml.safe_dump({"config": {f"servestack:{k}": v for k, v in GOOD_RAW.items()}})
    project = make_project(tmp_path / "project", stacks={"prod": text})
    out = subprocess.run(
        [sys.executable, "-m", "servestack", "-C", str(project), "promote", "prod", GOOD]
        + ["--check", "--prometheus", live.prom.url, "--window", WINDOW, "--yes"],
        capture_output=True,
        text=True,
        timeout=600,
        env={
            **os.environ,
            "COLUMNS": "200",
            "PULUMI_CONFIG_PASSPHRASE": "monitoring-tier-test",
            "SERVESTACK_RENDER_ROOT": str(tmp_path / "out"),
        },
    )
    print(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"canary healthy: promoting ({GOOD}, last {WINDOW})" in out.stdout
    canary_line = next(ln for ln in out.stdout.splitlines() if ln.strip().startswith("canary:"))
    assert ", 0.00% errors, p99 " in canary_line
    promoted = load_stack_config(project / "stacks" / "Pulumi.prod.yaml").deployments[0]
    assert (promoted.model.version, promoted.strategy.type.value) == ("v2", "rolling")
    rendered = sorted(p.name for p in (tmp_path / "out" / "prod").rglob("*.yaml"))
    assert "apps_v1-deployment-models-good.yaml" in rendered
    assert "apps_v1-deployment-models-good-canary.yaml" not in rendered
