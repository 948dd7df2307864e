"""The field-effect table: what an edit of each config field does to the running system.

Effects:
    no change  nothing deployed reads the field in this configuration (``replicas`` of an
               autoscaled deployment): the engine changes nothing. Said with the reason
               and what to edit instead; the operations refuse such an edit.
    in-place   the resources are updated; no pod restarts, no resource is replaced.
    restart    a Deployment's pod template changes: pods roll (surge capacity needed).
    replace    a resource is deleted and created (downtime, new endpoint or lost capacity).
    forbidden  refused: servestack will not apply it (create a new deployment instead).
A whole deployment or node pool is also created or deleted (``create``, ``delete``).

The components are built so that a real `pulumi preview` agrees with this table (the
engine test tier checks it), and the review tool reads it to explain every planned change.
Which manifest properties a field renders into is not written here: the builders record it
as they build (:mod:`servestack.manifests.provenance`), and
:func:`servestack.manifests.sample.renders` reads that (the contract does not import the
builders).
Paths are in the one user-visible dialect (:mod:`servestack.config.paths`), with
``<name>`` standing for any deployment or node pool.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from servestack.config.defaults import ENV_DEFAULTS, effective
from servestack.config.models import (
    CloudProvider,
    DeploymentSpec,
    StackConfig,
    StrategyType,
    Target,
)
from servestack.config.paths import FieldPath


class Effect(StrEnum):
    """What an edit does; the one vocabulary of the table, `diff`, `explain` and ops."""

    NONE = "no change"
    IN_PLACE = "in-place"
    RESTART = "restart"
    REPLACE = "replace"
    FORBIDDEN = "forbidden"
    CREATE = "create"
    DELETE = "delete"

    @property
    def severity(self) -> int:
        """How much the running system feels it: the one order every report sorts by."""
        return _SEVERITY.index(self)


#: Least to most severe. A created deployment costs capacity but serves nothing yet; a
#: deleted one loses its endpoint, which a replacement also does, and refusal stops all.
_SEVERITY = (
    Effect.NONE,
    Effect.IN_PLACE,
    Effect.CREATE,
    Effect.RESTART,
    Effect.DELETE,
    Effect.REPLACE,
    Effect.FORBIDDEN,
)
#: The effects a rule of the table can have (create and delete are of whole items).
FIELD_EFFECTS = (Effect.NONE, Effect.IN_PLACE, Effect.RESTART, Effect.REPLACE, Effect.FORBIDDEN)


def worst(effects: Iterable[Effect]) -> Effect | None:
    return max(effects, key=lambda e: e.severity, default=None)


# --- impact: what the running system feels, beyond the effect ---------------------------------
NEW_ENDPOINT = "new endpoint; delete-before-create (downtime)"
RECREATED = "delete-before-create: the resource is recreated (downtime)"
LOST_CAPACITY = "lost warm GPU capacity until new nodes join"
SWITCHED = "create-before-delete: new version ready before the switch; 2x capacity"


@dataclass(frozen=True)
class EditContext:
    """The item (deployment or node pool) and stack around one edit, before and after."""

    old: Any
    new: Any
    old_stack: StackConfig | None = None
    new_stack: StackConfig | None = None


class Outcome(NamedTuple):
    """A rule resolved for one edit: its effect, why, and the downtime class."""

    effect: Effect
    reason: str
    impact: str = ""


Override = Callable[[EditContext], Outcome | None]


@dataclass(frozen=True)
class Rule:
    path: str
    effect: Effect
    reason: str
    #: Kinds of the resources the edit touches.
    resources: tuple[str, ...]
    #: Downtime class of a replacement (a restart's is forecast from the deployment).
    impact: str = ""
    override: Override | None = field(default=None, compare=False)

    def resolve(self, ctx: EditContext | None = None) -> Outcome:
        if ctx is not None and self.override is not None:
            found = self.override(ctx)
            if found is not None:
                return found
        return Outcome(self.effect, self.reason, self.impact)


def _strategy(item: Any) -> StrategyType | None:
    return item.strategy.type if isinstance(item, DeploymentSpec) else None


def shifted(old: Any, new: Any) -> bool:
    """Whether the edit is `promote --shift`'s: the stable track moves to the slot of the
    canary (``stableSlot``), whose version and image it keeps, so its pods stay."""
    if not isinstance(old, DeploymentSpec) or not isinstance(new, DeploymentSpec):
        return False
    s = old.strategy
    return (
        s.type is StrategyType.canary
        and new.stable_slot is not old.stable_slot
        and (new.model.version, new.model.image) == (s.canary_version, s.canary_image)
    )


#: Why a shift's rows change no pod (see :func:`shifted`).
SHIFTED = "promote --shift: the canary's pods (this version) become the stable track as they are"


def _shift_effect(ctx: EditContext) -> Outcome | None:
    if shifted(ctx.old, ctx.new):
        return Outcome(Effect.IN_PLACE, SHIFTED)
    return None


def _slot_effect(ctx: EditContext) -> Outcome | None:
    found = _shift_effect(ctx)
    if found is not None:
        return found
    old, new = ctx.old, ctx.new
    if (
        isinstance(old, DeploymentSpec)
        and isinstance(new, DeploymentSpec)
        and old.strategy.type is StrategyType.canary
        and new.strategy.type is not StrategyType.canary
    ):
        return Outcome(
            Effect.RESTART,
            "the canary's Deployment takes the stable track and rolls to its version; the "
            "old stable Deployment goes",
        )
    if (
        isinstance(old, DeploymentSpec)
        and isinstance(new, DeploymentSpec)
        and old.strategy.type is StrategyType.canary
        and new.strategy.type is StrategyType.canary
    ):
        # Both Deployments stay (their names and selectors are the slots'): each one's pods
        # roll to the other track's version, and the routes' subsets swap.
        return Outcome(
            Effect.RESTART,
            "during a canary the two tracks swap Deployments: each one's pods roll to the "
            "other track's version",
        )
    return None


def _canary_track_effect(ctx: EditContext) -> Outcome | None:
    """The canary's version or image goes with a shift: its pods now serve as stable."""
    new = ctx.new
    if shifted(ctx.old, new) and new.strategy.type is not StrategyType.canary:
        return Outcome(Effect.IN_PLACE, SHIFTED)
    return None


def _weight_effect(ctx: EditContext) -> Outcome | None:
    if shifted(ctx.old, ctx.new):
        return Outcome(
            Effect.IN_PLACE,
            "promote --shift: the canary takes 100% of the traffic first, then the routes go",
        )
    return None


def _version_effect(ctx: EditContext) -> Outcome | None:
    if shifted(ctx.old, ctx.new):
        return Outcome(Effect.IN_PLACE, SHIFTED)
    if StrategyType.blue_green in (_strategy(ctx.old), _strategy(ctx.new)):
        return Outcome(
            Effect.REPLACE,
            "blue-green keys the Deployment by version: the new version's "
            "Deployment is created and made ready, traffic switches, the old one is deleted "
            "(needs 2x capacity during the switch)",
            SWITCHED,
        )
    return None


def _strategy_type_effect(ctx: EditContext) -> Outcome | None:
    if shifted(ctx.old, ctx.new):
        return Outcome(
            Effect.IN_PLACE,
            "promote --shift: the routes go; the canary's Deployment stays, as the stable one",
        )
    if StrategyType.blue_green not in (_strategy(ctx.old), _strategy(ctx.new)):
        routed = any(getattr(item, "route", None) is not None for item in (ctx.old, ctx.new))
        return Outcome(
            Effect.IN_PLACE,
            "rolling <-> canary keeps the stable Deployment; the canary "
            "Deployment and its routes are created or deleted"
            + (" (the HTTPRoute's weights change in place)" if routed else ""),
        )
    return None


def _provider(ctx: EditContext) -> CloudProvider | None:
    stack = ctx.new_stack or ctx.old_stack
    return stack.cluster.provider if stack else None


def _pool_count_effect(ctx: EditContext) -> Outcome | None:
    same_machine = getattr(ctx.old, "machine_type", None) is not None and getattr(
        ctx.old, "machine_type", None
    ) == getattr(ctx.new, "machine_type", None)
    if _provider(ctx) is CloudProvider.karpenter and same_machine:
        return Outcome(
            Effect.IN_PLACE,
            "Karpenter reads the GPU count only in the pool's GPU limit "
            "(maxNodes x count); existing nodes stay",
        )
    return None


def _eks_labels(ctx: EditContext) -> Outcome | None:
    if _provider(ctx) is CloudProvider.eks:
        return Outcome(
            Effect.IN_PLACE,
            "EKS updates a node group's labels on its running nodes: the GPU operator's MIG "
            "manager then repartitions their GPUs in place, evicting the pods using them",
        )
    return None


def _local_bounds(ctx: EditContext) -> Outcome | None:
    if _provider(ctx) is CloudProvider.local:
        return Outcome(
            Effect.NONE,
            "provider local has no node autoscaler: a pool is minNodes nodes, and maxNodes "
            "changes nothing on the cluster",
        )
    return None


def _rendered_only(ctx: EditContext) -> Outcome | None:
    stacks = [s for s in (ctx.old_stack, ctx.new_stack) if s is not None]
    if stacks and all(s.target is Target.render for s in stacks):
        return Outcome(
            Effect.NONE,
            "read only with target: cluster; this stack renders manifests to files",
        )
    return None


def _spreads(item: Any) -> tuple[Any, ...]:
    if not isinstance(item, DeploymentSpec):
        return ()
    eff = effective(item)
    return (eff.node_spread, eff.zone_spread)


_SPREAD_DEFAULT = (
    "the environment's topologySpread default changes (production prefers spreading "
    "replicas over nodes): pods of deployments that leave topologySpread unset roll"
)


def _environment_effect(ctx: EditContext) -> Outcome | None:
    """Labels only, unless a per-environment default that is in the pod template moves."""
    if isinstance(ctx.old, DeploymentSpec):
        pairs = [(ctx.old, ctx.new)]
    else:
        olds = {d.name: d for d in ctx.old_stack.deployments} if ctx.old_stack else {}
        news = ctx.new_stack.deployments if ctx.new_stack else ()
        pairs = [(olds[d.name], d) for d in news if d.name in olds]
    if any(_spreads(old) != _spreads(new) for old, new in pairs):
        return Outcome(Effect.RESTART, _SPREAD_DEFAULT)
    return None


def _read_by(*providers: CloudProvider) -> Override:
    """Fields only some node pool backends read: elsewhere their edit changes nothing."""

    def effect(ctx: EditContext) -> Outcome | None:
        stacks = [s for s in (ctx.old_stack, ctx.new_stack) if s is not None]
        if not stacks:
            return None
        if any(s.cluster.provider in providers and s.node_pools for s in stacks):
            return None
        return Outcome(
            Effect.NONE,
            f"read only by {' and '.join(providers)} node pools; this stack has none",
        )

    return effect


def _gpu_marks(ctx: EditContext) -> Outcome | None:
    """GPU node labels are read by node pools and GPU deployments only: pools that
    servestack's components replace on a label change lose their nodes (karpenter, gke,
    local), EKS relabels its running nodes, GPU pods roll."""
    stacks = [s for s in (ctx.old_stack, ctx.new_stack) if s is not None]
    if not stacks:
        return None
    pooled = [s.cluster.provider for s in stacks if s.node_pools]
    if any(p in (CloudProvider.karpenter, CloudProvider.gke, CloudProvider.local) for p in pooled):
        return None
    if any(d.resources.gpu.type is not None for s in stacks for d in s.deployments):
        return Outcome(
            Effect.RESTART,
            "GPU pods select another node label or tolerate another taint: they roll onto "
            "nodes that carry it",
        )
    if CloudProvider.eks in pooled:
        return Outcome(
            Effect.IN_PLACE,
            "EKS updates a node group's labels and taints on its running nodes",
        )
    return Outcome(Effect.NONE, "read only by GPU deployments and node pools; this stack has none")


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
    "HTTPRoute",
    "ServiceMonitor",
    "PodMonitor",
    "PrometheusRule",
    "ConfigMap",
)

_SCRAPE = ("ServiceMonitor", "PodMonitor")
_MONITORING = (*_SCRAPE, "PrometheusRule", "ConfigMap", "NetworkPolicy")

_RULES: tuple[Rule, ...] = (
    # --- stack level -----------------------------------------------------------------
    Rule(
        "environment",
        Effect.IN_PLACE,
        "changes labels and per-environment defaults "
        "(replica count, autoscaler, disruption budget); pod templates are unchanged "
        "unless the topologySpread default moves (into or out of production)",
        _ALL,
        override=_environment_effect,
    ),
    Rule(
        "imagePullSecrets",
        Effect.RESTART,
        "image pull Secret names (never their content) are in the pod template of every "
        "deployment that lists none of its own",
        ("Deployment",),
    ),
    Rule(
        "target",
        Effect.REPLACE,
        "moves every resource between rendered files and a live cluster: a new Kubernetes provider",
        ("Provider", *_ALL),
        impact=NEW_ENDPOINT,
    ),
    Rule(
        "namespace",
        Effect.REPLACE,
        "metadata.namespace is immutable: every namespaced "
        "resource is deleted and created in the new namespace (new endpoints)",
        ("Namespace", *_ALL),
        impact=NEW_ENDPOINT,
    ),
    Rule(
        "cluster.name",
        Effect.REPLACE,
        "the stack moves to another cluster: a new provider, "
        "every resource is created there and deleted from the old one",
        ("Provider", "Namespace", "NodePool", *_ALL),
        impact=NEW_ENDPOINT,
    ),
    Rule(
        "cluster.provider",
        Effect.REPLACE,
        "node pools move to another backend: each pool "
        "is deleted and created (lost warm GPU capacity)",
        ("NodePool",),
        impact=LOST_CAPACITY,
    ),
    Rule(
        "cluster.project",
        Effect.REPLACE,
        "GKE node pools belong to one project",
        ("NodePool",),
        impact=LOST_CAPACITY,
        override=_read_by(CloudProvider.gke),
    ),
    Rule(
        "cluster.location",
        Effect.REPLACE,
        "GKE node pools belong to one location",
        ("NodePool",),
        impact=LOST_CAPACITY,
        override=_read_by(CloudProvider.gke),
    ),
    Rule(
        "cluster.nodeRoleArn",
        Effect.REPLACE,
        "EKS node groups cannot change their role",
        ("NodePool",),
        impact=LOST_CAPACITY,
        override=_read_by(CloudProvider.eks),
    ),
    Rule(
        "cluster.subnetIds",
        Effect.REPLACE,
        "EKS node groups cannot change their subnets",
        ("NodePool",),
        impact=LOST_CAPACITY,
        override=_read_by(CloudProvider.eks),
    ),
    Rule(
        "cluster.context",
        Effect.IN_PLACE,
        "how the provider reaches the cluster (target cluster only): the provider is updated, "
        "resources stay; moving to another cluster is a cluster.name edit",
        ("Provider",),
        override=_rendered_only,
    ),
    Rule(
        "cluster.nodeClass.group",
        Effect.REPLACE,
        "the server refuses an in-place change of a NodePool's node class group: "
        "every Karpenter NodePool is replaced and its nodes with it",
        ("NodePool",),
        impact=LOST_CAPACITY,
        override=_read_by(CloudProvider.karpenter),
    ),
    Rule(
        "cluster.nodeClass.kind",
        Effect.REPLACE,
        "the server refuses an in-place change of a NodePool's node class kind: "
        "every Karpenter NodePool is replaced and its nodes with it",
        ("NodePool",),
        impact=LOST_CAPACITY,
        override=_read_by(CloudProvider.karpenter),
    ),
    Rule(
        "cluster.nodeClass.name",
        Effect.REPLACE,
        "a NodePool's nodes belong to their node class: "
        "every Karpenter NodePool is replaced and its nodes with it",
        ("NodePool",),
        impact=LOST_CAPACITY,
        override=_read_by(CloudProvider.karpenter),
    ),
    Rule(
        "cluster.gpuLabels",
        Effect.REPLACE,
        "which node labels and taint mark GPU nodes: node pools get new nodes that carry it "
        "(lost warm GPU capacity) and GPU pods roll onto them",
        ("NodePool", "Deployment"),
        impact=LOST_CAPACITY,
        override=_gpu_marks,
    ),
    Rule(
        "cluster.customGpuLabels.key",
        Effect.REPLACE,
        "the node label GPU nodes carry: node pools get new nodes that carry it "
        "(lost warm GPU capacity) and GPU pods roll onto them",
        ("NodePool", "Deployment"),
        impact=LOST_CAPACITY,
        override=_gpu_marks,
    ),
    Rule(
        "cluster.customGpuLabels.values",
        Effect.REPLACE,
        "a GPU type's node label value: node pools get new nodes that carry it "
        "(lost warm GPU capacity) and GPU pods roll onto them",
        ("NodePool", "Deployment"),
        impact=LOST_CAPACITY,
        override=_gpu_marks,
    ),
    Rule(
        "cluster.customGpuLabels.taint",
        Effect.REPLACE,
        "the taint GPU nodes carry: node pools get new nodes that carry it "
        "(lost warm GPU capacity) and GPU pods roll onto them",
        ("NodePool", "Deployment"),
        impact=LOST_CAPACITY,
        override=_gpu_marks,
    ),
    Rule(
        "allowReplacements",
        Effect.NONE,
        "review metadata only: nothing is deployed from it",
        (),
    ),
    # --- node pools ----------------------------------------------------------------------
    Rule(
        "nodePools.<name>.name",
        Effect.REPLACE,
        "a pool's name is its identity: a new pool is created and the old one deleted",
        ("NodePool",),
        impact=LOST_CAPACITY,
    ),
    Rule(
        "nodePools.<name>.gpu.type",
        Effect.REPLACE,
        "new GPU hardware means new nodes: the pool "
        "is replaced (lost warm GPU capacity until new nodes join)",
        ("NodePool",),
        impact=LOST_CAPACITY,
    ),
    Rule(
        "nodePools.<name>.gpu.count",
        Effect.REPLACE,
        "accelerators per node are fixed at node pool creation",
        ("NodePool",),
        impact=LOST_CAPACITY,
        override=_pool_count_effect,
    ),
    Rule(
        "nodePools.<name>.gpu.mig",
        Effect.REPLACE,
        "MIG partitioning is the nodes' nvidia.com/mig.config label: new nodes come up "
        "partitioned the new way (lost warm GPU capacity until they join)",
        ("NodePool",),
        impact=LOST_CAPACITY,
        override=_eks_labels,
    ),
    Rule(
        "nodePools.<name>.machineType",
        Effect.REPLACE,
        "machine type is fixed at node pool creation: new nodes",
        ("NodePool",),
        impact=LOST_CAPACITY,
    ),
    Rule(
        "nodePools.<name>.minNodes",
        Effect.IN_PLACE,
        "autoscaler bounds change in place",
        ("NodePool",),
    ),
    Rule(
        "nodePools.<name>.maxNodes",
        Effect.IN_PLACE,
        "autoscaler bounds (Karpenter: the NodePool's GPU and node limits) change in place",
        ("NodePool",),
        override=_local_bounds,
    ),
    Rule(
        "nodePools.<name>.spot",
        Effect.REPLACE,
        "capacity type is fixed at node pool creation",
        ("NodePool",),
        impact=LOST_CAPACITY,
    ),
    Rule(
        "nodePools.<name>.consolidateAfterSeconds",
        Effect.IN_PLACE,
        "Karpenter reads it for its next consolidation: the NodePool is updated, "
        "nodes stay until empty that long",
        ("NodePool",),
        override=_read_by(CloudProvider.karpenter),
    ),
    Rule(
        "nodePools.<name>.diskSizeGb",
        Effect.REPLACE,
        "boot disk size is fixed at node pool creation",
        ("NodePool",),
        impact=LOST_CAPACITY,
        override=_read_by(CloudProvider.gke, CloudProvider.eks),
    ),
    # --- deployments: identity -------------------------------------------------------------
    Rule(
        "deployments.<name>.name",
        Effect.REPLACE,
        "the name is locked after creation: a new "
        "deployment (new Service endpoint) is created and the old one deleted",
        _ALL,
        impact=NEW_ENDPOINT,
    ),
    Rule(
        "deployments.<name>.description",
        Effect.IN_PLACE,
        "an annotation on the Deployment",
        ("Deployment",),
    ),
    Rule(
        "deployments.<name>.model.id",
        Effect.RESTART,
        "MODEL_ID is in the pod environment",
        ("Deployment",),
    ),
    Rule(
        "deployments.<name>.model.version",
        Effect.RESTART,
        "a new version rolls the pods (MODEL_VERSION and the version label change)",
        ("Deployment", "Service", "PrometheusRule"),
        override=_version_effect,
    ),
    Rule(
        "deployments.<name>.model.type",
        Effect.FORBIDDEN,
        "a model may only be swapped for one "
        "of the same type; create a new deployment for another type",
        (),
    ),
    Rule(
        "deployments.<name>.model.image",
        Effect.RESTART,
        "a new image rolls the pods",
        ("Deployment",),
        override=_shift_effect,
    ),
    Rule(
        "deployments.<name>.model.storage.pvc",
        Effect.RESTART,
        "the claim is a volume of the pod template; servestack mounts an existing PVC and "
        "never replaces it (a ReadWriteOnce claim holds new pods on the old pods' node: "
        "prefer ReadOnlyMany for weights)",
        ("Deployment",),
    ),
    Rule(
        "deployments.<name>.model.storage.uri",
        Effect.RESTART,
        "the init container fetches the weights when a pod starts: a new location rolls the pods",
        ("Deployment",),
    ),
    Rule(
        "deployments.<name>.model.storage.size",
        Effect.RESTART,
        "the emptyDir's size and the pod's ephemeral storage are in the pod template",
        ("Deployment",),
    ),
    Rule(
        "deployments.<name>.model.storage.mountPath",
        Effect.RESTART,
        "the mount is in the pod template",
        ("Deployment",),
    ),
    Rule(
        "deployments.<name>.model.storage.fetchImage",
        Effect.RESTART,
        "the init container's image is in the pod template",
        ("Deployment",),
    ),
    Rule(
        "deployments.<name>.processing",
        Effect.REPLACE,
        "processing type is locked after "
        "creation: the Deployment is replaced and its Service/worker shape changes",
        ("Deployment", "Service", "HorizontalPodAutoscaler", "ScaledObject", *_SCRAPE),
        impact=RECREATED,
    ),
    Rule(
        "deployments.<name>.environment",
        Effect.IN_PLACE,
        "inherited from the stack; labels only, unless the topologySpread default moves",
        _ALL,
        override=_environment_effect,
    ),
    Rule(
        "deployments.<name>.namespace",
        Effect.REPLACE,
        "inherited from the stack; metadata.namespace is immutable",
        _ALL,
        impact=NEW_ENDPOINT,
    ),
    # --- deployments: resources -----------------------------------------------------------
    Rule(
        "deployments.<name>.resources.cpu",
        Effect.RESTART,
        "container requests/limits are in the pod template",
        ("Deployment",),
    ),
    Rule(
        "deployments.<name>.resources.memory",
        Effect.RESTART,
        "container requests/limits are in the pod template",
        ("Deployment",),
    ),
    Rule(
        "deployments.<name>.resources.gpu.count",
        Effect.RESTART,
        "nvidia.com/gpu requests are in the pod template",
        ("Deployment",),
    ),
    Rule(
        "deployments.<name>.resources.gpu.type",
        Effect.RESTART,
        "node selector and tolerations move the pods to other GPU nodes",
        ("Deployment",),
    ),
    Rule(
        "deployments.<name>.resources.gpu.mig",
        Effect.RESTART,
        "the MIG slice resource (nvidia.com/mig-<profile>) is requested in the pod template",
        ("Deployment",),
    ),
    Rule(
        "deployments.<name>.resources.storage",
        Effect.RESTART,
        "ephemeral storage and the model cache volume are in the pod template",
        ("Deployment",),
    ),
    Rule(
        "deployments.<name>.resources.bandwidthMbps",
        Effect.RESTART,
        "bandwidth annotations are read by the CNI when a pod starts",
        ("Deployment",),
    ),
    Rule(
        "deployments.<name>.resources.sharedMemory",
        Effect.RESTART,
        "the memory-backed /dev/shm volume and its mount are in the pod template",
        ("Deployment",),
    ),
    # --- deployments: pod settings -----------------------------------------------------------
    Rule(
        "deployments.<name>.imagePullSecrets",
        Effect.RESTART,
        "image pull Secret names are in the pod template (the Secrets themselves are not "
        "servestack's: a changed credential is used at the next image pull)",
        ("Deployment",),
    ),
    Rule(
        "deployments.<name>.command",
        Effect.RESTART,
        "the container's command is in the pod template",
        ("Deployment",),
    ),
    Rule(
        "deployments.<name>.args",
        Effect.RESTART,
        "the container's arguments are in the pod template",
        ("Deployment",),
    ),
    Rule(
        "deployments.<name>.priorityClassName",
        Effect.RESTART,
        "the priority class is in the pod template (immutable on a running pod)",
        ("Deployment",),
    ),
    *(
        Rule(
            f"deployments.<name>.topologySpread.{key}",
            Effect.RESTART,
            f"topology spread constraints ({what}) are in the pod template",
            ("Deployment",),
        )
        for key, what in (("node", "over nodes"), ("zone", "over zones"))
    ),
    Rule(
        "deployments.<name>.affinity.nodeRequirements",
        Effect.RESTART,
        "node affinity is in the pod template: pods move to nodes that meet it",
        ("Deployment",),
    ),
    Rule(
        "deployments.<name>.affinity.podAntiAffinity",
        Effect.RESTART,
        "pod anti-affinity is in the pod template",
        ("Deployment",),
    ),
    # --- deployments: scaling and lifecycle -------------------------------------------------
    Rule(
        "deployments.<name>.replicas",
        Effect.IN_PLACE,
        "the Deployment scales; no pod restarts",
        # A PodDisruptionBudget exists from 2 replicas on: crossing 1 <-> 2 creates or
        # deletes it.
        ("Deployment", "PodDisruptionBudget"),
    ),
    Rule(
        "deployments.<name>.active",
        Effect.IN_PLACE,
        "stop scales to zero and removes the "
        "autoscaler; start restores them. The Service and config stay: never a replacement",
        ("Deployment", "HorizontalPodAutoscaler", "ScaledObject", "PodDisruptionBudget"),
    ),
    Rule(
        "deployments.<name>.autoscaling.enabled",
        Effect.IN_PLACE,
        "the autoscaler is created or removed. Created, it takes over the Deployment's live "
        "count; removed, the Deployment gets replicas. No pod restarts",
        # The disruption budget exists from 2 pods at rest on: minReplicas or replicas.
        ("HorizontalPodAutoscaler", "ScaledObject", "Deployment", "PodDisruptionBudget"),
    ),
    *(
        Rule(
            f"deployments.<name>.autoscaling.{key}",
            Effect.IN_PLACE,
            "autoscaler settings change in place",
            # The Deployment's count is the autoscaler's: written when it is created only.
            # The floor crossing 1 <-> 2 creates or deletes the disruption budget.
            ("HorizontalPodAutoscaler", "ScaledObject", *budget),
        )
        for key, budget in (
            ("minReplicas", ("PodDisruptionBudget",)),
            ("maxReplicas", ()),
            ("targetCpuUtilization", ()),
            ("targetMemoryUtilization", ()),
            ("targetGpuUtilization", ()),
            ("scaleDownStabilizationSeconds", ()),
        )
    ),
    # --- deployments: traffic ----------------------------------------------------------------
    Rule(
        "deployments.<name>.loadBalancer.enabled",
        Effect.IN_PLACE,
        "mesh routing resources are created or deleted; the Service stays",
        ("DestinationRule", "VirtualService"),
    ),
    Rule(
        "deployments.<name>.loadBalancer.algorithm",
        Effect.IN_PLACE,
        "the mesh's balancing policy changes in place",
        ("DestinationRule",),
    ),
    Rule(
        "deployments.<name>.loadBalancer.stickySessions",
        Effect.IN_PLACE,
        "cookie affinity in the mesh policy",
        ("DestinationRule",),
    ),
    Rule(
        "deployments.<name>.loadBalancer.healthCheck.path",
        Effect.RESTART,
        "the readiness probe is in the pod template",
        ("Deployment",),
    ),
    Rule(
        "deployments.<name>.loadBalancer.healthCheck.intervalSeconds",
        Effect.RESTART,
        "the readiness probe period is in the pod template",
        ("Deployment", "DestinationRule"),
    ),
    Rule(
        "deployments.<name>.loadBalancer.healthCheck.timeoutSeconds",
        Effect.RESTART,
        "the readiness probe timeout is in the pod template",
        ("Deployment",),
    ),
    Rule(
        "deployments.<name>.loadBalancer.healthCheck.failureThreshold",
        Effect.RESTART,
        "the readiness threshold is in the pod template",
        ("Deployment", "DestinationRule"),
    ),
    Rule(
        "deployments.<name>.route.gateway.name",
        Effect.IN_PLACE,
        "the HTTPRoute's parentRef and the Gateway pods the NetworkPolicy admits change in "
        "place; added or removed, the route and its track Services are created or deleted",
        ("HTTPRoute", "Service", "NetworkPolicy"),
    ),
    Rule(
        "deployments.<name>.route.gateway.namespace",
        Effect.IN_PLACE,
        "the parentRef's namespace is a field of the HTTPRoute's spec (the route itself stays "
        "in the deployment's namespace): updated in place, with the admitted Gateway pods",
        ("HTTPRoute", "NetworkPolicy"),
    ),
    Rule(
        "deployments.<name>.route.hostnames",
        Effect.IN_PLACE,
        "the HTTPRoute's hostnames change in place",
        ("HTTPRoute",),
    ),
    Rule(
        "deployments.<name>.route.path",
        Effect.IN_PLACE,
        "the HTTPRoute's path prefix match changes in place",
        ("HTTPRoute",),
    ),
    Rule(
        "deployments.<name>.port",
        Effect.RESTART,
        "the container port is in the pod template",
        ("Deployment", "Service", "NetworkPolicy"),
    ),
    # --- deployments: rollout strategy -------------------------------------------------------
    Rule(
        "deployments.<name>.strategy.type",
        Effect.REPLACE,
        "blue-green keys the Deployment by "
        "version, so switching to or from it replaces the Deployment",
        (
            "Deployment",
            "Service",
            "DestinationRule",
            "VirtualService",
            "HTTPRoute",
            "PrometheusRule",
        ),
        impact=SWITCHED,
        override=_strategy_type_effect,
    ),
    Rule(
        "deployments.<name>.stableSlot",
        Effect.REPLACE,
        "the stable track moves to the other Deployment (<name> or <name>-canary): it starts "
        "all its pods, then the old one is deleted",
        ("Deployment", "DestinationRule", "HorizontalPodAutoscaler"),
        impact=SWITCHED,
        override=_slot_effect,
    ),
    Rule(
        "deployments.<name>.strategy.maxSurge",
        Effect.IN_PLACE,
        "rollout parameters, outside the pod template",
        ("Deployment",),
    ),
    Rule(
        "deployments.<name>.strategy.maxUnavailable",
        Effect.IN_PLACE,
        "rollout parameters, outside the pod template",
        ("Deployment",),
    ),
    Rule(
        "deployments.<name>.strategy.weight",
        Effect.IN_PLACE,
        "route weights (the mesh's and the HTTPRoute's) change in place",
        ("VirtualService", "HTTPRoute"),
        override=_weight_effect,
    ),
    Rule(
        "deployments.<name>.strategy.canaryVersion",
        Effect.RESTART,
        "the canary track's pods roll",
        ("Deployment",),
        override=_canary_track_effect,
    ),
    Rule(
        "deployments.<name>.strategy.canaryImage",
        Effect.RESTART,
        "the canary track's pods roll",
        ("Deployment",),
        override=_canary_track_effect,
    ),
    Rule(
        "deployments.<name>.strategy.canaryReplicas",
        Effect.IN_PLACE,
        "the canary Deployment scales",
        ("Deployment",),
    ),
    # --- deployments: async workers and config ------------------------------------------------
    Rule(
        "deployments.<name>.queue.kind",
        Effect.RESTART,
        "QUEUE_KIND is in the pod environment; the scaler's trigger changes",
        ("Deployment", "ScaledObject"),
    ),
    Rule(
        "deployments.<name>.queue.name",
        Effect.RESTART,
        "QUEUE_NAME is in the pod environment",
        ("Deployment", "ScaledObject"),
    ),
    Rule(
        "deployments.<name>.queue.targetDepth",
        Effect.IN_PLACE,
        "the scaler's threshold",
        ("ScaledObject",),
    ),
    Rule(
        "deployments.<name>.queue.activationDepth",
        Effect.IN_PLACE,
        "the scaler's activation threshold (scale from zero above it)",
        ("ScaledObject",),
    ),
    Rule(
        "deployments.<name>.queue.connectionSecret",
        Effect.RESTART,
        "the secret reference is in the pod environment",
        ("Deployment",),
    ),
    Rule(
        "deployments.<name>.queue.connectionSecretKey",
        Effect.RESTART,
        "the secret key reference (QUEUE_URL) is in the pod environment",
        ("Deployment",),
    ),
    Rule(
        "deployments.<name>.env",
        Effect.RESTART,
        "environment variables are in the pod template",
        ("Deployment",),
    ),
    Rule(
        "deployments.<name>.secretEnv",
        Effect.RESTART,
        "secret references are in the pod environment (values live in the Secret "
        "`<name>-env`; a new value reaches pods at their next restart)",
        ("Deployment", "Secret"),
    ),
    Rule(
        "deployments.<name>.tags",
        Effect.IN_PLACE,
        "labels on resource metadata only (not on pods, so no restart)",
        _ALL,
    ),
    # --- deployments: monitoring (never the pods: Prometheus reads what they serve) ----------
    Rule(
        "deployments.<name>.monitoring.enabled",
        Effect.IN_PLACE,
        "the monitoring resources are created or deleted; pods are untouched",
        _MONITORING,
    ),
    Rule(
        "deployments.<name>.monitoring.scrape.path",
        Effect.IN_PLACE,
        "the scrape endpoint of the ServiceMonitor or PodMonitor",
        _SCRAPE,
    ),
    Rule(
        "deployments.<name>.monitoring.scrape.port",
        Effect.IN_PLACE,
        "the scrape endpoint and the port the scrape NetworkPolicy admits",
        (*_SCRAPE, "NetworkPolicy"),
    ),
    Rule(
        "deployments.<name>.monitoring.scrape.intervalSeconds",
        Effect.IN_PLACE,
        "the scrape interval of the ServiceMonitor or PodMonitor",
        _SCRAPE,
    ),
    *(
        Rule(
            f"deployments.<name>.monitoring.slo.{key}",
            Effect.IN_PLACE,
            "an alert threshold in the PrometheusRule",
            ("PrometheusRule",),
        )
        for key in ("latencyP99Ms", "errorRatePercent", "availabilityPercent")
    ),
    *(
        Rule(
            f"deployments.<name>.monitoring.alerts.{alert}.{key}",
            Effect.IN_PLACE,
            what,
            ("PrometheusRule",),
        )
        for alert in ("errorRate", "latency", "replicasUnavailable", "gpuSaturation", "canaryWorse")
        for key, what in (
            ("enabled", "an alert of the PrometheusRule is added or removed"),
            ("severity", "the severity label of an alert"),
        )
    ),
    *(
        Rule(
            f"deployments.<name>.monitoring.metrics.{key}",
            Effect.IN_PLACE,
            "the series the recording rules read",
            ("PrometheusRule",),
        )
        for key in ("requestDuration", "requests", "statusLabel", "routeLabel", "route")
    ),
    Rule(
        "deployments.<name>.monitoring.namespace",
        Effect.IN_PLACE,
        "the namespace the scrape NetworkPolicy admits",
        ("NetworkPolicy",),
    ),
    Rule(
        "deployments.<name>.monitoring.prometheusUrl",
        Effect.NONE,
        "read by `servestack promote --check` and `servestack status` only: nothing is deployed "
        "from it",
        (),
    ),
)

TABLE: dict[str, Rule] = {r.path: r for r in _RULES}

#: Fields whose value is a free-form mapping: an edit of any key maps to the field.
MAP_FIELDS = (
    "deployments.<name>.env",
    "deployments.<name>.tags",
    "cluster.customGpuLabels.values",
)


def table_key(path: str) -> str:
    """Map a concrete path (``deployments.bert.resources.cpu``) to its table key
    (``deployments.<name>.resources.cpu``)."""
    key = str(FieldPath.parse(path).generic())
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
    # Items of an unnamed list (affinity.nodeRequirements[].key) are the list's.
    key = table_key(path).replace("[]", "")
    while key:
        if key in TABLE:
            return TABLE[key]
        key = key.rpartition(".")[0]
    raise KeyError(path)


# --- fields a deployment does not read: why, and what to edit instead -------------------------
#
# Whether an edit of a deployment field changes anything is not written here: the review
# derives it from the builders' provenance (a field that no manifest of the deployment is
# built from, before or after the edit, changes nothing; see servestack.review.diff). These
# say why, in the stack file's words, for the configurations the builders skip a field in.
# A test holds them to the builders: every derived case has one of these reasons.


def _bounds_on(spec: DeploymentSpec) -> bool:
    """An autoscaler of its own bounds exists while the deployment runs."""
    section = spec.autoscaling or ENV_DEFAULTS[spec.environment].autoscaling
    return section is not None and section.enabled


def _monitoring_off(spec: DeploymentSpec) -> bool:
    return effective(spec).monitoring is None


def _routes_off(spec: DeploymentSpec) -> bool:
    return spec.load_balancer is not None and not spec.load_balancer.enabled


@dataclass(frozen=True)
class Unread:
    """A configuration in which the builders read none of ``fields``."""

    #: Fields relative to the deployment; ``x.`` stands for every field under ``x``.
    fields: tuple[str, ...]
    holds: Callable[[DeploymentSpec], bool]
    #: ``{field}`` is the edited field, relative to the deployment.
    reason: str

    def covers(self, rel: str) -> bool:
        return any(rel == f or (f.endswith(".") and rel.startswith(f)) for f in self.fields)


_AUTOSCALING_BOUNDS = tuple(
    f"autoscaling.{k}"
    for k in (
        "minReplicas",
        "maxReplicas",
        "targetCpuUtilization",
        "targetMemoryUtilization",
        "targetGpuUtilization",
        "scaleDownStabilizationSeconds",
    )
)

#: First that holds (in the configuration after the edit) says why.
UNREAD: tuple[Unread, ...] = (
    Unread(
        ("replicas",),
        _bounds_on,
        "replicas is owned by the autoscaler (set minReplicas/maxReplicas, or remove autoscaling)",
    ),
    Unread(
        _AUTOSCALING_BOUNDS,
        lambda spec: spec.active and not _bounds_on(spec),
        "autoscaling is off: {field} is not read (set autoscaling.enabled: true, or edit replicas)",
    ),
    Unread(
        ("monitoring.",),
        _monitoring_off,
        "monitoring is off: {field} is not read (set monitoring.enabled: true)",
    ),
    Unread(
        ("monitoring.alerts.canaryWorse.",),
        lambda spec: spec.strategy.type is not StrategyType.canary,
        "the canaryWorse alert exists only while a canary runs (strategy.type: canary)",
    ),
    Unread(
        ("loadBalancer.algorithm", "loadBalancer.stickySessions"),
        _routes_off,
        "mesh routing is off (loadBalancer.enabled: false): {field} is not read",
    ),
    Unread(
        ("replicas", "strategy.canaryReplicas", "autoscaling."),
        lambda spec: not spec.active,
        "the deployment is stopped (active: false): {field} is read when it starts again "
        "(servestack start)",
    ),
)


#: Said when no case above holds (a test holds the builders to the cases: it is never said).
UNREAD_FALLBACK = "nothing deployed reads {field} in this configuration of the deployment"


def unread_reason(path: str, spec: DeploymentSpec) -> str:
    """Why deployment ``spec`` reads nothing of field ``path`` (concrete or table path): a
    reason with ``{field}`` left to fill, :data:`UNREAD_FALLBACK` if no case holds."""
    rel = FieldPath.parse(path).rest
    for case in UNREAD:
        if case.covers(rel) and case.holds(spec):
            return case.reason
    return UNREAD_FALLBACK
