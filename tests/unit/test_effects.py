"""The field-effect table covers every config field, and only real ones."""

from __future__ import annotations

import typing
from typing import Any

import pytest
from pydantic import BaseModel

from servestack import ClusterSpec, NodePoolSpec, StackConfig
from servestack.contract.effects import (
    _RULES,
    FIELD_EFFECTS,
    LOST_CAPACITY,
    NEW_ENDPOINT,
    SWITCHED,
    TABLE,
    EditContext,
    Effect,
    Outcome,
    Rule,
    rule_for,
    table_key,
    worst,
)
from servestack.manifests.sample import renders
from tests.unit.specs import deployment


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _is_sequence(annotation: Any) -> bool:
    if typing.get_origin(annotation) in (tuple, list):
        return True
    return any(_is_sequence(a) for a in typing.get_args(annotation))


def field_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every leaf field as a table path; dict-valued fields (env, tags) are one leaf."""
    paths = []
    for name, info in model.model_fields.items():
        path = prefix + (info.alias or name)
        inner = _model_in(info.annotation)
        if inner is None:
            paths.append(path)
        else:
            if not _is_sequence(info.annotation):
                step = "."
            else:
                # Named items (deployments, node pools) are addressed by name.
                step = ".<name>." if "name" in inner.model_fields else "[]."
            paths += field_paths(inner, path + step)
    return paths


LEAVES = field_paths(StackConfig)
# Effects by value: the values are the contract the review tool and docs print.
NONE, IN_PLACE, RESTART, REPLACE, FORBIDDEN = (
    Effect("no change"),
    Effect("in-place"),
    Effect("restart"),
    Effect("replace"),
    Effect("forbidden"),
)


def test_walker_sees_nested_models_in_tuples_and_optionals() -> None:
    assert {
        "cluster.name",
        "nodePools.<name>.gpu.type",
        "deployments.<name>.resources.cpu",
        "deployments.<name>.loadBalancer.healthCheck.path",
        "deployments.<name>.autoscaling.enabled",
        "deployments.<name>.queue.connectionSecret",
        "deployments.<name>.affinity.nodeRequirements[].operator",
        "deployments.<name>.env",
        "deployments.<name>.secretEnv",
        "deployments.<name>.tags",
        "allowReplacements[].reason",
        "deployments.<name>.monitoring.slo.latencyP99Ms",
        "deployments.<name>.monitoring.alerts.canaryWorse.severity",
    } <= set(LEAVES)
    # 67 before the 24 fields of the monitoring block, 2 of MIG, 14 of pod settings and
    # queue workers, 5 of model storage; cluster.nodeClass's three (one before) and
    # nodePools.<name>.consolidateAfterSeconds; the cluster's GPU labels (gpuLabels,
    # customGpuLabels' three); stableSlot (promote --shift); the route's four (gateway name
    # and namespace, hostnames, path).
    assert len(LEAVES) == len(set(LEAVES)) == 126


@pytest.mark.parametrize("path", LEAVES)
def test_every_config_field_has_a_rule(path: str) -> None:
    rule = rule_for(path)
    assert (
        path == rule.path or path.startswith(rule.path + "[]") or (path.startswith(rule.path + "."))
    )


def test_every_rule_names_a_real_field() -> None:
    sections = {p.split("[]")[0] for p in LEAVES if "[]" in p}
    stale = [r.path for r in _RULES if r.path not in LEAVES and r.path not in sections]
    assert stale == []


def test_rule_paths_are_unique() -> None:
    assert len(TABLE) == len(_RULES)


def test_one_vocabulary_of_seven_effects_in_one_severity_order() -> None:
    assert [e.value for e in Effect] == [
        "no change",
        "in-place",
        "restart",
        "replace",
        "forbidden",
        "create",
        "delete",
    ]
    assert sorted(Effect, key=lambda e: e.severity) == [
        NONE,
        IN_PLACE,
        Effect("create"),
        RESTART,
        Effect("delete"),
        REPLACE,
        FORBIDDEN,
    ]
    assert worst([RESTART, IN_PLACE, REPLACE]) is REPLACE
    assert worst([]) is None
    assert worst([NONE, IN_PLACE]) is IN_PLACE


def test_rules_use_the_five_field_effects() -> None:
    assert {r.effect for r in _RULES} == set(FIELD_EFFECTS)
    assert all(isinstance(r.effect, Effect) and r.reason for r in _RULES)


def test_every_replacement_names_its_downtime_class() -> None:
    missing = [r.path for r in _RULES if r.effect is REPLACE and not r.impact]
    assert missing == []
    assert {r.impact for r in _RULES if r.effect is not REPLACE} == {""}


def test_unknown_paths_have_no_rule() -> None:
    with pytest.raises(KeyError):
        rule_for("deployments.<name>.nonsense")


@pytest.mark.parametrize(
    ("path", "effect"),
    [
        ("deployments.<name>.model.type", FORBIDDEN),
        ("deployments.<name>.name", REPLACE),
        ("nodePools.<name>.name", REPLACE),
        ("deployments.<name>.processing", REPLACE),
        ("cluster.name", REPLACE),
        ("namespace", REPLACE),
        ("deployments.<name>.active", IN_PLACE),
        ("deployments.<name>.replicas", IN_PLACE),
        ("deployments.<name>.tags", IN_PLACE),
        ("deployments.<name>.monitoring.prometheusUrl", NONE),
        ("allowReplacements", NONE),
        ("deployments.<name>.resources.cpu", RESTART),
        ("deployments.<name>.model.image", RESTART),
        ("deployments.<name>.env", RESTART),
        ("deployments.<name>.secretEnv", RESTART),
    ],
)
def test_effect_of(path: str, effect: Effect) -> None:
    assert rule_for(path).effect is effect


@pytest.mark.parametrize(
    ("concrete", "key"),
    [
        ("deployments.bert.resources.cpu", "deployments.<name>.resources.cpu"),
        ("deployments.bert", "deployments.<name>"),
        ("nodePools.a100.gpu.type", "nodePools.<name>.gpu.type"),
        ("deployments.bert.env.LOG_LEVEL", "deployments.<name>.env"),
        ("deployments.bert.tags.team", "deployments.<name>.tags"),
        ("allowReplacements.0.reason", "allowReplacements"),
        ("cluster.name", "cluster.name"),
    ],
)
def test_table_key_of_concrete_paths(concrete: str, key: str) -> None:
    assert table_key(concrete) == key


def test_map_keys_resolve_to_the_map_rule() -> None:
    assert rule_for("deployments.bert.env.NEW_VAR") is TABLE["deployments.<name>.env"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "deployments.<name>.resources.cpu",
            {
                "Deployment:spec.template.spec.containers[*].resources.limits.cpu",
                "Deployment:spec.template.spec.containers[*].resources.requests.cpu",
            },
        ),
        (
            "deployments.<name>.strategy.weight",
            {
                "VirtualService:spec.http[*].route[*].weight",
                "HTTPRoute:spec.rules[*].backendRefs[*].weight",
            },
        ),
        (
            "deployments.<name>.route.gateway.namespace",
            {
                "HTTPRoute:spec.parentRefs[*].namespace",
                "NetworkPolicy:spec.ingress[*].from[*].namespaceSelector.matchLabels"
                '["kubernetes.io/metadata.name"]',
            },
        ),
        (
            "deployments.<name>.queue.targetDepth",
            {
                "ScaledObject:spec.triggers[*].metadata.lagThreshold",
                "ScaledObject:spec.triggers[*].metadata.listLength",
                "ScaledObject:spec.triggers[*].metadata.value",
            },
        ),
        ("target", {"Provider:renderYamlToDirectory"}),
    ],
)
def test_renders_are_derived_from_the_builders(path: str, expected: set[str]) -> None:
    assert set(renders(path)) == expected


def test_every_rule_renders_somewhere_but_review_metadata() -> None:
    # cluster.context configures the Kubernetes provider (how it reaches the cluster), which
    # no manifest builder emits; allowReplacements is read by the review tool only.
    assert [r.path for r in _RULES if not renders(r.path)] == [
        "cluster.context",
        "allowReplacements",
        "deployments.<name>.monitoring.prometheusUrl",
    ]


# --- overrides ------------------------------------------------------------------------------


CLUSTERS = {
    "karpenter": {"name": "c", "provider": "karpenter"},
    "gke": {"name": "c", "provider": "gke", "location": "europe-west4"},
    "eks": {"name": "c", "provider": "eks", "nodeRoleArn": "arn", "subnetIds": ["s"]},
}


POOL = NodePoolSpec.model_validate(
    {"name": "p", "gpu": {"type": "A100", "count": 8}, "machineType": "p4d.24xlarge"}
)


def ctx(old: Any, new: Any, provider: str | None = None, *, pools: bool = False) -> EditContext:
    cluster = ClusterSpec.model_validate(CLUSTERS[provider]) if provider else None
    stack = StackConfig(cluster=cluster, node_pools=(POOL,) if pools else ()) if cluster else None
    return EditContext(old=old, new=new, old_stack=stack, new_stack=stack)


def version(strategy: dict[str, Any], value: str) -> Any:
    return deployment(
        strategy=strategy, model={**deployment().model.model_dump(), "version": value}
    )


ROLLING: dict[str, Any] = {"type": "rolling"}
BLUE_GREEN: dict[str, Any] = {"type": "blue_green"}
CANARY: dict[str, Any] = {
    "type": "canary",
    "weight": 10,
    "canaryVersion": "v3",
    "canaryImage": "r.io/m:3",
}


@pytest.mark.parametrize(
    ("rule", "context", "effect"),
    [
        (
            "deployments.<name>.model.version",
            ctx(version(ROLLING, "v1"), version(ROLLING, "v2")),
            RESTART,
        ),
        (
            "deployments.<name>.model.version",
            ctx(version(BLUE_GREEN, "v1"), version(BLUE_GREEN, "v2")),
            REPLACE,
        ),
        (
            "deployments.<name>.model.version",
            ctx(version(CANARY, "v1"), version(CANARY, "v2")),
            RESTART,
        ),
        (
            "deployments.<name>.strategy.type",
            ctx(deployment(strategy=ROLLING), deployment(strategy=CANARY)),
            IN_PLACE,
        ),
        (
            "deployments.<name>.strategy.type",
            ctx(deployment(strategy=CANARY), deployment(strategy=ROLLING)),
            IN_PLACE,
        ),
        (
            "deployments.<name>.strategy.type",
            ctx(deployment(strategy=ROLLING), deployment(strategy=BLUE_GREEN)),
            REPLACE,
        ),
        (
            "deployments.<name>.strategy.type",
            ctx(deployment(strategy=BLUE_GREEN), deployment(strategy=CANARY)),
            REPLACE,
        ),
        ("nodePools.<name>.gpu.count", ctx(POOL, POOL, "karpenter"), IN_PLACE),
        ("nodePools.<name>.gpu.count", ctx(None, None, "karpenter"), REPLACE),
        ("nodePools.<name>.gpu.count", ctx(POOL, POOL, "gke"), REPLACE),
        ("nodePools.<name>.gpu.count", ctx(POOL, POOL, "eks"), REPLACE),
        ("cluster.project", ctx(None, None, "karpenter", pools=True), NONE),
        ("cluster.project", ctx(None, None, "gke", pools=True), REPLACE),
        ("cluster.subnetIds", ctx(None, None, "gke", pools=True), NONE),
        ("cluster.subnetIds", ctx(None, None, "eks", pools=True), REPLACE),
        ("cluster.subnetIds", ctx(None, None, "eks"), NONE),
        ("nodePools.<name>.diskSizeGb", ctx(None, None, "eks", pools=True), REPLACE),
    ],
)
def test_overrides(rule: str, context: EditContext, effect: Effect) -> None:
    found = TABLE[rule].resolve(context)
    assert found.effect is effect
    assert found.reason
    assert bool(found.impact) is (effect is REPLACE)


@pytest.mark.parametrize(
    "rule", [r for r in _RULES if r.override is not None], ids=lambda r: r.path
)
def test_resolve_without_context_is_the_table_effect(rule: Rule) -> None:
    assert rule.resolve() == Outcome(rule.effect, rule.reason, rule.impact)


@pytest.mark.parametrize(
    ("path", "impact"),
    [
        ("deployments.<name>.name", NEW_ENDPOINT),
        ("namespace", NEW_ENDPOINT),
        ("cluster.name", NEW_ENDPOINT),
        ("nodePools.<name>.spot", LOST_CAPACITY),
        ("deployments.<name>.strategy.type", SWITCHED),
    ],
)
def test_impact_is_a_column(path: str, impact: str) -> None:
    assert TABLE[path].impact == impact


def test_a_blue_green_version_switch_has_the_switch_impact() -> None:
    old, new = version(BLUE_GREEN, "v1"), version(BLUE_GREEN, "v2")
    assert TABLE["deployments.<name>.model.version"].resolve(ctx(old, new)).impact == SWITCHED
