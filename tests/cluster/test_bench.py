"""The cluster bench (bench/cluster.py) at N=1 with one run per variant: both programs are
measured, register the same Kubernetes resources on the live cluster, the ratio is the
quotient of the two medians, and the cluster is left clean. Times are not asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cluster import bench_cluster
from bench.report import cluster_section
from bench.stacks import cluster_stack_raw
from tests.cluster.live import api_client, objects_with_our_labels

pytestmark = pytest.mark.cluster


def test_cluster_bench_one_deployment(local_cluster: Path) -> None:
    api = api_client(local_cluster)
    assert objects_with_our_labels(api) == [], "the cluster is not clean before the test"
    out = bench_cluster([1], local_cluster, repeats=1)

    assert out["cluster_repeats"] == {"1": 1}
    row = out["cluster"]["1"]
    c, h = row["components"], row["handwritten"]
    for run in (c, h):
        assert len(run["runs_s"]) == 1 and run["runs_s"] == [run["s"]]
        assert run["s"] > 0 and run["peak_mib"] > 0
        assert run["deployments_ready"] == 1
    # The same Kubernetes resources, kind by kind, in each program's state after `up`: one
    # Node for the pool (two pods fit one 8-GPU node), one Deployment.
    assert c["kinds"] == h["kinds"]
    assert c["resources"] == h["resources"] == sum(c["kinds"].values())
    nodes = cluster_stack_raw(1)["nodePools"][0]["minNodes"]
    assert row["nodes"] == nodes == c["kinds"]["core/v1:Node"] == 1
    assert c["kinds"]["apps/v1:Deployment"] == 1
    assert row["pods_at_rest"] == 2  # the HPA's minReplicas
    assert out["cluster_ratio"]["1"] == round(c["s"] / h["s"], 3)
    assert objects_with_our_labels(api) == []
    # The report's row carries these figures.
    section = cluster_section({**out, "cluster_date": "today"})
    assert (
        f"| 1 | 1 | 1 | 2 | {c['resources']} / {h['resources']} | {c['s']} ({c['peak_mib']}) | "
        f"{h['s']} ({h['peak_mib']}) | {out['cluster_ratio']['1']} |"
    ) in section
