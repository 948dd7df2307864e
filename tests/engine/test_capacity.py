"""A production rollout that cannot finish in its pool, on the real engine (render mode):
`servestack diff`, the operation and `pulumi preview`/`up` all refuse it, with the exit
code of a forbidden edit, naming the pool, its room, the peak and the remedies; nothing is
applied. The remedy the verdict names goes through."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from servestack.cli.output import ExitCode
from servestack.config.stackfile import set_value
from servestack.ops import operations as ops
from tests import REPO
from tests.engine.conftest import Deployed, deploy
from tests.engine.test_production_gate import _files, _run, _state

#: The prod stack with its A100 pool held at one node of 8 GPUs: at rest bert-sentiment
#: (2 replicas + 1 canary, 1 GPU each) and llama-chat (2 replicas, 2 GPUs each) use 7.
SMALL = set_value(
    (REPO / "stacks" / "Pulumi.prod.yaml").read_text(encoding="utf-8"),
    "nodePools.a100.maxNodes",
    1,
)
#: llama-chat's pods roll (a new env value); its Deployment surges 100 %: 4 more GPUs.
ROLL = set_value(SMALL, "deployments.llama-chat.env.LOG_LEVEL", "debug")
VERDICT = (
    "cannot finish: pool a100 holds at most 8 x A100; this rollout needs 11 x A100 at its "
    "peak (2 replicas + maxSurge 2, 2 x A100 each; besides, at rest: bert-sentiment 3 x A100)"
)


@pytest.fixture
def small(engine_ready: Path, tmp_path: Path) -> Any:
    d = deploy(tmp_path, "prod", SMALL)
    yield d
    _run(d, "state", "unprotect", "--all", "--yes")
    d.engine.stack(d.project, d.stack).destroy(on_output=lambda _: None)


def _servestack(d: Deployed, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "servestack", "-C", str(d.project), *args],
        env={**os.environ, **d.engine.env(), "COLUMNS": "250"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_rollout_that_cannot_finish_is_refused_everywhere(
    small: Deployed, tmp_path: Path
) -> None:
    edited = tmp_path / "Pulumi.prod.yaml"
    edited.write_text(ROLL)
    proc = _servestack(small, "diff", str(small.stack_file), str(edited))
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == ExitCode.REFUSED, out
    assert (
        f"BLOCKED deployments.llama-chat: forbidden (production refuses a rollout that {VERDICT})"
        in out
    )
    assert "remedy: raise nodePools.a100.maxNodes to 2" in out
    assert "Traceback" not in out

    # The operation: the same refusal, the same exit code, the stack file untouched.
    state, files, text = _state(small), _files(small.out), small.stack_file.read_text()
    proc = _servestack(small, "resources", "prod", "llama-chat", "--memory", "96Gi", "--yes")
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == ExitCode.REFUSED, out
    assert "deployments.llama-chat: production refuses a rollout that cannot finish" in out
    assert small.stack_file.read_text() == text
    assert _state(small) == state and _files(small.out) == files

    # pulumi preview and up: the program's own gate.
    small.stack_file.write_text(set_value(text, "deployments.llama-chat.env.LOG_LEVEL", "debug"))
    try:
        for command in (("preview",), ("up", "--yes")):
            proc = _run(small, *command)
            out = " ".join((proc.stdout + proc.stderr).split())
            assert proc.returncode != 0, out
            assert f"deployments.llama-chat: production refuses a rollout that {VERDICT}" in out
            assert "Traceback" not in out
            assert _state(small) == state and _files(small.out) == files
    finally:
        small.stack_file.write_text(text)


def test_the_remedy_goes_through(small: Deployed) -> None:
    """Raising maxNodes, the remedy the verdict names first, lets the same edit through."""
    ws = ops.Workspace(small.project, small.engine)
    plan = ops.plan(
        ws,
        "prod",
        {
            "nodePools.a100.maxNodes": 2,
            "deployments.llama-chat.env.LOG_LEVEL": "debug",
        },
        "llama-chat",
    )
    (verdict,) = plan.diff.capacity
    assert verdict.text.startswith("needs 1 more node in pool a100 (1 -> 2;"), verdict.text
    result = ops.apply(ws, plan)
    assert result, result
