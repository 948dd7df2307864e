"""`cluster.gpuLabels` on the local cluster (provider `local`): under each mode the pool's
kwok node carries that mode's GPU label and taint (under `gpu-operator`, GPU feature
discovery's `nvidia.com/gpu.product` and the `nvidia.com/gpu` taint, as on a cluster run by
NVIDIA's GPU operator), and the real scheduler places the GPU pod on it: the pod selects
the label and tolerates the taint of its mode, and no other node offers a GPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from servestack.config.gpu import GPU_RESOURCE, GPU_TABLE, GpuType
from servestack.config.stackfile import set_value
from servestack.contract import labels
from servestack.manifests.gpu_scheduling import NVIDIA_TAINT_KEY, PRODUCT_LABEL
from tests.cluster.live import (
    api_client,
    deploy_stack,
    local_stack_text,
    objects_with_our_labels,
    wait_for,
    wait_until_clean,
)

pytestmark = pytest.mark.cluster

STACK, NS, DEP = "existing", "models-gpu", "chat"
H100 = GPU_TABLE[GpuType.H100]
CUSTOM = {
    "key": "example.com/accelerator",
    "values": {"H100": "nvidia-h100"},
    "taint": "example.com/gpu",
}
#: mode -> (node label the pool's node carries, taint key on it)
EXPECTED = {
    "servestack": ((labels.GPU, "h100"), labels.GPU),
    "gpu-operator": ((PRODUCT_LABEL, H100.product_labels[0]), NVIDIA_TAINT_KEY),
    "custom": (("example.com/accelerator", "nvidia-h100"), "example.com/gpu"),
}


def _stack(mode: str) -> str:
    text = set_value(local_stack_text(STACK), "cluster.gpuLabels", mode)
    # The model's weights claim is the edit matrix's case (it makes the claim): here the pod
    # only has to be placed.
    text = set_value(text, f"deployments.{DEP}.model.storage", None)
    text = set_value(text, "cluster.customGpuLabels", CUSTOM if mode == "custom" else None)
    pool = {"name": "h100", "gpu": {"type": "H100", "count": 8}, "minNodes": 1}
    return set_value(text, "nodePools", [pool])


def _ready(pod: client.V1Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def _placement(pod: client.V1Pod) -> dict[str, Any]:
    spec = pod.spec
    terms = []
    if spec.affinity and spec.affinity.node_affinity:
        required = spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
        terms = [
            (e.key, e.operator, tuple(e.values))
            for t in required.node_selector_terms
            for e in t.match_expressions
        ]
    return {"selector": spec.node_selector or {}, "affinity": terms}


@pytest.mark.parametrize("mode", list(EXPECTED))
def test_a_gpu_pod_is_scheduled_under_each_gpu_label_mode(
    mode: str, local_cluster: Path, tmp_path: Path
) -> None:
    api = api_client(local_cluster)
    core = client.CoreV1Api(api)
    assert objects_with_our_labels(api) == [], "the cluster is not clean before the test"
    (label_key, label_value), taint_key = EXPECTED[mode]
    s = deploy_stack(tmp_path, local_cluster, STACK, _stack(mode))
    try:
        s.up()
        node = wait_for(
            "the h100 pool's node with its GPUs",
            lambda: [
                n
                for n in core.list_node(label_selector=f"{labels.NODE_POOL}=h100").items
                if (n.status.allocatable or {}).get(GPU_RESOURCE)
            ],
            timeout=90,
        )[0]
        assert node.metadata.labels[label_key] == label_value
        assert [t.key for t in node.spec.taints or []] == [taint_key]
        if mode != "servestack":
            assert labels.GPU not in node.metadata.labels
        pod = wait_for(
            f"{DEP}'s pod Ready",
            lambda: [
                p
                for p in core.list_namespaced_pod(NS, label_selector=f"{labels.NAME}={DEP}").items
                if _ready(p)
            ],
            timeout=120,
        )[0]
        assert pod.spec.node_name == node.metadata.name
        placement = _placement(pod)
        if mode == "gpu-operator":
            # The H100 is sold as two boards: the pod takes either product name.
            assert placement == {
                "selector": {},
                "affinity": [(PRODUCT_LABEL, "In", H100.product_labels)],
            }
        else:
            assert placement == {"selector": {label_key: label_value}, "affinity": []}
        assert taint_key in {t.key for t in pod.spec.tolerations or []}
        print(f"{mode}: {pod.metadata.name} on {node.metadata.name} ({label_key}={label_value})")
    finally:
        s.destroy()
    wait_until_clean(api)
