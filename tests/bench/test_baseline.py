"""The benchmark's baseline is honest: the hand-written program registers exactly the
Kubernetes resources the components do (same types, names, inputs and resource options,
and the same effective dependencies), only without the ComponentResources. A ratio against
anything else would measure a different program."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from bench.handwritten_program import handwritten, handwritten_with_layers
from bench.stacks import cluster_stack_raw, stack_raw
from servestack.config.models import StackConfig
from servestack.config.validation import parse_stack
from servestack.manifests import naming
from servestack.program.stack import build
from tests.mocks import Recorder, RecordingMonitor, run_program

COMPONENT_TYPES = {
    naming.MODEL_DEPLOYMENT,
    naming.AUTOSCALER,
    naming.LOAD_BALANCER,
    naming.GPU_NODE_POOL,
}
# 12: stable and canary deployments both present. Render mode with a Karpenter pool (the
# render bench), and the local cluster with kwok Nodes (the cluster bench).
CONFIGS = {
    "render": parse_stack(stack_raw(12)),
    "cluster": parse_stack(cluster_stack_raw(12)),
}
POOL_RESOURCES = {
    "render": ["kubernetes:karpenter.sh/v1:NodePool::l4"],
    "cluster": [
        f"kubernetes:core/v1:Node::l4-{i}"
        for i in range(CONFIGS["cluster"].node_pools[0].min_nodes)
    ],
}
#: The create/update await bound of each Deployment (none in render mode).
DEPLOYMENT_TIMEOUTS = {"render": ["", "", ""], "cluster": ["600s", "600s", ""]}


@pytest.fixture(params=list(CONFIGS))
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _run(program: Any, config: StackConfig) -> Recorder:
    return run_program(lambda: program(config, "bench"), monitor=RecordingMonitor)


def _key(urn: str) -> str:
    """`type::name` of a URN (its last segment's type, without the parent chain)."""
    qualified, name = urn.rsplit("::", 1)
    return f"{qualified.rsplit('$', 1)[-1].rsplit('::', 1)[-1]}::{name}"


def _registrations(rec: Recorder) -> dict[str, dict[str, Any]]:
    """Per Kubernetes resource: its options, and what it waits for once parents and
    component dependencies are resolved (a component stands for all its resources)."""
    assert isinstance(rec.monitor, RecordingMonitor)
    requests = {urn: req for urn, req in rec.monitor.requests}
    children: dict[str, list[str]] = {}
    for urn, req in requests.items():
        children.setdefault(req.parent, []).append(urn)

    def resources_of(urn: str) -> set[str]:
        if requests[urn].type not in COMPONENT_TYPES:
            return {_key(urn)}
        return set().union(*(resources_of(c) for c in children.get(urn, [])))

    def waits_for(urn: str) -> set[str]:
        req = requests[urn]
        own = set().union(*(resources_of(d) for d in req.dependencies if d in requests))
        return own | (waits_for(req.parent) if req.parent in requests else set())

    return {
        _key(urn): {
            "replaceOnChanges": sorted(req.replaceOnChanges),
            "deleteBeforeReplace": req.deleteBeforeReplace,
            "protect": req.protect,
            "ignoreChanges": sorted(req.ignoreChanges),
            "provider": req.provider.split("::")[-2] if req.provider else "",
            "customTimeouts": [
                req.customTimeouts.create,
                req.customTimeouts.update,
                req.customTimeouts.delete,
            ],
            "waitsFor": sorted(waits_for(urn)),
        }
        for urn, req in requests.items()
        if req.type.startswith("kubernetes:") and not req.type.startswith("pulumi:providers")
    }


def _inputs(rec: Recorder) -> Counter[tuple[str, str, str]]:
    return Counter(
        (r.type, r.name, json.dumps(r.inputs, sort_keys=True, default=str))
        for r in rec.resources
        if r.type not in COMPONENT_TYPES
    )


def test_same_resources_and_inputs(mode: str) -> None:
    comp, hand = _run(build, CONFIGS[mode]), _run(handwritten, CONFIGS[mode])
    assert _inputs(comp) == _inputs(hand)
    kinds = {t for t, _, _ in _inputs(comp)}
    assert {"kubernetes:apps/v1:Deployment", "kubernetes:core/v1:Service"} <= kinds
    pool_kind = POOL_RESOURCES[mode][0].split("::")[0]
    assert Counter(t for t, _, _ in _inputs(comp))[pool_kind] == len(POOL_RESOURCES[mode])
    # The provider (one, the same inputs) renders to files or applies through the kubeconfig.
    (provider,) = [r for r in comp.resources if r.type == "pulumi:providers:kubernetes"]
    assert ("renderYamlToDirectory" in provider.inputs) is (mode == "render")
    extra = [r.type for r in comp.resources if r.type in COMPONENT_TYPES]
    # What the ratio prices: per deployment a ModelDeployment, its Autoscaler and its
    # LoadBalancer, plus one GpuNodePool.
    assert Counter(extra) == Counter(
        {naming.MODEL_DEPLOYMENT: 12, naming.AUTOSCALER: 12, naming.LOAD_BALANCER: 12}
        | {naming.GPU_NODE_POOL: 1}
    )
    assert not [r for r in hand.resources if r.type in COMPONENT_TYPES]


def test_same_options_and_effective_dependencies(mode: str) -> None:
    config = CONFIGS[mode]
    comp = _registrations(_run(build, config))
    hand = _registrations(_run(handwritten, config))
    assert comp.keys() == hand.keys()
    assert (
        {k: v for k, v in comp.items() if v != hand[k]}
        == {k: v for k, v in hand.items() if v != comp[k]}
        == {}
    )
    # The comparison sees what matters: Deployments wait for their account, the namespace
    # and the pool's resources, and on a cluster their rollouts are awaited within
    # production's bound; the namespace is protected in production.
    deployment = comp["kubernetes:apps/v1:Deployment::model-0000"]
    assert deployment["waitsFor"] == sorted(
        [
            "kubernetes:core/v1:ServiceAccount::model-0000",
            "kubernetes:core/v1:Namespace::bench",
            *POOL_RESOURCES[mode],
        ]
    )
    assert deployment["customTimeouts"] == DEPLOYMENT_TIMEOUTS[mode]
    assert comp["kubernetes:core/v1:Service::model-0000"]["customTimeouts"] == ["", "", ""]
    assert comp["kubernetes:core/v1:Namespace::bench"]["protect"] is True


def _layers(rec: Recorder) -> Counter[tuple[str, str, str | None]]:
    return Counter((r.type, r.name, r.parent) for r in rec.resources if r.type in COMPONENT_TYPES)


def test_layers_are_the_components_registrations_alone(mode: str) -> None:
    """The floor variant (`--variant layers`) registers the hand-written resources and the
    components' own registrations: the same types, names and parents as the components
    program, and nothing else."""
    config = CONFIGS[mode]
    comp, layers, hand = (_run(p, config) for p in (build, handwritten_with_layers, handwritten))
    assert _inputs(layers) == _inputs(hand)
    assert _layers(layers) == _layers(comp)
    assert sum(_layers(comp).values()) == 3 * len(config.deployments) + len(config.node_pools)
