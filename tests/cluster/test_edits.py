"""Edits of the dev stack applied on the local cluster through servestack's own operations
(`servestack.ops.operations.plan/apply`, the real engine), checked on the live objects
against the field-effect table (:mod:`servestack.contract.effects`):

- in-place: the Deployment keeps its UID and pod-template hash, and no pod is replaced;
- restart: a new ReplicaSet (pod-template hash) takes over, the Deployment keeps its UID,
  and pods sampled every 0.1 s during the rollout stay within the strategy's maxSurge and
  maxUnavailable;
- replace: the deployment's objects of the rule's kinds are new objects (new UIDs);
- stop (active: false) leaves 0 pods and keeps the Service; start brings the pods back with
  the pod template they had;
- forbidden: refused by the operation and by the program, and the engine writes no object
  (:func:`harness.live.engine_wrote_nothing`; controllers may still write).

The tests share one stack (module scope) and run in file order; the fixture destroys it and
checks that nothing labelled by servestack is left.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from harness.live import engine_writes, engine_wrote_nothing, labelled, snapshot
from servestack.config.stackfile import set_value
from servestack.contract import labels
from servestack.contract.effects import Effect
from servestack.ops.live import WorkloadState
from servestack.ops.operations import (
    OperationRefused,
    Workspace,
    apply,
    plan,
)
from servestack.program.guards import is_refusal
from servestack.review.predict import predict
from tests.cluster.live import (
    OURS,
    ClusterStack,
    api_client,
    deploy_stack,
    local_stack_text,
    objects_with_our_labels,
    wait_for,
    wait_until_clean,
)

pytestmark = pytest.mark.cluster

STACK = "dev"
NS = "models-dev"
DEP = "bert-sentiment"
SELECTOR = f"{labels.NAME}={DEP}"


@dataclass
class Live:
    api: client.ApiClient
    stack: ClusterStack
    ws: Workspace

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)


@pytest.fixture(scope="module")
def live(local_cluster: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    api = api_client(local_cluster)
    assert objects_with_our_labels(api) == [], "the cluster is not clean before the test"
    tmp = tmp_path_factory.mktemp("edits")
    s = deploy_stack(tmp, local_cluster, STACK, local_stack_text(STACK))
    try:
        s.up()
        ws = Workspace(project_dir=s.project, engine=s.engine)
        yield Live(api, s, ws)
    finally:
        s.destroy()
        wait_until_clean(api)


def settled(live: Live) -> dict[str, Any] | None:
    """The deployment's live state once its rollout is complete and no old pod is left."""
    deps = live.apps.list_namespaced_deployment(NS, label_selector=SELECTOR).items
    if len(deps) != 1:
        return None
    d = deps[0]
    want = d.spec.replicas or 0
    if not WorkloadState.counts(d).rolled_out:
        return None
    pods = [
        p
        for p in live.core.list_namespaced_pod(NS, label_selector=SELECTOR).items
        if p.metadata.deletion_timestamp is None
    ]
    all_pods = live.core.list_namespaced_pod(NS, label_selector=SELECTOR).items
    if len(pods) != want or len(all_pods) != want:
        return None
    hashes = {p.metadata.labels.get("pod-template-hash") for p in pods}
    if len(hashes) > 1:
        return None
    active_rs = [
        rs
        for rs in live.apps.list_namespaced_replica_set(NS, label_selector=SELECTOR).items
        if (rs.spec.replicas or 0) > 0
    ]
    services = live.core.list_namespaced_service(NS, label_selector=SELECTOR).items
    return {
        "deployment": d,
        "uid": d.metadata.uid,
        "hash": hashes.pop() if hashes else None,
        "template": d.spec.template.to_dict(),
        "pods": {p.metadata.uid for p in pods},
        "active_rs": {rs.metadata.name for rs in active_rs},
        "rs": {
            rs.metadata.name
            for rs in live.apps.list_namespaced_replica_set(NS, label_selector=SELECTOR).items
        },
        "services": {s.metadata.uid for s in services},
    }


def state(live: Live) -> dict[str, Any]:
    return wait_for(f"{DEP}'s rollout settled", lambda: settled(live), timeout=120)


def expected_effect(live: Live, edits: dict[str, Any]) -> Effect:
    """What servestack's field-effect table says the (single-field) edit does."""
    (path,) = edits
    found = predict(live.ws.stack_file(STACK).read_text(encoding="utf-8"), edits)
    (change,) = found.diff.changes
    assert change.path == path
    return change.effect


def run(live: Live, edits: dict[str, Any], operation: str = "edit") -> dict[str, Any]:
    p = plan(live.ws, STACK, edits, DEP, operation=operation)
    result = apply(live.ws, p)
    assert result["status"] == "succeeded", result
    return result


def test_in_place_edit_keeps_pods(live: Live) -> None:
    edits = {f"deployments.{DEP}.description": "Sentiment API (edited on the cluster)"}
    assert expected_effect(live, edits) is Effect.IN_PLACE
    before = state(live)
    run(live, edits)
    after = state(live)
    assert after["deployment"].metadata.annotations.get(labels.DESCRIPTION) == (
        "Sentiment API (edited on the cluster)"
    ), "the edit did not reach the live Deployment"
    assert after["uid"] == before["uid"]
    assert after["hash"] == before["hash"]
    assert after["pods"] == before["pods"], "an in-place edit replaced pods"
    assert after["rs"] == before["rs"]


def _bound(value: int | str | None, replicas: int, *, up: bool) -> int:
    """A rolling update's maxSurge (rounded up) or maxUnavailable (down), as Kubernetes
    resolves an absolute number or a percentage of the replicas."""
    if isinstance(value, str) and value.endswith("%"):
        share = int(value[:-1]) * replicas
        return -(-share // 100) if up else share // 100
    return int(value or 0)


@dataclass
class Sample:
    pods: int
    available: int
    replica_sets_with_pods: int


def sample_rollout(live: Live, stop: threading.Event, out: list[Sample]) -> None:
    """Every 0.1 s until ``stop``: the deployment's live pods (not terminating), available
    replicas and ReplicaSets that hold pods."""
    while not stop.is_set():
        (d,) = live.apps.list_namespaced_deployment(NS, label_selector=SELECTOR).items
        pods = live.core.list_namespaced_pod(NS, label_selector=SELECTOR).items
        sets = live.apps.list_namespaced_replica_set(NS, label_selector=SELECTOR).items
        out.append(
            Sample(
                pods=sum(1 for p in pods if p.metadata.deletion_timestamp is None),
                available=d.status.available_replicas or 0,
                replica_sets_with_pods=sum(1 for rs in sets if (rs.status.replicas or 0) > 0),
            )
        )
        stop.wait(0.1)


def test_restart_edit_rolls_a_new_replicaset(live: Live) -> None:
    edits = {f"deployments.{DEP}.env.LOG_LEVEL": "info"}
    assert expected_effect(live, edits) is Effect.RESTART
    before = state(live)
    d = before["deployment"]
    replicas = d.spec.replicas or 0
    rolling = d.spec.strategy.rolling_update
    surge = _bound(rolling.max_surge, replicas, up=True)
    unavailable = _bound(rolling.max_unavailable, replicas, up=False)
    samples: list[Sample] = []
    stop = threading.Event()
    sampler = threading.Thread(target=sample_rollout, args=(live, stop, samples))
    sampler.start()
    try:
        run(live, edits)
        after = state(live)
    finally:
        stop.set()
        sampler.join()
    # The pods rolled within the strategy: never more than replicas + maxSurge pods, never
    # fewer than replicas - maxUnavailable available.
    assert len(samples) >= 5, f"only {len(samples)} samples during the rollout"
    assert max(s.pods for s in samples) <= replicas + surge, (replicas, surge, samples)
    assert min(s.available for s in samples) >= replicas - unavailable, (unavailable, samples)
    env = {e.name: e.value for e in after["deployment"].spec.template.spec.containers[0].env}
    assert env.get("LOG_LEVEL") == "info"
    assert after["uid"] == before["uid"], "a restart edit replaced the Deployment"
    assert after["hash"] != before["hash"]
    assert after["active_rs"].isdisjoint(before["active_rs"]), "no new ReplicaSet took over"
    assert before["active_rs"] <= after["rs"], "the old ReplicaSet is kept (scaled to 0)"
    assert after["pods"].isdisjoint(before["pods"]), "old pods still serve"
    assert after["services"] == before["services"]


def test_stop_and_start(live: Live) -> None:
    before = state(live)
    assert before["pods"], "nothing running before the stop"
    stop = {f"deployments.{DEP}.active": False}
    assert expected_effect(live, stop) is Effect.IN_PLACE
    run(live, stop, operation="stop")
    stopped = state(live)
    assert stopped["deployment"].spec.replicas == 0
    assert stopped["pods"] == set()
    assert stopped["uid"] == before["uid"]
    assert stopped["services"] == before["services"], "stop must keep the Service"

    run(live, {f"deployments.{DEP}.active": True}, operation="start")
    started = state(live)
    assert len(started["pods"]) == (before["deployment"].spec.replicas or 0)
    assert started["uid"] == before["uid"]
    assert started["hash"] == before["hash"], "start must bring back the same pod template"
    assert started["services"] == before["services"]


def test_forbidden_edit_touches_nothing(live: Live) -> None:
    edits = {f"deployments.{DEP}.model.type": "vision"}
    assert expected_effect(live, edits) is Effect.FORBIDDEN
    state(live)
    before = snapshot(live.api, labelled(live.api, NS, OURS))
    assert any(k.startswith("Deployment/") for k in before)
    # servestack's operation refuses it before anything runs...
    with pytest.raises(OperationRefused):
        plan(live.ws, STACK, edits, DEP)
    # ...and so does the program itself when the stack file is edited by hand.
    path = live.ws.stack_file(STACK)
    good = path.read_text(encoding="utf-8")
    bad = good
    for key, value in edits.items():
        bad = set_value(bad, key, value)
    path.write_text(bad, encoding="utf-8")
    try:
        with pytest.raises(Exception) as refused:
            live.stack.up()
        assert is_refusal(str(refused.value)), refused.value
    finally:
        path.write_text(good, encoding="utf-8")
    after = snapshot(live.api, labelled(live.api, NS, OURS))
    assert engine_wrote_nothing(before, after), (
        f"a forbidden edit: the engine wrote {engine_writes(before, after)}"
    )


def test_replace_edit_creates_new_objects(live: Live) -> None:
    # The table: blue-green keys the Deployment by version, so switching to it replaces the
    # Deployment (create-before-delete); the Service stays and follows the new version.
    edits = {f"deployments.{DEP}.strategy.type": "blue_green"}
    assert expected_effect(live, edits) is Effect.REPLACE
    before = state(live)
    run(live, edits)
    after = state(live)
    assert after["uid"] != before["uid"], "a replace edit kept the Deployment object"
    assert after["deployment"].metadata.name != before["deployment"].metadata.name
    assert after["pods"].isdisjoint(before["pods"])
    # The old Deployment is gone, and the Service selects the new one's pods.
    names = {d.metadata.name for d in live.apps.list_namespaced_deployment(NS).items}
    assert before["deployment"].metadata.name not in names
    (svc,) = live.core.list_namespaced_service(NS, label_selector=SELECTOR).items
    pod_labels = after["deployment"].spec.template.metadata.labels
    assert all(pod_labels.get(k) == v for k, v in svc.spec.selector.items()), svc.spec.selector
