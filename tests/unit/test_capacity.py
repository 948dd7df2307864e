"""The capacity model: allocatable by the providers' published reserves, pods at rest, and
the pools' bounds (the refusals `servestack validate` makes from it)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from servestack.config import capacity
from servestack.config.errors import ConfigError
from servestack.config.gpu import GPU_RESOURCE
from servestack.config.machines import MACHINES, Family, machine
from servestack.config.models import LOCAL_NODE_CLASS
from servestack.config.quantities import cpu_millicores, memory_bytes
from servestack.config.validation import parse_stack
from servestack.manifests.instance_types import karpenter_machines, kwok_instance_types
from servestack.manifests.render import render_stack
from servestack.manifests.sample import sample_stack

MIB, GIB = 1024**2, 1024**3
LOCAL_CLASS = LOCAL_NODE_CLASS.model_dump(by_alias=True)


def stack(
    pools: list[dict[str, Any]],
    deployments: list[dict[str, Any]],
    provider: str = "local",
    environment: str = "development",
) -> dict[str, Any]:
    return {
        "environment": environment,
        "cluster": {"name": "c", "provider": provider},
        "nodePools": pools,
        "deployments": deployments,
    }


def dep(name: str = "ranker", gpu: str = "L4", count: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "model": {"id": "m", "version": "v1", "type": "llm", "image": "registry.example.com/r:1"},
        "resources": {"cpu": 2, "memory": "8Gi", "gpu": {"count": count, "type": gpu}},
        "replicas": 1,
        **extra,
    }


def pool(nodes: int, gpu: str = "L4", count: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "name": gpu.lower(),
        "gpu": {"type": gpu, "count": count},
        "minNodes": nodes,
        "maxNodes": nodes,
        **extra,
    }


@pytest.mark.parametrize(
    ("vcpu", "reserved"),
    # 6 % of the first core, 1 % of the second, 0.5 % of the next two, 0.25 % above four.
    [(1, 60), (2, 70), (4, 80), (8, 90), (48, 190), (96, 310), (192, 550), (5, 83)],
)
def test_cpu_reserve_follows_the_published_tiers(vcpu: int, reserved: int) -> None:
    assert capacity.cpu_reserve_millicores(vcpu) == reserved


def test_eks_memory_reserve_is_by_pod_count_and_gke_by_memory_tiers() -> None:
    assert capacity.eks_memory_reserve(110) == (11 * 110 + 255) * MIB
    assert capacity.eks_memory_reserve(29) == 574 * MIB
    # GKE: 25 % of 4 GiB + 20 % of 4 GiB + 10 % of 8 GiB + 6 % of 16 GiB (of a 32 GiB machine).
    assert capacity.gke_memory_reserve(32 * GIB) == math.ceil((1 + 0.8 + 0.8 + 0.06 * 16) * GIB)
    assert capacity.gke_memory_reserve(512 * MIB) == 255 * MIB


def test_a_node_offers_pods_its_capacity_less_the_reserves() -> None:
    g6 = machine("g6.2xlarge")
    assert g6 is not None and g6.family is Family.ec2
    node = capacity.node_shape(g6)
    assert node.capacity[capacity.CPU] == 8000
    assert node.allocatable[capacity.CPU] == 8000 - 90
    assert node.allocatable[capacity.MEMORY] == 32 * GIB - (11 * 110 + 255 + 100) * MIB
    assert node.allocatable[capacity.STORAGE] == 200 * GIB - 20 * GIB - GIB
    assert node.allocatable[GPU_RESOURCE] == 1
    g2 = machine("g2-standard-8")
    assert g2 is not None
    gke = capacity.node_shape(g2)
    # min(50 %, 6 GiB + 35 %, 100 GiB) of the 200 GiB disk, plus the 10 % eviction threshold.
    assert gke.allocatable[capacity.STORAGE] == 200 * GIB - 20 * GIB - 76 * GIB


def test_karpenters_kwok_nodes_offer_the_instance_type_less_its_fixed_overhead() -> None:
    """On the local cluster's Karpenter (the kwok node class) a pool's node offers what the
    kwok provider advertises: the generated instance type's resources less 100m CPU and 10Mi
    memory; the same pool with AWS's node class keeps the EKS reserves."""
    types = {t["name"]: t["resources"] for t in kwok_instance_types()}
    for m in karpenter_machines():
        one = pool(0, gpu=m.gpu.value, count=m.gpus, machineType=m.name, maxNodes=1)
        spec = stack([one], [], "karpenter")
        kwok = parse_stack({**spec, "cluster": {**spec["cluster"], "nodeClass": LOCAL_CLASS}})
        (node,) = [capacity.pool_node(p, kwok.cluster) for p in kwok.node_pools]
        assert node is not None
        offered = types[m.name]
        assert node.allocatable == {
            capacity.CPU: cpu_millicores(offered["cpu"]) - 100,
            capacity.MEMORY: memory_bytes(offered["memory"]) - 10 * MIB,
            capacity.STORAGE: memory_bytes(offered["ephemeral-storage"]),
            capacity.PODS: int(offered["pods"]),
            GPU_RESOURCE: int(offered[GPU_RESOURCE]),
        }, m.name
        eks = parse_stack(spec)
        (aws,) = [capacity.pool_node(p, eks.cluster) for p in eks.node_pools]
        assert aws == capacity.node_shape(m), m.name


def test_every_machine_leaves_room_for_pods() -> None:
    for m in MACHINES:
        node = capacity.node_shape(m)
        for name in (capacity.CPU, capacity.MEMORY, capacity.STORAGE):
            assert 0 < node.allocatable[name] < node.capacity[name], (m.name, name)


def test_pod_requests_are_the_containers_requests() -> None:
    """The model's requests and the rendered Deployments' container requests are one thing."""
    config = sample_stack("karpenter")
    rendered = render_stack(config)
    by_name = {d.name: d for d in config.deployments}
    seen = 0
    for key, record in rendered.resources.items():
        if key.type != "kubernetes:apps/v1:Deployment":
            continue
        owner = rendered.components[key]
        assert owner is not None
        spec = by_name[owner.split(".", 1)[1]]
        (container,) = record.manifest["spec"]["template"]["spec"]["containers"]
        rendered_requests = {
            name: (
                capacity.pod_requests(spec)[name]
                if name == capacity.CPU
                else memory_bytes(value)
                if name in (capacity.MEMORY, capacity.STORAGE)
                else int(value)
            )
            for name, value in container["resources"]["requests"].items()
        }
        model = dict(capacity.pod_requests(spec))
        assert model.pop(capacity.PODS) == 1
        assert rendered_requests == model, owner
        seen += 1
    assert seen >= 3


@pytest.mark.parametrize(
    ("resources", "problem"),
    [
        (
            {"cpu": 8, "memory": "32Gi"},
            [
                "deployments.ranker.resources.cpu: 8 does not fit l4's g6.2xlarge (8 vCPU, "
                "32 GiB; allocatable 7910m after the kubelet's reserves)",
                "deployments.ranker.resources.memory: 32Gi does not fit l4's g6.2xlarge (8 vCPU, "
                "32 GiB; allocatable 31203Mi after the kubelet's reserves)",
            ],
        ),
        (
            {"cpu": 2, "memory": "8Gi", "storage": "300Gi"},
            [
                "deployments.ranker.resources.storage: 300Gi does not fit l4's g6.2xlarge "
                "(8 vCPU, 32 GiB; allocatable 179Gi after the kubelet's reserves)"
            ],
        ),
    ],
    ids=["full-capacity", "storage"],
)
def test_a_replica_must_fit_a_nodes_allocatable(
    resources: dict[str, Any], problem: list[str]
) -> None:
    d = dep()
    d["resources"] = {**resources, "gpu": {"count": 1, "type": "L4"}}
    with pytest.raises(ConfigError) as err:
        parse_stack(stack([pool(1, machineType="g6.2xlarge")], [d]))
    assert [str(p) for p in err.value.problems] == problem
    # Just inside: the allocatable amounts themselves fit.
    d["resources"] = {"cpu": "7910m", "memory": "31203Mi", "storage": "179Gi"} | {
        "gpu": {"count": 1, "type": "L4"}
    }
    parse_stack(stack([pool(1, machineType="g6.2xlarge")], [d]))


def test_a_pool_too_small_at_rest_is_refused_naming_pool_capacity_and_demand() -> None:
    raw = stack(
        [pool(2, minNodes=0, maxNodes=2)],
        [dep("a", replicas=2), dep("b", replicas=1)],
        provider="karpenter",
    )
    with pytest.raises(ConfigError) as err:
        parse_stack(raw)
    assert [str(p) for p in err.value.problems] == [
        "nodePools.l4.maxNodes: pool l4 holds at most 2 x L4 on 2 node(s) of g6.xlarge: "
        "allocatable 3920m CPU, 14819Mi memory, 179Gi storage; at rest its deployments need "
        "3 pods (a: 2 pods, 1 x L4 each, b: 1 pod, 1 x L4 each): raise maxNodes or lower "
        "their replicas"
    ]
    raw["nodePools"][0]["maxNodes"] = 3
    parse_stack(raw)


def test_an_autoscaled_deployment_counts_its_minimum_at_rest() -> None:
    auto = dep(
        "a",
        replicas=None,
        autoscaling={"minReplicas": 2, "maxReplicas": 8, "targetCpuUtilization": 70},
    )
    parse_stack(stack([pool(2)], [auto]))
    auto["autoscaling"]["minReplicas"] = 3
    with pytest.raises(ConfigError, match=r"nodePools.l4.minNodes: pool l4 holds at most 2 x L4"):
        parse_stack(stack([pool(2)], [auto]))


def test_the_canary_track_counts_at_rest() -> None:
    strategy = {
        "type": "canary",
        "weight": 10,
        "canaryVersion": "v2",
        "canaryImage": "registry.example.com/r:2",
    }
    parse_stack(stack([pool(2)], [dep(replicas=1, strategy=strategy)]))
    with pytest.raises(ConfigError, match=r"need 3 pods \(ranker: 3 pods, 1 x L4 each\)"):
        parse_stack(stack([pool(2)], [dep(replicas=2, strategy=strategy)]))


def test_a_gpu_type_no_pool_offers_is_refused() -> None:
    with pytest.raises(ConfigError) as err:
        parse_stack(stack([pool(1)], [dep(gpu="H100")]))
    assert [str(p) for p in err.value.problems] == [
        "deployments.ranker.resources.gpu.type: H100 is offered by no node pool; "
        "declared pools offer: L4"
    ]


def test_packing_is_exact_for_one_shape_and_counts_every_resource() -> None:
    config = parse_stack(stack([pool(2, machineType="g6.12xlarge", count=4)], []))
    (p,) = capacity.pools_by_gpu(config).values()
    one = {capacity.CPU: 1000, capacity.MEMORY: 4 * GIB, GPU_RESOURCE: 1, capacity.PODS: 1}
    assert capacity.pack([one] * 8, p) == 2
    assert capacity.pack([one] * 9, p) is None
    assert capacity.pack([one] * 5, p) == 2
    # CPU runs out before GPUs: 47.8 cores allocatable hold two 20-core pods a node.
    big = {**one, capacity.CPU: 20_000}
    assert capacity.pack([big] * 4, p) == 2
    assert capacity.pack([big] * 5, p) is None


def _shifted(text: str) -> Any:
    """The whole change of `promote --shift` on prod's bert-sentiment, as the review sees it."""
    from servestack.ops.edits import shift_steps
    from servestack.review.diff import diff_configs
    from servestack.review.predict import parse_text, predict

    after = text
    for step in shift_steps(text, "bert-sentiment"):
        after = predict(after, step).text
    return diff_configs(parse_text(text, "prod"), parse_text(after, "prod"))


def test_promote_shift_needs_both_tracks_full_and_production_refuses_what_cannot_fit() -> None:
    from servestack.config.stackfile import set_value
    from servestack.review.capacity import Fit
    from tests import REPO

    autoscaled = (REPO / "stacks" / "Pulumi.prod.yaml").read_text()
    # Under its autoscaler (minReplicas 2): the canary grows to the floor, both tracks full.
    (v,) = _shifted(autoscaled).capacity
    assert v.peak_pods == 4 and "2 of the old stable track + 2 canary pods" in v.text
    prod = set_value(autoscaled, "deployments.bert-sentiment.autoscaling", {"enabled": False})
    prod = set_value(prod, "deployments.bert-sentiment.replicas", 2)
    found = _shifted(prod)
    (v,) = found.capacity
    # 2 replicas: 2 old stable + 2 canary pods at the peak.
    assert v.peak_pods == 4 and "2 of the old stable track + 2 canary pods" in v.text
    assert v.fit is not Fit.CANNOT_FINISH and not found.blocking(fail_on_replace=False)

    # Too big for the pool: the first update's stack file (both tracks full) does not fit at
    # rest, so the shift is refused before any update, in one line naming the pool.
    big = set_value(prod, "deployments.bert-sentiment.replicas", 15)
    with pytest.raises(ConfigError) as info:
        _shifted(big)
    assert str(info.value).count("\n") == 0
    assert "nodePools.a100.maxNodes: pool a100 holds at most 32 x A100" in str(info.value)
    assert "bert-sentiment: 30 pods" in str(info.value)
