"""`make demo` end to end (`python -m demo`): render mode, then the dev stack on
the local cluster with one edit of each effect class checked on the live objects by the demo
itself (it exits 1 when the server disagrees with the field-effect table), one capacity
verdict (a blue-green switch that cannot finish in its pool: warned in development with the
numbers, refused in production, then finished with the remedy), a stop and a start, and a
destroy that leaves the cluster clean. State and manifests go to a temporary
directory (SERVESTACK_DEMO_DIR), not the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import REPO
from tests.cluster.live import api_client, objects_with_our_labels

pytestmark = pytest.mark.cluster


def test_demo_runs_on_the_local_cluster(local_cluster: Path, tmp_path: Path) -> None:
    api = api_client(local_cluster)
    assert objects_with_our_labels(api) == [], "the cluster is not clean before the test"
    env = {**os.environ, "SERVESTACK_DEMO_DIR": str(tmp_path), "COLUMNS": "160"}
    env.pop("SERVESTACK_DEMO_KEEP", None)
    proc = subprocess.run(
        [sys.executable, "-m", "demo"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    out = proc.stdout
    flat = " ".join(out.split())
    assert proc.returncode == 0, out + proc.stderr
    # Part 1 rendered manifests into the demo's directory.
    assert list((tmp_path / "out" / "dev").rglob("*.yaml")), "no manifests rendered"
    assert "no changes" in out
    # Part 2: the pods turned Ready, every edit ran, stop and start, destroy.
    assert "already running" in out, "the demo did not reuse the running cluster"
    assert "bert-sentiment 1/1 Ready" in out
    for command in (
        "set-model dev bert-sentiment --version v2.2.0",
        "set-model dev bert-sentiment --version v2.3.0 --strategy blue_green --yes",
        "scale dev bert-sentiment --replicas 2",
        "stop dev bert-sentiment",
        "start dev bert-sentiment",
    ):
        assert f"$ servestack {command}" in out, command
    assert "refused, nothing changed" in out
    # The capacity verdict: its numbers beforehand, production's refusal, the remedy applied.
    verdict = (
        "cannot finish: pool t4 holds at most 2 x T4; this rollout needs 4 x T4 at its peak "
        "(2 of the old colour + 2 of the new colour)"
    )
    assert f"WARNING capacity deployments.bert-sentiment: {verdict}" in flat, flat
    assert "remedy: raise nodePools.t4.minNodes to 4" in flat
    refused = f"production refuses a rollout that {verdict}"
    assert f"BLOCKED deployments.bert-sentiment: forbidden ({refused})" in flat
    assert "the switch finished: 4 t4 nodes" in flat
    assert "same as before the stop" in out
    assert "disagrees" not in out
    assert objects_with_our_labels(api) == []
