"""The one GPU vocabulary.

Every place that needs to know something about a GPU type (container resource key, the
value of the node label a deployment selects and a pool's taint, accelerator names) reads
this table, so a pool and the pods meant for it can never disagree. MIG profiles (the slices a
GPU can be cut into) are rows of it too: NVIDIA's MIG user guide
(https://docs.nvidia.com/datacenter/tesla/mig-user-guide/supported-mig-profiles.html), and for
the H200 a measurement on the hardware. Default machine types
per provider are the machine table's (:mod:`servestack.config.machines`); the label, taint
and tolerations built from a row are the manifests'
(:mod:`servestack.manifests.gpu_scheduling`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class GpuType(StrEnum):
    T4 = "T4"
    V100 = "V100"
    A10G = "A10G"
    A100 = "A100"
    A100_80GB = "A100-80GB"
    L4 = "L4"
    L40S = "L40S"
    H100 = "H100"
    H200 = "H200"
    B200 = "B200"


#: Extended resource advertised by the NVIDIA device plugin.
GPU_RESOURCE = "nvidia.com/gpu"
#: A MIG slice's resource under the GPU operator's "mixed" strategy: `nvidia.com/mig-<profile>`.
MIG_RESOURCE_PREFIX = "nvidia.com/mig-"
#: Node label the GPU operator's MIG manager partitions a node's GPUs by (`all-<profile>`).
MIG_CONFIG_LABEL = "nvidia.com/mig.config"
#: Prefix of a partitioning that cuts every GPU of a node into one profile's slices.
MIG_ALL = "all-"
#: Compute slices of a whole MIG-capable GPU (every GPU of the table's has 7).
MIG_COMPUTE_SLICES = 7
_PROFILE_RE = re.compile(r"^([1-9][0-9]*)g\.([1-9][0-9]*)gb(\+me)?$")


@dataclass(frozen=True)
class MigProfile:
    """One MIG GPU instance profile (`nvidia-smi mig -lgip`): its name and how many fit a GPU."""

    name: str
    #: Instances of this profile on one GPU when the GPU holds only this profile.
    per_gpu: int

    @property
    def media(self) -> bool:
        """A `+me` profile (media extensions): one per GPU, not offered as a slice resource."""
        return self.name.endswith("+me")

    @property
    def resource(self) -> str:
        """The extended resource a pod requests for one slice (GPU operator, mixed strategy)."""
        return f"{MIG_RESOURCE_PREFIX}{self.name}"


def parse_profile(name: str) -> tuple[int, int] | None:
    """(compute slices, memory GB) named by a profile such as `3g.40gb`; None if malformed."""
    m = _PROFILE_RE.match(name)
    return (int(m[1]), int(m[2])) if m else None


def _mig(*rows: tuple[str, int]) -> tuple[MigProfile, ...]:
    return tuple(MigProfile(name, n) for name, n in rows)


@dataclass(frozen=True)
class GpuInfo:
    """What one GPU type compiles into."""

    type: GpuType
    #: GPU memory as NVIDIA names it (GB, the figure of the whole-GPU MIG profile, `7g.<n>gb`).
    #: EC2's table gives the same GPUs in GiB: 16 (T4, V100), 22 (A10G, L4), 44 (L40S), 40 and 80
    #: (A100), 80 (H100), 141 (H200), 179 (B200).
    memory_gib: int
    #: Values of the `nvidia.com/gpu.product` label GPU feature discovery sets on nodes with
    #: this GPU: one per board (SXM, PCIe). GFD labels NVML's product name with the characters
    #: outside `[A-Za-z0-9-_. ]` dropped and runs of blanks as one '-' (NVIDIA/k8s-device-plugin,
    #: internal/lm/resource.go, `sanitise`); under the MIG "mixed" strategy the label keeps the
    #: whole GPU's name. The values below are those names as GFD-labelled nodes in public
    #: cluster configurations carry them (the H200's measured, issue 21).
    product_labels: tuple[str, ...]
    #: GKE `guest_accelerator.type`; None where GKE offers no such GPU. The A100, A100-80GB,
    #: H100, H200 and B200 names are those of GKE's device plugin
    #: (GoogleCloudPlatform/container-engine-accelerators, pkg/gpu/nvidia/mig/mig.go).
    gke_accelerator: str | None
    #: Value of Karpenter's `karpenter.k8s.aws/instance-gpu-name` requirement, as Karpenter's
    #: generated "Instance Types" reference lists it per EC2 type
    #: (https://karpenter.sh/docs/reference/instance-types/; v100 from its v1.0 edition).
    karpenter_gpu_name: str
    #: MIG instance profiles; empty for a GPU without MIG.
    mig: tuple[MigProfile, ...] = ()

    @property
    def label_value(self) -> str:
        """Value of the GPU node label on nodes carrying this GPU (lower case, label-safe)."""
        return self.type.value.lower()

    def mig_profile(self, name: str) -> MigProfile | None:
        return next((p for p in self.mig if p.name == name), None)

    @property
    def slice_profiles(self) -> list[str]:
        """Profiles a deployment may ask for and a pool may partition into (no `+me`)."""
        return [p.name for p in self.mig if not p.media]


GPU_TABLE: dict[GpuType, GpuInfo] = {
    info.type: info
    for info in (
        GpuInfo(
            GpuType.T4,
            16,
            ("Tesla-T4",),
            "nvidia-tesla-t4",
            "t4",
        ),
        GpuInfo(
            GpuType.V100,
            16,
            ("Tesla-V100-SXM2-16GB", "Tesla-V100-PCIE-16GB"),
            "nvidia-tesla-v100",
            "v100",
        ),
        GpuInfo(
            GpuType.A10G,
            24,
            ("NVIDIA-A10G",),
            None,
            "a10g",
        ),
        GpuInfo(
            GpuType.A100,
            40,
            ("NVIDIA-A100-SXM4-40GB", "NVIDIA-A100-PCIE-40GB"),
            "nvidia-tesla-a100",
            "a100",
            # MIG user guide, "Supported MIG Profiles", A100-SXM4-40GB table; GKE's device
            # plugin (mig.go) has the same counts for nvidia-tesla-a100.
            _mig(
                ("1g.5gb", 7),
                ("1g.5gb+me", 1),
                ("1g.10gb", 4),
                ("2g.10gb", 3),
                ("3g.20gb", 2),
                ("4g.20gb", 1),
                ("7g.40gb", 1),
            ),
        ),
        GpuInfo(
            GpuType.A100_80GB,
            80,
            ("NVIDIA-A100-SXM4-80GB", "NVIDIA-A100-80GB-PCIe"),
            "nvidia-a100-80gb",
            # EC2 names both A100s `a100`; the pool's instance-type requirement tells them apart.
            "a100",
            # MIG user guide, "Supported MIG Profiles", A100: "For A100-SXM4-80GB, the profile
            # names will change according to the memory proportion" (1g.10gb, 1g.10gb+me,
            # 1g.20gb, 2g.20gb, 3g.40gb, 4g.40gb, 7g.80gb), with the 40 GB table's instance
            # counts; GKE's mig.go gives nvidia-a100-80gb the same counts.
            _mig(
                ("1g.10gb", 7),
                ("1g.10gb+me", 1),
                ("1g.20gb", 4),
                ("2g.20gb", 3),
                ("3g.40gb", 2),
                ("4g.40gb", 1),
                ("7g.80gb", 1),
            ),
        ),
        GpuInfo(
            GpuType.L4,
            24,
            ("NVIDIA-L4",),
            "nvidia-l4",
            "l4",
        ),
        GpuInfo(
            GpuType.L40S,
            48,
            ("NVIDIA-L40S",),
            None,
            "l40s",
        ),
        GpuInfo(
            GpuType.H100,
            80,
            ("NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-PCIe"),
            "nvidia-h100-80gb",
            "h100",
            # MIG user guide, "Supported MIG Profiles", H100 MIG profiles (H100-SXM5-80GB);
            # GKE's mig.go agrees for nvidia-h100-80gb.
            _mig(
                ("1g.10gb", 7),
                ("1g.10gb+me", 1),
                ("1g.20gb", 4),
                ("2g.20gb", 3),
                ("3g.40gb", 2),
                ("4g.40gb", 1),
                ("7g.80gb", 1),
            ),
        ),
        GpuInfo(
            GpuType.H200,
            141,
            # Measured: nvidia-smi reports "NVIDIA H200, 143771 MiB" (driver 580.159.04); GPU
            # feature discovery labels it NVIDIA-H200.
            ("NVIDIA-H200",),
            "nvidia-h200-141gb",
            "h200",
            # Measured on that H200 with `nvidia-smi mig -lgip` (servestack issue 21); GKE's
            # mig.go has the same names and counts for nvidia-h200-141gb.
            _mig(
                ("1g.18gb", 7),
                ("1g.18gb+me", 1),
                ("1g.35gb", 4),
                ("2g.35gb", 3),
                ("3g.71gb", 2),
                ("4g.71gb", 1),
                ("7g.141gb", 1),
            ),
        ),
        GpuInfo(
            GpuType.B200,
            # MIG user guide, "Supported GPUs": B200, 180GB, 7 instances at most.
            180,
            ("NVIDIA-B200",),
            "nvidia-b200",
            "b200",
            # MIG user guide, "Supported MIG Profiles", B200 MIG profiles; GKE's mig.go has the
            # same names and counts for nvidia-b200.
            _mig(
                ("1g.23gb", 7),
                ("1g.23gb+me", 1),
                ("1g.45gb", 4),
                ("2g.45gb", 3),
                ("3g.90gb", 2),
                ("4g.90gb", 1),
                ("7g.180gb", 1),
            ),
        ),
    )
}


def gpu_info(gpu_type: GpuType | str) -> GpuInfo:
    return GPU_TABLE[GpuType(gpu_type)]


def with_mig() -> list[GpuType]:
    """GPU types that can be partitioned into MIG slices, for messages."""
    return [t for t, info in GPU_TABLE.items() if info.mig]


def slice_resource(gpu_type: GpuType, profile: str | None) -> str:
    """The resource one unit of a GPU request is: a whole GPU, or one slice of ``profile``."""
    if profile is None:
        return GPU_RESOURCE
    found = gpu_info(gpu_type).mig_profile(profile)
    assert found is not None, "validation guarantees a profile of the GPU type"
    return found.resource


def replica_gpu_resources(gpu_type: GpuType | None, count: int, mig: str | None) -> dict[str, int]:
    """What one replica asking for ``count`` GPUs (or slices of ``mig``) requests."""
    if gpu_type is None or count == 0:
        return {}
    return {slice_resource(gpu_type, mig): count}


def short_of(requests: dict[str, int], offers: dict[str, int]) -> dict[str, int]:
    """Extended resources ``requests`` needs beyond ``offers`` (by resource name, any kind),
    mapped to what is offered of each; empty when the requests fit."""
    return {r: offers.get(r, 0) for r, n in requests.items() if n > offers.get(r, 0)}


def unit(resource: str) -> str:
    """How a message counts a resource: GPUs, or `1g.18gb` slices."""
    if resource.startswith(MIG_RESOURCE_PREFIX):
        return f"{resource.removeprefix(MIG_RESOURCE_PREFIX)} slices"
    return "GPUs"


def partition_profile(partitioning: str | None) -> str | None:
    """The profile of a pool's partitioning (`all-1g.18gb` -> `1g.18gb`)."""
    if partitioning is None:
        return None
    return partitioning.removeprefix(MIG_ALL)


def node_gpu_resources(gpu_type: GpuType, gpus: int, partitioning: str | None) -> dict[str, int]:
    """What a node with ``gpus`` of ``gpu_type`` advertises: whole GPUs, or the slices of its
    partitioning (a partitioned GPU is no longer offered whole under the mixed strategy)."""
    profile = partition_profile(partitioning)
    if profile is None:
        return {GPU_RESOURCE: gpus}
    found = gpu_info(gpu_type).mig_profile(profile)
    assert found is not None, "validation guarantees a profile of the GPU type"
    return {found.resource: gpus * found.per_gpu}
