"""Every `servestack` operation, typed as a user would in the project, against the live dev
stack on the local cluster; after each, the live objects show what it did.

The tests share one stack (module scope) and run in file order: `resources` (a new pod
template with the new requests), `set-model --strategy canary` (a canary Deployment of the
new image, and the mesh routes splitting traffic by the weight), `promote` (the canary's
image on the stable Deployment, the canary gone), a second canary then `rollback` (the
canary gone, the stable image kept), `scale --no-wait` followed by `operation ID` (the
replica count), an autoscaler added by a plain `pulumi up` (the count and the pods stay), a
third canary then `promote --shift` (the canary's pods take the stable track as they are:
same pods, same ReplicaSet, grown to the autoscaler's floor, never scaled down; the old
stable Deployment gone), `stop` and `start` once the autoscaler owns the count (0, then the
floor), `scale --min/--max` of the worker (its KEDA ScaledObject's bounds) and
`delete` (the worker's objects gone from the server and its entry from the stack file).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException

from servestack.config.stackfile import edit_file
from servestack.config.validation import load_stack_config
from tests.cluster.live import (
    ClusterStack,
    api_client,
    deploy_stack,
    deployments_ready,
    local_stack_text,
    objects_with_our_labels,
    wait_for,
    wait_until_clean,
)

pytestmark = pytest.mark.cluster

STACK, NS, DEP, WORKER = "dev", "models-dev", "bert-sentiment", "whisper-batch"
CANARY = f"{DEP}-canary"
IMAGE = "registry.example.com/nlp/bert-sentiment:{}"


@dataclass
class Dev:
    s: ClusterStack
    apps: Any
    dyn: Any

    def run(self, *args: str) -> str:
        proc = self.s.servestack(*args)
        print(f"$ servestack {' '.join(args)}\n{proc.stdout}{proc.stderr}")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    def image(self, name: str = DEP) -> str:
        image: str = (
            self.apps.read_namespaced_deployment(name, NS).spec.template.spec.containers[0].image
        )
        return image

    def exists(self, api_version: str, kind: str, name: str) -> bool:
        try:
            self.dyn.resources.get(api_version=api_version, kind=kind).get(name=name, namespace=NS)
        except ApiException as e:
            if e.status == 404:
                return False
            raise
        return True

    def weights(self) -> dict[str, int]:
        vs = self.dyn.resources.get(api_version="networking.istio.io/v1", kind="VirtualService")
        routes = vs.get(name=f"{DEP}-routes", namespace=NS).spec.http[0].route
        return {r.destination.subset: r.weight for r in routes}

    def ready(self) -> None:
        wait_for(f"{NS} Deployments Ready", lambda: deployments_ready(self.apps.api_client, NS))

    def config(self) -> Any:
        return load_stack_config(self.s.project / "stacks" / f"Pulumi.{STACK}.yaml")


@pytest.fixture(scope="module")
def dev(local_cluster: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    api = api_client(local_cluster)
    assert objects_with_our_labels(api) == [], "the cluster is not clean before the test"
    s = deploy_stack(tmp_path_factory.mktemp("ops"), local_cluster, STACK, local_stack_text(STACK))
    try:
        s.up()
        d = Dev(s, client.AppsV1Api(api), dynamic.DynamicClient(api))
        d.ready()
        yield d
    finally:
        s.destroy()
        wait_until_clean(api)


def test_resources(dev: Dev) -> None:
    before = dev.apps.read_namespaced_deployment(DEP, NS)
    dev.run("resources", STACK, DEP, "--cpu", "1500m", "--memory", "3Gi")
    dev.ready()
    after = dev.apps.read_namespaced_deployment(DEP, NS)
    requests = after.spec.template.spec.containers[0].resources.requests
    assert (requests["cpu"], requests["memory"]) == ("1500m", "3Gi"), requests
    assert after.metadata.uid == before.metadata.uid


def test_canary_then_promote(dev: Dev) -> None:
    dev.run(
        "set-model", STACK, DEP, "--version", "v2.2.0", "--strategy", "canary", "--weight", "20"
    )
    dev.ready()
    assert dev.image(CANARY) == IMAGE.format("2.2.0")
    assert dev.image() == IMAGE.format("2.1.0")
    assert dev.weights() == {"stable": 80, "canary": 20}

    dev.run("promote", STACK, DEP, "--yes")
    dev.ready()
    wait_for(f"{CANARY} gone", lambda: not dev.exists("apps/v1", "Deployment", CANARY) or None)
    assert dev.image() == IMAGE.format("2.2.0")
    spec = next(d for d in dev.config().deployments if d.name == DEP)
    assert (spec.model.version, spec.strategy.type.value) == ("v2.2.0", "rolling")


def test_canary_then_rollback(dev: Dev) -> None:
    dev.run("set-model", STACK, DEP, "--version", "v2.3.0", "--strategy", "canary")
    dev.ready()
    assert dev.image(CANARY) == IMAGE.format("2.3.0")
    dev.run("rollback", STACK, DEP, "--yes")
    dev.ready()
    wait_for(f"{CANARY} gone", lambda: not dev.exists("apps/v1", "Deployment", CANARY) or None)
    assert dev.image() == IMAGE.format("2.2.0")


def test_scale_no_wait_then_operation(dev: Dev) -> None:
    out = dev.run("scale", STACK, DEP, "--replicas", "2", "--no-wait")
    op = re.search(r"operation\s+([0-9a-f]{8,})\b", out)  # the table title, maybe wrapped
    assert op, out

    def finished() -> str | None:
        shown = dev.run("operation", op[1])
        status = re.search(r"│ status\s+│ (\w+)", shown)
        return status[1] if status and status[1] not in ("pending", "running") else None

    assert wait_for(f"operation {op[1]}", finished, timeout=180) == "succeeded"
    dev.ready()
    assert dev.apps.read_namespaced_deployment(DEP, NS).status.ready_replicas == 2


def _pods(dev: Dev, name: str) -> dict[str, str]:
    """The pods of Deployment ``name``: UID -> pod-template-hash."""
    selector = dev.apps.read_namespaced_deployment(name, NS).spec.selector.match_labels
    labels = ",".join(f"{k}={v}" for k, v in selector.items())
    pods = client.CoreV1Api(dev.apps.api_client).list_namespaced_pod(NS, label_selector=labels)
    return {
        p.metadata.uid: p.metadata.labels["pod-template-hash"]
        for p in pods.items
        if p.metadata.deletion_timestamp is None
    }


def _replica_sets(dev: Dev, name: str) -> list[str]:
    """The UIDs of the ReplicaSets Deployment ``name`` owns."""
    return sorted(
        rs.metadata.uid
        for rs in dev.apps.list_namespaced_replica_set(NS).items
        for o in rs.metadata.owner_references or []
        if (o.kind, o.name) == ("Deployment", name)
    )


def _scaled_down(dev: Dev, name: str) -> list[str]:
    """The Deployment controller's "Scaled down replica set" events of Deployment ``name``."""
    events = client.CoreV1Api(dev.apps.api_client).list_namespaced_event(
        NS, field_selector=f"involvedObject.kind=Deployment,involvedObject.name={name}"
    )
    return sorted(
        f"{e.metadata.uid} {e.message}"
        for e in events.items
        if e.reason == "ScalingReplicaSet" and "Scaled down" in (e.message or "")
    )


def _hpa_target(dev: Dev) -> str:
    hpa = client.AutoscalingV2Api(dev.apps.api_client).read_namespaced_horizontal_pod_autoscaler(
        DEP, NS
    )
    return str(hpa.spec.scale_target_ref.name)


def test_a_fixed_deployment_given_an_autoscaler_keeps_its_pods(dev: Dev) -> None:
    """`replicas: 2` to an autoscaler with floor 2, by a plain `pulumi up`: the count stays
    (docs/operations.md, "The autoscaler's replica count"); no pod goes."""
    pods, down = _pods(dev, DEP), _scaled_down(dev, DEP)
    assert len(pods) == 2, pods
    path = dev.s.project / "stacks" / f"Pulumi.{STACK}.yaml"
    bounds = {"minReplicas": 2, "maxReplicas": 4, "targetCpuUtilization": 70}
    edit_file(path, {f"deployments.{DEP}.autoscaling": bounds})
    dev.s.up()
    dev.ready()
    assert _hpa_target(dev) == DEP
    assert dev.apps.read_namespaced_deployment(DEP, NS).spec.replicas == 2
    assert _pods(dev, DEP) == pods
    assert _scaled_down(dev, DEP) == down


def test_canary_then_promote_shift(dev: Dev) -> None:
    """Under the autoscaler of the test above: the canary (1 pod) takes the stable track in
    place, and grows to the autoscaler's floor (2) without a pod lost."""
    dev.run("set-model", STACK, DEP, "--version", "v2.4.0", "--strategy", "canary")
    dev.ready()
    canary = dev.apps.read_namespaced_deployment(CANARY, NS)
    pods, sets = _pods(dev, CANARY), _replica_sets(dev, CANARY)
    assert len(pods) == 1 and len(sets) == 1, (pods, sets)
    down = _scaled_down(dev, CANARY)

    dev.run("promote", STACK, DEP, "--shift", "--yes")
    wait_for(f"{DEP} gone", lambda: not dev.exists("apps/v1", "Deployment", DEP) or None)
    dev.ready()
    promoted = dev.apps.read_namespaced_deployment(CANARY, NS)
    assert promoted.metadata.uid == canary.metadata.uid
    assert promoted.spec.template == canary.spec.template
    assert (promoted.spec.replicas, promoted.status.ready_replicas) == (2, 2)
    # No new ReplicaSet: the pods from before are still there, and the one the shift added
    # has their pod-template-hash.
    assert _replica_sets(dev, CANARY) == sets
    after = _pods(dev, CANARY)
    assert len(after) == 2 and pods.items() <= after.items(), (pods, after)
    assert set(after.values()) == set(pods.values())
    # The count went 1 -> 2 and never down: the autoscaler took it over as it was.
    assert _scaled_down(dev, CANARY) == down
    assert _hpa_target(dev) == CANARY
    assert dev.image(CANARY) == IMAGE.format("2.4.0")
    assert not dev.exists("networking.istio.io/v1", "VirtualService", f"{DEP}-routes")
    spec = next(d for d in dev.config().deployments if d.name == DEP)
    assert (spec.model.version, spec.strategy.type.value) == ("v2.4.0", "rolling")
    assert spec.stable_slot.value == "canary"


def test_stop_and_start_after_the_autoscaler_scaled(dev: Dev) -> None:
    """The autoscaler moves the count as its controller does (kube-controller-manager,
    through the scale subresource; the local cluster has no metrics for it to act on), so
    that it owns `spec.replicas`. `stop` must still take the count to 0 (a 409 conflict
    without the Deployment's forced apply), and `start` must bring it back to the floor (an
    autoscaler leaves a Deployment at 0 alone)."""
    dev.apps.patch_namespaced_deployment_scale(
        CANARY, NS, {"spec": {"replicas": 3}}, field_manager="kube-controller-manager"
    )
    dev.ready()
    owners = [
        (m.manager, m.subresource)
        for m in dev.apps.read_namespaced_deployment(CANARY, NS).metadata.managed_fields
        if "f:replicas" in ((m.fields_v1 or {}).get("f:spec") or {})
    ]
    assert owners == [("kube-controller-manager", "scale")], owners

    dev.run("stop", STACK, DEP, "--yes")
    assert dev.apps.read_namespaced_deployment(CANARY, NS).spec.replicas == 0
    assert not dev.exists("autoscaling/v2", "HorizontalPodAutoscaler", DEP)

    dev.run("start", STACK, DEP, "--yes")
    dev.ready()
    started = dev.apps.read_namespaced_deployment(CANARY, NS)
    assert (started.spec.replicas, started.status.ready_replicas) == (2, 2)
    assert _hpa_target(dev) == CANARY


def test_scale_the_workers_bounds(dev: Dev) -> None:
    dev.run("scale", STACK, WORKER, "--min", "2", "--max", "4")
    so = dev.dyn.resources.get(api_version="keda.sh/v1alpha1", kind="ScaledObject")
    spec = so.get(name=WORKER, namespace=NS).spec
    assert (spec.minReplicaCount, spec.maxReplicaCount) == (2, 4)


def test_delete(dev: Dev) -> None:
    dev.run("delete", STACK, WORKER, "--confirm", WORKER, "--yes")
    wait_for(f"{WORKER} gone", lambda: not dev.exists("apps/v1", "Deployment", WORKER) or None)
    assert not dev.exists("keda.sh/v1alpha1", "ScaledObject", WORKER)
    assert [d.name for d in dev.config().deployments] == [DEP]
    assert dev.exists("apps/v1", "Deployment", CANARY)  # the stable track, since the shift
