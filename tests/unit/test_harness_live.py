"""What the server shows (:mod:`harness.live`): the effect class two snapshots show, and
"refused: the engine wrote nothing". The demo and the cluster tier read live objects into
these snapshots; here they are built by hand, to pin the decisions on each class's edge.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.live import Live, Snapshot, engine_writes, engine_wrote_nothing, observed
from servestack.contract.effects import Effect

DEP = Live(
    kind="Deployment",
    name="bert",
    slot=("bert", "Deployment"),
    uid="u1",
    content="c1",
    ours="o1",
    template_hash="h1",
    pods=frozenset({"p1", "p2"}),
    images=("bert:1",),
)
SVC = Live(kind="Service", name="bert", slot=("bert", "Service"), uid="s1", content="c", ours="o")
HPA = Live(
    kind="HorizontalPodAutoscaler",
    name="bert",
    slot=("bert", "HorizontalPodAutoscaler"),
    uid="a1",
    content="c",
    ours="o",
)
BEFORE: Snapshot = {
    "Deployment/bert": DEP,
    "Service/bert": SVC,
    "HorizontalPodAutoscaler/bert": HPA,
}


def _with(key: str, live: Live | None) -> Snapshot:
    """BEFORE with one object changed (None: gone)."""
    after = {**BEFORE, key: live}
    return {k: v for k, v in after.items() if v is not None}


@pytest.mark.parametrize(
    ("after", "reached", "expected"),
    [
        (BEFORE, {"Deployment"}, Effect.NONE),
        # A controller's writes (status, replicas of an autoscaler) are not content.
        (_with("Deployment/bert", replace(DEP, ours="o2")), {"Deployment"}, Effect.NONE),
        (_with("Deployment/bert", replace(DEP, content="c2")), {"Deployment"}, Effect.IN_PLACE),
        # Scaled up: the pods of before are kept.
        (
            _with("Deployment/bert", replace(DEP, content="c2", pods=DEP.pods | {"p3"})),
            {"Deployment"},
            Effect.IN_PLACE,
        ),
        # A stop removes the autoscaler, which the table names.
        (_with("HorizontalPodAutoscaler/bert", None), {"HorizontalPodAutoscaler"}, Effect.IN_PLACE),
        (
            _with("HorizontalPodAutoscaler/bert", None),
            {"Deployment"},
            "created or deleted ['HorizontalPodAutoscaler'], not of ['Deployment']",
        ),
        (
            _with("Deployment/bert", replace(DEP, template_hash="h2", pods=frozenset({"p3"}))),
            {"Deployment"},
            Effect.RESTART,
        ),
        (
            _with("Deployment/bert", replace(DEP, pods=frozenset({"p1", "p3"}))),
            {"Deployment"},
            "pods replaced without a new pod template (Deployment/bert)",
        ),
        # The same key, a new object.
        (_with("Deployment/bert", replace(DEP, uid="u2")), {"Deployment"}, Effect.REPLACE),
        # Blue-green: a Deployment keyed by the new version stands in for the old one.
        (
            {
                **_with("Deployment/bert", None),
                "Deployment/bert-v2": replace(DEP, name="bert-v2", uid="u2"),
            },
            {"Deployment"},
            Effect.REPLACE,
        ),
    ],
)
def test_observed(after: Snapshot, reached: set[str], expected: Effect | str) -> None:
    assert observed(BEFORE, after, reached) == expected


@pytest.mark.parametrize(
    ("after", "wrote"),
    [
        (BEFORE, []),
        # A controller wrote the Deployment (content and status), the engine did not.
        (_with("Deployment/bert", replace(DEP, content="c2", pods=frozenset({"p9"}))), []),
        (_with("Deployment/bert", replace(DEP, ours="o2")), ["Deployment/bert"]),
        (_with("Service/bert", replace(SVC, uid="s2")), ["Service/bert"]),
        (_with("HorizontalPodAutoscaler/bert", None), ["HorizontalPodAutoscaler/bert"]),
        ({**BEFORE, "ConfigMap/new": replace(SVC, kind="ConfigMap")}, ["ConfigMap/new"]),
    ],
)
def test_engine_wrote_nothing(after: Snapshot, wrote: list[str]) -> None:
    assert engine_writes(BEFORE, after) == wrote
    assert engine_wrote_nothing(BEFORE, after) is (not wrote)
