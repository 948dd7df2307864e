"""Capacity verdicts of edits: every rollout's peak against what its pool can hold.

Pools here are `local` ones (their nodes are their `minNodes`) or Karpenter ones (the
autoscaler adds nodes up to `maxNodes`); each case pins the exact words a reviewer reads.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from servestack.config.errors import ConfigError
from servestack.config.models import StrategyType
from servestack.contract.effects import Effect
from servestack.ops.edits import promote_edits, rollback_edits, set_model_edits
from servestack.review import report
from servestack.review.capacity import Fit
from servestack.review.diff import DiffResult
from servestack.review.predict import predict

ROLL = {"type": "rolling", "maxSurge": 1, "maxUnavailable": 0}
IMAGE = "registry.example.com/llm/chat:2"


def dep(name: str, replicas: int | None = 1, gpus: int = 1, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "model": {
            "id": "m",
            "version": "1",
            "type": "llm",
            "image": "registry.example.com/llm/chat:1",
        },
        "resources": {"cpu": 2, "memory": "8Gi", "gpu": {"count": gpus, "type": "L4"}},
        "strategy": ROLL,
        **extra,
    }
    if replicas is not None:
        out["replicas"] = replicas
    return out


def text(
    deployments: list[dict[str, Any]],
    *,
    nodes: int = 2,
    provider: str = "local",
    environment: str = "development",
    max_nodes: int | None = None,
    gpus_per_node: int = 1,
) -> str:
    pool: dict[str, Any] = {
        "name": "l4",
        "gpu": {"type": "L4", "count": gpus_per_node},
        "minNodes": nodes,
        "maxNodes": max_nodes or max(nodes, 1),
    }
    if gpus_per_node > 1:
        pool["machineType"] = "g6.12xlarge"
    config = {
        "servestack:environment": environment,
        "servestack:cluster": {"name": "c", "provider": provider},
        "servestack:nodePools": [pool],
        "servestack:deployments": deployments,
    }
    return yaml.safe_dump({"config": config}, sort_keys=False)


def review(before: str, edits: dict[str, Any]) -> DiffResult:
    return predict(before, edits).diff


def new_image(name: str = "chat") -> dict[str, Any]:
    return {f"deployments.{name}.model.image": IMAGE}


def test_exact_fit_fits_as_is() -> None:
    result = review(text([dep("chat", 1)], nodes=2), new_image())
    (v,) = result.capacity
    assert v.fit is Fit.FITS
    assert (
        v.text == "fits as is: pool l4 (2 nodes) holds 2 x L4 at its peak (1 replica + maxSurge 1)"
    )
    assert result.blocking(False) == []


def test_one_short_cannot_finish_and_names_pool_room_peak_and_remedies() -> None:
    result = review(text([dep("chat", 2)], nodes=2), new_image())
    (v,) = result.capacity
    assert v.fit is Fit.CANNOT_FINISH
    assert v.text == (
        "cannot finish: pool l4 holds at most 2 x L4; this rollout needs 3 x L4 at its peak "
        "(2 replicas + maxSurge 1)"
    )
    assert v.remedies == (
        "raise nodePools.l4.minNodes to 3",
        "set deployments.chat.strategy maxSurge: 0 and maxUnavailable: 1: each old pod stops "
        "before its successor starts, so 1 of 2 replicas serve during the rollout",
        "roll in batches: scale chat to 1 replica first (servestack scale), apply the edit, "
        "then scale back to 2",
    )
    # Development warns with the same words; nothing blocks.
    assert result.blocking(False) == []
    shown = report.diff_text(result, [], color=False)
    assert f"WARNING capacity deployments.chat: {v.text}" in " ".join(shown.split())
    assert "remedy: raise nodePools.l4.minNodes to 3" in shown


def test_production_refuses_a_rollout_that_cannot_finish_like_a_forbidden_edit() -> None:
    before = text([dep("chat", 2)], nodes=2, environment="production")
    result = review(before, new_image())
    (refused,) = result.blocking(False)
    assert refused.effect is Effect.FORBIDDEN and refused.capacity
    assert refused.path == "deployments.chat"
    assert refused.reason == (
        "production refuses a rollout that cannot finish: pool l4 holds at most 2 x L4; this "
        "rollout needs 3 x L4 at its peak (2 replicas + maxSurge 1)"
    )
    assert refused.impact.startswith("remedies: raise nodePools.l4.minNodes to 3; set ")
    data = json.loads(report.diff_json(result, result.blocking(False)))
    assert data["blocking"] == ["deployments.chat"]
    assert data["capacity"][0]["verdict"] == "cannot finish"
    assert data["capacity"][0]["peakPods"] == 3
    markdown = report.diff_markdown(result, result.blocking(False))
    assert ":no_entry: `deployments.chat`: cannot finish: pool l4 holds at most 2 x L4" in markdown


def test_the_remedy_finishes_at_the_stated_availability() -> None:
    strategy = {"type": "rolling", "maxSurge": 0, "maxUnavailable": 1}
    result = review(text([dep("chat", 2, strategy=strategy)], nodes=2), new_image())
    (v,) = result.capacity
    assert v.fit is Fit.FITS
    assert v.text == "fits as is: pool l4 (2 nodes) holds 2 x L4 at its peak (2 replicas)"


def test_max_unavailable_lets_a_full_pool_finish_slower() -> None:
    strategy = {"type": "rolling", "maxSurge": 1, "maxUnavailable": 1}
    result = review(text([dep("chat", 2, strategy=strategy)], nodes=2), new_image())
    (v,) = result.capacity
    assert v.fit is Fit.FITS
    assert v.text.startswith("finishes, slower: pool l4 holds at most 2 x L4, not the 3 x L4")


def test_an_autoscaled_pool_needs_more_nodes_and_the_ceiling_is_stated() -> None:
    autoscaled = dep(
        "chat", None, autoscaling={"minReplicas": 2, "maxReplicas": 6, "targetCpuUtilization": 70}
    )
    before = text([autoscaled], nodes=0, max_nodes=4, provider="karpenter")
    (v,) = review(before, new_image()).capacity
    assert v.fit is Fit.NEEDS_NODES
    assert v.text == (
        "needs 1 more node in pool l4 (2 -> 3; its autoscaler adds up to maxNodes 4) for "
        "3 x L4 at its peak (2 replicas + maxSurge 1)"
    )
    assert v.notes == (
        "the autoscaler's ceiling (maxReplicas 6) does not fit pool l4: replicas above 4 "
        "stay Pending",
    )


def test_blue_green_needs_both_colours() -> None:
    bg = {"type": "blue_green"}
    fits = review(
        text([dep("chat", 2, strategy=bg)], nodes=4), {"deployments.chat.model.version": "2"}
    )
    (v,) = fits.capacity
    assert v.fit is Fit.FITS
    assert v.text == (
        "fits as is: pool l4 (4 nodes) holds 4 x L4 at its peak (2 of the old colour + 2 of "
        "the new colour)"
    )
    short = review(
        text([dep("chat", 2, strategy=bg)], nodes=3), {"deployments.chat.model.version": "2"}
    )
    (v,) = short.capacity
    assert v.fit is Fit.CANNOT_FINISH
    assert v.text == (
        "cannot finish: pool l4 holds at most 3 x L4; this rollout needs 4 x L4 at its peak "
        "(2 of the old colour + 2 of the new colour)"
    )


def test_a_canary_creates_one_pod_and_leaves_the_stable_pods_alone() -> None:
    before = text([dep("chat", 2, gpus=2)], nodes=2, gpus_per_node=4)
    edits = set_model_edits(
        before, "chat", version="2", image=IMAGE, strategy=StrategyType.canary, weight=20
    )
    result = review(before, dict(edits))
    restarts = [c for c in result.changes if c.effect is Effect.RESTART]
    assert restarts, [c.path for c in result.changes]
    for row in restarts:
        assert row.impact == "creates the canary track: 1 pod = 2 x L4 GPU; stable pods untouched"
    (v,) = result.capacity
    assert v.fit is Fit.FITS
    assert v.text == (
        "fits as is: pool l4 (2 nodes) holds 6 x L4 at its peak (2 replicas + 1 canary pod, "
        "2 x L4 each)"
    )
    # One node of 4 GPUs holds the stable pods; the canary's 2 GPUs take the second.
    assert v.nodes_now == 2 and v.nodes_needed == 2

    after = predict(before, dict(edits)).text
    rollback = review(after, dict(rollback_edits(after, "chat")))
    assert rollback.capacity == []  # removing pods needs no room
    for row in rollback.changes:
        if row.effect is Effect.RESTART:
            assert row.impact == "removes the canary track (1 pod); stable pods untouched"
    promote = review(after, dict(promote_edits(after, "chat")))
    impacts = {c.impact for c in promote.changes if c.effect is Effect.RESTART}
    assert impacts == {
        "rolls 2 pods; surge needs 1 extra pod = 2 x L4 GPU; removes the canary track (1 pod)"
    }


def test_a_canary_the_pool_cannot_hold_is_refused_at_rest() -> None:
    """The canary track stays while the strategy is canary: a pool without room for it is
    too small at rest, and the edit is refused before any review."""
    before = text([dep("chat", 2)], nodes=2)
    edits = set_model_edits(
        before, "chat", version="2", image=IMAGE, strategy=StrategyType.canary, weight=20
    )
    with pytest.raises(ConfigError) as err:
        predict(before, dict(edits))
    assert [str(p) for p in err.value.problems] == [
        "nodePools.l4.minNodes: pool l4 holds at most 2 x L4 on 2 node(s) of g6.xlarge: "
        "allocatable 3920m CPU, 14819Mi memory, 179Gi storage; at rest its deployments need "
        "3 pods (chat: 3 pods, 1 x L4 each): raise minNodes or lower their replicas"
    ]


def test_two_deployments_sharing_a_pool_count_together() -> None:
    alone = review(text([dep("chat", 1)], nodes=2), new_image())
    assert [v.fit for v in alone.capacity] == [Fit.FITS]
    shared = review(text([dep("chat", 1), dep("ranker", 1)], nodes=2), new_image())
    (v,) = shared.capacity
    assert v.fit is Fit.CANNOT_FINISH
    assert v.text == (
        "cannot finish: pool l4 holds at most 2 x L4; this rollout needs 3 x L4 at its peak "
        "(1 replica + maxSurge 1; besides, at rest: ranker 1 x L4)"
    )


def test_scaling_up_is_a_verdict_and_an_edit_that_starts_no_pods_is_not() -> None:
    (v,) = review(text([dep("chat", 1)], nodes=2), {"deployments.chat.replicas": 2}).capacity
    assert v.fit is Fit.FITS
    assert v.text == "fits as is: pool l4 (2 nodes) holds 2 x L4 at its peak (2 replicas)"
    assert review(text([dep("chat", 2)], nodes=2), {"deployments.chat.replicas": 1}).capacity == []
    added = review(
        text([dep("chat", 1)], nodes=2), {"deployments": [dep("chat", 1), dep("new", 1)]}
    )
    (v,) = added.capacity
    assert (v.deployment, v.fit) == ("new", Fit.FITS)


@pytest.mark.parametrize("environment", ["development", "staging"])
def test_other_environments_warn_with_the_same_words(environment: str) -> None:
    result = review(text([dep("chat", 2)], nodes=2, environment=environment), new_image())
    assert result.blocking(False) == []
    assert [v.fit for v in result.cannot_finish] == [Fit.CANNOT_FINISH]
    markdown = report.diff_markdown(result, [])
    assert ":warning: `deployments.chat`: cannot finish: pool l4 holds at most 2 x L4" in markdown


def test_validate_warns_of_a_next_rollout_that_cannot_finish() -> None:
    from servestack.config.validation import parse_stack, read_stack_text
    from servestack.review.capacity import next_rollouts

    full = parse_stack(read_stack_text(text([dep("chat", 2), dep("ranker", 1)], nodes=3)))
    assert [(v.deployment, v.fit) for v in next_rollouts(full)] == [
        ("chat", Fit.CANNOT_FINISH),
        ("ranker", Fit.CANNOT_FINISH),
    ]
    roomy = parse_stack(read_stack_text(text([dep("chat", 2), dep("ranker", 1)], nodes=4)))
    assert [(v.deployment, v.fit) for v in next_rollouts(roomy)] == [
        ("chat", Fit.FITS),
        ("ranker", Fit.FITS),
    ]


def test_explain_carries_the_verdicts() -> None:
    result = review(text([dep("chat", 2)], nodes=2), new_image())
    shown = " ".join(report.explain_text([], color=False, capacity=result).split())
    assert "WARNING capacity deployments.chat: cannot finish: pool l4 holds at most 2 x L4" in shown
    data = json.loads(report.explain_json([], result))
    assert [v["verdict"] for v in data["capacity"]] == ["cannot finish"]
    assert "#### Capacity" in report.explain_markdown([], capacity=result)


def test_the_pools_other_pods_are_counted_by_shape_without_walking_them() -> None:
    """A verdict takes the pool's pods but the edited deployment's from the stack's census
    (a review of every deployment would otherwise group all pods once per deployment): it
    must group them exactly as the pods themselves group, in the same order, whichever
    deployment is edited: the first of its shape, a later one, the only one."""
    from servestack.config import capacity as cap
    from servestack.config.gpu import GpuType
    from servestack.config.validation import parse_stack, read_stack_text
    from servestack.review.capacity import _census

    deployments = [
        dep("a", 2),
        dep("b", 1, gpus=2),
        dep("c", 3),
        dep("d", 0),
        dep("e", 1, gpus=2),
        {
            **dep("f", 1),
            "resources": {"cpu": 3, "memory": "8Gi", "gpu": {"count": 1, "type": "L4"}},
        },
    ]
    stack = parse_stack(read_stack_text(text(deployments, nodes=8, gpus_per_node=4)))
    census = _census(stack, GpuType.L4)
    assert len(census.everyone) == 3  # a and c, b and e, f
    for name in "abcdef":
        others = [pod for n, pods in census.pods.items() if n != name for pod in pods]
        assert census.without(name) == cap.shapes_of(others), name
    # a is the first of its shape: without it, that shape first appears at c, after b's.
    order = [dict(shape)["nvidia.com/gpu"] for shape, _ in census.without("a")]
    assert order == [2, 1, 1]
