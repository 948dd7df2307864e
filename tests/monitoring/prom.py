"""A small harness around the Prometheus server built by tools/build-prometheus.sh.

    with Prometheus.start(tmp, {"stable": ["127.0.0.1:8081"], "canary": [...]}) as prom:
        prom.wait_until(lambda: prom.value('min(up)') == 1, 30, "targets up")
        prom.value('sum(rate(model_requests_total[1m]))')

Listens on 127.0.0.1 and a free port, keeps its TSDB in a temp dir, scrapes every second.
Each target group gets a `track` label (static_configs labels).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from harness.poll import wait_for
from tests.monitoring.servers import HOST, REPO, free_port

BIN_DIR = REPO / ".prometheus-bin"
BUILD_SCRIPT = REPO / "tools" / "build-prometheus.sh"
BUILD_TIMEOUT_S = 3600.0
JOB = "model-server"

T = TypeVar("T")


def prometheus_bin_dir() -> Path:
    """The bin dir with prometheus and promtool, building them (or linking the cached build)
    with tools/build-prometheus.sh when .prometheus-bin is missing. Fails, never skips."""
    if not all((BIN_DIR / b).is_file() for b in ("prometheus", "promtool")):
        try:
            out = subprocess.run(
                ["bash", str(BUILD_SCRIPT)],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{BUILD_SCRIPT} took over {BUILD_TIMEOUT_S}s") from None
        if out.returncode != 0:
            raise RuntimeError(
                f"{BUILD_SCRIPT} failed ({out.returncode}):\n{out.stdout[-3000:]}\n"
                f"{out.stderr[-3000:]}"
            )
    for b in ("prometheus", "promtool"):
        if not (BIN_DIR / b).is_file():
            raise RuntimeError(f"{BIN_DIR / b} missing after {BUILD_SCRIPT}")
    return BIN_DIR


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


class QueryError(RuntimeError):
    pass


def _num(v: str) -> float:
    return float(v)  # Prometheus encodes values as strings: "1.5", "NaN", "+Inf"


class Prometheus:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, workdir: Path) -> None:
        self.proc = proc
        self.port = port
        self.workdir = workdir
        self.log = workdir / "prometheus.log"
        self._client = httpx.Client(timeout=10.0, trust_env=False)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @classmethod
    def start(
        cls,
        workdir: Path,
        targets: Mapping[str, Sequence[str]],
        *,
        scrape_interval: str = "1s",
        bin_dir: Path | None = None,
        timeout: float = 30.0,
        groups: Sequence[tuple[Mapping[str, str], Sequence[str]]] = (),
        rule_groups: Sequence[Mapping[str, Any]] = (),
    ) -> Prometheus:
        """Start Prometheus scraping /metrics of `targets` ({track: ["127.0.0.1:port", ...]})
        and of `groups` ((labels, addresses) each), evaluating `rule_groups`."""
        all_groups = [({"track": t}, a) for t, a in targets.items()] + list(groups)
        for _labels, addrs in all_groups:
            for a in addrs:
                if not a.startswith(f"{HOST}:"):
                    raise ValueError(f"scrape target {a!r} is not on {HOST}")
        bin_dir = bin_dir or prometheus_bin_dir()
        workdir.mkdir(parents=True, exist_ok=True)
        cfg: dict[str, Any] = {
            "global": {
                "scrape_interval": scrape_interval,
                "scrape_timeout": scrape_interval,
                "evaluation_interval": scrape_interval,
            },
            "scrape_configs": [
                {
                    "job_name": JOB,
                    "metrics_path": "/metrics",
                    "static_configs": [
                        {"targets": list(addrs), "labels": dict(labels)}
                        for labels, addrs in all_groups
                    ],
                }
            ],
        }
        if rule_groups:
            rules_file = workdir / "rules.yml"
            rules_file.write_text(json.dumps({"groups": list(rule_groups)}), encoding="utf-8")
            cfg["rule_files"] = [str(rules_file)]
        config_file = workdir / "prometheus.yml"
        config_file.write_text(json.dumps(cfg, indent=2), encoding="utf-8")  # JSON is YAML
        check = subprocess.run(
            [str(bin_dir / "promtool"), "check", "config", str(config_file)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check.returncode != 0:
            raise RuntimeError(f"promtool check config:\n{check.stdout}{check.stderr}")

        last = ""
        for _attempt in range(3):
            port = free_port()
            log = workdir / "prometheus.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [
                        str(bin_dir / "prometheus"),
                        f"--config.file={config_file}",
                        f"--web.listen-address={HOST}:{port}",
                        f"--storage.tsdb.path={workdir / 'data'}",
                        "--storage.tsdb.retention.time=1h",
                        "--log.level=info",
                    ],
                    cwd=workdir,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            prom = cls(proc, port, workdir)
            try:
                prom.wait_until(prom._ready, timeout, "Prometheus /-/ready", interval=0.1)
                return prom
            except (TimeoutError, RuntimeError):
                last = prom.log_tail()
                prom.stop()
                if "address already in use" not in last:
                    break
        raise RuntimeError(f"Prometheus did not become ready:\n{last}")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"prometheus exited with {self.proc.returncode}")
        try:
            return self._client.get(self.url + "/-/ready").status_code == 200
        except httpx.TransportError:
            return False

    # -- queries ------------------------------------------------------------------------------

    def query(self, expr: str) -> float | list[Sample]:
        """Instant query at now: a float for a scalar result, else the vector's samples."""
        r = self._client.get(self.url + "/api/v1/query", params={"query": expr})
        body: dict[str, Any] = r.json()
        if r.status_code != 200 or body.get("status") != "success":
            raise QueryError(f"{expr}: {r.status_code} {body.get('error', body)}")
        data = body["data"]
        if data["resultType"] == "scalar":
            return _num(data["result"][1])
        if data["resultType"] != "vector":
            raise QueryError(f"{expr}: unexpected result type {data['resultType']}")
        return [Sample(dict(s["metric"]), _num(s["value"][1])) for s in data["result"]]

    def value(self, expr: str) -> float | None:
        """The single value of a scalar or one-element vector; None for an empty vector."""
        res = self.query(expr)
        if isinstance(res, float):
            return res
        if not res:
            return None
        if len(res) > 1:
            raise QueryError(f"{expr}: {len(res)} series, expected one: {res}")
        return res[0].value

    def wait_until(
        self, check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.25
    ) -> T:
        """Call check() until it returns something truthy, failing after `timeout` seconds
        with the last value and the log's tail."""
        try:
            return wait_for(what, check, timeout, every=interval)
        except TimeoutError as err:
            raise TimeoutError(f"{err}\n{self.log_tail(15)}") from None

    # -- lifecycle ----------------------------------------------------------------------------

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        self._client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def __enter__(self) -> Prometheus:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
