"""Where GPU pods run: the node label, taint and tolerations made from a row of the GPU table.

Node pools (:mod:`servestack.manifests.node_pools`) put the label and taint on their nodes;
GPU deployments (:mod:`servestack.manifests.workload`) select the label and tolerate the
taint. Both call these functions, so a pool and the pods meant for it cannot disagree.
"""

from __future__ import annotations

from servestack.config.gpu import MIG_CONFIG_LABEL, GpuInfo
from servestack.contract import labels

#: Taint GKE adds to every GPU node by itself; deployments tolerate it everywhere.
NVIDIA_TAINT_KEY = "nvidia.com/gpu"


def node_selector(gpu: GpuInfo) -> dict[str, str]:
    """The label every pool of this GPU puts on its nodes and its deployments select."""
    return {labels.GPU: gpu.label_value}


def taint(gpu: GpuInfo) -> dict[str, str]:
    """The taint a pool of this GPU carries, in Kubernetes' shape."""
    return {"key": labels.GPU, "value": gpu.label_value, "effect": "NoSchedule"}


def tolerations(gpu: GpuInfo) -> list[dict[str, str]]:
    """Tolerations a pod asking for this GPU needs on any backend."""
    return [
        {"key": labels.GPU, "operator": "Equal", "value": gpu.label_value, "effect": "NoSchedule"},
        {"key": NVIDIA_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"},
    ]


def mig_config(partitioning: str | None) -> dict[str, str]:
    """The GPU operator's label partitioning a MIG pool's GPUs (none for whole GPUs)."""
    return {MIG_CONFIG_LABEL: partitioning} if partitioning else {}
