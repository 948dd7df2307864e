"""Where GPU pods run: the node label, taint and tolerations made from a row of the GPU table
and the cluster's `gpuLabels` (which labels and taint mark its GPU nodes).

- `servestack`: nodes carry `servestack.io/gpu: <type>` and a taint of that key; pods select
  the label and tolerate that taint and `nvidia.com/gpu`;
- `gpu-operator`: nodes carry GPU feature discovery's `nvidia.com/gpu.product` and the
  `nvidia.com/gpu` taint; pods select the type's product names and tolerate that taint;
- `custom`: nodes carry `<key>: <value of the type>` and the taint `<taint>`; pods select
  the label and tolerate `<taint>` and `nvidia.com/gpu`.

Node pools (:mod:`servestack.manifests.node_pools`) put the label and taint on their nodes;
GPU deployments (:mod:`servestack.manifests.workload`) select the label and tolerate the
taint. Both call these functions, so a pool and the pods meant for it cannot disagree.
"""

from __future__ import annotations

from typing import Any

from servestack.config.gpu import MIG_CONFIG_LABEL, GpuInfo
from servestack.config.models import ClusterSpec, CustomGpuLabels, GpuLabels
from servestack.contract import labels

#: Taint GKE and the GPU operator's users put on GPU nodes; deployments tolerate it everywhere.
NVIDIA_TAINT_KEY = "nvidia.com/gpu"
#: The label GPU feature discovery (part of NVIDIA's GPU operator) sets to the GPU's product.
PRODUCT_LABEL = "nvidia.com/gpu.product"
#: The value the GPU operator's documentation gives its GPU node taint.
NVIDIA_TAINT_VALUE = "present"

#: How a cluster marks its GPU nodes: a mode, or the custom label and taint themselves.
GpuMarks = GpuLabels | CustomGpuLabels

MODE = "cluster.gpuLabels"
CUSTOM = "cluster.customGpuLabels"


def marks_of(cluster: ClusterSpec) -> GpuMarks:
    return cluster.custom_gpu_labels or cluster.gpu_labels


def label_fields(gpu: GpuInfo, marks: GpuMarks) -> tuple[str, ...]:
    """The stack fields the GPU node label is made from, besides the GPU type (provenance)."""
    if isinstance(marks, CustomGpuLabels):
        return (MODE, f"{CUSTOM}.key", f"{CUSTOM}.values.{gpu.type.value}")
    return (MODE,)


def taint_fields(gpu: GpuInfo, marks: GpuMarks) -> tuple[str, ...]:
    """The stack fields a pool's GPU taint is made from, besides the GPU type."""
    if isinstance(marks, CustomGpuLabels):
        return (MODE, f"{CUSTOM}.taint", f"{CUSTOM}.values.{gpu.type.value}")
    return (MODE,)


def toleration_fields(marks: GpuMarks) -> tuple[str, ...]:
    """The stack fields a GPU pod's tolerations are made from, besides the GPU type."""
    return (MODE, f"{CUSTOM}.taint") if isinstance(marks, CustomGpuLabels) else (MODE,)


def node_selector(gpu: GpuInfo, marks: GpuMarks = GpuLabels.servestack) -> dict[str, str]:
    """The label every node of this GPU carries (a pool's nodes: its first product name)."""
    if isinstance(marks, CustomGpuLabels):
        return {marks.key: marks.values[gpu.type]}
    if marks is GpuLabels.gpu_operator:
        return {PRODUCT_LABEL: gpu.product_labels[0]}
    return {labels.GPU: gpu.label_value}


def taint(gpu: GpuInfo, marks: GpuMarks = GpuLabels.servestack) -> dict[str, str]:
    """The taint a pool of this GPU carries, in Kubernetes' shape."""
    if isinstance(marks, CustomGpuLabels):
        return {"key": marks.taint, "value": marks.values[gpu.type], "effect": "NoSchedule"}
    if marks is GpuLabels.gpu_operator:
        return {"key": NVIDIA_TAINT_KEY, "value": NVIDIA_TAINT_VALUE, "effect": "NoSchedule"}
    return {"key": labels.GPU, "value": gpu.label_value, "effect": "NoSchedule"}


def _exists(key: str) -> dict[str, str]:
    return {"key": key, "operator": "Exists", "effect": "NoSchedule"}


def tolerations(gpu: GpuInfo, marks: GpuMarks = GpuLabels.servestack) -> list[dict[str, str]]:
    """Tolerations a pod asking for this GPU needs on any backend."""
    if isinstance(marks, CustomGpuLabels):
        return [_exists(marks.taint), _exists(NVIDIA_TAINT_KEY)]
    if marks is GpuLabels.gpu_operator:
        return [_exists(NVIDIA_TAINT_KEY)]
    return [
        {"key": labels.GPU, "operator": "Equal", "value": gpu.label_value, "effect": "NoSchedule"},
        _exists(NVIDIA_TAINT_KEY),
    ]


def placement(gpu: GpuInfo, marks: GpuMarks = GpuLabels.servestack) -> dict[str, Any]:
    """What a GPU pod's spec needs to land on nodes of this GPU: a node selector, or (a GPU
    sold as several boards under gpu-operator) a node affinity over its product names."""
    if marks is GpuLabels.gpu_operator and len(gpu.product_labels) > 1:
        required = {"nodeSelectorTerms": [{"matchExpressions": [placement_term(gpu)]}]}
        return {
            "affinity": {
                "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}
            }
        }
    return {"nodeSelector": node_selector(gpu, marks)}


def placement_term(gpu: GpuInfo) -> dict[str, Any]:
    """The node expression selecting any of a GPU's product names (gpu-operator labels)."""
    return {"key": PRODUCT_LABEL, "operator": "In", "values": list(gpu.product_labels)}


def mig_config(partitioning: str | None) -> dict[str, str]:
    """The GPU operator's label partitioning a MIG pool's GPUs (none for whole GPUs)."""
    return {MIG_CONFIG_LABEL: partitioning} if partitioning else {}
