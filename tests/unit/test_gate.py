"""The promotion gate's judgement, as data (tests/monitoring/test_gate.py runs it against a
real Prometheus)."""

from __future__ import annotations

from typing import Any

import pytest

from servestack.config.errors import ConfigError
from servestack.config.models import Monitoring
from servestack.config.validation import parse_stack
from servestack.manifests.monitoring import Queries
from servestack.ops import gate
from servestack.ops.gate import Figures
from tests import REPO
from tests.unit.specs import deployment, deployment_raw, stack_raw

CANARY = {"type": "canary", "weight": 10, "canaryVersion": "v3", "canaryImage": "r.io/m:3"}
Q = Queries.of(deployment(strategy=CANARY), Monitoring())  # SLO: 1 % errors, p99 500 ms
STABLE = Figures(10.0, 0.001, 0.100)


@pytest.mark.parametrize(
    ("canary", "reasons"),
    [
        (Figures(1.0, 0.002, 0.110), []),
        (
            Figures(1.0, 0.05, 0.110),
            ["canary error ratio 5.00% is over the SLO (1.00%, monitoring.slo.errorRatePercent)"],
        ),
        (
            # Within the SLO, but worse than stable (0.10 %) by more than half the budget.
            Figures(1.0, 0.008, 0.110),
            ["canary error ratio 0.80% is worse than stable's 0.10% by more than 0.50%"],
        ),
        (
            Figures(1.0, 0.0, 0.600),
            ["canary p99 600 ms is over the SLO (500 ms, monitoring.slo.latencyP99Ms)"],
        ),
        (
            # Within the SLO, but slower than stable (100 ms) by more than 20 % of it (100 ms).
            Figures(1.0, 0.0, 0.201),
            ["canary p99 201 ms is worse than stable's 100 ms by more than 100 ms"],
        ),
        (Figures(1.0, 0.0, 0.199), []),
        (
            Figures(None, None, None),
            ["the canary served no requests in the last 5m: nothing to judge"],
        ),
        (Figures(1.0, float("nan"), 0.1), ["no error ratio for the canary"]),
    ],
)
def test_judge(canary: Figures, reasons: list[str]) -> None:
    verdict = gate.judge(Q, STABLE, canary, "5m")
    assert list(verdict.reasons) == reasons
    assert verdict.ok is (not reasons)


def test_the_verdict_shows_the_figures() -> None:
    verdict = gate.judge(Q, STABLE, Figures(2.5, 0.05, 0.2), "5m")  # p99 within its margin
    assert verdict.render().splitlines() == [
        "refused: the canary is not healthy (bert, last 5m)",
        "  stable: 10.00 req/s, 0.10% errors, p99 100 ms",
        "  canary: 2.50 req/s, 5.00% errors, p99 200 ms",
        "  - canary error ratio 5.00% is over the SLO (1.00%, monitoring.slo.errorRatePercent)",
    ]


def test_check_queries_per_track_with_the_rules_expressions() -> None:
    config = parse_stack(stack_raw(deployment_raw(strategy=CANARY)))
    asked: list[str] = []

    def query(expr: str) -> dict[str, float]:
        asked.append(expr)
        if expr.startswith("histogram_quantile"):
            return {"stable": 0.1, "canary": 0.105}
        if " / " in expr:
            return {"stable": 0.0, "canary": 0.0}
        return {"stable": 9.0, "canary": 1.0}

    verdict = gate.check(config, "bert", window="2m", query=query)
    q = Queries.of(config.deployments[0], Monitoring())
    assert asked == [q.request_rate("2m"), q.error_ratio("2m"), q.quantile(0.99, "2m")]
    assert verdict.ok and verdict.canary == Figures(1.0, 0.0, 0.105)


@pytest.mark.parametrize(
    ("raw", "kwargs", "message"),
    [
        (
            deployment_raw(strategy=CANARY),
            {},
            "deployments.bert.monitoring.prometheusUrl: not set: pass --prometheus URL",
        ),
        (deployment_raw(), {"prometheus": "http://p:9090"}, "deployments.bert.strategy: no canary"),
        (
            deployment_raw(strategy=CANARY),
            {"prometheus": "http://p:9090", "window": "5 minutes"},
            "--window: '5 minutes' must be a duration such as 5m",
        ),
    ],
)
def test_check_refuses_bad_input_naming_the_field(
    raw: dict[str, object], kwargs: dict[str, str], message: str
) -> None:
    config = parse_stack(stack_raw(raw))
    with pytest.raises(ConfigError) as err:
        gate.check(config, "bert", **kwargs)  # type: ignore[arg-type]
    assert message in str(err.value)


# --- the command: refused before anything is planned, promoted when healthy -------------------


@pytest.fixture
def promote_cli(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[str]]:
    """`servestack promote` with a fake Prometheus answer and a recording promotion."""
    from typer.testing import CliRunner

    from servestack.cli import app, operations

    promoted: list[str] = []
    monkeypatch.setattr(operations, "workspace", lambda *a, **k: None)
    monkeypatch.setattr(
        operations, "run", lambda ctx, ws, stack, deployment, *a, **k: promoted.append(deployment)
    )

    def invoke(canary_errors: float) -> Any:
        def fake(url: str, timeout: float = 10.0) -> gate.Query:
            assert url == "http://127.0.0.1:9090"

            def query(expr: str) -> dict[str, float]:
                if expr.startswith("histogram_quantile"):
                    return {"stable": 0.1, "canary": 0.1}
                if " / " in expr:
                    return {"stable": 0.0, "canary": canary_errors}
                return {"stable": 9.0, "canary": 1.0}

            return query

        monkeypatch.setattr(gate, "http_query", fake)
        args = ["promote", "prod", "bert-sentiment", "--check", "--prometheus"]
        monkeypatch.chdir(REPO)
        return CliRunner().invoke(app, [*args, "http://127.0.0.1:9090"])

    return invoke, promoted


def test_promote_check_refuses_without_promoting(promote_cli: tuple[Any, list[str]]) -> None:
    invoke, promoted = promote_cli
    result = invoke(0.2)
    assert result.exit_code == 2, result.output
    assert "refused: the canary is not healthy (bert-sentiment, last 5m)" in result.output
    assert "canary: 1.00 req/s, 20.00% errors, p99 100 ms" in result.output
    assert promoted == []


def test_promote_check_promotes_a_healthy_canary(promote_cli: tuple[Any, list[str]]) -> None:
    invoke, promoted = promote_cli
    result = invoke(0.0)
    assert result.exit_code == 0, result.output
    assert "canary healthy: promoting (bert-sentiment, last 5m)" in result.output
    assert promoted == ["bert-sentiment"]


def test_live_figures_per_track_and_none_without_prometheus() -> None:
    config = parse_stack(stack_raw(deployment_raw()))
    assert gate.live_figures(config, "bert") is None  # no --prometheus, no prometheusUrl

    def query(expr: str) -> dict[str, float]:
        return {"stable": 0.25}

    found = gate.live_figures(config, "bert", query=query)
    assert found == {"stable": Figures(0.25, 0.25, 0.25)}  # a rolling deployment: one track
