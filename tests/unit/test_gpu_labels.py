"""`cluster.gpuLabels`: which node labels and taint mark GPU nodes, what GPU pods select and
tolerate under each mode, that a pool's nodes satisfy its pods under every mode, and the
refusals of bad input."""

from __future__ import annotations

from typing import Any

import pytest

from servestack import ConfigError, ModelDeployment
from servestack.config.gpu import GPU_TABLE, GpuType
from servestack.config.models import ClusterSpec, CustomGpuLabels, GpuLabels
from servestack.config.validation import parse_stack
from servestack.manifests import gpu_scheduling, node_pools
from servestack.manifests.render import render_stack
from servestack.manifests.sample import SAMPLES, parse_config
from tests.mocks import run_program
from tests.unit.specs import deployment_raw, problems, stack_raw

H100 = GPU_TABLE[GpuType.H100]
L4 = GPU_TABLE[GpuType.L4]
CUSTOM = CustomGpuLabels(
    key="example.com/accelerator",
    values={GpuType.H100: "h100-sxm", GpuType.L4: "l4"},
    taint="example.com/gpu",
)
GPU_DEP = deployment_raw(resources={"cpu": 4, "memory": "16Gi", "gpu": {"type": "L4", "count": 1}})
EXISTS_NVIDIA = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


@pytest.mark.parametrize(
    ("marks", "gpu", "placement", "tolerations"),
    [
        (
            GpuLabels.servestack,
            L4,
            {"nodeSelector": {"servestack.io/gpu": "l4"}},
            [
                {
                    "key": "servestack.io/gpu",
                    "operator": "Equal",
                    "value": "l4",
                    "effect": "NoSchedule",
                },
                EXISTS_NVIDIA,
            ],
        ),
        (
            GpuLabels.gpu_operator,
            L4,
            {"nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-L4"}},
            [EXISTS_NVIDIA],
        ),
        (
            # Sold as SXM and PCIe boards: either product name will do.
            GpuLabels.gpu_operator,
            H100,
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {
                                            "key": "nvidia.com/gpu.product",
                                            "operator": "In",
                                            "values": ["NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-PCIe"],
                                        }
                                    ]
                                }
                            ]
                        }
                    }
                }
            },
            [EXISTS_NVIDIA],
        ),
        (
            CUSTOM,
            H100,
            {"nodeSelector": {"example.com/accelerator": "h100-sxm"}},
            [
                {"key": "example.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                EXISTS_NVIDIA,
            ],
        ),
    ],
    ids=["servestack", "gpu-operator", "gpu-operator-boards", "custom"],
)
def test_what_gpu_pods_select_and_tolerate(
    marks: gpu_scheduling.GpuMarks,
    gpu: Any,
    placement: dict[str, Any],
    tolerations: list[dict[str, str]],
) -> None:
    assert gpu_scheduling.placement(gpu, marks) == placement
    assert gpu_scheduling.tolerations(gpu, marks) == tolerations


def _selects(node_labels: dict[str, str], placement: dict[str, Any]) -> bool:
    if "nodeSelector" in placement:
        return all(node_labels.get(k) == v for k, v in placement["nodeSelector"].items())
    terms = placement["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    return any(
        all(node_labels.get(e["key"]) in e["values"] for e in term["matchExpressions"])
        for term in terms["nodeSelectorTerms"]
    )


def _tolerated(taint: dict[str, str], tolerations: list[dict[str, str]]) -> bool:
    return any(
        t["key"] == taint["key"]
        and t["effect"] == taint["effect"]
        and (t["operator"] == "Exists" or t.get("value") == taint["value"])
        for t in tolerations
    )


@pytest.mark.parametrize("mode", ["servestack", "gpu-operator", "custom"])
@pytest.mark.parametrize("gpu", list(GpuType), ids=str)
def test_a_pools_nodes_take_its_pods_under_every_mode(mode: str, gpu: GpuType) -> None:
    """The scheduler's two questions, answered by the builders' own output: do the pool's
    node labels satisfy the pods' selector, and do the pods tolerate the pool's taint."""
    custom = (
        {"key": "example.com/gpu-type", "values": {gpu.value: "x"}, "taint": "example.com/gpu"}
        if mode == "custom"
        else None
    )
    cluster = ClusterSpec.model_validate(
        {"name": "c", "provider": "existing", "gpuLabels": mode, "customGpuLabels": custom}
    )
    stack = parse_stack(
        stack_raw(
            environment="development",
            cluster=cluster.model_dump(by_alias=True, exclude_none=True, mode="json"),
            node_pools=[{"name": "p", "gpu": {"type": gpu.value, "count": 1}}],
        )
    )
    pool = stack.node_pools[0]
    info = GPU_TABLE[gpu]
    marks = gpu_scheduling.marks_of(stack.cluster)
    assert _selects(
        node_pools.node_labels(pool, stack.cluster), gpu_scheduling.placement(info, marks)
    )
    assert _tolerated(
        node_pools.taint(pool, stack.cluster), gpu_scheduling.tolerations(info, marks)
    )


def test_the_stack_passes_its_gpu_labels_to_every_gpu_deployment() -> None:
    raw = stack_raw(GPU_DEP, cluster={"name": "c", "gpuLabels": "gpu-operator"})
    built = render_stack(parse_stack(raw))
    (deployment,) = [
        r.manifest for k, r in built.resources.items() if k.type.endswith("Deployment")
    ]
    assert deployment["spec"]["template"]["spec"]["nodeSelector"] == {
        "nvidia.com/gpu.product": "NVIDIA-L4"
    }


def test_a_gpu_affinity_is_required_together_with_the_deployments_own() -> None:
    """Under gpu-operator an H100 pod places itself by a node affinity; a deployment's own
    affinity keeps its requirements and its anti-affinity, all in one term (both hold)."""
    dep = deployment_raw(
        resources={"cpu": 4, "memory": "16Gi", "gpu": {"type": "H100", "count": 1}},
        affinity={
            "nodeRequirements": [{"key": "zone", "operator": "In", "values": ["a"]}],
            "podAntiAffinity": "prefer",
        },
    )
    raw = stack_raw(dep, cluster={"name": "c", "gpuLabels": "gpu-operator"})
    built = render_stack(parse_stack(raw))
    (deployment,) = [
        r.manifest for k, r in built.resources.items() if k.type.endswith("Deployment")
    ]
    affinity = deployment["spec"]["template"]["spec"]["affinity"]
    required = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert required["nodeSelectorTerms"] == [
        {
            "matchExpressions": [
                {"key": "zone", "operator": "In", "values": ["a"]},
                gpu_scheduling.placement_term(H100),
            ]
        }
    ]
    assert "preferredDuringSchedulingIgnoredDuringExecution" in affinity["podAntiAffinity"]


def test_the_eks_sample_uses_custom_labels_on_its_node_groups() -> None:
    stack = parse_config(SAMPLES["eks"])
    pool = next(p for p in stack.node_pools if p.name == "l4")
    assert node_pools.node_labels(pool, stack.cluster)["example.com/accelerator"] == "nvidia-l4"
    assert node_pools.taint(pool, stack.cluster) == {
        "key": "example.com/gpu",
        "value": "nvidia-l4",
        "effect": "NoSchedule",
    }


@pytest.mark.parametrize(
    ("cluster", "deployments", "expected"),
    [
        (
            {"gpuLabels": "nvidia"},
            [],
            "cluster.gpuLabels: 'nvidia' is not allowed; allowed: 'servestack', 'gpu-operator' or "
            "'custom'",
        ),
        (
            {"gpuLabels": "custom"},
            [],
            "cluster: gpuLabels custom needs customGpuLabels (key, values per GPU type, taint)",
        ),
        (
            {"customGpuLabels": {"key": "a/b", "values": {"L4": "l4"}, "taint": "a/b"}},
            [],
            "cluster: customGpuLabels is read only with gpuLabels custom (gpuLabels is "
            "servestack): set gpuLabels: custom or drop customGpuLabels",
        ),
        (
            {
                "gpuLabels": "custom",
                "customGpuLabels": {"key": "Bad Key", "values": {"L4": "l4"}, "taint": "a/b"},
            },
            [],
            "cluster.customGpuLabels.key: 'Bad Key' is not a Kubernetes label key ([prefix/]name: "
            "a DNS subdomain prefix, a name of at most 63 letters, digits, '-', '_', '.')",
        ),
        (
            {
                "gpuLabels": "custom",
                "customGpuLabels": {"key": "a/b", "values": {"L4": "l 4"}, "taint": "a/b"},
            },
            [],
            "cluster.customGpuLabels.values.L4: 'l 4' is not a Kubernetes label value (1 to 63 "
            "of letters, digits, '-', '_', '.', starting and ending with a letter or digit)",
        ),
        (
            {
                "gpuLabels": "custom",
                "customGpuLabels": {"key": "a/b", "values": {"H100": "h"}, "taint": "a/b"},
            },
            [GPU_DEP],
            "cluster.customGpuLabels.values: no label value for L4 (used by deployments.bert): "
            "add L4: <value of a/b on its nodes>; values are given for H100",
        ),
    ],
    ids=[
        "unknown-mode",
        "custom-without-labels",
        "labels-without-custom",
        "bad-key",
        "bad-value",
        "missing-type",
    ],
)
def test_bad_gpu_labels_are_refused_in_one_line(
    cluster: dict[str, Any], deployments: list[dict[str, Any]], expected: str
) -> None:
    raw = stack_raw(*deployments, cluster={"name": "c", **cluster})
    assert problems(raw) == [expected]


def test_the_python_api_takes_the_clusters_gpu_labels() -> None:
    raw = {k: v for k, v in GPU_DEP.items() if k != "name"}
    rec = run_program(lambda: ModelDeployment("bert", raw, gpu_labels=GpuLabels.gpu_operator))
    pod = rec.one("kubernetes:apps/v1:Deployment", "bert").inputs["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-L4"}
    assert pod["tolerations"] == [EXISTS_NVIDIA]


def test_the_python_api_refuses_custom_labels_without_the_gpu_type() -> None:
    raw = {k: v for k, v in GPU_DEP.items() if k != "name"}
    caught: list[ConfigError] = []

    def program() -> None:
        try:
            ModelDeployment("bert", raw, gpu_labels=CUSTOM.model_copy(update={"values": {}}))
        except ConfigError as err:
            caught.append(err)

    rec = run_program(program)
    assert [str(e) for e in caught] == [
        "cluster.customGpuLabels.values: no label value for L4 (used by deployments.bert): "
        "add L4: <value of example.com/accelerator on its nodes>; none is given"
    ]
    assert rec.resources == []
