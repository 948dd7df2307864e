"""The one GPU vocabulary.

Every place that needs to know something about a GPU type (container resource key, the
value of the node label a deployment selects and a pool's taint, accelerator names) reads
this table, so a pool and the pods meant for it can never disagree. Default machine types
per provider are the machine table's (:mod:`servestack.config.machines`); the label, taint
and tolerations built from a row are the manifests'
(:mod:`servestack.manifests.gpu_scheduling`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class GpuType(StrEnum):
    T4 = "T4"
    V100 = "V100"
    A10G = "A10G"
    A100 = "A100"
    L4 = "L4"
    L40S = "L40S"
    H100 = "H100"


#: Extended resource advertised by the NVIDIA device plugin.
GPU_RESOURCE = "nvidia.com/gpu"


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
    def label_value(self) -> str:
        """Value of the GPU node label on nodes carrying this GPU (lower case, label-safe)."""
        return self.type.value.lower()


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
