"""Karpenter's node class reference, its consolidation delay, and the kwok provider's instance
types generated from the machine table (the local cluster runs them:
tests/cluster/test_karpenter.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from servestack.config.errors import ConfigError
from servestack.config.gpu import GPU_RESOURCE, gpu_info
from servestack.config.machines import MACHINES, PROVIDER_FAMILY
from servestack.config.models import LOCAL_NODE_CLASS, CloudProvider, NodeClassRef
from servestack.config.validation import parse_stack
from servestack.contract.effects import Effect, rule_for
from servestack.manifests import node_pools
from servestack.manifests.instance_types import (
    CAPACITY_TYPE_LABEL,
    GPU_NAME_LABEL,
    kwok_instance_types,
)
from servestack.manifests.lifecycle import KARPENTER_REPLACE_ON
from tests import REPO

POOL = {"name": "l4", "gpu": {"type": "L4", "count": 1}, "maxNodes": 2}


def stack(node_class: Any = None, **pool: Any) -> Any:
    cluster: dict[str, Any] = {"name": "c", "provider": "karpenter"}
    if node_class is not None:
        cluster["nodeClass"] = node_class
    return parse_stack({"cluster": cluster, "nodePools": [{**POOL, **pool}]})


def rendered(cfg: Any) -> dict[str, Any]:
    return node_pools.karpenter_node_pool(cfg.node_pools[0], cfg.cluster)


def test_the_default_node_class_is_aws_ec2nodeclass_named_default() -> None:
    ref = rendered(stack())["spec"]["template"]["spec"]["nodeClassRef"]
    assert ref == {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"}


def test_the_local_cluster_node_class_is_rendered_as_given() -> None:
    cfg = stack(LOCAL_NODE_CLASS.model_dump(by_alias=True))
    ref = rendered(cfg)["spec"]["template"]["spec"]["nodeClassRef"]
    assert ref == {"group": "karpenter.kwok.sh", "kind": "KWOKNodeClass", "name": "default"}


def test_a_bare_name_still_names_an_ec2nodeclass() -> None:
    assert stack("gpu-al2023").cluster.node_class == NodeClassRef(name="gpu-al2023")


@pytest.mark.parametrize(
    ("node_class", "message"),
    [
        (
            {"group": "Bad_Group"},
            "cluster.nodeClass.group: 'Bad_Group' is not an API group "
            "(a DNS subdomain with a dot, e.g. karpenter.k8s.aws)",
        ),
        (
            {"kind": "ec2"},
            "cluster.nodeClass.kind: 'ec2' is not a Kubernetes kind "
            "(letters and digits, starting with an upper-case letter, e.g. EC2NodeClass)",
        ),
        (
            {"name": "Bad Name"},
            "cluster.nodeClass.name: 'Bad Name' is not a DNS-1123 subdomain "
            "(lower-case letters, digits, '-' and '.', at most 253 characters)",
        ),
        (
            {"nmae": "x"},
            "cluster.nodeClass: unknown key 'nmae'; did you mean 'name'? "
            "(allowed: group, kind, name)",
        ),
        (5, "cluster.nodeClass: 5 is not allowed: a mapping {group, kind, name} or a name"),
    ],
)
def test_a_bad_node_class_is_one_line_naming_the_field(node_class: Any, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        stack(node_class)
    assert str(err.value) == message


@pytest.mark.parametrize("leaf", ["group", "kind", "name"])
def test_a_node_class_edit_replaces_the_nodepool(leaf: str) -> None:
    assert rule_for(f"cluster.nodeClass.{leaf}").effect is Effect.REPLACE
    # ... because the component replaces a NodePool whose nodeClassRef changes
    assert "spec.template.spec.nodeClassRef" in KARPENTER_REPLACE_ON


@pytest.mark.parametrize(("seconds", "shown"), [(600, "10m"), (5, "5s"), (90, "90s"), (0, "0s")])
def test_consolidate_after(seconds: int, shown: str) -> None:
    disruption = rendered(stack(consolidateAfterSeconds=seconds))["spec"]["disruption"]
    assert disruption == {"consolidationPolicy": "WhenEmpty", "consolidateAfter": shown}


def test_every_karpenter_machine_is_an_instance_type_of_its_shape() -> None:
    family = PROVIDER_FAMILY[CloudProvider.karpenter]
    rows = {m.name: m for m in MACHINES if m.family is family}
    types = {t["name"]: t for t in kwok_instance_types()}
    assert sorted(types) == sorted(rows)
    for name, m in rows.items():
        t = types[name]
        assert t["resources"] == {
            "cpu": str(m.vcpu),
            "memory": f"{m.memory_gib}Gi",
            "ephemeral-storage": f"{m.ephemeral_gib}Gi",
            "pods": str(m.max_pods),
            GPU_RESOURCE: str(m.gpus),
        }
        offered = {}
        for o in t["offerings"]:
            req = {r["key"]: r["values"] for r in o["Requirements"]}
            assert req[GPU_NAME_LABEL] == [gpu_info(m.gpu).karpenter_gpu_name]
            (capacity,) = req[CAPACITY_TYPE_LABEL]
            offered[capacity] = o["Price"]
        assert sorted(offered) == ["on-demand", "spot"]
        assert 0 < offered["spot"] < offered["on-demand"]


def _karpenter_version(module: str) -> str:
    text = (REPO / "tools" / module / "go.mod").read_text()
    found = re.findall(r"(?m)^\s*sigs\.k8s\.io/karpenter (v\S+)", text)
    assert len(found) == 1, module
    return found[0]


def test_the_crds_and_the_binary_come_from_one_karpenter_version() -> None:
    assert _karpenter_version("crds") == _karpenter_version("karpenter") == "v1.14.1"
    script = (REPO / "tools" / "build-karpenter.sh").read_text()
    assert "KARPENTER_VERSION=v1.14.1\n" in script
