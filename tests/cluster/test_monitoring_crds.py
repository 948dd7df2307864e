"""The Prometheus operator's upstream CRDs, on the local cluster, accept every
ServiceMonitor, PodMonitor and PrometheusRule that the stacks in stacks/ and the sample
stacks render, as rendered: each is created on the API server, and what the server stored
holds every field servestack wrote (the server may add the CRD's defaults, such as a
relabeling's `action: replace`, never drop or change a field).

The check can fail: negative controls with one field the CRD refuses (a duration written
"30 seconds", a rule group without a name) are rejected with 422.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException

from servestack.config.validation import load_stack_config
from servestack.manifests.render import render_stack
from servestack.manifests.sample import SAMPLES, sample_stack
from tests import REPO
from tests.cluster.live import api_client, objects_with_our_labels, wait_until_clean

pytestmark = pytest.mark.cluster

KINDS = ("ServiceMonitor", "PodMonitor", "PrometheusRule")
NS = "monitoring-crds"


def rendered_monitoring() -> dict[str, dict[str, Any]]:
    """`<stack>:<kind>/<name>` -> manifest, for every monitoring object the stacks render."""
    configs: dict[str, Any] = {f"sample:{n}": sample_stack(n) for n in SAMPLES}
    for path in sorted((REPO / "stacks").glob("Pulumi.*.yaml")):
        configs[path.stem.removeprefix("Pulumi.")] = load_stack_config(path)
    out = {}
    for label, config in configs.items():
        for record in render_stack(config).resources.values():
            m = record.manifest
            if m.get("apiVersion") == "monitoring.coreos.com/v1" and m["kind"] in KINDS:
                out[f"{label}:{m['kind']}/{m['metadata']['name']}"] = m
    return out


def missing(want: Any, got: Any, path: str = "") -> list[str]:
    """The fields of ``want`` that ``got`` lacks or holds differently (``got`` may have
    more keys: the server's defaults). Lists compare item by item."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{path}: {got!r} is not an object"]
        return [p for k, v in want.items() for p in missing(v, got.get(k), f"{path}.{k}")]
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [f"{path}: {got!r} has not the {len(want)} items rendered"]
        return [
            p
            for i, (w, g) in enumerate(zip(want, got, strict=True))
            for p in missing(w, g, f"{path}[{i}]")
        ]
    return [] if want == got else [f"{path}: rendered {want!r}, stored {got!r}"]


RENDERED = rendered_monitoring()


def test_the_stacks_render_each_kind() -> None:
    assert {m["kind"] for m in RENDERED.values()} == set(KINDS), sorted(RENDERED)


@pytest.fixture(scope="module")
def dyn(local_cluster: Path) -> Any:
    api = api_client(local_cluster)
    assert objects_with_our_labels(api) == [], "the cluster is not clean before the test"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": NS}})
    try:
        yield dynamic.DynamicClient(api)
    finally:
        core.delete_namespace(NS)
        wait_until_clean(api)


@pytest.mark.parametrize("key", sorted(RENDERED))
def test_crd_accepts_rendered(dyn: Any, key: str) -> None:
    manifest = copy.deepcopy(RENDERED[key])
    # One namespace for all: the stacks' namespaces would collide across samples, and the
    # object's name is unique within a stack's kind only.
    manifest["metadata"] = {**manifest["metadata"], "namespace": NS, "name": _name(key)}
    res = dyn.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
    stored = res.create(body=manifest, namespace=NS).to_dict()
    try:
        assert missing(manifest["spec"], stored["spec"], "spec") == []
    finally:
        res.delete(name=manifest["metadata"]["name"], namespace=NS)


def _name(key: str) -> str:
    return key.replace(":", "-").replace("/", "-").lower()[:253]


def _bad_interval(m: dict[str, Any]) -> None:
    m["spec"]["endpoints" if m["kind"] == "ServiceMonitor" else "podMetricsEndpoints"][0][
        "interval"
    ] = "30 seconds"


def _nameless_group(m: dict[str, Any]) -> None:
    del m["spec"]["groups"][0]["name"]


CONTROLS = {
    "ServiceMonitor": (_bad_interval, "interval"),
    "PodMonitor": (_bad_interval, "interval"),
    "PrometheusRule": (_nameless_group, "name"),
}


@pytest.mark.parametrize("kind", KINDS)
def test_crd_refuses_a_broken_copy(dyn: Any, kind: str) -> None:
    key = next(k for k, m in sorted(RENDERED.items()) if m["kind"] == kind)
    manifest = copy.deepcopy(RENDERED[key])
    manifest["metadata"] = {**manifest["metadata"], "namespace": NS, "name": "broken"}
    breaks, field = CONTROLS[kind]
    breaks(manifest)
    res = dyn.resources.get(api_version=manifest["apiVersion"], kind=kind)
    with pytest.raises(ApiException) as refused:
        res.create(body=manifest, namespace=NS)
    assert refused.value.status == 422, refused.value
    assert field in str(refused.value.body), refused.value.body
