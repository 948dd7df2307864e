"""`servestack status` live state: when a rollout counts as done, and how it is printed.

The cluster tier (tests/cluster/test_status.py) reads the same state from a live cluster;
here the states are built by hand, to pin the decisions on the edge cases.
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from servestack.cli import output
from servestack.ops import live

IMAGE = "registry.example.com/nlp/bert-sentiment:2.1.0-with-a-long-tag-for-the-width"
SCHEDULER = (
    "0/3 nodes are available: 1 Insufficient nvidia.com/gpu, 2 node(s) didn't match Pod's "
    "node affinity/selector. preemption: 0/3 nodes are available: 1 No preemption victims "
    "found for incoming pod, 2 Preemption is not helpful for scheduling."
)


def workload(**kw: int | bool) -> live.WorkloadState:
    base: dict[str, int | bool] = dict(desired=2, updated=2, ready=2, available=2, total=2)
    base.update(kw)
    return live.WorkloadState("bert-sentiment", **base)  # type: ignore[arg-type]


def test_rolled_out_only_when_every_replica_is_new_ready_and_available() -> None:
    assert workload().rolled_out
    assert workload(desired=0, updated=0, ready=0, available=0, total=0).rolled_out
    # A surge pod Pending: the Deployment already counts it as updated, and the old pod is
    # still ready and available. Only the total (old pods included) tells it is not done.
    assert not workload(desired=1, updated=1, ready=1, available=1, total=2).rolled_out
    assert not workload(updated=1).rolled_out
    assert not workload(ready=1).rolled_out
    assert not workload(available=1).rolled_out
    # The controller has not seen the latest spec yet: its counts are of the old one.
    assert not workload(observed=False).rolled_out


def test_progress_says_what_is_missing() -> None:
    w = workload(desired=1, updated=1, ready=1, available=1, total=2)
    w.pending.append(f"bert-sentiment-abc: {SCHEDULER}")
    assert w.progress() == "bert-sentiment: 1/1 updated, 1 ready, 1 available, 1 old, 1 pending"
    assert workload(observed=False).progress().endswith(", new spec not yet observed")


@pytest.fixture
def printed(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """What the status command prints, at the 80 columns of piped output."""
    out = io.StringIO()
    monkeypatch.setattr(output, "console", Console(file=out, width=80, color_system=None))
    return out


def test_live_state_lines_are_never_cut_or_wrapped(printed: io.StringIO) -> None:
    w = workload(desired=1, updated=1, ready=1, available=1, total=2)
    w.replica_sets = [
        ("bert-sentiment-5d8f7c9b4d", "2", IMAGE, 1, 0),
        ("bert-sentiment-7f6b9c8d5e", "1", IMAGE.replace("2.1.0", "2.0.0"), 1, 1),
    ]
    w.conditions = [
        ("Progressing", "True", 'ReplicaSet "bert-sentiment-5d8f7c9b4d" is progressing.')
    ]
    w.pending = [f"bert-sentiment-5d8f7c9b4d-x7k2p: {SCHEDULER}"]
    w.events = [f"Pod/bert-sentiment-5d8f7c9b4d-x7k2p FailedScheduling: {SCHEDULER}"]
    state = live.LiveState(
        "models-dev",
        [w],
        autoscaler=[("replicas", "1", "1..3"), ("cpu", "<unknown>", "70%")],
        autoscaler_conditions=[("ScalingActive", "False", "failed to get cpu utilization")],
    )
    output.show_live(state)
    lines = printed.getvalue().splitlines()
    for text in (
        f"  replicaset bert-sentiment-5d8f7c9b4d revision 2: 1 pods, 0 ready, image {IMAGE}",
        '  condition Progressing=True: ReplicaSet "bert-sentiment-5d8f7c9b4d" is progressing.',
        f"  pending bert-sentiment-5d8f7c9b4d-x7k2p: {SCHEDULER}",
        f"  event Pod/bert-sentiment-5d8f7c9b4d-x7k2p FailedScheduling: {SCHEDULER}",
        "  autoscaler ScalingActive=False: failed to get cpu utilization",
        "rollout in progress",
        "  bert-sentiment: 1/1 updated, 1 ready, 1 available, 1 old, 1 pending",
    ):
        assert text in lines, (text, lines)
    assert "…" not in printed.getvalue()


SCALED_OBJECT = {
    "spec": {
        "minReplicaCount": 1,
        "maxReplicaCount": 3,
        "triggers": [
            {"type": "rabbitmq", "metadata": {"queueName": "transcriptions", "value": "20"}},
            {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "80"}},
        ],
    }
}


def test_a_scaled_object_without_keda_says_its_figures_are_unknown() -> None:
    rows, conditions = live.scaled_object_rows(SCALED_OBJECT, None)
    assert rows == [
        ("replicas", "<unknown>", "1..3"),
        ("rabbitmq transcriptions", "<unknown>", "20"),
        ("cpu", "<unknown>", "80%"),
    ]
    assert [c[:2] for c in conditions] == [("Ready", "Unknown")]
    assert "KEDA" in conditions[0][2]


def test_a_scaled_object_takes_its_current_figures_from_kedas_hpa() -> None:
    from types import SimpleNamespace as NS

    queue = NS(
        type="External",
        external=NS(
            metric=NS(name="s0-rabbitmq-transcriptions"),
            current=NS(average_utilization=None, average_value="35", value=None),
        ),
    )
    cpu = NS(
        type="Resource",
        resource=NS(name="cpu", current=NS(average_utilization=64, average_value=None, value=None)),
    )
    hpa = NS(status=NS(current_replicas=2, current_metrics=[queue, cpu]))
    so = {
        **SCALED_OBJECT,
        "status": {
            "hpaName": "keda-hpa-whisper-batch",
            "conditions": [{"type": "Ready", "status": "True", "message": "ScaledObject is ready"}],
        },
    }
    rows, conditions = live.scaled_object_rows(so, hpa)
    assert rows == [
        ("replicas", "2", "1..3"),
        ("rabbitmq transcriptions", "35", "20"),
        ("cpu", "64%", "80%"),
    ]
    assert conditions == [("Ready", "True", "ScaledObject is ready")]
