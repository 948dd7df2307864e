"""`examples/own-stack`, a team's own program, on the local cluster: with `target: cluster`
its provider finds the cluster through KUBECONFIG, its GPU pool (provider `local`) becomes
kwok nodes, the ranker's replicas turn Ready on them, a refreshed preview plans nothing, an
in-place edit (the description) changes the live Deployment, not its pods, and destroy
leaves nothing of ours."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client

from tests import REPO
from tests.cluster.live import (
    api_client,
    deploy_program,
    deployments_ready,
    objects_with_our_labels,
    wait_for,
    wait_until_clean,
)

pytestmark = pytest.mark.cluster

NS, DEP = "search", "search-ranker"


def test_own_stack_on_local_cluster(local_cluster: Path, tmp_path: Path) -> None:
    api = api_client(local_cluster)
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    assert objects_with_our_labels(api) == [], "the cluster is not clean before the test"
    s = deploy_program(
        tmp_path,
        local_cluster,
        REPO / "examples" / "own-stack",
        "team",
        {"target": "cluster", "clusterProvider": "local", "minNodes": "2"},
    )
    try:
        changes = s.up()
        assert set(changes) == {"create"}, changes
        deps = wait_for(f"{NS} Deployments Ready", lambda: deployments_ready(api, NS))
        assert [d.metadata.name for d in deps] == [DEP]
        assert deps[0].status.ready_replicas == 2

        # The pool's nodes exist, carry the L4 and the pool's label, and hold the pods.
        nodes = {
            n.metadata.name: n
            for n in core.list_node(label_selector="servestack.io/node-pool=l4").items
        }
        assert sorted(nodes) == ["l4-0", "l4-1"], sorted(nodes)
        for n in nodes.values():
            assert n.status.allocatable["nvidia.com/gpu"] == "1"
        pods = core.list_namespaced_pod(NS).items
        assert sorted(p.spec.node_name for p in pods) == ["l4-0", "l4-1"]

        assert set(s.preview(refresh=True)) == {"same"}

        # In place: the description changes the live Deployment, not its pod template.
        before = apps.read_namespaced_deployment(DEP, NS)
        pods = {p.metadata.name for p in core.list_namespaced_pod(NS).items}
        program = s.project / "__main__.py"
        text = program.read_text(encoding="utf-8")
        program.write_text(text.replace("Re-ranks search results", "Re-ranks results"), "utf-8")
        changes = s.up()
        assert changes.get("update", 0) >= 1 and set(changes) <= {"update", "same"}, changes
        after = apps.read_namespaced_deployment(DEP, NS)
        assert after.metadata.uid == before.metadata.uid
        assert after.metadata.resource_version != before.metadata.resource_version
        assert after.spec.template == before.spec.template
        assert {p.metadata.name for p in core.list_namespaced_pod(NS).items} == pods
    finally:
        s.destroy()
    wait_until_clean(api)
