"""The one GPU vocabulary.

Every place that needs to know something about a GPU type (container resource key, the
node label a deployment selects, the taint a node pool carries and a deployment tolerates,
cloud machine types and accelerator names) reads this table, so a pool and the pods meant
for it can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from servestack.contract import labels


class GpuType(StrEnum):
    T4 = "T4"
    V100 = "V100"
    A10G = "A10G"
    A100 = "A100"
    L4 = "L4"
    L40S = "L40S"
    H100 = "H100"


#: Label every servestack node pool puts on its nodes, and every GPU deployment selects.
GPU_LABEL = labels.GPU
#: Label naming the node pool a node belongs to.
POOL_LABEL = labels.NODE_POOL
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

    @property
    def gke_machines(self) -> Mapping[int, str]:
        """Default GKE machine type by GPUs per machine (from the machine table)."""
        from servestack.config.machines import Family, defaults

        return defaults(Family.gce, self.type)

    @property
    def eks_instances(self) -> Mapping[int, str]:
        """Default EC2 instance type by GPUs per instance (EKS, Karpenter, local)."""
        from servestack.config.machines import Family, defaults

        return defaults(Family.ec2, self.type)

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
        ),
        GpuInfo(
            GpuType.V100,
            16,
            "Tesla-V100-SXM2-16GB",
            "nvidia-tesla-v100",
            "v100",
        ),
        GpuInfo(
            GpuType.A10G,
            24,
            "NVIDIA-A10G",
            None,
            "a10g",
        ),
        GpuInfo(
            GpuType.A100,
            40,
            "NVIDIA-A100-SXM4-40GB",
            "nvidia-tesla-a100",
            "a100",
        ),
        GpuInfo(
            GpuType.L4,
            24,
            "NVIDIA-L4",
            "nvidia-l4",
            "l4",
        ),
        GpuInfo(
            GpuType.L40S,
            48,
            "NVIDIA-L40S",
            None,
            "l40s",
        ),
        GpuInfo(
            GpuType.H100,
            80,
            "NVIDIA-H100-80GB-HBM3",
            "nvidia-h100-80gb",
            "h100",
        ),
    )
}


def gpu_info(gpu_type: GpuType | str) -> GpuInfo:
    return GPU_TABLE[GpuType(gpu_type)]
