"""Capacity on the local cluster: the review's verdicts against what the real scheduler does,
with `local` pool nodes (which advertise the capacity model's allocatable) and with real
Karpenter (its kwok provider) launching the nodes of the NodePools servestack renders.

- A replica that fits no node of its pool (16 vCPU) is refused offline: `servestack
  validate` names the field, the value and the machine's allocatable, and `pulumi up` of
  that stack registers nothing. So is a pool too small for its deployments at rest.
- A development rollout the review says cannot finish (pool full, `maxSurge: 1`), on a
  `local` pool and on a Karpenter pool at `maxNodes`: `servestack diff` says so beforehand,
  production refuses it, and forced through with `pulumi up` the surge pod stays Pending
  with the scheduler's own message, which `servestack status` shows (on Karpenter, with
  Karpenter's word that the NodePool's limits stop it). The same edit with the remedy the
  verdict proposes finishes, its available replicas never below the verdict's figure.
- The capacity matrix: for each case the verdict of `servestack diff`'s model
  (review.diff.diff_configs) and the live outcome of the same manifests (the builders' Nodes
  or NodePool and Deployments, applied to the API server; the edit applied as `pulumi up`
  would: a changed template rolls, a new colour or canary Deployment starts beside the old
  one) agree: a rollout the review says fits completes on the nodes it counted, one it says
  needs nodes gets them from Karpenter up to `maxNodes`, one it says cannot finish never does.

All of it runs at once: the two stuck rollouts (real engine, one stack each) and every case
of the matrix side by side (a namespace and a pool each), applied together and waited for
together (``live`` below); each test reads its part of the outcome. Cases share GPU types:
each case's pods are pinned to its own pool by the pool label both node builders write (the
builders select nodes by GPU type only), so within a case the model and the scheduler see the
same nodes. The stuck rollouts use GPU types no case uses.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException
from pulumi import automation as auto

from harness.local_cluster import on_local_cluster
from harness.local_cluster import up as cluster_up
from servestack.cli.output import ExitCode
from servestack.config import capacity
from servestack.config.defaults import effective
from servestack.config.gpu import GPU_RESOURCE
from servestack.config.models import CloudProvider, StackConfig, StrategyType
from servestack.config.stackfile import set_value
from servestack.config.validation import parse_stack, read_stack_text
from servestack.contract import labels
from servestack.manifests.node_pools import local_nodes
from servestack.manifests.render import render_stack
from servestack.review.capacity import Fit, Verdict
from servestack.review.diff import diff_configs
from tests import stack_text
from tests.cluster.live import (
    api_client,
    deploy_stack,
    local_stack_text,
    objects_with_our_labels,
    wait_for,
    wait_until_clean,
)

pytestmark = pytest.mark.cluster

LOCAL, KARPENTER = CloudProvider.local, CloudProvider.karpenter
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
NODEPOOL_LABEL = "karpenter.sh/nodepool"
#: Karpenter's word on a pod its NodePool's limits leave no node for (sigs.k8s.io/karpenter
#: pkg/controllers/provisioning/scheduling/scheduler.go): the `nodes` limit (`maxNodes`) is
#: checked first, then the resource limits.
KARPENTER_LIMITED = "node limits have been exhausted for nodepool"
KARPENTER_LIMITS = (KARPENTER_LIMITED, "all available instance types exceed limits for nodepool")


def limited(pool: str, said: list[str]) -> bool:
    """Whether Karpenter said that ``pool``'s limits stop it."""
    return any(f"{why} (NodePool={pool})" in m for m in said for why in KARPENTER_LIMITS)


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


# --- a rollout that cannot finish, forced through in development ---------------------------

#: Each stuck rollout's pool: a GPU type of its own (no matrix case uses it) on two nodes.
STUCK_POOL = {LOCAL: ("l4", "L4"), KARPENTER: ("l40s", "L40S")}
#: The remedy's figure in the verdict: "... so 1 of 2 replicas serve during the rollout".
SERVE_RE = re.compile(
    rf"remedy: set deployments\.{DEP}\.strategy maxSurge: 0 and maxUnavailable: 1: .*? so "
    r"(\d+) of (\d+) replicas serve during the rollout"
)


def stuck_stack(provider: CloudProvider, **strategy: Any) -> str:
    """The dev stack, bert-sentiment's 2 replicas filling a pool of 2 one-GPU nodes."""
    name, gpu = STUCK_POOL[provider]
    text = on_local_cluster(stack_text(STACK), provider=provider)
    pool = {
        "name": name,
        "gpu": {"type": gpu, "count": 1},
        # The local cluster's nodes are the pool's minNodes; Karpenter launches up to maxNodes.
        "minNodes": 2 if provider is LOCAL else 0,
        "maxNodes": 2,
    }
    text = set_value(text, "namespace", f"stuck-{provider.value}")
    text = set_value(text, "nodePools", [pool])
    text = set_value(text, f"deployments.{DEP}.resources.gpu", {"count": 1, "type": gpu})
    text = set_value(text, f"deployments.{DEP}.strategy", {"type": "rolling", **strategy})
    return set_value(text, f"deployments.{DEP}.replicas", 2)


def _edited(text: str, edits: dict[str, Any]) -> str:
    for path, value in edits.items():
        text = set_value(text, path, value)
    return text


ROLL = {f"deployments.{DEP}.env.ROLLOUT": "2"}
PRODUCTION = {"environment": "production"}


@dataclass
class Stuck:
    """What one forced rollout showed, step by step (asserted by the tests below)."""

    provider: CloudProvider
    diff: str = ""
    diff_code: int = -1
    production: str = ""
    production_code: int = -1
    pending: str = ""
    reason: str = ""
    karpenter: list[str] = field(default_factory=list)
    status: str = ""
    status_code: int = -1
    nodes_stuck: int = 0
    up_error: BaseException | None = None
    up_finished: bool = False
    still_pending: bool = False
    floor: int | None = None
    available: list[int] = field(default_factory=list)
    nodes_seen: list[int] = field(default_factory=list)
    #: (step, seconds since the start) for the record.
    steps: list[tuple[str, float]] = field(default_factory=list)
    remedy_error: BaseException | None = None
    rolled_out: bool = False
    error: BaseException | None = None


def _ready_pool_nodes(core: client.CoreV1Api, pool: str) -> int:
    nodes = core.list_node(label_selector=f"{labels.NODE_POOL}={pool}").items
    return sum(n.metadata.deletion_timestamp is None for n in nodes)


def _stuck_rollout(provider: CloudProvider, kubeconfig: Path, tmp: Path, out: Stuck) -> None:
    """Up the stuck stack, review the edit, force it through, then apply the remedy."""
    api = api_client(kubeconfig)
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    ns, pool = f"stuck-{provider.value}", STUCK_POOL[provider][0]
    base = stuck_stack(provider, maxSurge=1, maxUnavailable=0)
    start = time.monotonic()

    def step(what: str) -> None:
        out.steps.append((what, round(time.monotonic() - start, 1)))
        print(f"stuck {provider.value}: {what} at +{time.monotonic() - start:.0f} s")

    s = deploy_stack(tmp, kubeconfig, STACK, base)
    try:
        s.up()
        step("up")
        stack_file = s.project / "stacks" / f"Pulumi.{STACK}.yaml"
        new_file = tmp / "edited.yaml"
        new_file.write_text(_edited(base, ROLL))
        proc = s.servestack("diff", str(stack_file), str(new_file))
        out.diff, out.diff_code = " ".join(proc.stdout.split()), proc.returncode
        # The same edit of the same stack in production.
        old_prod, new_prod = tmp / "prod-before.yaml", tmp / "prod-after.yaml"
        old_prod.write_text(_edited(base, PRODUCTION))
        new_prod.write_text(_edited(base, {**PRODUCTION, **ROLL}))
        proc = s.servestack("diff", str(old_prod), str(new_prod))
        out.production = " ".join((proc.stdout + proc.stderr).split())
        out.production_code = proc.returncode

        stack_file.write_text(_edited(base, ROLL))

        def up() -> None:
            try:
                s.up()
            except BaseException as exc:  # examined by the test
                out.up_error = exc

        worker = threading.Thread(target=up, daemon=True)
        worker.start()

        def pending() -> list[Any]:
            return [
                p
                for p in core.list_namespaced_pod(ns, label_selector=f"{labels.NAME}={DEP}").items
                if p.status.phase == "Pending"
                and any(
                    c.type == "PodScheduled" and c.status == "False"
                    for c in p.status.conditions or []
                )
            ]

        (pod,) = wait_for(f"{ns}: the surge pod Pending with the scheduler's reason", pending, 90)
        out.pending = pod.metadata.name
        (out.reason,) = [c.message for c in pod.status.conditions if c.type == "PodScheduled"]
        if provider is KARPENTER:

            def said() -> list[str] | None:
                events = core.list_namespaced_event(
                    ns, field_selector=f"involvedObject.name={pod.metadata.name}"
                ).items
                found = [e.message for e in events if _from_karpenter(e)]
                return found if limited(pool, found) else None

            out.karpenter = wait_for(f"{ns}: Karpenter's word on the surge pod", said, 60)
        proc = s.servestack("status", STACK, DEP)
        out.status, out.status_code = proc.stdout, proc.returncode
        out.nodes_stuck = _ready_pool_nodes(core, pool)
        worker.join(timeout=300)
        step("the forced up ended")
        out.up_finished = not worker.is_alive()
        # It never finished: the pod is still Pending, the old pods still serve.
        out.still_pending = core.read_namespaced_pod(pod.metadata.name, ns).status.phase == (
            "Pending"
        )
        floors = SERVE_RE.findall(out.diff)
        out.floor = int(floors[0][0]) if floors else None

        # The remedy the verdict proposed, with the same edit.
        remedy = stuck_stack(provider, maxSurge=0, maxUnavailable=1)
        stack_file.write_text(_edited(remedy, ROLL))
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                d = apps.read_namespaced_deployment(DEP, ns)
                out.available.append(d.status.available_replicas or 0)
                out.nodes_seen.append(_ready_pool_nodes(core, pool))
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            s.up()
        except BaseException as exc:  # examined by the test
            out.remedy_error = exc
        finally:
            done.set()
            sampler.join()
        d = apps.read_namespaced_deployment(DEP, ns)
        out.rolled_out = (
            d.status.updated_replicas == d.status.available_replicas == d.status.replicas == 2
        )
        step("the remedy rolled out" if out.rolled_out else "the remedy's up ended")
    except BaseException as exc:  # examined by the test
        out.error = exc
    finally:
        s.destroy()
        step("destroyed")


# --- the matrix -----------------------------------------------------------------------------

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
ACCOUNT = "kubernetes:core/v1:ServiceAccount"
NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
#: How long a rollout the review says cannot finish is watched not finishing (from the edit,
#: or from the scale to an autoscaler's ceiling); the fitting ones finish meanwhile.
STUCK_SECONDS = 30
#: How long a rollout the review says finishes may take, all cases rolling at once.
ROLLOUT_SECONDS = 240


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
    case: str,
    provider: CloudProvider,
    nodes: int,
    deployments: list[dict[str, Any]],
    machine: str = "g4dn.xlarge",
) -> str:
    """One case's stack: its namespace and its pool, both named after the case. ``nodes``:
    the pool's node objects (`local`) or the most Karpenter may launch (`maxNodes`)."""
    gpus = {"g4dn.xlarge": 1, "g4dn.12xlarge": 4}[machine]
    pool = {
        "name": case,
        "gpu": {"type": "T4", "count": gpus},
        "machineType": machine,
        "minNodes": nodes if provider is LOCAL else 0,
        "maxNodes": nodes,
    }
    text = on_local_cluster(stack_text(STACK), provider=provider)
    text = set_value(text, "namespace", case)
    text = set_value(text, "nodePools", [pool])
    return set_value(text, "deployments", deployments)


BG = {"type": "blue_green"}
CANARY = {
    "type": "canary",
    "weight": 10,
    "canaryVersion": "2",
    "canaryImage": "registry.example.com/a:2",
}
REMEDY = {"type": "rolling", "maxSurge": 0, "maxUnavailable": 1}
AUTOSCALED = {"enabled": True, "minReplicas": 1, "maxReplicas": 3, "targetCpuUtilization": 80}
IMAGE = {"deployments.a.model.image": "registry.example.com/a:2"}
VERSION = {"deployments.a.model.version": "2"}


@dataclass(frozen=True)
class Case:
    id: str
    provider: CloudProvider
    before: str
    #: Edits as stack-file paths -> values.
    edits: dict[str, Any]
    #: What the case is built to show (the test compares the verdict with the cluster, and
    #: this guards the case itself).
    expected: Fit
    #: Once rolled out, deployment `a` is scaled to its autoscaler's ceiling (as the
    #: autoscaler would at full load), which the verdict says where it stops.
    ceiling: bool = False

    @property
    def old(self) -> StackConfig:
        return _config(self.before)

    @property
    def new(self) -> StackConfig:
        return _config(_edited(self.before, self.edits))


def _config(text: str) -> StackConfig:
    return parse_stack(read_stack_text(text))


def cases(provider: CloudProvider) -> list[Case]:
    """The matrix on one provider. On `local` the pool's nodes are all there from the start;
    on Karpenter the pool starts with the nodes its pods at rest need and may grow to
    `maxNodes`, so what fits as is on `local` needs nodes there."""
    p = "l" if provider is LOCAL else "k"
    grows = Fit.FITS if provider is LOCAL else Fit.NEEDS_NODES

    def case(name: str, nodes: int, deps: list[dict[str, Any]], edits: dict[str, Any], fit: Fit,
             machine: str = "g4dn.xlarge", ceiling: bool = False) -> Case:  # fmt: skip
        cid = f"{p}-{name}"
        text = matrix_stack(cid, provider, nodes, deps, machine)
        return Case(f"{provider.value}-{name}", provider, text, edits, fit, ceiling)

    # Allocatable CPU of a g4dn.12xlarge (48 vCPU, 4 T4): 47810m after the EKS kubelet's
    # reserves on a `local` node, 47900m after the kwok provider's fixed 100m on Karpenter's.
    edge = "11950m" if provider is LOCAL else "11975m"
    return [
        case("exact-fit", 2, [model("a", 1)], IMAGE, grows),
        case("one-short", 2, [model("a", 2)], IMAGE, Fit.CANNOT_FINISH),
        case("one-short-remedy", 2, [model("a", 2, strategy=REMEDY)], IMAGE, Fit.FITS),
        case("one-more-node", 3, [model("a", 2)], IMAGE, grows),
        # Three 12-CPU pods fit one node, a fourth does not.
        case("cpu-short", 1, [model("a", 3, cpu="12")], IMAGE, Fit.CANNOT_FINISH, "g4dn.12xlarge"),
        # Four pods of a quarter of the allocatable CPU fill the node exactly.
        case("cpu-exact", 1, [model("a", 3, cpu=edge)], IMAGE, Fit.FITS, "g4dn.12xlarge"),
        # Two 20-CPU pods fill a node's CPU with half its GPUs free: two nodes hold four,
        # the surge pod needs a third (on Karpenter, one its GPU limit alone would allow).
        case("cpu-bound", 2, [model("a", 4, cpu="20")], IMAGE, Fit.CANNOT_FINISH, "g4dn.12xlarge"),
        case(
            "ceiling",
            2,
            [model("a", 1, autoscaling=AUTOSCALED)],
            IMAGE,
            grows,
            ceiling=True,
        ),
        case("blue-green-fits", 4, [model("a", 2, strategy=BG)], VERSION, grows),
        case("blue-green-short", 3, [model("a", 2, strategy=BG)], VERSION, Fit.CANNOT_FINISH),
        case("canary-fits", 3, [model("a", 2)], {"deployments.a.strategy": CANARY}, grows),
        case("shared-short", 2, [model("a", 1), model("b", 1)], IMAGE, Fit.CANNOT_FINISH),
        case("shared-fits", 3, [model("a", 1), model("b", 1)], IMAGE, grows),
        case("scale-up", 3, [model("a", 1)], {"deployments.a.replicas": 3}, grows),
    ]


CASES = cases(LOCAL) + cases(KARPENTER)
#: "the autoscaler's ceiling (maxReplicas 3) does not fit pool p: replicas above 2 stay Pending"
ABOVE_RE = re.compile(r"replicas above (\d+) stay Pending")


@dataclass
class Outcome:
    """What the cluster did with one case."""

    verdict: Verdict
    pool: str
    namespace: str
    #: The pool's nodes once the stack was at rest, and the most seen after the edit.
    nodes_at_rest: int = 0
    nodes_most: int = 0
    rolled_out: bool = False
    #: Seconds from the edit to the end of its rollout (None: it never ended).
    took: float | None = None
    #: The scheduler's messages for the pods still Pending at the end.
    stuck: list[str] = field(default_factory=list)
    #: Karpenter's events on those pods.
    karpenter: list[str] = field(default_factory=list)
    #: Least available replicas of each Deployment seen during the rollout.
    least_available: dict[str, int] = field(default_factory=dict)
    #: At the autoscaler's ceiling: Ready pods of `a`, and Pending ones.
    ceiling_ready: int | None = None
    ceiling_pending: int | None = None
    #: (pool's node name, allocatable) of each node.
    allocatable: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Whether the case's observation is over, and when its second phase (the autoscaler's
    #: ceiling) began (monotonic).
    done: bool = False
    scaled_at: float | None = None


def _objects(
    config: StackConfig,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The pool's Nodes (as the GpuNodePool component registers them on `local`) or its
    NodePool (Karpenter), the models' ServiceAccounts and their Deployments, as the builders
    make them for ``config``; each Deployment's pods pinned to the case's pool."""
    rendered = render_stack(config)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for key, record in rendered.resources.items():
        by_type.setdefault(key.type, []).append(record.manifest)
    pools: list[dict[str, Any]] = by_type.get(NODEPOOL, [])
    if config.cluster.provider is LOCAL:
        pools = [n for p in config.node_pools for n in local_nodes(p, config.cluster)]
    (pool,) = config.node_pools
    deployments = {}
    for manifest in by_type[DEPLOYMENT]:
        pod = manifest["spec"]["template"]["spec"]
        pod["nodeSelector"] = {**pod.get("nodeSelector", {}), labels.NODE_POOL: pool.name}
        deployments[manifest["metadata"]["name"]] = manifest
    return pools, by_type[ACCOUNT], deployments


class Matrix:
    """Every case side by side: applied together, watched together."""

    def __init__(self, api: client.ApiClient) -> None:
        self.core, self.apps = client.CoreV1Api(api), client.AppsV1Api(api)
        dyn = dynamic.DynamicClient(api)
        self.deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
        self.nodepools = dyn.resources.get(api_version="karpenter.sh/v1", kind="NodePool")
        self.out: dict[str, Outcome] = {}
        #: Each case's objects before the edit (pools, accounts, Deployments), and its
        #: Deployments after it.
        self.before: dict[str, tuple[list[Any], list[Any], dict[str, dict[str, Any]]]] = {}
        self.after: dict[str, dict[str, dict[str, Any]]] = {}

    def verdicts(self) -> None:
        """Each case's verdict, and what the builders make of it before and after."""
        for case in CASES:
            (verdict,) = [
                v for v in diff_configs(case.old, case.new).capacity if v.deployment == "a"
            ]
            (pool,) = case.old.node_pools
            self.out[case.id] = Outcome(verdict, pool.name, case.old.namespace)
            self.before[case.id] = _objects(case.old)
            self.after[case.id] = _objects(case.new)[2]

    def at_rest(self) -> None:
        """Every case's namespace, pool and Deployments as they are before the edit."""
        for case in CASES:
            self.core.create_namespace({"metadata": {"name": self.out[case.id].namespace}})
        for case in CASES:
            pools, accounts, _ = self.before[case.id]
            ns = self.out[case.id].namespace
            for pool in pools:
                if case.provider is LOCAL:
                    self.core.create_node(pool)
                else:
                    self.nodepools.create(body=pool)
            for account in accounts:
                self.core.create_namespaced_service_account(ns, account)
        # The dynamic client sends the manifests as built (quantities as the builders write).
        for case in CASES:
            for manifest in self.before[case.id][2].values():
                self.deployments.create(body=manifest, namespace=self.out[case.id].namespace)

        def all_at_rest() -> bool:
            deps = self._deployments()
            return all(
                (d := deps.get((self.out[c.id].namespace, name))) is not None
                and self._is_rolled_out(d)
                for c in CASES
                for name in self.before[c.id][2]
            )

        wait_for("every case at rest", all_at_rest, timeout=180, every=1)
        nodes = self._nodes()
        for case in CASES:
            o = self.out[case.id]
            mine = nodes.get(o.pool, [])
            o.nodes_at_rest = o.nodes_most = len(mine)
            o.allocatable = {n.metadata.name: dict(n.status.allocatable) for n in mine}

    def edit(self) -> float:
        """The edit of every case, as the engine applies it: changed Deployments patched,
        new ones created (Deployments that go stay: the engine deletes them after). Returns
        when it began."""
        began = time.monotonic()
        for case in CASES:
            before, ns = self.before[case.id][2], self.out[case.id].namespace
            for name, manifest in self.after[case.id].items():
                if name in before:
                    self.deployments.patch(
                        body=manifest,
                        namespace=ns,
                        content_type="application/strategic-merge-patch+json",
                    )
                else:
                    self.deployments.create(body=manifest, namespace=ns)
        return began

    def _deployments(self) -> dict[tuple[str, str], Any]:
        return {
            (d.metadata.namespace, d.metadata.name): d
            for d in self.apps.list_deployment_for_all_namespaces().items
        }

    def watch(self, started: float) -> None:
        """Until every case has shown what it does: a rollout the verdict says finishes has
        finished (and, at an autoscaler's ceiling, stopped where the verdict says); one it
        says cannot finish has not, STUCK_SECONDS after the edit."""
        deadline = started + ROLLOUT_SECONDS
        while True:
            now = time.monotonic()
            nodes = self._nodes()
            deps = self._deployments()
            for case in CASES:
                o = self.out[case.id]
                if o.done:
                    continue
                o.nodes_most = max(o.nodes_most, len(nodes.get(o.pool, [])))
                for name in self.after[case.id]:
                    d = deps[(o.namespace, name)]
                    seen = d.status.available_replicas or 0
                    o.least_available[name] = min(o.least_available.get(name, seen), seen)
                self._observe(case, o, now - started, deps)
            if all(o.done for o in self.out.values()) or now > deadline:
                break
            time.sleep(1)
        for o in self.out.values():
            if not o.done:
                o.stuck = self._unschedulable(o.namespace)

    def _observe(self, case: Case, o: Outcome, since: float, deps: dict[Any, Any]) -> None:
        if o.scaled_at is not None:
            # At the autoscaler's ceiling: what runs once the scheduler has had its say.
            if time.monotonic() - o.scaled_at >= STUCK_SECONDS and self._told(case, o):
                pods = [
                    p
                    for p in self.core.list_namespaced_pod(o.namespace).items
                    if p.metadata.deletion_timestamp is None
                ]
                o.ceiling_ready = sum(_ready(p.status.conditions) for p in pods)
                o.ceiling_pending = sum(p.status.phase == "Pending" for p in pods)
                self._stuck(o)
            return
        rolled = all(self._is_rolled_out(deps[(o.namespace, n)]) for n in self.after[case.id])
        if rolled and o.took is None:
            o.rolled_out, o.took = True, since
        if o.verdict.fit is Fit.CANNOT_FINISH:
            if rolled or (since >= STUCK_SECONDS and self._told(case, o)):
                self._stuck(o)
            return
        if not rolled:
            return
        if not case.ceiling:
            o.done = True
            return
        top = case.new.deployments[0].autoscaling.max_replicas  # type: ignore[union-attr]
        scale = {"spec": {"replicas": top}}
        self.apps.patch_namespaced_deployment_scale("a", o.namespace, scale)
        o.scaled_at = time.monotonic()

    def _told(self, case: Case, o: Outcome) -> bool:
        """Whether the pool's autoscaler has had its say: on Karpenter, its event that the
        NodePool's limits leave no instance type (it looks again every few seconds, so the
        event may come after the scheduler's); `local` has no autoscaler."""
        if case.provider is LOCAL:
            return True
        return limited(o.pool, self._karpenter_said(o.namespace))

    def _stuck(self, o: Outcome) -> None:
        """The case is over: what its Pending pods are told."""
        o.stuck = self._unschedulable(o.namespace)
        o.karpenter = self._karpenter_said(o.namespace)
        o.done = True

    def _nodes(self) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for n in self.core.list_node(label_selector=labels.NODE_POOL).items:
            if n.metadata.deletion_timestamp is None:
                out.setdefault(n.metadata.labels[labels.NODE_POOL], []).append(n)
        return out

    @staticmethod
    def _is_rolled_out(d: Any) -> bool:
        want = d.spec.replicas or 0
        st = d.status
        return bool(
            (st.observed_generation or 0) >= d.metadata.generation
            and (st.updated_replicas or 0) == want
            and (st.available_replicas or 0) == want
            and (st.replicas or 0) == want
        )

    def _unschedulable(self, ns: str) -> list[str]:
        return [
            f"{p.metadata.name}: {c.message}"
            for p in self.core.list_namespaced_pod(ns).items
            for c in p.status.conditions or []
            if c.type == "PodScheduled" and c.status == "False"
        ]

    def _karpenter_said(self, ns: str) -> list[str]:
        return [
            f"{e.involved_object.name}: {e.message}"
            for e in self.core.list_namespaced_event(ns).items
            if _from_karpenter(e) and e.involved_object.kind == "Pod"
        ]

    def clean(self) -> None:
        """Everything the matrix made, gone. Its pods are deleted at once (no container runs
        that could stop gracefully): a namespace otherwise waits for their grace period."""
        for o in self.out.values():
            _ignore_missing(lambda ns=o.namespace: self.core.delete_namespace(ns))
        # A terminating namespace takes no new pod: these are its last.
        for o in self.out.values():
            _ignore_missing(
                lambda ns=o.namespace: self.core.delete_collection_namespaced_pod(
                    ns, grace_period_seconds=0
                )
            )
        for case in CASES:
            pool = self.out[case.id].pool
            if case.provider is LOCAL:
                for node in self.core.list_node(label_selector=f"{labels.NODE_POOL}={pool}").items:
                    _ignore_missing(lambda n=node.metadata.name: self.core.delete_node(n))
            else:
                _ignore_missing(lambda p=pool: self.nodepools.delete(name=p))
        pools = {o.pool for o in self.out.values()}
        namespaces = {o.namespace for o in self.out.values()}
        wait_for(
            "the matrix's namespaces and nodes gone",
            lambda: (
                not (
                    pools & set(self._all_nodes())
                    or namespaces & {n.metadata.name for n in self.core.list_namespace().items}
                )
            ),
            timeout=180,
            every=1,
        )

    def _all_nodes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for n in self.core.list_node(label_selector=labels.NODE_POOL).items:
            pool = n.metadata.labels[labels.NODE_POOL]
            out[pool] = out.get(pool, 0) + 1
        return out


def _from_karpenter(event: Any) -> bool:
    return "karpenter" in (
        (event.source.component if event.source else None) or event.reporting_component or ""
    )


def _ready(conditions: list[Any] | None) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in conditions or [])


def _ignore_missing(call: Callable[[], Any]) -> None:
    try:
        call()
    except ApiException as e:
        if e.status != 404:
            raise


def _raise(error: BaseException | None) -> None:
    """Re-raise what a worker caught; an engine's failure by its error lines first."""
    if isinstance(error, auto.CommandError):
        said = [line for line in str(error).splitlines() if "error" in line.lower()]
        raise AssertionError("\n".join(said[:40])) from error
    if error is not None:
        raise error


# --- everything at once ---------------------------------------------------------------------


@dataclass
class Live:
    stuck: dict[CloudProvider, Stuck]
    matrix: dict[str, Outcome]
    error: BaseException | None = None


@pytest.fixture(scope="module")
def live(local_cluster: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    cluster_up(karpenter=True)
    api = api_client(local_cluster)
    assert objects_with_our_labels(api) == [], "the cluster is not clean before the test"
    stuck = {p: Stuck(p) for p in (LOCAL, KARPENTER)}
    matrix = Matrix(api)
    matrix.verdicts()
    start = time.monotonic()

    def mark(what: str) -> None:
        print(f"capacity: {what} at +{time.monotonic() - start:.0f} s")

    error: BaseException | None = None
    with ThreadPoolExecutor(max_workers=2) as pool:
        running = [
            pool.submit(
                _stuck_rollout, p, local_cluster, tmp_path_factory.mktemp(f"stuck-{p.value}"), out
            )
            for p, out in stuck.items()
        ]
        try:
            matrix.at_rest()
            mark(f"the matrix's {len(CASES)} cases at rest")
            edited = matrix.edit()
            matrix.watch(edited)
            mark("the matrix's rollouts watched")
        except BaseException as exc:  # reported by every matrix test
            error = exc
        finally:
            try:
                matrix.clean()
                mark("the matrix cleaned up")
            finally:
                for f in running:
                    f.result()
                mark("the stuck rollouts done")
    try:
        yield Live(stuck, matrix.out, error)
    finally:
        wait_until_clean(api)
        wait_for(
            "Karpenter's nodes gone",
            lambda: not client.CoreV1Api(api).list_node(label_selector=NODEPOOL_LABEL).items,
            timeout=180,
            every=1,
        )
        mark("the cluster clean")


@pytest.mark.parametrize("provider", [LOCAL, KARPENTER], ids=lambda p: p.value)
def test_a_rollout_that_cannot_finish_is_said_refused_and_stays_pending(
    live: Live, provider: CloudProvider
) -> None:
    s = live.stuck[provider]
    _raise(s.error)
    pool, gpu = STUCK_POOL[provider]
    verdict = (
        f"cannot finish: pool {pool} holds at most 2 x {gpu}; this rollout needs 3 x {gpu} "
        "at its peak (2 replicas + maxSurge 1)"
    )
    # Beforehand: development warns (exit 0), production refuses like a forbidden edit.
    assert s.diff_code == 0, s.diff
    assert f"WARNING capacity deployments.{DEP}: {verdict}" in s.diff, s.diff
    assert s.production_code == ExitCode.REFUSED, s.production
    assert (
        f"BLOCKED deployments.{DEP}: forbidden (production refuses a rollout that {verdict})"
        in s.production
    ), s.production
    # Forced through: the surge pod Pending with the scheduler's message; status shows it.
    assert "Insufficient nvidia.com/gpu" in s.reason, s.reason
    assert s.status_code == 0, s.status
    # The scheduler's message as status shows it (its node count moves with the matrix).
    (said,) = [
        line for line in s.status.splitlines() if line.startswith(f"  pending {s.pending}: ")
    ]
    assert "Insufficient nvidia.com/gpu" in said, said
    assert "rollout in progress" in s.status, s.status
    # The pool never grew: two nodes; on Karpenter its NodePool's limits stopped it.
    assert s.nodes_stuck == 2
    if provider is KARPENTER:
        assert limited(pool, s.karpenter), s.karpenter
        assert limited(pool, s.status.splitlines()), s.status
    # pulumi up gave up (the development rollout bound), the pod still Pending.
    assert s.up_finished, "pulumi up still running"
    assert isinstance(s.up_error, auto.CommandError), s.up_error
    assert s.still_pending
    print(f"{provider.value}: {s.reason}")


@pytest.mark.parametrize("provider", [LOCAL, KARPENTER], ids=lambda p: p.value)
def test_the_remedy_finishes_above_the_availability_it_states(
    live: Live, provider: CloudProvider
) -> None:
    s = live.stuck[provider]
    _raise(s.error)
    assert s.floor == 1, s.diff  # "... so 1 of 2 replicas serve during the rollout"
    assert s.remedy_error is None, s.remedy_error
    assert s.rolled_out
    assert len(s.available) > 5, "the rollout was not sampled"
    assert min(s.available) >= s.floor, s.available
    assert max(s.nodes_seen) <= 2, s.nodes_seen
    print(f"{provider.value}: available replicas during the remedy's rollout: {s.available}")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_the_verdict_is_what_the_scheduler_does(live: Live, case: Case) -> None:
    if live.error is not None:
        raise live.error
    o = live.matrix[case.id]
    v = o.verdict
    assert v.fit is case.expected, v.text  # the case shows what it is built for
    print(f"{case.id}: {v.text}")
    print(f"{case.id}: live: nodes {o.nodes_at_rest} -> {o.nodes_most}, took {o.took}, {o.stuck}")
    # At rest the pool runs the nodes the verdict counted; they offer the model's allocatable.
    assert o.nodes_at_rest == v.nodes_now, (o.nodes_at_rest, v.text)
    shape = _allocatable(case)
    for name, offered in o.allocatable.items():
        assert {k: offered[k] for k in shape} == shape, name
    if v.fit is Fit.CANNOT_FINISH:
        assert not o.rolled_out, f"rolled out in {o.took} s"
        assert o.stuck and all("Insufficient" in s for s in o.stuck), o.stuck
        # The pool grew to its bound and no further.
        assert o.nodes_most == v.nodes_max
        if case.provider is KARPENTER:
            assert limited(o.pool, o.karpenter), o.karpenter
        return
    assert o.rolled_out, f"not rolled out after {ROLLOUT_SECONDS} s: {o.stuck}"
    # Fits as is: no node added; needs nodes: Karpenter adds exactly those.
    assert o.nodes_most == (v.nodes_now if v.fit is Fit.FITS else v.nodes_needed)
    if case.ceiling:
        (note,) = v.notes
        stops = ABOVE_RE.search(note)
        assert stops is not None, note
        assert o.ceiling_ready == int(stops.group(1)), (o.ceiling_ready, note)
        assert o.ceiling_pending and o.ceiling_pending > 0
        assert o.stuck and all("Insufficient" in s for s in o.stuck), o.stuck
        assert o.nodes_most == v.nodes_max
        if case.provider is KARPENTER:
            assert limited(o.pool, o.karpenter), o.karpenter
    # Available replicas of the rolling track never fell below what its strategy allows;
    # the remedy's case, below what the verdict of the case it remedies stated.
    old_a, new_a = case.old.deployments[0], case.new.deployments[0]
    if "a" in o.least_available and new_a.strategy.type is StrategyType.rolling:
        floor = min(capacity.at_rest_pods(old_a), capacity.at_rest_pods(new_a))
        floor -= int(effective(new_a).max_unavailable)
        if case.id.endswith("one-short-remedy"):
            short = live.matrix[case.id.removesuffix("-remedy")].verdict
            serves = [r for r in short.remedies if "maxUnavailable: 1" in r]
            stated = re.search(r"so (\d+) of \d+ replicas serve", serves[0]) if serves else None
            assert stated is not None, short.remedies
            assert int(stated.group(1)) == floor
        assert o.least_available["a"] >= floor, o.least_available


def _allocatable(case: Case) -> dict[str, str]:
    """What each of the case's nodes offers by the capacity model, as quantities."""
    (pool,) = case.old.node_pools
    node = capacity.pool_node(pool, case.old.cluster)
    assert node is not None
    return {
        k: capacity.quantity(k, v)
        for k, v in node.allocatable.items()
        if k in (capacity.CPU, capacity.MEMORY, GPU_RESOURCE)
    }
