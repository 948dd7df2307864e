"""The generated stacks every benchmark measures."""

from __future__ import annotations

from typing import Any

from servestack.config.defaults import effective
from servestack.config.gpu import GpuType
from servestack.config.machines import machine
from servestack.config.models import StackConfig, StrategyType
from servestack.config.quantities import cpu_millicores, memory_bytes
from servestack.config.validation import parse_stack
from servestack.manifests import naming, workload


def stack_raw(n: int, *, cpu: int = 2) -> dict[str, Any]:
    """A production stack of ``n`` GPU deployments (canary on every tenth)."""
    deployments = []
    for i in range(n):
        dep: dict[str, Any] = {
            "name": f"model-{i:04d}",
            "model": {
                "id": f"m-{i}",
                "version": "v1.0.0",
                "type": "llm",
                "image": f"registry.example.com/models/m{i}:1.0.0",
            },
            "resources": {"cpu": cpu, "memory": "8Gi", "gpu": {"count": 1, "type": "L4"}},
            "autoscaling": {"minReplicas": 2, "maxReplicas": 6, "targetGpuUtilization": 70},
            "env": {"LOG_LEVEL": "info"},
            "tags": {"team": f"team-{i % 7}"},
            # The hand-written baseline predates monitoring and registers no monitoring
            # resources; what it measures is the component layers (see bench/RESULTS.md).
            "monitoring": {"enabled": False},
        }
        if i % 10 == 9:
            dep["strategy"] = {
                "type": "canary",
                "weight": 10,
                "canaryVersion": "v1.1.0",
                "canaryImage": f"registry.example.com/models/m{i}:1.1.0",
            }
        deployments.append(dep)
    return {
        "environment": "production",
        "namespace": "bench",
        "cluster": {"name": "bench", "provider": "karpenter"},
        # 8 x L4 machines, enough of them for every pod at rest and a rollout's surge (the
        # capacity model refuses a stack its pools cannot hold).
        "nodePools": [
            {
                "name": "l4",
                "gpu": {"type": "L4", "count": 8},
                "machineType": "g6.48xlarge",
                "maxNodes": 3 * n // 8 + 2,
            }
        ],
        "deployments": deployments,
    }


#: The shape of the cluster bench's nodes: the machine table's 8 x L4 machine, so that few
#: kwok nodes carry every replica (one GPU each) of a large stack.
CLUSTER_MACHINE = "g6.48xlarge"


def pods_at_rest(config: StackConfig) -> int:
    """Pods the stack runs once it is up: each Deployment's replicas; an autoscaled one is
    created with one and raised by its HPA to ``minReplicas`` (with no metrics server on the
    local cluster, the HPA does nothing else)."""
    pods = 0
    for spec in config.deployments:
        eff = effective(spec)
        tracks = [naming.STABLE] + (
            [naming.CANARY] if spec.strategy.type is StrategyType.canary else []
        )
        for track in tracks:
            replicas = workload.deployment(spec, eff, track=track)["spec"].get("replicas")
            if replicas is None:
                assert eff.autoscaling is not None, "only an autoscaled Deployment omits replicas"
                replicas = eff.autoscaling.min_replicas
            pods += int(replicas)
    return pods


def cluster_stack_raw(n: int) -> dict[str, Any]:
    """:func:`stack_raw` on the local cluster (`target: cluster`, provider `local`): one pool
    of :data:`CLUSTER_MACHINE` nodes, as many as every pod at rest needs (each node takes as
    many pods as its GPUs, vCPUs, memory and pod limit allow)."""
    raw = stack_raw(n)
    raw["target"] = "cluster"
    raw["cluster"] = {"name": "bench", "provider": "local"}
    shape = machine(CLUSTER_MACHINE, GpuType.L4)
    assert shape is not None
    pool: dict[str, Any] = {
        "name": "l4",
        "gpu": {"type": "L4", "count": shape.gpus},
        "machineType": shape.name,
        # Room enough to count the pods at rest (validation refuses a pool too small for
        # them); set to what they need below.
        "minNodes": max(1, min(1000, n)),
        "maxNodes": max(1, min(1000, n)),
    }
    raw["nodePools"] = [pool]
    res = raw["deployments"][0]["resources"]  # every generated deployment asks the same
    per_node = min(
        shape.gpus // res["gpu"]["count"],
        shape.vcpu * 1000 // cpu_millicores(res["cpu"]),
        shape.memory_gib * 2**30 // memory_bytes(res["memory"]),
        shape.max_pods,
    )
    nodes = max(1, -(-pods_at_rest(parse_stack(raw)) // per_node))
    pool["minNodes"] = pool["maxNodes"] = nodes
    return raw
