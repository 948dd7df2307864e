"""The generated stacks every benchmark measures."""

from __future__ import annotations

from typing import Any


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
        "nodePools": [{"name": "l4", "gpu": {"type": "L4", "count": 1}, "maxNodes": 50}],
        "deployments": deployments,
    }
