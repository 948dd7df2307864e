"""Each stack of the repository, with provider `local`, goes up on the local cluster through
the real engine: every Deployment turns Ready on kwok nodes placed by the real scheduler,
every Kubernetes resource of the stack exists on the server (custom resources accepted by
their upstream CRDs), a refreshed preview afterwards plans nothing, and destroy leaves no
object carrying servestack's labels."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from kubernetes import client, dynamic

from servestack.config.validation import load_stack_config
from tests.cluster.live import (
    STACK_NODES,
    api_client,
    deploy_stack,
    deployments_ready,
    live_object,
    local_stack_text,
    objects_with_our_labels,
    wait_for,
    wait_until_clean,
)

pytestmark = pytest.mark.cluster


@pytest.mark.parametrize("stack", list(STACK_NODES))
def test_stack_up_ready_no_drift_destroy_clean(
    stack: str, local_cluster: Path, tmp_path: Path
) -> None:
    api = api_client(local_cluster)
    assert objects_with_our_labels(api) == [], "the cluster is not clean before the test"
    text = local_stack_text(stack, STACK_NODES[stack])
    path = tmp_path / f"Pulumi.{stack}.yaml"
    path.write_text(text, encoding="utf-8")
    cfg = load_stack_config(path)
    s = deploy_stack(tmp_path, local_cluster, stack, text)
    t0 = time.monotonic()
    try:
        changes = s.up()
        up_s = time.monotonic() - t0
        assert changes.get("create", 0) > 0 and set(changes) == {"create"}, changes

        # Every Deployment of the namespace Ready, and one per active deployment at least.
        deps = wait_for(
            f"every Deployment in {cfg.namespace} Ready",
            lambda: deployments_ready(api, cfg.namespace),
            timeout=120,
        )
        names = {d.metadata.name for d in deps}
        for d in cfg.deployments:
            assert any(n == d.name or n.startswith(f"{d.name}-") for n in names), (d.name, names)
        # Pods of a GPU deployment sit on a node of its pool, carrying the pool's GPUs.
        core = client.CoreV1Api(api)
        nodes = {n.metadata.name: n for n in core.list_node().items}
        for pod in core.list_namespaced_pod(cfg.namespace).items:
            want = sum(
                int((c.resources.requests or {}).get("nvidia.com/gpu", 0))
                for c in pod.spec.containers
            )
            if want:
                node = nodes[pod.spec.node_name]
                assert int(node.status.allocatable["nvidia.com/gpu"]) >= want
                assert node.metadata.labels.get("servestack.io/node-pool") in {
                    p.name for p in cfg.node_pools
                }

        # Every Kubernetes resource the engine recorded exists live, as the engine saw it.
        dyn = dynamic.DynamicClient(api)
        resources = s.resources()
        kinds = {r["outputs"]["kind"] for r in resources}
        for r in resources:
            live = live_object(dyn, r["outputs"])
            assert live is not None, f"{r['urn']} is not on the server"
            assert live.metadata.uid == r["outputs"]["metadata"]["uid"], r["urn"]
        expected = {"Namespace", "Deployment", "Service"}
        if any(d.autoscaling and d.autoscaling.enabled for d in cfg.deployments):
            assert kinds & {"HorizontalPodAutoscaler", "ScaledObject"}, kinds
        if any(d.load_balancer for d in cfg.deployments):
            expected.add("DestinationRule")
        if cfg.node_pools:
            expected.add("Node")
        assert expected <= kinds, (expected - kinds, kinds)
        pool_nodes = [
            n for n in nodes.values() if n.metadata.name.split("-")[0] in STACK_NODES[stack]
        ]
        assert len(pool_nodes) == sum(STACK_NODES[stack].values())

        # No drift: a refreshed preview plans no change.
        plan = s.preview(refresh=True)
        assert set(plan) == {"same"}, plan
        print(f"{stack}: up {up_s:.1f}s, {len(resources)} Kubernetes resources")
    finally:
        s.destroy()
    wait_until_clean(api)
