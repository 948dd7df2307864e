"""Capacity on the local cluster: the review's verdicts against what the real scheduler does
with `local` pool nodes, which advertise the capacity model's allocatable.

- A replica that fits no node of its pool (16 vCPU) is refused offline: `servestack
  validate` names the field, the value and the machine's allocatable, and `pulumi up` of
  that stack registers nothing. So is a pool too small for its deployments at rest.
- A development rollout the review says cannot finish (pool full, `maxSurge: 1`), applied
  with `pulumi up`: the surge pod stays Pending with the scheduler's own message, and
  `servestack status` shows it.
- The capacity matrix: for each case the verdict of `servestack diff`'s model
  (review.diff.diff_configs) and the live outcome of the same manifests (the builders'
  Nodes and Deployments, applied to the API server; the edit applied as `pulumi up` would:
  a changed template rolls, a new colour or canary Deployment starts beside the old one)
  agree: a rollout the review says fits completes, one it says cannot finish never does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException
from pulumi import automation as auto

from servestack.config.models import Environment, StackConfig
from servestack.config.stackfile import set_value
from servestack.config.validation import parse_stack, read_stack_text
from servestack.contract import labels
from servestack.manifests.node_pools import local_nodes
from servestack.manifests.render import Rendered, render_stack
from servestack.program.stack import ROLLOUT_TIMEOUT_SECONDS
from servestack.review.capacity import Fit
from servestack.review.diff import diff_configs
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
FIT_ERROR = (
    f"deployments.{DEP}.resources.cpu: 16 does not fit t4's g4dn.xlarge (4 vCPU, 16 GiB; "
    "allocatable 3920m after the kubelet's reserves)"
)
AT_REST_ERROR = "nodePools.t4.minNodes: pool t4 holds at most 1 x T4 on 1 node(s) of g4dn.xlarge"


def on_t4(replicas: int, cpu: int = 2, nodes: int = 1, **strategy: Any) -> str:
    text = set_value(local_stack_text(STACK), "nodePools", [{**POOL, "minNodes": nodes}])
    text = set_value(text, f"deployments.{DEP}.resources.gpu", {"count": 1, "type": "T4"})
    text = set_value(text, f"deployments.{DEP}.resources.cpu", cpu)
    if strategy:
        text = set_value(text, f"deployments.{DEP}.strategy", {"type": "rolling", **strategy})
    return set_value(text, f"deployments.{DEP}.replicas", replicas)


@pytest.mark.parametrize(
    ("text", "error"),
    [(on_t4(replicas=1, cpu=16), FIT_ERROR), (on_t4(replicas=2), AT_REST_ERROR)],
    ids=["replica-fits-no-node", "pool-too-small-at-rest"],
)
def test_what_can_never_schedule_is_refused_offline(
    local_cluster: Path, tmp_path: Path, text: str, error: str
) -> None:
    api = api_client(local_cluster)
    assert objects_with_our_labels(api) == [], "the cluster is not clean before the test"
    s = deploy_stack(tmp_path, local_cluster, STACK, text)
    proc = s.servestack("validate", str(s.project / "stacks" / f"Pulumi.{STACK}.yaml"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert error in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr

    with pytest.raises(auto.CommandError) as refused:
        s.up()
    assert error in str(refused.value)
    assert "Traceback" not in str(refused.value)
    assert s.resources() == []
    assert objects_with_our_labels(api) == []


def test_a_rollout_that_cannot_finish_stays_pending_and_status_says_why(
    local_cluster: Path, tmp_path: Path
) -> None:
    api = api_client(local_cluster)
    core = client.CoreV1Api(api)
    assert objects_with_our_labels(api) == [], "the cluster is not clean before the test"
    base = on_t4(replicas=2, nodes=2, maxSurge=1, maxUnavailable=0)
    edited = set_value(base, f"deployments.{DEP}.env.ROLLOUT", "2")
    s = deploy_stack(tmp_path, local_cluster, STACK, base)
    try:
        s.up()
        stack_file = s.project / "stacks" / f"Pulumi.{STACK}.yaml"
        new_file = tmp_path / "edited.yaml"
        new_file.write_text(edited)
        proc = s.servestack("diff", str(stack_file), str(new_file))
        out = " ".join(proc.stdout.split())
        assert proc.returncode == 0, proc.stdout + proc.stderr  # development warns
        verdict = (
            f"WARNING capacity deployments.{DEP}: cannot finish: pool t4 holds at most 2 x T4; "
            "this rollout needs 3 x T4 at its peak (2 replicas + maxSurge 1)"
        )
        assert verdict in out, out

        stack_file.write_text(edited)
        failure: list[BaseException] = []

        def up() -> None:
            try:
                s.up()
            except BaseException as exc:  # examined below, in the test's thread
                failure.append(exc)

        worker = threading.Thread(target=up, daemon=True)
        worker.start()
        pending = wait_for(
            "the surge pod of bert-sentiment Pending with the scheduler's reason",
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
        proc = s.servestack("status", STACK, DEP)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"  pending {pod.metadata.name}: {reason}" in proc.stdout, proc.stdout
        assert "rollout in progress" in proc.stdout
        worker.join(timeout=ROLLOUT_TIMEOUT_SECONDS[Environment.development] + 90)
        assert not worker.is_alive(), "pulumi up still running"
        assert failure and isinstance(failure[0], auto.CommandError), failure
        # It never finished: the pod is still Pending, the old pods still serve.
        assert core.read_namespaced_pod(pod.metadata.name, NS).status.phase == "Pending"
    finally:
        s.destroy()
    wait_until_clean(api)


# --- the matrix ------------------------------------------------------------------------------

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
ACCOUNT = "kubernetes:core/v1:ServiceAccount"
MATRIX_NS = "capacity-matrix"
#: How long a rollout the review says cannot finish is watched not finishing.
STUCK_SECONDS = 25


def model(name: str, replicas: int, cpu: str = "2", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "model": {
            "id": name,
            "version": "1",
            "type": "llm",
            "image": f"registry.example.com/{name}:1",
        },
        "resources": {"cpu": cpu, "memory": "4Gi", "gpu": {"count": 1, "type": "T4"}},
        "replicas": replicas,
        "loadBalancer": {"enabled": True},
        "strategy": {"type": "rolling", "maxSurge": 1, "maxUnavailable": 0},
        **extra,
    }


def matrix_stack(
    nodes: int, deployments: list[dict[str, Any]], machine: str = "g4dn.xlarge"
) -> str:
    gpus = {"g4dn.xlarge": 1, "g4dn.12xlarge": 4}[machine]
    pool = {
        "name": "cap",
        "gpu": {"type": "T4", "count": gpus},
        "machineType": machine,
        "minNodes": nodes,
        "maxNodes": nodes,
    }
    text = local_stack_text(STACK)
    text = set_value(text, "namespace", MATRIX_NS)
    text = set_value(text, "nodePools", [pool])
    return set_value(text, "deployments", deployments)


BG = {"type": "blue_green"}
CANARY = {
    "type": "canary",
    "weight": 10,
    "canaryVersion": "2",
    "canaryImage": "registry.example.com/a:2",
}


@dataclass(frozen=True)
class Case:
    id: str
    before: str
    #: Edits as stack-file paths -> values.
    edits: dict[str, Any]
    #: What the case is built to show (the test compares the verdict with the cluster, and
    #: this guards the case itself).
    expected: Fit


IMAGE = {"deployments.a.model.image": "registry.example.com/a:2"}
CASES = [
    Case("exact-fit", matrix_stack(2, [model("a", 1)]), IMAGE, Fit.FITS),
    Case("one-short", matrix_stack(2, [model("a", 2)]), IMAGE, Fit.CANNOT_FINISH),
    Case(
        "one-short-remedy",
        matrix_stack(
            2, [model("a", 2, strategy={"type": "rolling", "maxSurge": 0, "maxUnavailable": 1})]
        ),
        IMAGE,
        Fit.FITS,
    ),
    Case(
        "allocatable-cpu",
        # 4 T4 and 48 vCPU a node, 47.81 allocatable: three 12-CPU pods fit, a fourth does not.
        matrix_stack(1, [model("a", 3, cpu="12")], machine="g4dn.12xlarge"),
        IMAGE,
        Fit.CANNOT_FINISH,
    ),
    Case(
        "allocatable-cpu-fits",
        matrix_stack(1, [model("a", 3, cpu="11")], machine="g4dn.12xlarge"),
        IMAGE,
        Fit.FITS,
    ),
    Case(
        "blue-green-fits",
        matrix_stack(4, [model("a", 2, strategy=BG)]),
        {"deployments.a.model.version": "2"},
        Fit.FITS,
    ),
    Case(
        "blue-green-short",
        matrix_stack(3, [model("a", 2, strategy=BG)]),
        {"deployments.a.model.version": "2"},
        Fit.CANNOT_FINISH,
    ),
    Case(
        "canary-fits",
        matrix_stack(3, [model("a", 2)]),
        {"deployments.a.strategy": CANARY},
        Fit.FITS,
    ),
    Case(
        "shared-pool-short",
        matrix_stack(2, [model("a", 1), model("b", 1)]),
        IMAGE,
        Fit.CANNOT_FINISH,
    ),
    Case(
        "shared-pool-fits",
        matrix_stack(3, [model("a", 1), model("b", 1)]),
        IMAGE,
        Fit.FITS,
    ),
    Case(
        "scale-up-fits",
        matrix_stack(3, [model("a", 1)]),
        {"deployments.a.replicas": 3},
        Fit.FITS,
    ),
]


def _config(text: str) -> StackConfig:
    return parse_stack(read_stack_text(text))


def _edited(text: str, edits: dict[str, Any]) -> str:
    for path, value in edits.items():
        text = set_value(text, path, value)
    return text


def _objects(
    config: StackConfig,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The pool's Nodes (as the GpuNodePool component registers them), the models'
    ServiceAccounts and Deployments the builders make for ``config``."""
    rendered: Rendered = render_stack(config)
    nodes = [n for pool in config.node_pools for n in local_nodes(pool, config.cluster)]
    accounts = [r.manifest for k, r in rendered.resources.items() if k.type == ACCOUNT]
    deployments = {
        r.manifest["metadata"]["name"]: r.manifest
        for k, r in rendered.resources.items()
        if k.type == DEPLOYMENT
    }
    return nodes, accounts, deployments


@pytest.fixture
def matrix(local_cluster: Path) -> Iterator[client.ApiClient]:
    api = api_client(local_cluster)
    assert objects_with_our_labels(api) == [], "the cluster is not clean before the test"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": MATRIX_NS}})
    try:
        yield api
    finally:
        core.delete_namespace(MATRIX_NS)
        for node in core.list_node(label_selector=f"{labels.NODE_POOL}=cap").items:
            core.delete_node(node.metadata.name)
        wait_for(
            "the matrix namespace gone",
            lambda: _gone(lambda: core.read_namespace(MATRIX_NS)),
            timeout=120,
        )


def _gone(read: Any) -> bool:
    try:
        read()
    except ApiException as e:
        return e.status == 404
    return False


def _rolled_out(apps: client.AppsV1Api, names: list[str]) -> bool:
    for name in names:
        d = apps.read_namespaced_deployment(name, MATRIX_NS)
        want = d.spec.replicas or 0
        st = d.status
        if not (
            (st.observed_generation or 0) >= d.metadata.generation
            and (st.updated_replicas or 0) == want
            and (st.available_replicas or 0) == want
            and (st.replicas or 0) == want
        ):
            return False
    return True


def _unschedulable(core: client.CoreV1Api) -> list[str]:
    return [
        f"{p.metadata.name}: {c.message}"
        for p in core.list_namespaced_pod(MATRIX_NS).items
        for c in p.status.conditions or []
        if c.type == "PodScheduled" and c.status == "False"
    ]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_the_verdict_is_what_the_scheduler_does(matrix: client.ApiClient, case: Case) -> None:
    core, apps = client.CoreV1Api(matrix), client.AppsV1Api(matrix)
    old, new = _config(case.before), _config(_edited(case.before, case.edits))
    verdicts = [v for v in diff_configs(old, new).capacity if v.deployment == "a"]
    (verdict,) = verdicts
    assert verdict.fit is case.expected, verdict.text  # the case shows what it is built for
    print(f"{case.id}: {verdict.text}")

    nodes, accounts, before = _objects(old)
    for node in nodes:
        core.create_node(node)
    for account in accounts:
        core.create_namespaced_service_account(MATRIX_NS, account)
    wait_for(
        "the pool's nodes Ready with the model's allocatable",
        lambda: (
            all(
                (n.status.allocatable or {}).get("nvidia.com/gpu")
                and any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
                for n in core.list_node(label_selector=f"{labels.NODE_POOL}=cap").items
            )
            and len(core.list_node(label_selector=f"{labels.NODE_POOL}=cap").items) == len(nodes)
        ),
        timeout=60,
    )
    # The dynamic client sends the manifests as built (quantities as the builders write them).
    deployments = dynamic.DynamicClient(matrix).resources.get(
        api_version="apps/v1", kind="Deployment"
    )
    for manifest in before.values():
        deployments.create(body=manifest, namespace=MATRIX_NS)
    wait_for("the stack at rest", lambda: _rolled_out(apps, list(before)), timeout=90)
    assert _unschedulable(core) == []

    # The edit, as the engine applies it: changed Deployments in place, new ones created;
    # Deployments that go are deleted only once the new ones are ready.
    _, _, after = _objects(new)
    for name, manifest in after.items():
        if name in before:
            deployments.patch(
                body=manifest,
                namespace=MATRIX_NS,
                content_type="application/strategic-merge-patch+json",
            )
        else:
            deployments.create(body=manifest, namespace=MATRIX_NS)
    if verdict.fit is Fit.CANNOT_FINISH:
        time.sleep(STUCK_SECONDS)
        assert not _rolled_out(apps, list(after))
        stuck = _unschedulable(core)
        assert stuck and all("Insufficient" in s for s in stuck), stuck
        print(f"{case.id}: live: still rolling after {STUCK_SECONDS} s; {stuck[0]}")
    else:
        wait_for(
            f"{case.id}: the rollout finished", lambda: _rolled_out(apps, list(after)), timeout=120
        )
        print(f"{case.id}: live: rolled out")
    for name in before:
        if name not in after:
            apps.delete_namespaced_deployment(name, MATRIX_NS)
