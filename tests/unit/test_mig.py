"""The GPU table's new rows and MIG slices: validation messages (exact), the slice resources
a replica requests and a pool's nodes offer, and the machine shapes."""

from __future__ import annotations

from typing import Any

import pytest

from servestack.config.defaults import effective
from servestack.config.errors import ConfigError
from servestack.config.gpu import GPU_TABLE, GpuType, node_gpu_resources
from servestack.config.machines import machine
from servestack.config.validation import parse_stack
from servestack.manifests import node_pools, workload

H200_SLICES = "1g.18gb, 1g.35gb, 2g.35gb, 3g.71gb, 4g.71gb, 7g.141gb"
MIG_GPUS = "A100, A100-80GB, H100, H200, B200"


def _dep(gpu: dict[str, Any], name: str = "tagger") -> dict[str, Any]:
    return {
        "name": name,
        "model": {"id": "m", "version": "v1", "type": "vision", "image": "r.example.com/t:1"},
        "resources": {"cpu": 1, "memory": "4Gi", "gpu": gpu},
    }


def _stack(pools: list[dict[str, Any]], deps: list[dict[str, Any]], **cluster: Any) -> Any:
    return {
        "cluster": {"name": "c", "provider": "local", **cluster},
        "nodePools": pools,
        "deployments": deps,
    }


def _pool(mig: str | None = "all-1g.18gb", name: str = "h200", **gpu: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": "H200", "count": 8, **gpu}
    if mig:
        spec["mig"] = mig
    return {"name": name, "gpu": spec, "minNodes": 1}


def _lines(raw: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_stack(raw)
    assert "Traceback" not in str(info.value)
    return str(info.value).splitlines()


@pytest.mark.parametrize(
    ("gpu", "line"),
    [
        (
            {"type": "H200", "count": 1, "mig": "1g.20gb"},
            "deployments.tagger.resources.gpu.mig: '1g.20gb' is not a MIG profile of H200 "
            f"(1g.20gb is a profile of A100-80GB, H100); allowed: {H200_SLICES}",
        ),
        (
            {"type": "T4", "count": 1, "mig": "1g.5gb"},
            f"deployments.tagger.resources.gpu.mig: T4 has no MIG; GPUs with MIG: {MIG_GPUS}",
        ),
        (
            {"type": "L4", "count": 1, "mig": "1g.5gb"},
            f"deployments.tagger.resources.gpu.mig: L4 has no MIG; GPUs with MIG: {MIG_GPUS}",
        ),
        (
            {"type": "H200", "count": 1, "mig": "8g.160gb"},
            "deployments.tagger.resources.gpu.mig: '8g.160gb' is larger than the GPU: an H200 "
            f"has 7 compute slices and 141 GB; allowed: {H200_SLICES}",
        ),
        (
            {"type": "A100", "count": 1, "mig": "7g.80gb"},
            "deployments.tagger.resources.gpu.mig: '7g.80gb' is larger than the GPU: an A100 "
            "has 7 compute slices and 40 GB; allowed: 1g.5gb, 1g.10gb, 2g.10gb, 3g.20gb, "
            "4g.20gb, 7g.40gb",
        ),
        (
            {"type": "H-200", "count": 1},
            "deployments.tagger.resources.gpu.type: 'H-200' is not allowed; allowed: 'T4', "
            "'V100', 'A10G', 'A100', 'A100-80GB', 'L4', 'L40S', 'H100', 'H200' or 'B200'",
        ),
        (
            {"type": "H200", "count": 1, "mig": "all-1g.18gb"},
            "deployments.tagger.resources.gpu.mig: 'all-1g.18gb' is a pool's partitioning; a "
            "replica asks for one slice profile, e.g. 1g.18gb (allowed for H200: "
            f"{H200_SLICES})",
        ),
    ],
    ids=["h100-profile", "t4", "l4", "larger", "larger-than-a100", "typo", "partitioning"],
)
def test_a_bad_slice_is_one_line(gpu: dict[str, Any], line: str) -> None:
    assert _lines(_stack([_pool()], [_dep(gpu)])) == [line]


def test_a_pool_names_a_partitioning() -> None:
    assert _lines(_stack([_pool(mig="1g.18gb")], [])) == [
        "nodePools.h200.gpu.mig: '1g.18gb' is not a partitioning: a pool cuts every GPU into "
        "one profile, all-<profile>; allowed for H200: all-1g.18gb, all-1g.35gb, all-2g.35gb, "
        "all-3g.71gb, all-4g.71gb, all-7g.141gb"
    ]


def test_a_slice_no_pool_offers_is_refused() -> None:
    raw = _stack([_pool()], [_dep({"type": "H200", "count": 1, "mig": "1g.35gb"})])
    assert _lines(raw) == [
        "deployments.tagger.resources.gpu.mig: 1g.35gb: no node pool offers 1g.35gb slices of "
        "H200; H200 pools offer: h200 (H200 1g.18gb slices)"
    ]


def test_whole_gpus_from_a_partitioned_pool_are_refused_on_both_sides() -> None:
    raw = _stack([_pool()], [_dep({"type": "H200", "count": 1})])
    assert _lines(raw) == [
        "deployments.tagger.resources.gpu.mig: none: no node pool offers whole H200 GPUs; H200 "
        "pools offer: h200 (H200 1g.18gb slices)",
        "nodePools.h200.gpu.mig: all-1g.18gb partitions every H200 into slices, but its "
        "deployments ask for whole GPUs: tagger; drop mig or give them resources.gpu.mig",
    ]


def test_fits_on_node_counts_slices() -> None:
    raw = _stack(
        [_pool(mig="all-7g.141gb")], [_dep({"type": "H200", "count": 9, "mig": "7g.141gb"})]
    )
    assert _lines(raw) == [
        "deployments.tagger.resources.gpu.count: 9 7g.141gb slices per replica, but the "
        "largest H200 node has 8"
    ]
    fits = _stack(
        [_pool(mig="all-7g.141gb")], [_dep({"type": "H200", "count": 8, "mig": "7g.141gb"})]
    )
    assert parse_stack(fits).deployments[0].resources.gpu.count == 8


def test_gke_partitions_gpus_its_own_way() -> None:
    raw = _stack([_pool()], [], provider="gke", location="europe-west4")
    assert _lines(raw) == [
        "nodePools.h200.gpu.mig: all-1g.18gb is not allowed with provider gke: GKE partitions "
        "GPUs itself and offers its slices as nvidia.com/gpu, while servestack's slices are the "
        "GPU operator's (mixed strategy); use provider eks, karpenter, existing or local"
    ]


def test_a_replica_requests_its_slice_and_selects_the_gpu_nodes() -> None:
    stack = parse_stack(_stack([_pool()], [_dep({"type": "H200", "count": 1, "mig": "1g.18gb"})]))
    spec = stack.deployments[0]
    pod = workload.pod_template(
        spec, effective(spec), track="stable", version="v1", image=spec.model.image
    )["spec"]
    resources = pod["containers"][0]["resources"]
    assert resources["requests"]["nvidia.com/mig-1g.18gb"] == 1
    assert resources["limits"]["nvidia.com/mig-1g.18gb"] == 1
    assert "nvidia.com/gpu" not in resources["requests"]
    assert pod["nodeSelector"] == {"servestack.io/gpu": "h200"}


def test_a_partitioned_pool_labels_its_nodes_and_offers_the_slices() -> None:
    stack = parse_stack(_stack([_pool()], []))
    pool = stack.node_pools[0]
    assert node_pools.node_labels(pool)["nvidia.com/mig.config"] == "all-1g.18gb"
    (node,) = node_pools.local_nodes(pool, stack.cluster)
    capacity = node["metadata"]["annotations"]["servestack.io/capacity"]
    assert '"nvidia.com/mig-1g.18gb": "56"' in capacity and "nvidia.com/gpu" not in capacity
    assert node_gpu_resources(GpuType.H200, 8, None) == {"nvidia.com/gpu": 8}
    assert "nvidia.com/mig.config" not in node_pools.node_labels(
        parse_stack(_stack([_pool(mig=None)], [])).node_pools[0]
    )


def test_every_mig_gpu_has_seven_one_slice_instances_and_a_whole_gpu_profile() -> None:
    for info in GPU_TABLE.values():
        if not info.mig:
            continue
        counts = {p.name.split(".")[0]: p.per_gpu for p in info.mig if not p.media}
        assert counts["7g"] == 1 and counts["4g"] == 1 and counts["3g"] == 2, info.type
        assert max(p.per_gpu for p in info.mig) == 7, info.type
        whole = [p.name for p in info.mig if p.name.startswith("7g.")]
        assert whole == [f"7g.{info.memory_gib}gb"], info.type


@pytest.mark.parametrize(
    ("name", "gpu", "vcpu", "memory", "ephemeral"),
    [
        ("p5.48xlarge", GpuType.H100, 192, 2048, 28312),
        ("p5e.48xlarge", GpuType.H200, 192, 2048, 28312),
        ("p6-b200.48xlarge", GpuType.B200, 192, 2048, 28312),
        ("p4de.24xlarge", GpuType.A100_80GB, 96, 1152, 7450),
        ("a3-ultragpu-8g", GpuType.H200, 224, 2952, 12000),
        ("a4-highgpu-8g", GpuType.B200, 224, 3968, 12000),
        ("a2-ultragpu-1g", GpuType.A100_80GB, 12, 170, 375),
    ],
)
def test_published_shapes(name: str, gpu: GpuType, vcpu: int, memory: int, ephemeral: int) -> None:
    shape = machine(name, gpu)
    assert shape is not None
    assert (shape.vcpu, shape.memory_gib, shape.ephemeral_gib) == (vcpu, memory, ephemeral)
