"""Real Karpenter (its kwok cloud provider, tools/build-karpenter.sh) provisioning the
NodePool servestack renders for EKS, on the local cluster.

The dev stack with `cluster.provider: karpenter`, the kwok provider's node class, one L4 pool
(no machine type: the machine table's default for one L4) and bert-sentiment moved onto it.
Karpenter's instance types are generated from the machine table. One stack, edited in turn:

1. pending GPU pods get NodeClaims, then nodes of the instance type servestack's builder
   chose, then the pods turn Ready on them;
2. scaling down leaves a node empty, and Karpenter consolidates it away;
3. `spot: true` (a replacement): the nodes Karpenter brings are spot capacity;
4. the pool's GPU type edited (L4 -> T4, the deployment with it): the NodePool is replaced,
   the old nodes are gone and Karpenter brings nodes of the new type.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, dynamic

from harness.local_cluster import cluster_tool, on_local_cluster
from harness.local_cluster import up as cluster_up
from servestack.config.machines import machine
from servestack.config.models import CloudProvider
from servestack.config.stackfile import set_value
from servestack.config.validation import parse_stack, read_stack_text
from servestack.contract import labels
from servestack.manifests import node_pools
from servestack.manifests.instance_types import kwok_instance_types
from tests import REPO
from tests.cluster.live import (
    ClusterStack,
    api_client,
    deploy_stack,
    objects_with_our_labels,
    wait_for,
    wait_until_clean,
)

pytestmark = pytest.mark.cluster

STACK, NS, DEP, POOL = "dev", "models-dev", "bert-sentiment", "l4"
NODEPOOL_LABEL = "karpenter.sh/nodepool"
CAPACITY_TYPE = "karpenter.sh/capacity-type"
INSTANCE_TYPE = "node.kubernetes.io/instance-type"


def stack_text(replicas: int, gpu: str = "L4", spot: bool = False) -> str:
    text = (REPO / "stacks" / f"Pulumi.{STACK}.yaml").read_text(encoding="utf-8")
    text = on_local_cluster(text, provider=CloudProvider.karpenter)
    pool = {
        "name": POOL,
        "gpu": {"type": gpu, "count": 1},
        "minNodes": 0,
        "maxNodes": 4,
        "spot": spot,
        "consolidateAfterSeconds": 5,
    }
    text = set_value(text, "nodePools", [pool])
    text = set_value(text, f"deployments.{DEP}.resources.gpu", {"count": 1, "type": gpu})
    return set_value(text, f"deployments.{DEP}.replicas", replicas)


def predicted_machine(text: str) -> str:
    """The instance type servestack renders into the pool's NodePool requirement."""
    cfg = parse_stack(read_stack_text(text))
    return node_pools.machine_type(cfg.node_pools[0], cfg.cluster)


def _time(stamp: Any) -> datetime:
    return stamp if isinstance(stamp, datetime) else datetime.fromisoformat(str(stamp))


class Live:
    def __init__(self, api: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api)
        self.claims = dynamic.DynamicClient(api).resources.get(
            api_version="karpenter.sh/v1", kind="NodeClaim"
        )

    def nodeclaims(self) -> list[Any]:
        return list(self.claims.get(label_selector=f"{NODEPOOL_LABEL}={POOL}").items)

    def nodes(self) -> list[Any]:
        return list(self.core.list_node(label_selector=f"{NODEPOOL_LABEL}={POOL}").items)

    def pods(self) -> list[Any]:
        return [
            p
            for p in self.core.list_namespaced_pod(NS, label_selector=f"{labels.NAME}={DEP}").items
            if p.metadata.deletion_timestamp is None
        ]

    def ready_on_pool(self, replicas: int, instance_type: str) -> list[Any] | None:
        """The deployment's pods once exactly ``replicas`` are Ready, each on a Ready node of
        the pool of ``instance_type``, and the pool has no other node."""
        pods = self.pods()
        nodes = {n.metadata.name: n for n in self.nodes()}
        if len(pods) != replicas or len(nodes) != replicas:
            return None
        for p in pods:
            node = nodes.get(p.spec.node_name or "")
            if node is None or node.metadata.labels.get(INSTANCE_TYPE) != instance_type:
                return None
            if not _ready(p.status.conditions) or not _ready(node.status.conditions):
                return None
        return pods


def _ready(conditions: list[Any] | None) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in conditions or [])


@pytest.fixture(scope="module")
def karpenter_stack(local_cluster: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    cluster_up(karpenter=True)
    api = api_client(local_cluster)
    assert objects_with_our_labels(api) == [], "the cluster is not clean before the test"
    live = Live(api)
    assert live.nodeclaims() == [] and live.nodes() == [], "Karpenter nodes left over"
    s = deploy_stack(tmp_path_factory.mktemp("karpenter"), local_cluster, STACK, stack_text(2))
    try:
        yield s, live
    finally:
        s.destroy()
        wait_until_clean(api)
        wait_for(
            "Karpenter's nodes gone after destroy",
            lambda: not (live.nodeclaims() or live.nodes()) or None,
            timeout=120,
            every=1,
        )


def _apply(s: ClusterStack, text: str) -> None:
    (s.project / "stacks" / f"Pulumi.{STACK}.yaml").write_text(text, encoding="utf-8")
    s.up()


def test_pending_gpu_pods_get_nodeclaims_then_nodes_of_the_predicted_type_then_ready(
    karpenter_stack: Any,
) -> None:
    s, live = karpenter_stack
    text = stack_text(2)
    want = predicted_machine(text)
    assert machine(want) is not None and machine(want).gpus == 1  # type: ignore[union-attr]
    assert live.nodes() == [], "no node of the pool before its pods exist"
    s.up()
    pods = wait_for(
        f"2 pods Ready on {want} nodes", lambda: live.ready_on_pool(2, want), timeout=120
    )
    claims = {c.status.nodeName: c for c in live.nodeclaims()}
    nodes = {n.metadata.name: n for n in live.nodes()}
    assert sorted(claims) == sorted(nodes) == sorted(p.spec.node_name for p in pods)
    for p in pods:
        claim, node = claims[p.spec.node_name], nodes[p.spec.node_name]
        ready_at = next(c.last_transition_time for c in p.status.conditions if c.type == "Ready")
        # pending pod -> NodeClaim -> Node -> pod Ready (API timestamps, whole seconds)
        assert (
            p.metadata.creation_timestamp
            <= _time(claim.metadata.creationTimestamp)
            <= node.metadata.creation_timestamp
            <= ready_at
        )
        assert node.metadata.labels[INSTANCE_TYPE] == want
        assert node.metadata.labels[CAPACITY_TYPE] == "on-demand"
        assert node.metadata.labels[labels.NODE_POOL] == POOL
        assert node.status.allocatable["nvidia.com/gpu"] == "1"
        assert claim.metadata.labels[INSTANCE_TYPE] == want
        took = (ready_at - p.metadata.creation_timestamp).total_seconds()
        print(f"{p.metadata.name}: Ready on a new {want} node {took:.0f} s after creation")


def test_scaling_down_consolidates_the_empty_node_away(karpenter_stack: Any) -> None:
    s, live = karpenter_stack
    text = stack_text(1)
    want = predicted_machine(text)
    before = {n.metadata.name for n in live.nodes()}
    assert len(before) == 2
    _apply(s, text)
    (pod,) = wait_for(
        "one pod on one node, the empty node consolidated away",
        lambda: live.ready_on_pool(1, want),
        timeout=120,
    )
    assert {n.metadata.name for n in live.nodes()} == {pod.spec.node_name} < before
    assert len(live.nodeclaims()) == 1


def test_spot_becomes_the_capacity_type_karpenter_chose(karpenter_stack: Any) -> None:
    s, live = karpenter_stack
    text = stack_text(1, spot=True)
    want = predicted_machine(text)
    before = {n.metadata.name for n in live.nodes()}
    _apply(s, text)
    wait_for("the pod on a spot node", lambda: live.ready_on_pool(1, want), timeout=120)
    (node,) = live.nodes()
    assert node.metadata.name not in before, "spot is a replacement: a new node"
    assert node.metadata.labels[CAPACITY_TYPE] == "spot"
    (claim,) = live.nodeclaims()
    assert claim.metadata.labels[CAPACITY_TYPE] == "spot"


def test_a_gpu_type_edit_makes_karpenter_replace_the_nodes(karpenter_stack: Any) -> None:
    s, live = karpenter_stack
    old = predicted_machine(stack_text(1, spot=True))
    text = stack_text(1, gpu="T4", spot=True)
    want = predicted_machine(text)
    assert want != old
    before = {n.metadata.name for n in live.nodes()}
    _apply(s, text)
    wait_for(f"the pod on a {want} node", lambda: live.ready_on_pool(1, want), timeout=120)
    (node,) = live.nodes()
    assert node.metadata.name not in before
    assert node.metadata.labels["karpenter.k8s.aws/instance-gpu-name"] == "t4"
    assert not [n for n in live.core.list_node().items if n.metadata.name in before]


def _listening(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket process ``pid`` listens on (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = str(fd.readlink()) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # LISTEN
                addr, port = cols[1].split(":")
                found.append((addr, int(port, 16)))
    return sorted(found)


def test_karpenter_listens_on_loopback_only(local_cluster: Path) -> None:
    info = cluster_up(karpenter=True)
    pid = info.pids["karpenter"]
    want = sorted(
        ("0100007F", info.ports[name]) for name in ("karpenter-metrics", "karpenter-health")
    )
    assert _listening(pid) == want  # 0100007F: 127.0.0.1 as /proc/net/tcp writes it


def test_other_instance_types_restart_karpenter_and_the_same_ones_do_not(
    local_cluster: Path, tmp_path: Path
) -> None:
    tool = cluster_tool()
    first = cluster_up(karpenter=True)
    run_types = first.run_dir / "karpenter" / "instance-types.json"
    generated = json.loads(run_types.read_text())
    assert generated == kwok_instance_types()
    assert cluster_up(karpenter=True).pids["karpenter"] == first.pids["karpenter"]

    dearer = [
        {**t, "offerings": [{**o, "Price": o["Price"] * 2} for o in t["offerings"]]}
        for t in generated
    ]
    other = tmp_path / "types.json"
    other.write_text(json.dumps(dearer))
    second = tool.up(REPO, karpenter=other)
    assert second.pids["karpenter"] != first.pids["karpenter"]
    assert json.loads(run_types.read_text()) == dearer
    third = cluster_up(karpenter=True)
    assert third.pids["karpenter"] != second.pids["karpenter"]
    assert json.loads(run_types.read_text()) == generated
