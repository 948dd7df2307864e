"""The bootstrap node, a kwok-managed Node where CPU-only deployments run."""

from __future__ import annotations

from .api import request
from .common import KWOK_NODE_ANNOTATION, ClusterError, ClusterInfo

BOOTSTRAP_NODE = "local-system"
BOOTSTRAP_NODE_LABELS = {"servestack.io/pool": "system"}
BOOTSTRAP_NODE_CAPACITY = {
    "cpu": "8",
    "memory": "32Gi",
    "ephemeral-storage": "100Gi",
    "pods": "110",
}


def _ensure_bootstrap_node(info: ClusterInfo) -> None:
    key, value = KWOK_NODE_ANNOTATION
    labels = {
        "kubernetes.io/hostname": BOOTSTRAP_NODE,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
        **BOOTSTRAP_NODE_LABELS,
    }
    capacity = dict(BOOTSTRAP_NODE_CAPACITY)
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": BOOTSTRAP_NODE, "labels": labels, "annotations": {key: value}},
        # A Node's status may be set on create (as a kubelet registers): kwok's node-initialize
        # Stage keeps the capacity/allocatable it finds, and the scheduler places by allocatable.
        "status": {"capacity": capacity, "allocatable": capacity},
    }
    status, out = request(info, "POST", "/api/v1/nodes", node)
    if status == 409:  # restarted with kept data: make sure labels and capacity are ours
        patch = {"metadata": {"labels": labels, "annotations": {key: value}}}
        status, out = request(
            info,
            "PATCH",
            f"/api/v1/nodes/{BOOTSTRAP_NODE}",
            patch,
            content_type="application/merge-patch+json",
        )
        if status == 200:
            status, out = request(
                info,
                "PATCH",
                f"/api/v1/nodes/{BOOTSTRAP_NODE}/status",
                {"status": {"capacity": capacity, "allocatable": capacity}},
                content_type="application/merge-patch+json",
            )
    if status not in (200, 201):
        raise ClusterError(f"create node {BOOTSTRAP_NODE}: HTTP {status}: {str(out)[:500]}")


def _node_ready(info: ClusterInfo, name: str = BOOTSTRAP_NODE) -> bool:
    status, out = request(info, "GET", f"/api/v1/nodes/{name}")
    return status == 200 and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (out.get("status") or {}).get("conditions") or []
    )
