"""The promotion gate: a canary is promoted only when live metrics say it is healthy.

`servestack promote STACK DEPLOYMENT --check` asks Prometheus (``--prometheus URL`` or the
deployment's ``monitoring.prometheusUrl``) for each track's error ratio and p99 latency over
a window, with the same PromQL the deployment's recording rules use
(:class:`servestack.manifests.monitoring.Queries`), and judges them against the SLO and
against stable with the margins the ``ModelCanaryWorseThanStable`` alert uses.
"""

from __future__ import annotations

import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from servestack.config import paths
from servestack.config.defaults import effective
from servestack.config.errors import ConfigError, Problem
from servestack.config.models import DeploymentSpec, Monitoring, StackConfig, StrategyType
from servestack.manifests import monitoring as mon_rules
from servestack.manifests import naming

DEFAULT_WINDOW = "5m"
_WINDOW_RE = re.compile(r"^[1-9][0-9]{0,4}[smh]$")
#: Prometheus instant query: PromQL -> {track: value} (the vector's samples by track).
Query = Callable[[str], dict[str, float]]


class GateError(RuntimeError):
    """Prometheus could not be asked, or answered something unusable."""


@dataclass(frozen=True)
class Figures:
    """One track's live numbers over the window (None: no requests seen)."""

    requests_per_second: float | None
    error_ratio: float | None
    p99_seconds: float | None

    def text(self) -> str:
        rate = self.requests_per_second
        rate_text = f"{rate:.2f} req/s" if rate else "no requests"
        err = self.error_ratio
        err_text = "errors n/a" if _missing(err) else f"{err:.2%} errors"
        p99 = self.p99_seconds
        p99_text = "p99 n/a" if _missing(p99) else f"p99 {p99 * 1000:.0f} ms"  # type: ignore[operator]
        return f"{rate_text}, {err_text}, {p99_text}"


def _missing(value: float | None) -> bool:
    return value is None or math.isnan(value)


def _judge(
    what: str,
    missing: str,
    canary: float | None,
    stable: float | None,
    slo: float,
    slo_field: str,
    margin: float,
    show: Callable[[float], str],
) -> str | None:
    """One figure of the canary against the SLO, then against stable plus its margin."""
    if canary is None or math.isnan(canary):
        return f"{missing} for the canary"
    if canary > slo:
        return f"canary {what} {show(canary)} is over the SLO ({show(slo)}, {slo_field})"
    if stable is not None and not math.isnan(stable) and canary > stable + margin:
        return (
            f"canary {what} {show(canary)} is worse than stable's {show(stable)} "
            f"by more than {show(margin)}"
        )
    return None


@dataclass(frozen=True)
class Verdict:
    deployment: str
    window: str
    stable: Figures
    canary: Figures
    #: Why the canary is refused (empty: it may be promoted).
    reasons: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.reasons

    def render(self) -> str:
        head = "canary healthy: promoting" if self.ok else "refused: the canary is not healthy"
        lines = [
            f"{head} ({self.deployment}, last {self.window})",
            f"  stable: {self.stable.text()}",
            f"  canary: {self.canary.text()}",
        ]
        lines += [f"  - {r}" for r in self.reasons]
        return "\n".join(lines)


def judge(q: mon_rules.Queries, stable: Figures, canary: Figures, window: str) -> Verdict:
    """The gate's rules, pure: the SLO, then stable plus the canary-worse margins."""
    reasons = []
    if not canary.requests_per_second:
        reasons.append(f"the canary served no requests in the last {window}: nothing to judge")
    else:
        checks = (
            _judge(
                "error ratio",
                "no error ratio",
                canary.error_ratio,
                stable.error_ratio,
                q.max_error_ratio,
                "monitoring.slo.errorRatePercent",
                q.canary_error_margin,
                lambda v: f"{v:.2%}",
            ),
            _judge(
                "p99",
                "no p99 latency",
                canary.p99_seconds,
                stable.p99_seconds,
                q.max_p99_seconds,
                "monitoring.slo.latencyP99Ms",
                q.canary_latency_margin_seconds,
                lambda v: f"{v * 1000:.0f} ms",
            ),
        )
        reasons += [c for c in checks if c is not None]
    return Verdict(q.name, window, stable, canary, tuple(reasons))


def figures(q: mon_rules.Queries, query: Query, window: str) -> dict[str, Figures]:
    rates = query(q.request_rate(window))
    errors = query(q.error_ratio(window))
    p99 = query(q.quantile(0.99, window))
    # The series' track label is the pods' slot (naming.slot): keyed by role here.
    return {
        track: Figures(rates.get(slot), errors.get(slot), p99.get(slot))
        for track, slot in zip((naming.STABLE, naming.CANARY), q.slots, strict=True)
    }


def http_query(url: str, timeout: float = 10.0) -> Query:
    """Instant queries against Prometheus' HTTP API at ``url``."""
    base = url.rstrip("/")

    def run(expr: str) -> dict[str, float]:
        full = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(full, timeout=timeout) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as exc:
            raise GateError(f"{base}: HTTP {exc.code} for {expr}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise GateError(f"{base}: cannot query Prometheus: {exc}") from None
        if body.get("status") != "success" or body["data"]["resultType"] != "vector":
            raise GateError(f"{base}: unexpected answer for {expr}: {body}")
        return {
            s["metric"].get(mon_rules.TRACK_LABEL, ""): float(s["value"][1])
            for s in body["data"]["result"]
        }

    return run


def _find(config: StackConfig, name: str) -> DeploymentSpec:
    spec = next((d for d in config.deployments if d.name == name), None)
    if spec is None:
        raise ConfigError([Problem(paths.deployment(name), "no such deployment")])
    return spec


def _deployment(config: StackConfig, name: str) -> DeploymentSpec:
    spec = _find(config, name)
    if spec.strategy.type is not StrategyType.canary:
        raise ConfigError([Problem(paths.deployment(name, "strategy"), "no canary to promote")])
    return spec


def check(
    config: StackConfig,
    name: str,
    *,
    prometheus: str | None = None,
    window: str = DEFAULT_WINDOW,
    query: Query | None = None,
) -> Verdict:
    """Judge the canary of deployment ``name`` from live metrics.

    Raises:
        ConfigError: no such deployment, no canary, no Prometheus URL, a bad window.
        GateError: Prometheus could not be queried.
    """
    spec = _deployment(config, name)
    mon: Monitoring = effective(spec).monitoring or spec.monitoring or Monitoring()
    if not _WINDOW_RE.match(window):
        raise ConfigError([Problem("--window", f"{window!r} must be a duration such as 5m")])
    url = prometheus or mon.prometheus_url
    if query is None:
        if url is None:
            raise ConfigError(
                [
                    Problem(
                        paths.deployment(name, "monitoring.prometheusUrl"),
                        "not set: pass --prometheus URL or set it to check the canary",
                    )
                ]
            )
        if not re.match(r"^https?://", url):
            raise ConfigError([Problem("--prometheus", f"{url!r} must be an http(s) URL")])
        query = http_query(url)
    q = mon_rules.Queries.of(spec, mon)
    found = figures(q, query, window)
    return judge(q, found[naming.STABLE], found[naming.CANARY], window)


def live_figures(
    config: StackConfig,
    name: str,
    *,
    prometheus: str | None = None,
    window: str = DEFAULT_WINDOW,
    query: Query | None = None,
) -> dict[str, Figures] | None:
    """Each track's live figures for `servestack status`; None when no Prometheus is set
    (neither ``prometheus`` nor ``monitoring.prometheusUrl``).

    Raises:
        ConfigError: no such deployment.
        GateError: Prometheus could not be queried.
    """
    spec = _find(config, name)
    mon = effective(spec).monitoring or spec.monitoring or Monitoring()
    if query is None:
        url = prometheus or mon.prometheus_url
        if url is None:
            return None
        query = http_query(url)
    found = figures(mon_rules.Queries.of(spec, mon), query, window)
    return {t: found[t] for t in mon_rules.tracks(spec)}
