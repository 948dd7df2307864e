"""The Python API keeps millicores and MiB, and refuses a value that takes a GPU model below
the floor (issue 19: `4` meant as 4 cores was applied as 4 millicores on a GPU model).
No engine runs: the refusal comes before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from servestack.engine import make_project
from servestack.ops import operations as ops
from servestack.ops.floors import GPU_FLOOR
from tests import REPO

STAGING = (REPO / "stacks" / "Pulumi.staging.yaml").read_text()


@pytest.fixture
def ws(tmp_path: Path) -> ops.Workspace:
    workspace = ops.Workspace(make_project(tmp_path / "project", stacks={"staging": STAGING}))
    workspace.lock_timeout = 0
    return workspace


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (
            {"cpu": 4},
            "deployments.bert-sentiment.resources.cpu: 3500m -> 4m, below 1 core(s), the floor "
            "for a deployment with GPUs (1 x T4)",
        ),
        (
            {"memory": 512},
            "deployments.bert-sentiment.resources.memory: 14Gi -> 512Mi, below 1Gi, the "
            "floor for a deployment with GPUs (1 x T4)",
        ),
    ],
)
def test_update_model_deployment_refuses_a_gpu_model_below_the_floor(
    ws: ops.Workspace, change: dict[str, int], said: str
) -> None:
    with pytest.raises(ops.OperationRefused) as err:
        ops.update_model_deployment("staging", "bert-sentiment", workspace=ws, **change)
    assert str(err.value) == (
        said + " (cpu is in millicores and memory in MiB here; pass allow_below_floor=True "
        "if this is meant)"
    )
    assert ws.stack_file("staging").read_text() == STAGING
    # Refused before any operation: the lock is free again.
    ops.plan(ws, "staging", {"deployments.bert-sentiment.replicas": 3}, "bert-sentiment").release()


def test_the_floor_is_one_core_and_one_gib() -> None:
    assert (GPU_FLOOR.cpu_millicores, GPU_FLOOR.memory_mib) == (1000, 1024)
