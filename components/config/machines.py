"""Machine shapes: every machine type a node pool accepts, with its vCPUs, memory and GPUs.

One table serves three purposes: the default machine of a pool (by provider, GPU type and
GPUs per node), the offline check that a deployment fits a node of its pool, and the capacity
of the Node objects a `local` pool creates on the local cluster (where the real scheduler then
decides). Figures are the providers' published shapes; each row group names its source.
Units are the table's: memory and ephemeral storage in GiB.

- EC2 publishes memory in GiB and instance store in GB (10**9 bytes), converted here.
- GCE publishes machine memory in "GB" that are GiB: the Compute Engine API gives the same
  machine's memory as ``memoryMb`` (MiB), e.g. a2-highgpu-1g 85 GB = 87040 MiB, so the table
  takes Google's figure as it is. Local SSD disks are 375 GiB each.

Local storage: a machine with NVMe instance store or bundled Local SSD is given it as the
node's ephemeral storage (Karpenter's `instanceStorePolicy: RAID0`, GKE's ephemeral-storage
Local SSD); a model cache of 200-300 GiB a replica does not fit the 200 GiB default disk. The
g4dn, g5, g6 and g6e rows keep the 200 GiB default although they have instance store (125 GB
to 7,600 GB).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from servestack.config.gpu import GpuType
from servestack.config.models import CloudProvider


class Family(StrEnum):
    """Whose catalogue a machine type comes from."""

    gce = "gce"  # GKE machine types
    ec2 = "ec2"  # EKS, Karpenter and the local cluster's stand-ins


#: The catalogue a provider's pools take their default machine from.
PROVIDER_FAMILY: dict[CloudProvider, Family] = {
    CloudProvider.gke: Family.gce,
    CloudProvider.eks: Family.ec2,
    CloudProvider.karpenter: Family.ec2,
    CloudProvider.local: Family.ec2,
    CloudProvider.existing: Family.ec2,
}


@dataclass(frozen=True)
class Machine:
    name: str
    family: Family
    vcpu: int
    memory_gib: int
    gpu: GpuType
    gpus: int
    #: The pool default for (family, gpu, gpus) when the pool names no machine type.
    default: bool = True
    #: Local ephemeral storage a node of this shape offers pods.
    ephemeral_gib: int = 200
    #: Pods a node of this shape accepts.
    max_pods: int = 110

    def describe(self) -> str:
        return f"{self.name} ({self.vcpu} vCPU, {self.memory_gib} GiB, {self.gpus} x {self.gpu})"


def _m(
    name: str, family: Family, vcpu: int, mem: int, gpu: GpuType, gpus: int, default: bool = True
) -> Machine:
    return Machine(name, family, vcpu, mem, gpu, gpus, default)


_G, _E = Family.gce, Family.ec2
T4, V100, A10G, A100, A100_80GB, L4, L40S, H100, H200, B200 = (
    GpuType.T4,
    GpuType.V100,
    GpuType.A10G,
    GpuType.A100,
    GpuType.A100_80GB,
    GpuType.L4,
    GpuType.L40S,
    GpuType.H100,
    GpuType.H200,
    GpuType.B200,
)
#: 8 x 1000 GB NVMe instance store (p4d, p4de), in GiB: 7450.
_NVME_8X1000GB = 8 * 1000 * 10**9 // 2**30
#: 8 x 3800 GB NVMe instance store (p5, p5e, p5en, p6-b200), in GiB: 28312. (Not 8 x 3.84 TB:
#: the specification table says 8 x 3800 GB, and the EC2 API's total, 30400 GB, agrees.)
_NVME_8X3800GB = 8 * 3800 * 10**9 // 2**30
#: GCE Local SSD disks are 375 GiB each.
_LSSD = 375

#: The table. GCE N1 machine types carry either T4 or V100, so they have a row for each.
MACHINES: tuple[Machine, ...] = (
    # GKE: N1 with attached T4 / V100 (the default N1 shape per GPU count). "Machine types"
    # (https://cloud.google.com/compute/docs/machine-types): n1-standard-8/16/32/64 have
    # 8/16/32/64 vCPUs and 30/60/120/240 GB.
    _m("n1-standard-8", _G, 8, 30, T4, 1),
    _m("n1-standard-16", _G, 16, 60, T4, 2),
    _m("n1-standard-32", _G, 32, 120, T4, 4),
    _m("n1-standard-8", _G, 8, 30, V100, 1),
    _m("n1-standard-16", _G, 16, 60, V100, 2),
    _m("n1-standard-32", _G, 32, 120, V100, 4),
    _m("n1-standard-64", _G, 64, 240, V100, 8),
    # GKE: A2 (A100 40 GB), G2 (L4). "Accelerator-optimized machine family"
    # (https://cloud.google.com/compute/docs/accelerator-optimized-machines); vCPUs and memory
    # checked against the Compute Engine API's machine types (guestCpus, memoryMb / 1024) as
    # SkyPilot's catalog records them (github.com/skypilot-org/skypilot-catalog,
    # catalogs/v8/gcp/vms.csv).
    _m("a2-highgpu-1g", _G, 12, 85, A100, 1),
    _m("a2-highgpu-2g", _G, 24, 170, A100, 2),
    _m("a2-highgpu-4g", _G, 48, 340, A100, 4),
    _m("a2-highgpu-8g", _G, 96, 680, A100, 8),
    _m("a2-megagpu-16g", _G, 96, 1360, A100, 16),
    _m("g2-standard-8", _G, 8, 32, L4, 1),
    _m("g2-standard-24", _G, 24, 96, L4, 2),
    _m("g2-standard-48", _G, 48, 192, L4, 4),
    _m("g2-standard-96", _G, 96, 384, L4, 8),
    # A2 Ultra (A100 80 GB), A3 High (H100), A3 Ultra (H200), A4 (B200): vCPUs and memory from
    # the same page and catalog. Bundled Local SSD, "Local SSD disks"
    # (https://cloud.google.com/compute/docs/disks/local-ssd#lssd_disks_fixed): A2 Ultra 1, 2,
    # 4 or 8 disks of 375 GiB, A3 High 16; A3 Ultra and A4 12,000 GiB of Titanium SSD (32 x
    # 375 GiB: public deployment notes agree, Google's own table was not reachable to check).
    Machine("a2-ultragpu-1g", _G, 12, 170, A100_80GB, 1, ephemeral_gib=1 * _LSSD),
    Machine("a2-ultragpu-2g", _G, 24, 340, A100_80GB, 2, ephemeral_gib=2 * _LSSD),
    Machine("a2-ultragpu-4g", _G, 48, 680, A100_80GB, 4, ephemeral_gib=4 * _LSSD),
    Machine("a2-ultragpu-8g", _G, 96, 1360, A100_80GB, 8, ephemeral_gib=8 * _LSSD),
    Machine("a3-highgpu-8g", _G, 208, 1872, H100, 8, ephemeral_gib=16 * _LSSD),
    Machine("a3-ultragpu-8g", _G, 224, 2952, H200, 8, ephemeral_gib=12000),
    Machine("a4-highgpu-8g", _G, 224, 3968, B200, 8, ephemeral_gib=12000),
    # EC2: "Specifications for Amazon EC2 accelerated computing instances"
    # (https://docs.aws.amazon.com/ec2/latest/instancetypes/ac.html), performance and instance
    # store tables; P3 from "Specifications for Amazon EC2 previous generation instances"
    # (https://docs.aws.amazon.com/ec2/latest/instancetypes/pg.html).
    _m("g4dn.xlarge", _E, 4, 16, T4, 1),
    _m("g4dn.2xlarge", _E, 8, 32, T4, 1, default=False),
    _m("g4dn.12xlarge", _E, 48, 192, T4, 4),
    _m("g4dn.metal", _E, 96, 384, T4, 8),
    _m("p3.2xlarge", _E, 8, 61, V100, 1),
    _m("p3.8xlarge", _E, 32, 244, V100, 4),
    _m("p3.16xlarge", _E, 64, 488, V100, 8),
    _m("g5.xlarge", _E, 4, 16, A10G, 1),
    _m("g5.2xlarge", _E, 8, 32, A10G, 1, default=False),
    _m("g5.12xlarge", _E, 48, 192, A10G, 4),
    _m("g5.48xlarge", _E, 192, 768, A10G, 8),
    # p4d carries 8 x A100 40 GB, p4de 8 x A100 80 GB (ac.html: "320 GiB (8 x 40 GiB)", "640 GiB
    # (8 x 80 GiB)"); both 96 vCPUs, 1152 GiB and 8 x 1000 GB NVMe (7450 GiB).
    Machine("p4d.24xlarge", _E, 96, 1152, A100, 8, ephemeral_gib=_NVME_8X1000GB),
    Machine("p4de.24xlarge", _E, 96, 1152, A100_80GB, 8, ephemeral_gib=_NVME_8X1000GB),
    _m("g6.xlarge", _E, 4, 16, L4, 1),
    _m("g6.2xlarge", _E, 8, 32, L4, 1, default=False),
    _m("g6.12xlarge", _E, 48, 192, L4, 4),
    _m("g6.48xlarge", _E, 192, 768, L4, 8),
    _m("g6e.xlarge", _E, 4, 32, L40S, 1),
    _m("g6e.12xlarge", _E, 48, 384, L40S, 4),
    _m("g6e.48xlarge", _E, 192, 1536, L40S, 8),
    # P5 (H100), P5e and P5en (H200), P6-B200: ac.html gives each 192 vCPUs, 2048 GiB and
    # 8 x 3800 GB NVMe (28312 GiB).
    Machine("p5.48xlarge", _E, 192, 2048, H100, 8, ephemeral_gib=_NVME_8X3800GB),
    Machine("p5e.48xlarge", _E, 192, 2048, H200, 8, ephemeral_gib=_NVME_8X3800GB),
    Machine("p5en.48xlarge", _E, 192, 2048, H200, 8, default=False, ephemeral_gib=_NVME_8X3800GB),
    Machine("p6-b200.48xlarge", _E, 192, 2048, B200, 8, ephemeral_gib=_NVME_8X3800GB),
)


def defaults(family: Family, gpu: GpuType) -> dict[int, str]:
    """Default machine type by GPUs per node, for one catalogue and GPU type."""
    return {m.gpus: m.name for m in MACHINES if m.family is family and m.gpu is gpu and m.default}


def provider_defaults(provider: CloudProvider, gpu: GpuType) -> dict[int, str]:
    """Default machine type by GPUs per node for a pool of ``gpu`` on ``provider``."""
    return defaults(PROVIDER_FAMILY[provider], gpu)


def default_machine(provider: CloudProvider, gpu: GpuType, gpus_per_node: int) -> str | None:
    """The machine type carrying exactly ``gpus_per_node`` of ``gpu`` on ``provider``, if any."""
    return provider_defaults(provider, gpu).get(gpus_per_node)


def machine(name: str, gpu: GpuType | None = None) -> Machine | None:
    """The shape of machine type ``name`` (carrying ``gpu`` where a type carries several)."""
    for m in MACHINES:
        if m.name == name and (gpu is None or m.gpu is gpu):
            return m
    return None


def known(gpu: GpuType, family: Family | None = None) -> list[str]:
    """Machine types that carry ``gpu``, for messages."""
    return sorted(
        {m.name for m in MACHINES if m.gpu is gpu and (family is None or m.family is family)}
    )
