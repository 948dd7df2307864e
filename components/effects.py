"""The field-effect table: what an edit of each config field does to the running system.

Effects:
    in-place   the resources are updated; no pod restarts, no resource is replaced.
    restart    a Deployment's pod template changes: pods roll (surge capacity needed).
    replace    a resource is deleted and created (downtime, new endpoint or lost capacity).
    forbidden  refused: servestack will not apply it (create a new deployment instead).

The components are built so that a real `pulumi preview` agrees with this table (the
engine test tier checks it), and the review tool reads it to explain every planned change.
Paths are the YAML keys, with ``[]`` for "any item of the list" (``deployments[]``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from components.config import DeploymentSpec, StackConfig, StrategyType


class Effect(StrEnum):
    IN_PLACE = "in-place"
    RESTART = "restart"
    REPLACE = "replace"
    FORBIDDEN = "forbidden"


#: Severity order, for reporting the worst effect of a set of changes.
SEVERITY = {Effect.IN_PLACE: 0, Effect.RESTART: 1, Effect.REPLACE: 2, Effect.FORBIDDEN: 3}


@dataclass(frozen=True)
class EditContext:
    """The item (deployment or node pool) and stack around one edit, before and after."""

    old: Any
    new: Any
    old_stack: StackConfig | None = None
    new_stack: StackConfig | None = None


Override = Callable[[EditContext], tuple[Effect, str] | None]


@dataclass(frozen=True)
class Rule:
    path: str
    effect: Effect
    reason: str
    #: Kinds of the resources the edit touches.
    resources: tuple[str, ...]
    #: ``Kind:property.path`` patterns the field renders into (``*`` = one segment or
    #: index): provenance used to trace engine steps back to this field.
    renders: tuple[str, ...] = ()
    override: Override | None = field(default=None, compare=False)

    def resolve(self, ctx: EditContext | None = None) -> tuple[Effect, str]:
        if ctx is not None and self.override is not None:
            found = self.override(ctx)
            if found is not None:
                return found
        return self.effect, self.reason


def _strategy(item: Any) -> StrategyType | None:
    return item.strategy.type if isinstance(item, DeploymentSpec) else None


def _version_effect(ctx: EditContext) -> tuple[Effect, str] | None:
    if StrategyType.blue_green in (_strategy(ctx.old), _strategy(ctx.new)):
        return (
            Effect.REPLACE,
            "blue-green keys the Deployment by version: the new version's "
            "Deployment is created and made ready, traffic switches, the old one is deleted "
            "(needs 2x capacity during the switch)",
        )
    return None


def _strategy_type_effect(ctx: EditContext) -> tuple[Effect, str] | None:
    if StrategyType.blue_green not in (_strategy(ctx.old), _strategy(ctx.new)):
        return (
            Effect.IN_PLACE,
            "rolling <-> canary keeps the stable Deployment; the canary "
            "Deployment and its routes are created or deleted",
        )
    return None


def _provider(ctx: EditContext) -> str | None:
    stack = ctx.new_stack or ctx.old_stack
    return stack.cluster.provider.value if stack else None


def _pool_count_effect(ctx: EditContext) -> tuple[Effect, str] | None:
    if _provider(ctx) == "karpenter":
        return (
            Effect.IN_PLACE,
            "Karpenter reads the GPU count only in the pool's GPU limit "
            "(maxNodes x count); existing nodes stay",
        )
    return None


_POD = "Deployment:spec.template"
_CONTAINER = f"{_POD}.spec.containers[*]"
_ALL = (
    "NetworkPolicy",
    "Deployment",
    "Service",
    "ServiceAccount",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "ScaledObject",
    "DestinationRule",
    "VirtualService",
)

_RULES: tuple[Rule, ...] = (
    # --- stack level -----------------------------------------------------------------
    Rule(
        "environment",
        Effect.IN_PLACE,
        "changes labels and per-environment defaults "
        "(replica count, autoscaler, disruption budget); pod templates are unchanged",
        _ALL,
        ("*:metadata.labels",),
    ),
    Rule(
        "target",
        Effect.REPLACE,
        "moves every resource between rendered files and a live cluster: a new Kubernetes provider",
        ("Provider", *_ALL),
    ),
    Rule(
        "namespace",
        Effect.REPLACE,
        "metadata.namespace is immutable: every namespaced "
        "resource is deleted and created in the new namespace (new endpoints)",
        ("Namespace", *_ALL),
        ("*:metadata.namespace", "Namespace:metadata.name"),
    ),
    Rule(
        "cluster.name",
        Effect.REPLACE,
        "the stack moves to another cluster: a new provider, "
        "every resource is created there and deleted from the old one",
        ("Provider", "Namespace", "NodePool", *_ALL),
        ("*:metadata.annotations.servestack.io/cluster",),
    ),
    Rule(
        "cluster.provider",
        Effect.REPLACE,
        "node pools move to another backend: each pool "
        "is deleted and created (lost warm GPU capacity)",
        ("NodePool",),
    ),
    Rule("cluster.project", Effect.REPLACE, "GKE node pools belong to one project", ("NodePool",)),
    Rule(
        "cluster.location", Effect.REPLACE, "GKE node pools belong to one location", ("NodePool",)
    ),
    Rule(
        "cluster.nodeRoleArn",
        Effect.REPLACE,
        "EKS node groups cannot change their role",
        ("NodePool",),
    ),
    Rule(
        "cluster.subnetIds",
        Effect.REPLACE,
        "EKS node groups cannot change their subnets",
        ("NodePool",),
    ),
    Rule(
        "cluster.nodeClass",
        Effect.RESTART,
        "Karpenter drifts existing nodes to the new "
        "node class: nodes are replaced and their pods rescheduled",
        ("NodePool",),
        ("NodePool:spec.template.spec.nodeClassRef",),
    ),
    Rule(
        "allowReplacements",
        Effect.IN_PLACE,
        "review metadata only: nothing is deployed from it",
        (),
    ),
    # --- node pools ----------------------------------------------------------------------
    Rule(
        "nodePools[].name",
        Effect.REPLACE,
        "a pool's name is its identity: a new pool is created and the old one deleted",
        ("NodePool",),
        ("NodePool:metadata.name",),
    ),
    Rule(
        "nodePools[].gpu.type",
        Effect.REPLACE,
        "new GPU hardware means new nodes: the pool "
        "is replaced (lost warm GPU capacity until new nodes join)",
        ("NodePool",),
        ("NodePool:spec.template.spec.requirements", "NodePool:spec.template.metadata"),
    ),
    Rule(
        "nodePools[].gpu.count",
        Effect.REPLACE,
        "accelerators per node are fixed at node pool creation",
        ("NodePool",),
        ("NodePool:spec.limits",),
        override=_pool_count_effect,
    ),
    Rule(
        "nodePools[].machineType",
        Effect.REPLACE,
        "machine type is fixed at node pool creation: new nodes",
        ("NodePool",),
        ("NodePool:spec.template.spec.requirements",),
    ),
    Rule(
        "nodePools[].minNodes", Effect.IN_PLACE, "autoscaler bounds change in place", ("NodePool",)
    ),
    Rule(
        "nodePools[].maxNodes",
        Effect.IN_PLACE,
        "autoscaler bounds (Karpenter: the GPU limit) change in place",
        ("NodePool",),
        ("NodePool:spec.limits",),
    ),
    Rule(
        "nodePools[].spot",
        Effect.REPLACE,
        "capacity type is fixed at node pool creation",
        ("NodePool",),
        ("NodePool:spec.template.spec.requirements",),
    ),
    Rule(
        "nodePools[].diskSizeGb",
        Effect.REPLACE,
        "boot disk size is fixed at node pool creation",
        ("NodePool",),
    ),
    # --- deployments: identity -------------------------------------------------------------
    Rule(
        "deployments[].name",
        Effect.REPLACE,
        "the name is locked after creation: a new "
        "deployment (new Service endpoint) is created and the old one deleted",
        _ALL,
        ("*:metadata.name",),
    ),
    Rule(
        "deployments[].description",
        Effect.IN_PLACE,
        "an annotation on the Deployment",
        ("Deployment",),
        ("Deployment:metadata.annotations",),
    ),
    Rule(
        "deployments[].model.id",
        Effect.RESTART,
        "MODEL_ID is in the pod environment",
        ("Deployment",),
        (f"{_CONTAINER}.env",),
    ),
    Rule(
        "deployments[].model.version",
        Effect.RESTART,
        "a new version rolls the pods (MODEL_VERSION and the version label change)",
        ("Deployment", "Service"),
        (
            f"{_CONTAINER}.env",
            f"{_POD}.metadata.labels",
            "Deployment:metadata.name",
            "Deployment:spec.selector",
            "Service:spec.selector",
        ),
        override=_version_effect,
    ),
    Rule(
        "deployments[].model.type",
        Effect.FORBIDDEN,
        "a model may only be swapped for one "
        "of the same type; create a new deployment for another type",
        (),
    ),
    Rule(
        "deployments[].model.image",
        Effect.RESTART,
        "a new image rolls the pods",
        ("Deployment",),
        (f"{_CONTAINER}.image",),
    ),
    Rule(
        "deployments[].processing",
        Effect.REPLACE,
        "processing type is locked after "
        "creation: the Deployment is replaced and its Service/worker shape changes",
        ("Deployment", "Service", "HorizontalPodAutoscaler", "ScaledObject"),
        ("Deployment:metadata.labels",),
    ),
    Rule(
        "deployments[].environment",
        Effect.IN_PLACE,
        "inherited from the stack; labels only",
        _ALL,
        ("*:metadata.labels",),
    ),
    Rule(
        "deployments[].namespace",
        Effect.REPLACE,
        "inherited from the stack; metadata.namespace is immutable",
        _ALL,
        ("*:metadata.namespace",),
    ),
    # --- deployments: resources -----------------------------------------------------------
    Rule(
        "deployments[].resources.cpu",
        Effect.RESTART,
        "container requests/limits are in the pod template",
        ("Deployment",),
        (f"{_CONTAINER}.resources.*.cpu",),
    ),
    Rule(
        "deployments[].resources.memory",
        Effect.RESTART,
        "container requests/limits are in the pod template",
        ("Deployment",),
        (f"{_CONTAINER}.resources.*.memory",),
    ),
    Rule(
        "deployments[].resources.gpu.count",
        Effect.RESTART,
        "nvidia.com/gpu requests are in the pod template",
        ("Deployment",),
        (f"{_CONTAINER}.resources.*.nvidia.com/gpu",),
    ),
    Rule(
        "deployments[].resources.gpu.type",
        Effect.RESTART,
        "node selector and tolerations move the pods to other GPU nodes",
        ("Deployment",),
        (f"{_POD}.spec.nodeSelector", f"{_POD}.spec.tolerations"),
    ),
    Rule(
        "deployments[].resources.storage",
        Effect.RESTART,
        "ephemeral storage and the model cache volume are in the pod template",
        ("Deployment",),
        (f"{_CONTAINER}.resources.*.ephemeral-storage", f"{_POD}.spec.volumes"),
    ),
    Rule(
        "deployments[].resources.bandwidthMbps",
        Effect.RESTART,
        "bandwidth annotations are read by the CNI when a pod starts",
        ("Deployment",),
        (f"{_POD}.metadata.annotations",),
    ),
    # --- deployments: scaling and lifecycle -------------------------------------------------
    Rule(
        "deployments[].replicas",
        Effect.IN_PLACE,
        "the Deployment scales; no pod restarts",
        ("Deployment",),
        ("Deployment:spec.replicas",),
    ),
    Rule(
        "deployments[].active",
        Effect.IN_PLACE,
        "stop scales to zero and removes the "
        "autoscaler; start restores them. The Service and config stay: never a replacement",
        ("Deployment", "HorizontalPodAutoscaler", "ScaledObject", "PodDisruptionBudget"),
        ("Deployment:spec.replicas",),
    ),
    *(
        Rule(
            f"deployments[].autoscaling.{key}",
            Effect.IN_PLACE,
            "autoscaler settings change in place",
            ("HorizontalPodAutoscaler", "ScaledObject", "Deployment"),
            (
                f"HorizontalPodAutoscaler:spec.{target}",
                f"ScaledObject:spec.{target}",
                "Deployment:spec.replicas",
            ),
        )
        for key, target in (
            ("enabled", "*"),
            ("minReplicas", "minReplica*"),
            ("maxReplicas", "maxReplica*"),
            ("targetCpuUtilization", "metrics"),
            ("targetMemoryUtilization", "metrics"),
            ("targetGpuUtilization", "metrics"),
            ("scaleDownStabilizationSeconds", "behavior"),
        )
    ),
    # --- deployments: traffic ----------------------------------------------------------------
    Rule(
        "deployments[].loadBalancer.enabled",
        Effect.IN_PLACE,
        "mesh routing resources are created or deleted; the Service stays",
        ("DestinationRule", "VirtualService"),
    ),
    Rule(
        "deployments[].loadBalancer.algorithm",
        Effect.IN_PLACE,
        "the mesh's balancing policy changes in place",
        ("DestinationRule",),
        ("DestinationRule:spec.trafficPolicy.loadBalancer",),
    ),
    Rule(
        "deployments[].loadBalancer.stickySessions",
        Effect.IN_PLACE,
        "cookie affinity in the mesh policy",
        ("DestinationRule",),
        ("DestinationRule:spec.trafficPolicy.loadBalancer",),
    ),
    Rule(
        "deployments[].loadBalancer.healthCheck.path",
        Effect.RESTART,
        "the readiness probe is in the pod template",
        ("Deployment",),
        (f"{_CONTAINER}.readinessProbe.httpGet.path",),
    ),
    Rule(
        "deployments[].loadBalancer.healthCheck.intervalSeconds",
        Effect.RESTART,
        "the readiness probe period is in the pod template",
        ("Deployment", "DestinationRule"),
        (
            f"{_CONTAINER}.readinessProbe.periodSeconds",
            "DestinationRule:spec.trafficPolicy.outlierDetection.interval",
        ),
    ),
    Rule(
        "deployments[].loadBalancer.healthCheck.timeoutSeconds",
        Effect.RESTART,
        "the readiness probe timeout is in the pod template",
        ("Deployment",),
        (f"{_CONTAINER}.readinessProbe.timeoutSeconds",),
    ),
    Rule(
        "deployments[].loadBalancer.healthCheck.failureThreshold",
        Effect.RESTART,
        "the readiness threshold is in the pod template",
        ("Deployment", "DestinationRule"),
        (
            f"{_CONTAINER}.readinessProbe.failureThreshold",
            "DestinationRule:spec.trafficPolicy.outlierDetection.consecutive5xxErrors",
        ),
    ),
    Rule(
        "deployments[].port",
        Effect.RESTART,
        "the container port is in the pod template",
        ("Deployment", "Service", "NetworkPolicy"),
        (f"{_CONTAINER}.ports", f"{_CONTAINER}.env", "NetworkPolicy:spec.ingress"),
    ),
    # --- deployments: rollout strategy -------------------------------------------------------
    Rule(
        "deployments[].strategy.type",
        Effect.REPLACE,
        "blue-green keys the Deployment by "
        "version, so switching to or from it replaces the Deployment",
        ("Deployment", "Service", "DestinationRule", "VirtualService"),
        (
            "Deployment:metadata.name",
            "Deployment:spec.selector",
            "Service:spec.selector",
            "DestinationRule:spec.subsets",
        ),
        override=_strategy_type_effect,
    ),
    Rule(
        "deployments[].strategy.maxSurge",
        Effect.IN_PLACE,
        "rollout parameters, outside the pod template",
        ("Deployment",),
        ("Deployment:spec.strategy",),
    ),
    Rule(
        "deployments[].strategy.maxUnavailable",
        Effect.IN_PLACE,
        "rollout parameters, outside the pod template",
        ("Deployment",),
        ("Deployment:spec.strategy",),
    ),
    Rule(
        "deployments[].strategy.weight",
        Effect.IN_PLACE,
        "route weights change in place",
        ("VirtualService",),
        ("VirtualService:spec.http",),
    ),
    Rule(
        "deployments[].strategy.canaryVersion",
        Effect.RESTART,
        "the canary track's pods roll",
        ("Deployment",),
        (f"{_CONTAINER}.env", f"{_POD}.metadata.labels"),
    ),
    Rule(
        "deployments[].strategy.canaryImage",
        Effect.RESTART,
        "the canary track's pods roll",
        ("Deployment",),
        (f"{_CONTAINER}.image",),
    ),
    Rule(
        "deployments[].strategy.canaryReplicas",
        Effect.IN_PLACE,
        "the canary Deployment scales",
        ("Deployment",),
        ("Deployment:spec.replicas",),
    ),
    # --- deployments: async workers and config ------------------------------------------------
    Rule(
        "deployments[].queue.kind",
        Effect.RESTART,
        "QUEUE_KIND is in the pod environment; the scaler's trigger changes",
        ("Deployment", "ScaledObject"),
        (f"{_CONTAINER}.env", "ScaledObject:spec.triggers"),
    ),
    Rule(
        "deployments[].queue.name",
        Effect.RESTART,
        "QUEUE_NAME is in the pod environment",
        ("Deployment", "ScaledObject"),
        (f"{_CONTAINER}.env", "ScaledObject:spec.triggers"),
    ),
    Rule(
        "deployments[].queue.targetDepth",
        Effect.IN_PLACE,
        "the scaler's threshold",
        ("ScaledObject",),
        ("ScaledObject:spec.triggers",),
    ),
    Rule(
        "deployments[].queue.connectionSecret",
        Effect.RESTART,
        "the secret reference is in the pod environment",
        ("Deployment",),
        (f"{_CONTAINER}.env",),
    ),
    Rule(
        "deployments[].env",
        Effect.RESTART,
        "environment variables are in the pod template",
        ("Deployment",),
        (f"{_CONTAINER}.env",),
    ),
    Rule(
        "deployments[].secretEnv",
        Effect.RESTART,
        "secret references are in the pod environment (values live in the Secret "
        "`<name>-env`; a new value reaches pods at their next restart)",
        ("Deployment", "Secret"),
        (f"{_CONTAINER}.env",),
    ),
    Rule(
        "deployments[].tags",
        Effect.IN_PLACE,
        "labels on resource metadata only (not on pods, so no restart)",
        _ALL,
        ("*:metadata.labels",),
    ),
)

TABLE: dict[str, Rule] = {r.path: r for r in _RULES}

#: Fields whose value is a free-form mapping: an edit of any key maps to the field.
MAP_FIELDS = ("deployments[].env", "deployments[].tags")


def table_key(path: str) -> str:
    """Map a concrete path (``deployments.bert.resources.cpu``) to its table key."""
    parts = path.split(".")
    if parts[0] in ("deployments", "nodePools") and len(parts) > 1:
        key = ".".join([f"{parts[0]}[]", *parts[2:]]) if len(parts) > 2 else f"{parts[0]}[]"
    else:
        key = path
    for prefix in MAP_FIELDS:
        if key.startswith(prefix + "."):
            return prefix
    if key.startswith("allowReplacements"):
        return "allowReplacements"
    return key


def rule_for(path: str) -> Rule:
    """The rule for a concrete or table path.

    Raises:
        KeyError: no rule covers the path (a gap in the table; a test guards it).
    """
    key = table_key(path)
    while key:
        if key in TABLE:
            return TABLE[key]
        key = key.rpartition(".")[0]
    raise KeyError(path)


def _compile(renders: str) -> tuple[str, str, re.Pattern[str]]:
    kind, _, prop = renders.partition(":")
    return kind, prop, re.compile(re.escape(prop).replace(r"\*", r"[^.\[\]]+"))


_PATTERNS: tuple[tuple[Rule, tuple[tuple[str, str, re.Pattern[str]], ...]], ...] = tuple(
    (rule, tuple(_compile(r) for r in rule.renders)) for rule in _RULES
)


@functools.lru_cache(maxsize=4096)
def _rendering(kind: str, prop: str) -> tuple[Rule, ...]:
    generic = re.sub(r"\[\d+\]", "[*]", prop)
    found = []
    for rule, patterns in _PATTERNS:
        for k, pattern, rx in patterns:
            if k not in ("*", kind):
                continue
            # Either way round: the engine may report a deeper path than the table names
            # (`...resources.limits.cpu`) or a coarser one (`spec.template`).
            if rx.match(prop) or (
                prop and (pattern == generic or pattern.startswith((generic + ".", generic + "[")))
            ):
                found.append(rule)
                break
    return tuple(found)


def rules_rendering(kind: str, prop: str) -> list[Rule]:
    """Rules whose field renders into property ``prop`` of a resource of ``kind``."""
    return list(_rendering(kind, prop))
