"""The machine table: pool defaults derive from it, and a model must fit a node of its pool."""

from __future__ import annotations

import json
from typing import Any

import pytest

from servestack.config.errors import ConfigError
from servestack.config.gpu import GPU_TABLE, GpuType
from servestack.config.machines import (
    MACHINES,
    PROVIDER_FAMILY,
    Family,
    defaults,
    machine,
    provider_defaults,
)
from servestack.config.models import CloudProvider
from servestack.config.validation import parse_stack
from servestack.manifests import gpu_scheduling
from servestack.manifests.node_pools import local_nodes


def stack(pool: dict[str, Any], cpu: Any = 2, memory: str = "8Gi", provider: str = "local") -> Any:
    return {
        "cluster": {"name": "c", "provider": provider},
        "nodePools": [pool],
        "deployments": [
            {
                "name": "ranker",
                "model": {
                    "id": "m",
                    "version": "v1",
                    "type": "embedding",
                    "image": "registry.example.com/r:1",
                },
                "resources": {"cpu": cpu, "memory": memory, "gpu": {"count": 1, "type": "L4"}},
            }
        ],
    }


L4_POOL = {"name": "l4-pool", "gpu": {"type": "L4", "count": 1}, "minNodes": 2, "maxNodes": 2}


def test_every_gpu_default_machine_is_in_the_table_with_its_gpus() -> None:
    for info in GPU_TABLE.values():
        for provider in CloudProvider:
            family = PROVIDER_FAMILY[provider]
            for count, name in provider_defaults(provider, info.type).items():
                shape = machine(name, info.type)
                assert shape is not None and shape.family is family
                assert (shape.gpus, shape.gpu) == (count, info.type)


def test_defaults_are_unique_per_gpu_count() -> None:
    for gpu in GpuType:
        for family in Family:
            rows = [m for m in MACHINES if m.family is family and m.gpu is gpu and m.default]
            assert len({m.gpus for m in rows}) == len(rows), (family, gpu)
    assert defaults(Family.ec2, GpuType.L4)[1] == "g6.xlarge"


def test_a_model_that_fits_no_node_is_refused_offline() -> None:
    with pytest.raises(ConfigError) as err:
        parse_stack(stack(L4_POOL, cpu=16))
    assert err.value.problems[0].path == "deployments.ranker.resources.cpu"
    assert str(err.value.problems[0]) == (
        "deployments.ranker.resources.cpu: 16 does not fit l4-pool's g6.xlarge (4 vCPU, 16 GiB; "
        "allocatable 3920m after the kubelet's reserves)"
    )
    with pytest.raises(ConfigError, match=r"resources.memory: 64Gi does not fit l4-pool's"):
        parse_stack(stack(L4_POOL, memory="64Gi"))


def test_a_bigger_machine_makes_it_fit() -> None:
    parse_stack(stack({**L4_POOL, "gpu": {"type": "L4", "count": 4}}, cpu=16))


def test_unknown_or_mismatched_machine_types_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"nodePools.l4-pool.machineType: g9.huge is not a known"):
        parse_stack(stack({**L4_POOL, "machineType": "g9.huge"}))
    with pytest.raises(ConfigError, match=r"carries 4 GPUs, but gpu.count is 1"):
        parse_stack(stack({**L4_POOL, "machineType": "g6.12xlarge"}))


def test_local_pool_nodes_carry_labels_taint_and_the_machine_capacity() -> None:
    config = parse_stack(stack(L4_POOL))
    nodes = local_nodes(config.node_pools[0], config.cluster)
    assert [n["metadata"]["name"] for n in nodes] == ["l4-pool-0", "l4-pool-1"]
    meta = nodes[0]["metadata"]
    assert meta["labels"]["servestack.io/gpu"] == "l4"
    assert meta["labels"]["servestack.io/node-pool"] == "l4-pool"
    assert meta["labels"]["node.kubernetes.io/instance-type"] == "g6.xlarge"
    assert meta["labels"]["servestack.io/capacity-type"] == "on-demand"
    assert meta["annotations"]["kwok.x-k8s.io/node"] == "fake"
    assert json.loads(meta["annotations"]["servestack.io/capacity"]) == {
        "cpu": "4",
        "memory": "16Gi",
        "ephemeral-storage": "200Gi",
        "pods": "110",
        "nvidia.com/gpu": "1",
    }
    # What a g6.xlarge offers pods on EKS: 4000m - 80m CPU; 16Gi - (11 x 110 + 255) Mi -
    # 100 Mi memory; 200Gi - 10 % - 1Gi storage.
    assert json.loads(meta["annotations"]["servestack.io/allocatable"]) == {
        "cpu": "3920m",
        "memory": "14819Mi",
        "ephemeral-storage": "179Gi",
        "pods": "110",
        "nvidia.com/gpu": "1",
    }
    assert nodes[0]["spec"]["taints"] == [gpu_scheduling.taint(GPU_TABLE[GpuType.L4])]
