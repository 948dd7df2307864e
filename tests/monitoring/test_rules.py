"""The rendered PrometheusRules and dashboards, checked by the real promtool.

* `promtool check rules` on the rule groups of every PrometheusRule the stacks in stacks/
  and the sample stacks render;
* `promtool test rules`: every alert fires on bad series and stays silent on good ones;
* every dashboard expression parses (as the expression of a synthetic recording rule);
* the reference model server's /metrics has every series the rules read.

Marked `prometheus` (promtool comes from tools/build-prometheus.sh); never skipped.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from servestack.config.models import DeploymentSpec, Monitoring
from servestack.config.validation import load_stack_config, parse_deployment
from servestack.manifests import monitoring
from servestack.manifests.render import render_stack
from servestack.manifests.sample import SAMPLES, sample_stack
from tests.monitoring.prom import prometheus_bin_dir
from tests.monitoring.servers import REPO, ModelServer

pytestmark = pytest.mark.prometheus

STACK_FILES = sorted((REPO / "stacks").glob("Pulumi.*.yaml"))
RULE_TYPE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
CONFIGMAP_TYPE = "kubernetes:core/v1:ConfigMap"


@pytest.fixture(scope="module")
def promtool() -> str:
    return str(prometheus_bin_dir() / "promtool")


def run(promtool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def rendered_configs() -> dict[str, Any]:
    configs: dict[str, Any] = {f"sample:{n}": sample_stack(n) for n in SAMPLES}
    for path in STACK_FILES:
        configs[path.name] = load_stack_config(path)
    return configs


def rendered_rules() -> dict[str, list[dict[str, Any]]]:
    """(stack:name) -> the rule groups of each PrometheusRule the stacks render."""
    out = {}
    for label, config in rendered_configs().items():
        for key, record in render_stack(config).resources.items():
            if key.type == RULE_TYPE:
                out[f"{label}:{key.name}"] = record.manifest["spec"]["groups"]
    return out


def rendered_dashboards() -> dict[str, dict[str, Any]]:
    out = {}
    for label, config in rendered_configs().items():
        for key, record in render_stack(config).resources.items():
            if key.type == CONFIGMAP_TYPE and key.name.endswith("-dashboard"):
                for text in record.manifest["data"].values():
                    out[f"{label}:{key.name}"] = json.loads(text)
    return out


RULES = rendered_rules()


def test_the_stacks_render_rules_to_check() -> None:
    # prod (monitoring on by default) and the sample's four monitored deployments at least.
    assert {"Pulumi.prod.yaml:bert-sentiment", "Pulumi.prod.yaml:llama-chat"} <= set(RULES)
    assert {"sample:karpenter:chat", "sample:karpenter:whisper"} <= set(RULES)


@pytest.mark.parametrize("name", sorted(RULES))
def test_promtool_checks_every_rendered_rule(promtool: str, tmp_path: Path, name: str) -> None:
    groups = RULES[name]
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": groups}), encoding="utf-8")
    out = run(promtool, "check", "rules", "rules.yml", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    n = sum(len(g["rules"]) for g in groups)
    assert f"SUCCESS: {n} rules found" in out.stdout


def test_promtool_rejects_a_broken_rule(promtool: str, tmp_path: Path) -> None:
    """The check above can fail: a rule with a PromQL syntax error is refused."""
    groups = RULES["sample:karpenter:chat"]
    broken = json.loads(json.dumps(groups))
    broken[0]["rules"][0]["expr"] = broken[0]["rules"][0]["expr"].replace("sum by (", "sum by ")
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": broken}), encoding="utf-8")
    out = run(promtool, "check", "rules", "rules.yml", cwd=tmp_path)
    assert out.returncode != 0


DASHBOARDS = rendered_dashboards()


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_dashboard_expression_parses(promtool: str, tmp_path: Path, name: str) -> None:
    exprs = [t["expr"] for p in DASHBOARDS[name]["panels"] for t in p["targets"]]
    assert len(exprs) >= 9
    rules = [{"record": f"dashboard:expr_{i}", "expr": e} for i, e in enumerate(exprs)]
    doc = {"groups": [{"name": "dashboard", "rules": rules}]}
    (tmp_path / "dash.yml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    out = run(promtool, "check", "rules", "dash.yml", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in out.stdout


# --- promtool test rules: each alert fires on bad series, stays silent on good ones ----------

CANARY = {"type": "canary", "weight": 10, "canaryVersion": "v2", "canaryImage": "r.io/m:2"}
SPEC: DeploymentSpec = parse_deployment(
    {
        "name": "bert",
        "namespace": "models",
        "model": {"id": "m", "version": "v1", "type": "llm", "image": "r.io/m:1"},
        "resources": {"cpu": 1, "memory": "1Gi", "gpu": {"count": 1, "type": "L4"}},
        "strategy": CANARY,
    }
)
MON = Monitoring()  # the production default: p99 500 ms, 1 % errors, 99.5 % available
STEPS = 100  # samples 15 s apart: 25 minutes, past every alert's `for`
EVAL = "24m"


def _labels(**kv: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in kv.items()) + "}"


def _series(track: str, ok_per_step: int, errors_per_step: int, slow: bool) -> list[dict[str, str]]:
    """Counters and histogram buckets of one track's /predict, as the server exposes them
    (after relabelling: namespace, model_deployment, track)."""
    m = MON.metrics
    base = {"namespace": SPEC.namespace, "model_deployment": SPEC.name, "track": track}
    base[m.route_label] = m.route
    out = []
    for status, n in (("200", ok_per_step), ("500", errors_per_step)):
        labels = {**base, m.status_label: status}
        out.append({"series": m.requests + _labels(**labels), "values": f"0+{n}x{STEPS}"})
        # Every request of a slow track takes 0.5..1 s, of a fast one 50..75 ms.
        for le in ("0.075", "0.5", "1", "+Inf"):
            inside = n if (le in ("1", "+Inf") if slow else True) else 0
            out.append(
                {
                    "series": f"{m.request_duration}_bucket" + _labels(**labels, le=le),
                    "values": f"0+{inside}x{STEPS}",
                }
            )
    return out


def _infra(available: int, desired: int, gpu_util: int) -> list[dict[str, str]]:
    ns = SPEC.namespace
    out = []
    for deployment in ("bert", "bert-canary"):
        for metric, v in (
            ("kube_deployment_status_replicas_available", available if deployment == "bert" else 1),
            ("kube_deployment_spec_replicas", desired if deployment == "bert" else 1),
        ):
            out.append(
                {
                    "series": metric + _labels(namespace=ns, deployment=deployment),
                    "values": f"{v}x{STEPS}",
                }
            )
    out.append(
        {
            "series": "DCGM_FI_DEV_GPU_UTIL" + _labels(namespace=ns, pod="bert-6d9f-x2", gpu="0"),
            "values": f"{gpu_util}x{STEPS}",
        }
    )
    return out


def _alert(name: str, labels: dict[str, str], summary: str) -> dict[str, Any]:
    return {
        "alertname": name,
        "eval_time": EVAL,
        "exp_alerts": [{"exp_labels": labels, "exp_annotations": {"summary": summary}}],
    }


def _silent(name: str) -> dict[str, Any]:
    return {"alertname": name, "eval_time": EVAL, "exp_alerts": []}


ALERTS = [r["alert"] for r in monitoring.rule_groups(SPEC, MON)[1]["rules"]]
NS = {"namespace": "models"}
TRACKED = {**NS, "model_deployment": "bert"}

BAD_SERIES = [
    *_series("stable", 100, 0, slow=False),
    *_series("canary", 90, 10, slow=True),  # 10 % errors, p99 995 ms
    *_infra(available=1, desired=2, gpu_util=97),
]
BAD_ALERTS = {
    "ModelErrorRatioOverSLO": _alert(
        "ModelErrorRatioOverSLO",
        {**TRACKED, "track": "canary", "severity": "critical"},
        "bert (canary) answers 10% errors",
    ),
    "ModelLatencyP99OverSLO": _alert(
        "ModelLatencyP99OverSLO",
        {**TRACKED, "track": "canary", "severity": "warning"},
        "bert (canary) p99 is 995ms",
    ),
    "ModelReplicasUnavailable": _alert(
        "ModelReplicasUnavailable",
        {**NS, "deployment": "bert", "severity": "critical"},
        "bert has 50% of its replicas available",
    ),
    "ModelGpuSaturated": _alert(
        "ModelGpuSaturated",
        {**NS, "pod": "bert-6d9f-x2", "severity": "warning"},
        "bert-6d9f-x2 GPUs are 97 % busy",
    ),
    "ModelCanaryWorseThanStable": _alert(
        "ModelCanaryWorseThanStable",
        {**TRACKED, "severity": "warning"},
        "the canary of bert is worse than stable",
    ),
}
GOOD_SERIES = [
    *_series("stable", 100, 0, slow=False),
    *_series("canary", 100, 0, slow=False),
    *_infra(available=2, desired=2, gpu_util=40),
]


def test_every_alert_has_a_firing_case() -> None:
    assert sorted(BAD_ALERTS) == sorted(ALERTS)
    assert len(ALERTS) == 5


def _rules_test(tmp_path: Path, series: list[dict[str, str]], cases: list[Any]) -> str:
    groups = monitoring.rule_groups(SPEC, MON)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": groups}), encoding="utf-8")
    doc = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "15s",
        "tests": [{"interval": "15s", "input_series": series, "alert_rule_test": cases}],
    }
    (tmp_path / "rules_test.yml").write_text(yaml.safe_dump(doc, width=1000), encoding="utf-8")
    return "rules_test.yml"


@pytest.mark.parametrize("alert", ALERTS)
def test_alert_fires_on_bad_series(promtool: str, tmp_path: Path, alert: str) -> None:
    test_file = _rules_test(tmp_path, BAD_SERIES, [BAD_ALERTS[alert]])
    out = run(promtool, "test", "rules", test_file, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("alert", ALERTS)
def test_alert_is_silent_on_good_series(promtool: str, tmp_path: Path, alert: str) -> None:
    test_file = _rules_test(tmp_path, GOOD_SERIES, [_silent(alert)])
    out = run(promtool, "test", "rules", test_file, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_wrong_expectation_fails(promtool: str, tmp_path: Path) -> None:
    """promtool test rules can fail: expecting silence on the bad series does."""
    test_file = _rules_test(tmp_path, BAD_SERIES, [_silent("ModelErrorRatioOverSLO")])
    out = run(promtool, "test", "rules", test_file, cwd=tmp_path)
    assert out.returncode != 0


# --- the server exposes what the rules read ----------------------------------------------------


def test_the_server_exposes_every_series_the_rules_read(ready_server: ModelServer) -> None:
    assert ready_server.predict([[5.1, 3.5, 1.4, 0.2]]).status_code == 200
    text = ready_server.metrics_text()
    m = MON.metrics
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
    assert {m.requests, f"{m.request_duration}_bucket"} <= names
    predict = [ln for ln in text.splitlines() if ln.startswith(m.requests + "{")]
    assert any(
        f'{m.route_label}="{m.route}"' in ln and f'{m.status_label}="200"' in ln for ln in predict
    )
    # Every model-server series a rendered rule or dashboard names is exposed (the rest are
    # recorded series, kube-state-metrics, cAdvisor and DCGM).
    used = set()
    for groups in RULES.values():
        for g in groups:
            for r in g["rules"]:
                used |= {w for w in _words(r["expr"]) if w.startswith("model_")}
    for board in DASHBOARDS.values():
        for p in board["panels"]:
            for t in p["targets"]:
                used |= {w for w in _words(t["expr"]) if w.startswith("model_")}
    assert used - names == set()
    assert used  # the rules do read model-server series


def _words(expr: str) -> set[str]:
    import re

    # Metric names before a selector; recorded series contain ':' and are not the server's.
    return {w for w in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", expr) if ":" not in w}
