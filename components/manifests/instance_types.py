"""The instance types of Karpenter's kwok cloud provider on the local cluster, generated from
the machine table (:mod:`servestack.config.machines`) and the GPU table.

Karpenter's kwok provider reads them from the JSON file named by `INSTANCE_TYPES_FILE_PATH`
(the local cluster's Karpenter is given one written from here; docs/cluster.md). Every
machine of the catalogue Karpenter pools draw from (``PROVIDER_FAMILY[karpenter]``) becomes
one instance type with its vCPUs, memory, ephemeral storage, pods and GPUs, offered as spot
and as on-demand. The NodePool servestack renders for EKS then provisions nodes of the same
types and shapes here.

Each offering also carries the AWS provider's GPU-name label
(`karpenter.k8s.aws/instance-gpu-name`), which the kwok provider does not know by itself:
declared on the offerings, it becomes a label Karpenter matches the NodePool's GPU
requirement against (a pool asking for `l4` gets no `t4` machine) and puts on the node.

Prices are nominal, for Karpenter's ordering only (bigger machines cost more, spot less than
on-demand); they are no cloud's prices.
"""

from __future__ import annotations

from typing import Any

from servestack.config.gpu import GPU_RESOURCE, gpu_info
from servestack.config.machines import MACHINES, PROVIDER_FAMILY, Machine
from servestack.config.models import CloudProvider

#: Karpenter's label keys (karpenter.sh is core; the GPU name is the AWS provider's).
CAPACITY_TYPE_LABEL = "karpenter.sh/capacity-type"
GPU_NAME_LABEL = "karpenter.k8s.aws/instance-gpu-name"
ZONE_LABEL = "topology.kubernetes.io/zone"
#: The local cluster's one zone.
ZONE = "local-a"
CAPACITY_TYPES = ("on-demand", "spot")
#: Spot's nominal price as a share of on-demand's.
SPOT_SHARE = 0.4


def karpenter_machines() -> list[Machine]:
    """The machines a Karpenter pool can be given: its catalogue, one row per name."""
    family = PROVIDER_FAMILY[CloudProvider.karpenter]
    seen: dict[str, Machine] = {}
    for m in MACHINES:
        if m.family is family:
            if m.name in seen:
                raise ValueError(f"machine table: {m.name} twice in the {family} catalogue")
            seen[m.name] = m
    return list(seen.values())


def resources(m: Machine) -> dict[str, str]:
    """The shape of one machine, as Kubernetes quantities."""
    return {
        "cpu": str(m.vcpu),
        "memory": f"{m.memory_gib}Gi",
        "ephemeral-storage": f"{m.ephemeral_gib}Gi",
        "pods": str(m.max_pods),
        GPU_RESOURCE: str(m.gpus),
    }


def on_demand_price(m: Machine) -> float:
    """Nominal: vCPUs, memory and GPU memory weighed together."""
    gpu_gib = m.gpus * gpu_info(m.gpu).memory_gib
    return round(0.04 * m.vcpu + 0.005 * m.memory_gib + 0.02 * gpu_gib, 4)


def _offering(m: Machine, capacity_type: str) -> dict[str, Any]:
    price = on_demand_price(m) * (SPOT_SHARE if capacity_type == "spot" else 1.0)
    return {
        "Price": round(price, 4),
        "Available": True,
        "Requirements": [
            {"key": CAPACITY_TYPE_LABEL, "operator": "In", "values": [capacity_type]},
            {"key": ZONE_LABEL, "operator": "In", "values": [ZONE]},
            {
                "key": GPU_NAME_LABEL,
                "operator": "In",
                "values": [gpu_info(m.gpu).karpenter_gpu_name],
            },
        ],
    }


def kwok_instance_types() -> list[dict[str, Any]]:
    """The kwok provider's instance types file, as data (one entry per machine)."""
    return [
        {
            "name": m.name,
            "offerings": [_offering(m, c) for c in CAPACITY_TYPES],
            "architecture": "amd64",
            "operatingSystems": ["linux"],
            "resources": resources(m),
        }
        for m in karpenter_machines()
    ]
