"""MIG slices on the local cluster (provider `local`): the nodes of a pool partitioned
`all-1g.18gb` advertise the slices the GPU operator's device plugin would (8 H200 x 7 =
56 `nvidia.com/mig-1g.18gb`, no whole `nvidia.com/gpu`), and the real scheduler places
one-slice replicas by them: with one node, 56 run, a 57th is refused offline by the capacity
model, and the surge pod of a rollout of the 56 stays Pending with the scheduler's
"Insufficient nvidia.com/mig-1g.18gb". The new machines' `local` nodes carry their table
shape (vCPUs, memory, local NVMe, GPUs) as capacity, and the capacity model's allocatable.

A `local` node stands for a whole machine, and every H200 machine of the table carries 8
GPUs: a pool of one node and one GPU (7 slices) cannot be declared, so the node's 56 slices
are what is counted here.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.utils import parse_quantity
from pulumi import automation as auto

from servestack.config import capacity
from servestack.config.gpu import GPU_RESOURCE, MIG_CONFIG_LABEL, GpuType
from servestack.config.machines import machine
from servestack.config.stackfile import set_value
from servestack.contract import labels
from tests.cluster.live import (
    api_client,
    deploy_stack,
    local_stack_text,
    objects_with_our_labels,
    wait_for,
    wait_until_clean,
)

pytestmark = pytest.mark.cluster

STACK, NS, DEP = "mig", "models-mig", "tagger"
SLICE = "nvidia.com/mig-1g.18gb"
POOL = {"name": "h200", "gpu": {"type": "H200", "count": 8, "mig": "all-1g.18gb"}, "minNodes": 1}


def _stack(replicas: int) -> str:
    text = set_value(local_stack_text(STACK), "nodePools", [POOL])
    text = set_value(text, f"deployments.{DEP}.resources.cpu", 1)
    text = set_value(text, f"deployments.{DEP}.resources.memory", "4Gi")
    strategy = {"type": "rolling", "maxSurge": 1, "maxUnavailable": 0}
    text = set_value(text, f"deployments.{DEP}.strategy", strategy)
    return set_value(text, f"deployments.{DEP}.replicas", replicas)


def _pods(core: client.CoreV1Api) -> list[client.V1Pod]:
    return list(core.list_namespaced_pod(NS, label_selector=f"{labels.NAME}={DEP}").items)


def _ready(pod: client.V1Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def test_slices_are_node_capacity_and_the_scheduler_counts_them(
    local_cluster: Path, tmp_path: Path
) -> None:
    api = api_client(local_cluster)
    core = client.CoreV1Api(api)
    assert objects_with_our_labels(api) == [], "the cluster is not clean before the test"
    slices = 8 * 7
    # The 57th replica at rest is refused offline (the capacity model counts slices too);
    # the scheduler's count is seen on the surge pod of a rollout of all 56.
    s = deploy_stack(tmp_path, local_cluster, STACK, _stack(replicas=slices + 1))
    proc = s.servestack("validate", str(s.project / "stacks" / f"Pulumi.{STACK}.yaml"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "pool h200 holds at most 56 x H200 1g.18gb slices" in proc.stderr, proc.stderr
    stack_file = s.project / "stacks" / f"Pulumi.{STACK}.yaml"
    stack_file.write_text(_stack(replicas=slices))
    s.up()
    stack_file.write_text(set_value(_stack(replicas=slices), f"deployments.{DEP}.env.ROLLOUT", "2"))
    failure: list[BaseException] = []

    def up() -> None:
        try:
            s.up()
        except BaseException as exc:  # examined below, in the test's thread
            failure.append(exc)

    worker = threading.Thread(target=up, daemon=True)
    worker.start()
    try:
        node = wait_for(
            "the h200 pool's node Ready with its slices",
            lambda: [
                n
                for n in core.list_node(label_selector=f"{labels.NODE_POOL}=h200").items
                if (n.status.allocatable or {}).get(SLICE)
            ],
            timeout=90,
        )[0]
        assert node.metadata.labels[MIG_CONFIG_LABEL] == "all-1g.18gb"
        assert node.status.allocatable[SLICE] == str(slices)
        assert GPU_RESOURCE not in node.status.allocatable
        wait_for(
            f"{slices} Ready replicas and one Pending with the scheduler's reason",
            lambda: (
                len([p for p in _pods(core) if _ready(p)]) == slices
                and [p for p in _pods(core) if p.status.phase == "Pending"]
            ),
            timeout=240,
        )
        pods = _pods(core)
        assert {p.spec.node_name for p in pods if _ready(p)} == {node.metadata.name}
        (pending,) = [p for p in pods if p.status.phase == "Pending"]
        (reason,) = [c.message for c in pending.status.conditions if c.type == "PodScheduled"]
        assert f"Insufficient {SLICE}" in reason, reason
        requests = pending.spec.containers[0].resources.requests
        assert requests[SLICE] == "1" and GPU_RESOURCE not in requests
        print(f"{slices} ready on {node.metadata.name}; pending: {reason}")
        worker.join(timeout=300)
        assert failure and isinstance(failure[0], auto.CommandError), failure
    finally:
        worker.join(timeout=300)
        s.destroy()
    wait_until_clean(api)


NEW_MACHINES = [
    ("p5e.48xlarge", "H200"),
    ("p5en.48xlarge", "H200"),
    ("p6-b200.48xlarge", "B200"),
    ("p4de.24xlarge", "A100-80GB"),
]


def test_local_nodes_of_the_new_machines_carry_their_shape(
    local_cluster: Path, tmp_path: Path
) -> None:
    api = api_client(local_cluster)
    core = client.CoreV1Api(api)
    assert objects_with_our_labels(api) == [], "the cluster is not clean before the test"
    pools = [
        {
            "name": f"m{i}",
            "gpu": {"type": gpu, "count": 8},
            "machineType": name,
            "minNodes": 1,
        }
        for i, (name, gpu) in enumerate(NEW_MACHINES)
    ]
    text = set_value(local_stack_text(STACK), "deployments", None)
    s = deploy_stack(tmp_path, local_cluster, STACK, set_value(text, "nodePools", pools))
    try:
        s.up()
        for i, (name, gpu) in enumerate(NEW_MACHINES):
            shape = machine(name, GpuType(gpu))
            assert shape is not None
            node = wait_for(
                f"m{i} ({name}) initialized",
                lambda i=i: [
                    n
                    for n in core.list_node(label_selector=f"{labels.NODE_POOL}=m{i}").items
                    if (n.status.allocatable or {}).get(GPU_RESOURCE)
                ],
                timeout=90,
            )[0]
            assert node.metadata.labels["node.kubernetes.io/instance-type"] == name
            # The API server writes quantities its own way (2048Gi is 2Ti): compare amounts.
            assert {k: parse_quantity(v) for k, v in node.status.capacity.items()} == {
                "cpu": shape.vcpu,
                "memory": shape.memory_gib * 2**30,
                "ephemeral-storage": shape.ephemeral_gib * 2**30,
                "pods": shape.max_pods,
                GPU_RESOURCE: 8,
            }, name
            # What it offers pods: the capacity model's allocatable (the kubelet's reserves).
            offered = capacity.node_shape(shape).allocatable
            assert {k: parse_quantity(v) for k, v in node.status.allocatable.items()} == {
                k: parse_quantity(capacity.quantity(k, v)) for k, v in offered.items()
            }, name
    finally:
        s.destroy()
    wait_until_clean(api)
