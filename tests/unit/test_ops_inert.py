"""An operation whose edit nothing deployed reads is refused, never a success that changes
nothing (issue 18: `scale --replicas` on an autoscaled deployment wrote replicas and said
`succeeded`). No engine runs: the refusal comes before anything is written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from servestack.engine import make_project
from servestack.ops import operations as ops
from tests import REPO

DEV = (REPO / "stacks" / "Pulumi.dev.yaml").read_text()
#: whisper-batch is a queue worker with autoscaling bounds in dev: KEDA owns its replicas.
REFUSAL = (
    "deployments.whisper-batch.replicas: 3 changes nothing: replicas is owned by the "
    "autoscaler (set minReplicas/maxReplicas, or remove autoscaling); use servestack scale "
    "dev whisper-batch --min N --max M"
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project", stacks={"dev": DEV})


def _stack_file(project: Path) -> str:
    return (project / "stacks" / "Pulumi.dev.yaml").read_text()


def test_update_model_deployment_refuses_replicas_of_an_autoscaled_deployment(
    project: Path,
) -> None:
    ws = ops.Workspace(project)
    ws.lock_timeout = 0
    with pytest.raises(ops.OperationRefused) as err:
        ops.update_model_deployment("dev", "whisper-batch", replicas=3, workspace=ws)
    assert str(err.value) == REFUSAL
    assert err.value.diff is not None
    assert [(c.path, c.effect.value) for c in err.value.diff.changes] == [
        ("deployments.whisper-batch.replicas", "no change")
    ]
    assert _stack_file(project) == DEV
    # Refused before any record: the lock is free and no operation was started.
    ops.plan(ws, "dev", {"deployments.bert-sentiment.replicas": 3}, "bert-sentiment").release()
    assert not (ws.state / "operations").exists() or not any((ws.state / "operations").iterdir())


def test_bounds_and_fixed_replicas_are_still_planned(project: Path) -> None:
    ws = ops.Workspace(project)
    ws.lock_timeout = 0
    p = ops.plan(
        ws, "dev", {"deployments.whisper-batch.autoscaling.maxReplicas": 5}, "whisper-batch"
    )
    p.release()
    assert [(c.path, c.effect.value) for c in p.diff.changes] == [
        ("deployments.whisper-batch.autoscaling.maxReplicas", "in-place")
    ]
    p = ops.plan(ws, "dev", {"deployments.bert-sentiment.replicas": 2}, "bert-sentiment")
    p.release()
    assert [(c.path, c.effect.value) for c in p.diff.changes] == [
        ("deployments.bert-sentiment.replicas", "in-place")
    ]


def test_cli_scale_refuses_in_one_line_naming_min_and_max(project: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "servestack", "-C", str(project)]
        + ["scale", "dev", "whisper-batch", "--replicas", "3", "--no-queue"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "400"},
    )
    assert res.returncode == 2, res
    assert "Traceback" not in res.stdout + res.stderr
    said = (res.stdout + res.stderr).splitlines()
    refused = [line for line in said if line.startswith("refused:")]
    assert refused == [f"refused: {REFUSAL}"]
    assert _stack_file(project) == DEV
