"""Capacity on the local cluster: the dev stack with a T4 pool (g4dn.xlarge: 4 vCPU,
16 GiB, one T4) and bert-sentiment moved onto it.

- A replica that fits no node of its pool (16 vCPU) is refused offline: `servestack
  validate` names the field, the value and the machine's shape, and `pulumi up` of that
  stack registers nothing.
- Two replicas that each fit, with the pool at one node: one runs, the other stays Pending.
  `servestack status` shows it pending with the scheduler's own message, and the provider's
  await gives up within dev's bound (the stack is left as the engine says, not retried).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from kubernetes import client
from pulumi import automation as auto

from servestack.config.models import Environment
from servestack.config.stackfile import set_value
from servestack.contract import labels
from servestack.program.stack import ROLLOUT_TIMEOUT_SECONDS
from tests.cluster.live import (
    api_client,
    deploy_stack,
    local_stack_text,
    objects_with_our_labels,
    wait_for,
    wait_until_clean,
)

pytestmark = pytest.mark.cluster

STACK, NS, DEP = "dev", "models-dev", "bert-sentiment"
POOL = {
    "name": "t4",
    "gpu": {"type": "T4", "count": 1},
    "machineType": "g4dn.xlarge",
    "minNodes": 1,
    "maxNodes": 3,
}
FIT_ERROR = f"deployments.{DEP}.resources.cpu: 16 does not fit t4's g4dn.xlarge (4 vCPU, 16 GiB)"


def on_t4(replicas: int, cpu: int = 2) -> str:
    text = set_value(local_stack_text(STACK), "nodePools", [POOL])
    text = set_value(text, f"deployments.{DEP}.resources.gpu", {"count": 1, "type": "T4"})
    text = set_value(text, f"deployments.{DEP}.resources.cpu", cpu)
    return set_value(text, f"deployments.{DEP}.replicas", replicas)


def test_a_replica_that_fits_no_node_is_refused_offline(
    local_cluster: Path, tmp_path: Path
) -> None:
    api = api_client(local_cluster)
    assert objects_with_our_labels(api) == [], "the cluster is not clean before the test"
    s = deploy_stack(tmp_path, local_cluster, STACK, on_t4(replicas=1, cpu=16))
    proc = s.servestack("validate", str(s.project / "stacks" / f"Pulumi.{STACK}.yaml"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert FIT_ERROR in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr

    with pytest.raises(auto.CommandError) as refused:
        s.up()
    assert FIT_ERROR in str(refused.value)
    assert "Traceback" not in str(refused.value)
    assert s.resources() == []
    assert objects_with_our_labels(api) == []


def test_more_replicas_than_nodes_stay_pending_and_status_says_why(
    local_cluster: Path, tmp_path: Path
) -> None:
    api = api_client(local_cluster)
    core = client.CoreV1Api(api)
    assert objects_with_our_labels(api) == [], "the cluster is not clean before the test"
    s = deploy_stack(tmp_path, local_cluster, STACK, on_t4(replicas=2))
    failure: list[BaseException] = []

    def up() -> None:
        try:
            s.up()
        except BaseException as exc:  # examined below, in the test's thread
            failure.append(exc)

    t0 = time.monotonic()
    worker = threading.Thread(target=up, daemon=True)
    worker.start()
    try:
        pending = wait_for(
            "a Pending pod of bert-sentiment with the scheduler's reason",
            lambda: [
                p
                for p in core.list_namespaced_pod(NS, label_selector=f"{labels.NAME}={DEP}").items
                if p.status.phase == "Pending"
                and any(
                    c.type == "PodScheduled" and c.status == "False"
                    for c in p.status.conditions or []
                )
            ],
            timeout=90,
        )
        (pod,) = pending
        (reason,) = [c.message for c in pod.status.conditions if c.type == "PodScheduled"]
        assert "Insufficient nvidia.com/gpu" in reason, reason
        assert len([n for n in core.list_node().items if n.metadata.name.startswith("t4-")]) == 1

        proc = s.servestack("status", STACK, DEP)
        print(proc.stdout)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"  pending {pod.metadata.name}: {reason}" in proc.stdout, proc.stdout
        assert "rollout in progress" in proc.stdout
        assert f"{DEP}: 2/2 updated, 1 ready, 1 available, 1 pending" in proc.stdout

        worker.join(timeout=ROLLOUT_TIMEOUT_SECONDS[Environment.development] + 90)
        assert not worker.is_alive(), "pulumi up still running"
        took = time.monotonic() - t0
        assert failure and isinstance(failure[0], auto.CommandError), failure
        assert f"kubernetes:apps/v1:Deployment ({DEP})" in str(failure[0])
        print(f"up gave up after {took:.0f} s")
    finally:
        worker.join(timeout=300)
        s.destroy()
    wait_until_clean(api)
