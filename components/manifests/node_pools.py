"""Pure builders for GPU node pools on each backend.

Every backend puts the same label and taint on its nodes that
:mod:`servestack.manifests.workload` selects and tolerates
(:mod:`servestack.manifests.gpu_scheduling`, from the one GPU table).

| backend    | resource                                   | GPU settings                          |
|------------|--------------------------------------------|---------------------------------------|
| karpenter  | karpenter.sh/v1 NodePool (Kubernetes CR)   | requirements on instance type and GPU |
| gke        | pulumi-gcp container.NodePool              | guest_accelerators, GPU driver        |
| eks        | pulumi-aws eks.NodeGroup                   | AL2023 NVIDIA AMI, instance types     |
| existing   | none: the pool must exist with these labels and taints                |
| local      | core/v1 Node objects (kwok), `minNodes` of them | capacity = the machine shape      |

A pool with `gpu.mig` (`all-1g.18gb`) labels its nodes with the GPU operator's
`nvidia.com/mig.config`, whose MIG manager partitions every GPU; the device plugin (mixed
strategy) then offers the slices as `nvidia.com/mig-<profile>`, which a `local` node's capacity
stands for.
"""

from __future__ import annotations

import json
from typing import Any

from servestack.config import capacity
from servestack.config.gpu import GPU_RESOURCE, GpuInfo, gpu_info
from servestack.config.machines import default_machine
from servestack.config.models import ClusterSpec, GpuLabels, NodePoolSpec
from servestack.contract import labels
from servestack.manifests import gpu_scheduling
from servestack.manifests.provenance import opt, src

KARPENTER_API = "karpenter.sh/v1"
DEFAULT_DISK_GB = 200


def info(pool: NodePoolSpec) -> GpuInfo:
    assert pool.gpu.type is not None
    return gpu_info(pool.gpu.type)


def node_labels(pool: NodePoolSpec, cluster: ClusterSpec | None = None) -> dict[str, str]:
    """The pool's labels: the cluster's GPU label (`cluster.gpuLabels`); a MIG pool's nodes
    also carry the GPU operator's partitioning."""
    mig = gpu_scheduling.mig_config(pool.gpu.mig)
    marks = _marks(cluster)
    gpu = gpu_scheduling.node_selector(info(pool), marks)
    because = ("gpu.type", *gpu_scheduling.label_fields(info(pool), marks))
    return {
        **{k: opt(v, *because) for k, v in gpu.items()},
        labels.NODE_POOL: src(pool.name, "name"),
        **{k: opt(v, "gpu.mig") for k, v in mig.items()},
    }


def _marks(cluster: ClusterSpec | None) -> gpu_scheduling.GpuMarks:
    return gpu_scheduling.marks_of(cluster) if cluster else GpuLabels.servestack


def taint(pool: NodePoolSpec, cluster: ClusterSpec | None = None) -> dict[str, str]:
    """The taint every node of the pool carries (Kubernetes' shape)."""
    return gpu_scheduling.taint(info(pool), _marks(cluster))


def machine_type(pool: NodePoolSpec, cluster: ClusterSpec) -> str:
    gpu = info(pool)
    chosen = pool.machine_type or default_machine(cluster.provider, gpu.type, pool.gpu.count)
    assert chosen is not None, "validation guarantees a machine type"
    return chosen


def _machine(pool: NodePoolSpec, cluster: ClusterSpec) -> str:
    """The machine type, marked: the pool's own, or the GPU table's for its GPUs."""
    if pool.machine_type:
        return src(machine_type(pool, cluster), "machineType")
    return src(machine_type(pool, cluster), "gpu.type", "gpu.count", via=["machineType"])


def _taints(
    pool: NodePoolSpec, cluster: ClusterSpec, effect: str | None = None
) -> list[dict[str, str]]:
    shape = taint(pool, cluster)
    because = ("gpu.type", *gpu_scheduling.taint_fields(info(pool), _marks(cluster)))
    if effect is not None:
        shape = {"key": shape["key"], "value": shape["value"], "effect": effect}
    return src([shape], *because)


def _duration(seconds: int) -> str:
    """A Karpenter duration: whole minutes as minutes (600 -> "10m"), else seconds."""
    return f"{seconds // 60}m" if seconds and seconds % 60 == 0 else f"{seconds}s"


def karpenter_node_pool(pool: NodePoolSpec, cluster: ClusterSpec) -> dict[str, Any]:
    gpu = info(pool)
    return {
        "apiVersion": KARPENTER_API,
        "kind": "NodePool",
        "metadata": {
            "name": src(pool.name, "name"),
            "labels": {labels.MANAGED_BY: labels.MANAGER},
        },
        "spec": {
            "template": {
                "metadata": {"labels": node_labels(pool, cluster)},
                "spec": {
                    "nodeClassRef": {
                        "group": src(cluster.node_class.group, "cluster.nodeClass.group"),
                        "kind": src(cluster.node_class.kind, "cluster.nodeClass.kind"),
                        "name": src(cluster.node_class.name, "cluster.nodeClass.name"),
                    },
                    "taints": _taints(pool, cluster),
                    "requirements": [
                        {
                            "key": "node.kubernetes.io/instance-type",
                            "operator": "In",
                            "values": [_machine(pool, cluster)],
                        },
                        {
                            "key": "karpenter.k8s.aws/instance-gpu-name",
                            "operator": "In",
                            "values": [src(gpu.karpenter_gpu_name, "gpu.type")],
                        },
                        {
                            "key": "karpenter.sh/capacity-type",
                            "operator": "In",
                            "values": [src("spot" if pool.spot else "on-demand", "spot")],
                        },
                    ],
                },
            },
            "limits": karpenter_limits(pool, cluster),
            "disruption": {
                "consolidationPolicy": "WhenEmpty",
                "consolidateAfter": src(
                    _duration(pool.consolidate_after_seconds), "consolidateAfterSeconds"
                ),
            },
        },
    }


def karpenter_limits(pool: NodePoolSpec, cluster: ClusterSpec) -> dict[str, str]:
    """The NodePool's `limits`: `maxNodes` nodes, and `maxNodes` x the GPUs of the machine's
    shape, so the cloud enforces the bound the review's capacity model assumes.

    Karpenter sums its nodes' capacity against a resource limit, and launches no node that
    would cross it. The GPU limit alone is not enough where a node's capacity is counted as
    what its pods asked for (Karpenter's kwok provider does so): a pool of 4-GPU machines
    whose pods fill the CPU with GPUs left over then gets a node past `maxNodes` (seen on the
    local cluster: tests/cluster/test_capacity.py, `cpu-bound`). Karpenter's `nodes` limit
    counts nodes whatever their capacity says.
    """
    node = capacity.pool_node(pool, cluster)
    assert node is not None, "validation guarantees a known machine"
    # The instance type's GPUs, whole: what Karpenter counts, MIG partitioning or not.
    gpus = pool.max_nodes * node.machine.gpus
    return {
        "nodes": src(str(pool.max_nodes), "maxNodes"),
        GPU_RESOURCE: src(str(gpus), "maxNodes", "gpu.count"),
    }


def gke_node_pool_args(pool: NodePoolSpec, cluster: ClusterSpec) -> dict[str, Any]:
    gpu = info(pool)
    return {
        "cluster": src(cluster.name, "cluster.name"),
        "location": src(cluster.location, "cluster.location"),
        "project": src(cluster.project, "cluster.project"),
        "name": src(pool.name, "name"),
        "autoscaling": {
            "min_node_count": src(pool.min_nodes, "minNodes"),
            "max_node_count": src(pool.max_nodes, "maxNodes"),
        },
        "node_config": {
            "machine_type": _machine(pool, cluster),
            "spot": src(pool.spot, "spot"),
            "disk_size_gb": src(pool.disk_size_gb or DEFAULT_DISK_GB, "diskSizeGb"),
            "labels": node_labels(pool, cluster),
            "taints": _taints(pool, cluster, "NO_SCHEDULE"),
            "guest_accelerators": [
                {
                    "type": src(gpu.gke_accelerator, "gpu.type"),
                    "count": src(pool.gpu.count, "gpu.count"),
                    "gpu_driver_installation_config": {"gpu_driver_version": "LATEST"},
                }
            ],
            "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"],
        },
        "management": {"auto_repair": True, "auto_upgrade": True},
    }


def eks_node_group_args(pool: NodePoolSpec, cluster: ClusterSpec) -> dict[str, Any]:
    return {
        "cluster_name": src(cluster.name, "cluster.name"),
        "node_group_name": src(pool.name, "name"),
        "node_role_arn": src(cluster.node_role_arn, "cluster.nodeRoleArn"),
        "subnet_ids": src(list(cluster.subnet_ids), "cluster.subnetIds"),
        "ami_type": "AL2023_x86_64_NVIDIA",
        "instance_types": [_machine(pool, cluster)],
        "capacity_type": src("SPOT" if pool.spot else "ON_DEMAND", "spot"),
        "disk_size": src(pool.disk_size_gb or DEFAULT_DISK_GB, "diskSizeGb"),
        "scaling_config": {
            "min_size": src(pool.min_nodes, "minNodes"),
            "max_size": src(pool.max_nodes, "maxNodes"),
            "desired_size": src(pool.min_nodes, "minNodes"),
        },
        "labels": node_labels(pool, cluster),
        "taints": _taints(pool, cluster, "NO_SCHEDULE"),
    }


#: kwok manages the Node objects that carry this annotation (`make cluster` configures it).
KWOK_ANNOTATION = "kwok.x-k8s.io/node"


def local_nodes(pool: NodePoolSpec, cluster: ClusterSpec) -> list[dict[str, Any]]:
    """`minNodes` Node objects standing for the pool's machines on the local cluster.

    Each carries the pool's labels and taint, the capacity of the pool's machine type from
    the machine table, and as allocatable that capacity less the kubelet's reserves (the
    capacity model's, :mod:`servestack.config.capacity`), so the real scheduler and the
    review decide alike what fits.
    """
    node = capacity.pool_node(pool, cluster)
    assert node is not None, "validation guarantees a known machine"
    shape = node.machine
    declared, offered = (
        json.dumps({k: capacity.quantity(k, v) for k, v in amounts.items()}, sort_keys=True)
        for amounts in (node.capacity, node.allocatable)
    )
    return [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": f"{pool.name}-{i}",
                "labels": {
                    **node_labels(pool, cluster),
                    labels.MANAGED_BY: labels.MANAGER,
                    "kubernetes.io/hostname": f"{pool.name}-{i}",
                    "node.kubernetes.io/instance-type": shape.name,
                    labels.CAPACITY_TYPE: "spot" if pool.spot else "on-demand",
                    "type": "kwok",
                },
                "annotations": {
                    KWOK_ANNOTATION: "fake",
                    labels.CAPACITY: declared,
                    labels.ALLOCATABLE: offered,
                },
            },
            "spec": {"taints": _taints(pool, cluster)},
        }
        for i in range(pool.min_nodes)
    ]
