"""Pure builders for GPU node pools on each backend.

Every backend puts the same label (:data:`components.gpu.GPU_LABEL`) and taint on its nodes
that :mod:`components.workload` selects and tolerates, read from the one GPU table.

| backend    | resource                                   | GPU settings                          |
|------------|--------------------------------------------|---------------------------------------|
| karpenter  | karpenter.sh/v1 NodePool (Kubernetes CR)   | requirements on instance type and GPU |
| gke        | pulumi-gcp container.NodePool              | guest_accelerators, GPU driver        |
| eks        | pulumi-aws eks.NodeGroup                   | AL2023 NVIDIA AMI, instance types     |
| existing   | none: the pool must exist with these labels and taints                |
"""

from __future__ import annotations

from typing import Any

from components.config import ClusterSpec, NodePoolSpec
from components.gpu import GPU_RESOURCE, POOL_LABEL, GpuInfo, gpu_info

KARPENTER_API = "karpenter.sh/v1"
DEFAULT_DISK_GB = 200


def info(pool: NodePoolSpec) -> GpuInfo:
    assert pool.gpu.type is not None
    return gpu_info(pool.gpu.type)


def node_labels(pool: NodePoolSpec) -> dict[str, str]:
    return {**info(pool).node_selector(), POOL_LABEL: pool.name}


def machine_type(pool: NodePoolSpec, cluster: ClusterSpec) -> str:
    gpu = info(pool)
    chosen = pool.machine_type or gpu.default_machine(cluster.provider.value, pool.gpu.count)
    assert chosen is not None, "validation guarantees a machine type"
    return chosen


def karpenter_node_pool(pool: NodePoolSpec, cluster: ClusterSpec) -> dict[str, Any]:
    gpu = info(pool)
    return {
        "apiVersion": KARPENTER_API,
        "kind": "NodePool",
        "metadata": {"name": pool.name, "labels": {"app.kubernetes.io/managed-by": "servestack"}},
        "spec": {
            "template": {
                "metadata": {"labels": node_labels(pool)},
                "spec": {
                    "nodeClassRef": {
                        "group": "karpenter.k8s.aws",
                        "kind": "EC2NodeClass",
                        "name": cluster.node_class,
                    },
                    "taints": [gpu.taint()],
                    "requirements": [
                        {
                            "key": "node.kubernetes.io/instance-type",
                            "operator": "In",
                            "values": [machine_type(pool, cluster)],
                        },
                        {
                            "key": "karpenter.k8s.aws/instance-gpu-name",
                            "operator": "In",
                            "values": [gpu.karpenter_gpu_name],
                        },
                        {
                            "key": "karpenter.sh/capacity-type",
                            "operator": "In",
                            "values": ["spot" if pool.spot else "on-demand"],
                        },
                    ],
                },
            },
            "limits": {GPU_RESOURCE: str(pool.max_nodes * pool.gpu.count)},
            "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "10m"},
        },
    }


def gke_node_pool_args(pool: NodePoolSpec, cluster: ClusterSpec) -> dict[str, Any]:
    gpu = info(pool)
    taint = gpu.taint()
    return {
        "cluster": cluster.name,
        "location": cluster.location,
        "project": cluster.project,
        "name": pool.name,
        "autoscaling": {"min_node_count": pool.min_nodes, "max_node_count": pool.max_nodes},
        "node_config": {
            "machine_type": machine_type(pool, cluster),
            "spot": pool.spot,
            "disk_size_gb": pool.disk_size_gb or DEFAULT_DISK_GB,
            "labels": node_labels(pool),
            "taints": [{"key": taint["key"], "value": taint["value"], "effect": "NO_SCHEDULE"}],
            "guest_accelerators": [
                {
                    "type": gpu.gke_accelerator,
                    "count": pool.gpu.count,
                    "gpu_driver_installation_config": {"gpu_driver_version": "LATEST"},
                }
            ],
            "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"],
        },
        "management": {"auto_repair": True, "auto_upgrade": True},
    }


def eks_node_group_args(pool: NodePoolSpec, cluster: ClusterSpec) -> dict[str, Any]:
    taint = info(pool).taint()
    return {
        "cluster_name": cluster.name,
        "node_group_name": pool.name,
        "node_role_arn": cluster.node_role_arn,
        "subnet_ids": list(cluster.subnet_ids),
        "ami_type": "AL2023_x86_64_NVIDIA",
        "instance_types": [machine_type(pool, cluster)],
        "capacity_type": "SPOT" if pool.spot else "ON_DEMAND",
        "disk_size": pool.disk_size_gb or DEFAULT_DISK_GB,
        "scaling_config": {
            "min_size": pool.min_nodes,
            "max_size": pool.max_nodes,
            "desired_size": pool.min_nodes,
        },
        "labels": node_labels(pool),
        "taints": [{"key": taint["key"], "value": taint["value"], "effect": "NO_SCHEDULE"}],
    }
