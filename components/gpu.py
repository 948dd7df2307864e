"""The one GPU vocabulary.

Every place that needs to know something about a GPU type (container resource key, the
node label a deployment selects, the taint a node pool carries and a deployment tolerates,
cloud machine types and accelerator names) reads this table, so a pool and the pods meant
for it can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class GpuType(StrEnum):
    T4 = "T4"
    V100 = "V100"
    A10G = "A10G"
    A100 = "A100"
    L4 = "L4"
    L40S = "L40S"
    H100 = "H100"


#: Label every servestack node pool puts on its nodes, and every GPU deployment selects.
GPU_LABEL = "servestack.io/gpu"
#: Label naming the node pool a node belongs to.
POOL_LABEL = "servestack.io/node-pool"
#: Extended resource advertised by the NVIDIA device plugin.
GPU_RESOURCE = "nvidia.com/gpu"
#: Taint GKE adds to every GPU node by itself; deployments tolerate it everywhere.
NVIDIA_TAINT_KEY = "nvidia.com/gpu"


@dataclass(frozen=True)
class GpuInfo:
    """What one GPU type compiles into."""

    type: GpuType
    memory_gib: int
    #: Value of the `nvidia.com/gpu.product` label set by GPU feature discovery.
    product_label: str
    #: GKE `guest_accelerator.type`; None where GKE offers no such GPU.
    gke_accelerator: str | None
    #: Value of Karpenter's `karpenter.k8s.aws/instance-gpu-name` requirement.
    karpenter_gpu_name: str
    #: Default GKE machine type by GPUs per machine (users may name another).
    gke_machines: Mapping[int, str] = field(default_factory=dict)
    #: Default EC2 instance type by GPUs per instance, for EKS and Karpenter.
    eks_instances: Mapping[int, str] = field(default_factory=dict)

    @property
    def label_value(self) -> str:
        """Value of :data:`GPU_LABEL` on nodes carrying this GPU (lower case, label-safe)."""
        return self.type.value.lower()

    def default_machine(self, provider: str, gpus_per_node: int) -> str | None:
        """The machine type carrying exactly ``gpus_per_node`` of these GPUs, if any."""
        table = self.gke_machines if provider == "gke" else self.eks_instances
        return table.get(gpus_per_node)

    def node_selector(self) -> dict[str, str]:
        return {GPU_LABEL: self.label_value}

    def taint(self) -> dict[str, str]:
        """The taint a pool of this GPU carries, in Kubernetes' shape."""
        return {"key": GPU_LABEL, "value": self.label_value, "effect": "NoSchedule"}

    def tolerations(self) -> list[dict[str, str]]:
        """Tolerations a pod asking for this GPU needs on any backend."""
        return [
            {
                "key": GPU_LABEL,
                "operator": "Equal",
                "value": self.label_value,
                "effect": "NoSchedule",
            },
            {"key": NVIDIA_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"},
        ]


GPU_TABLE: dict[GpuType, GpuInfo] = {
    info.type: info
    for info in (
        GpuInfo(
            GpuType.T4,
            16,
            "Tesla-T4",
            "nvidia-tesla-t4",
            "t4",
            gke_machines={1: "n1-standard-8", 2: "n1-standard-16", 4: "n1-standard-32"},
            eks_instances={1: "g4dn.xlarge", 4: "g4dn.12xlarge", 8: "g4dn.metal"},
        ),
        GpuInfo(
            GpuType.V100,
            16,
            "Tesla-V100-SXM2-16GB",
            "nvidia-tesla-v100",
            "v100",
            gke_machines={
                1: "n1-standard-8",
                2: "n1-standard-16",
                4: "n1-standard-32",
                8: "n1-standard-64",
            },
            eks_instances={1: "p3.2xlarge", 4: "p3.8xlarge", 8: "p3.16xlarge"},
        ),
        GpuInfo(
            GpuType.A10G,
            24,
            "NVIDIA-A10G",
            None,
            "a10g",
            eks_instances={1: "g5.xlarge", 4: "g5.12xlarge", 8: "g5.48xlarge"},
        ),
        GpuInfo(
            GpuType.A100,
            40,
            "NVIDIA-A100-SXM4-40GB",
            "nvidia-tesla-a100",
            "a100",
            gke_machines={
                1: "a2-highgpu-1g",
                2: "a2-highgpu-2g",
                4: "a2-highgpu-4g",
                8: "a2-highgpu-8g",
                16: "a2-megagpu-16g",
            },
            eks_instances={8: "p4d.24xlarge"},
        ),
        GpuInfo(
            GpuType.L4,
            24,
            "NVIDIA-L4",
            "nvidia-l4",
            "l4",
            gke_machines={
                1: "g2-standard-8",
                2: "g2-standard-24",
                4: "g2-standard-48",
                8: "g2-standard-96",
            },
            eks_instances={1: "g6.xlarge", 4: "g6.12xlarge", 8: "g6.48xlarge"},
        ),
        GpuInfo(
            GpuType.L40S,
            48,
            "NVIDIA-L40S",
            None,
            "l40s",
            eks_instances={1: "g6e.xlarge", 4: "g6e.12xlarge", 8: "g6e.48xlarge"},
        ),
        GpuInfo(
            GpuType.H100,
            80,
            "NVIDIA-H100-80GB-HBM3",
            "nvidia-h100-80gb",
            "h100",
            gke_machines={8: "a3-highgpu-8g"},
            eks_instances={8: "p5.48xlarge"},
        ),
    )
}


def gpu_info(gpu_type: GpuType | str) -> GpuInfo:
    return GPU_TABLE[GpuType(gpu_type)]
