"""The benchmark's baseline is honest: the hand-written program registers exactly the
Kubernetes resources the components do (same types, names and inputs), only without the
ComponentResources. A ratio against anything else would measure a different program."""

from __future__ import annotations

import json
from collections import Counter

from bench.handwritten_program import handwritten
from bench.stacks import stack_raw
from components import naming
from components.program import build
from components.validation import parse_stack
from tests.mocks import Recorder, run_program

COMPONENT_TYPES = {
    naming.MODEL_DEPLOYMENT,
    naming.AUTOSCALER,
    naming.LOAD_BALANCER,
    naming.GPU_NODE_POOL,
}


def _custom(rec: Recorder) -> Counter[tuple[str, str, str]]:
    return Counter(
        (r.type, r.name, json.dumps(r.inputs, sort_keys=True, default=str))
        for r in rec.resources
        if r.type not in COMPONENT_TYPES
    )


def test_handwritten_registers_the_same_resources_as_the_components() -> None:
    config = parse_stack(stack_raw(12))  # 12: stable and canary deployments both present
    comp = run_program(lambda: build(config, "bench"))
    hand = run_program(lambda: handwritten(config, "bench"))
    assert _custom(comp) == _custom(hand)
    kinds = {t for t, _, _ in _custom(comp)}
    assert {"kubernetes:apps/v1:Deployment", "kubernetes:core/v1:Service"} <= kinds
    extra = [r.type for r in comp.resources if r.type in COMPONENT_TYPES]
    # What the ratio prices: per deployment a ModelDeployment, its Autoscaler and its
    # LoadBalancer, plus one GpuNodePool.
    assert Counter(extra) == Counter(
        {naming.MODEL_DEPLOYMENT: 12, naming.AUTOSCALER: 12, naming.LOAD_BALANCER: 12}
        | {naming.GPU_NODE_POOL: 1}
    )
    assert not [r for r in hand.resources if r.type in COMPONENT_TYPES]
