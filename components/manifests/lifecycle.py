"""Which property changes replace a resource instead of updating it, and what an edit does.

Three sources, one list: the identity and immutable fields of the Kubernetes API (as the
Kubernetes provider's force-new table has them), the cloud providers' force-new node pool
arguments, and servestack's own ``replaceOnChanges`` paths, which the components pass to
Pulumi from here. :func:`effect_of` classifies a set of manifest changes the way the
field-effect table does; the provenance test holds the table to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from servestack.contract import labels
from servestack.contract.effects import Effect
from servestack.manifests.provenance import Prop, parse_prop

#: Deployment: the processing label pins the worker shape; changing it replaces the
#: Deployment (the infrastructure form of "create a new deployment").
LOCKED_PATHS = [f'metadata.labels["{labels.PROCESSING}"]']
#: Karpenter applies NodePool edits to new nodes only and drifts old ones away; servestack
#: makes GPU and machine changes an explicit replacement so reviewers see the lost capacity.
#: The node class reference too: the server refuses an in-place change of its group and kind.
KARPENTER_REPLACE_ON = [
    "spec.template.spec.requirements",
    "spec.template.metadata",
    "spec.template.spec.nodeClassRef",
]
#: A local cluster's Node (provider `local`): everything on it comes from the pool's name,
#: GPUs, machine type and capacity type, and kwok reads its capacity once, when it first
#: turns Ready. Any change is a new Node, as a cloud's new machines would be.
LOCAL_NODE_REPLACE_ON = ["metadata.labels", "metadata.annotations", "spec"]
#: Every Kubernetes resource is pinned to its cluster (see ``program.stack.pin_to_cluster``).
CLUSTER_PIN = f'metadata.annotations["{labels.CLUSTER}"]'

_KUBERNETES_IDENTITY = ("metadata.name", "metadata.namespace", CLUSTER_PIN)
#: Pulumi type token -> property paths whose change replaces the resource.
REPLACE_ON: dict[str, tuple[str, ...]] = {
    "kubernetes:apps/v1:Deployment": (*_KUBERNETES_IDENTITY, "spec.selector", *LOCKED_PATHS),
    "kubernetes:core/v1:Secret": (*_KUBERNETES_IDENTITY, "type"),
    "kubernetes:karpenter.sh/v1:NodePool": (*_KUBERNETES_IDENTITY, *KARPENTER_REPLACE_ON),
    "kubernetes:core/v1:Node": (*_KUBERNETES_IDENTITY, *LOCAL_NODE_REPLACE_ON),
    # Cloud node pools: everything that shapes the nodes is fixed at creation.
    "gcp:container/nodePool:NodePool": ("cluster", "location", "project", "name", "nodeConfig"),
    "aws:eks/nodeGroup:NodeGroup": (
        "clusterName",
        "nodeGroupName",
        "nodeRoleArn",
        "subnetIds",
        "amiType",
        "instanceTypes",
        "capacityType",
        "diskSize",
    ),
    # Moving between rendered files and a live cluster is a new provider.
    "pulumi:providers:kubernetes": ("renderYamlToDirectory",),
}
_DEFAULT = _KUBERNETES_IDENTITY
#: Changes under these roll pods: a Deployment's pod template, and a Karpenter NodePool's
#: node template (Karpenter drifts the pool's nodes to it, rescheduling their pods).
RESTART_ON: dict[str, tuple[Prop, ...]] = {
    "kubernetes:apps/v1:Deployment": (("spec", "template"),),
    "kubernetes:karpenter.sh/v1:NodePool": (("spec", "template"),),
}
_PARSED: dict[str, tuple[Prop, ...]] = {}


def replace_on(type_token: str) -> tuple[Prop, ...]:
    found = _PARSED.get(type_token)
    if found is None:
        paths = REPLACE_ON.get(type_token, _DEFAULT if type_token.startswith("kubernetes:") else ())
        found = _PARSED[type_token] = tuple(parse_prop(p) for p in paths)
    return found


def replaces(type_token: str, prop: Prop) -> bool:
    """A change of ``prop`` (or of anything under or above it) replaces the resource."""
    for path in replace_on(type_token):
        n = min(len(path), len(prop))
        if path[:n] == prop[:n]:
            return True
    return False


def kind(type_token: str) -> str:
    """``Deployment`` of ``kubernetes:apps/v1:Deployment``; node groups are node pools."""
    if type_token.startswith("pulumi:providers:"):
        return "Provider"
    short = type_token.rsplit(":", 1)[-1]
    return "NodePool" if short == "NodeGroup" else short


@dataclass(frozen=True)
class ResourceChange:
    """One resource's part of an edit: created, deleted or updated at ``props``."""

    type: str
    name: str
    op: str  # create | delete | update
    props: tuple[Prop, ...] = ()


def step_effect(change: ResourceChange) -> Effect:
    """What the engine does to one resource."""
    if change.op == "create":
        return Effect.CREATE
    if change.op == "delete":
        return Effect.DELETE
    if any(replaces(change.type, p) for p in change.props):
        return Effect.REPLACE
    for path in RESTART_ON.get(change.type, ()):
        if any(p[: len(path)] == path for p in change.props):
            return Effect.RESTART
    return Effect.IN_PLACE


def combine(steps: Iterable[tuple[str, Effect]]) -> Effect | None:
    """The effect class of a whole edit from each resource's (kind, effect).

    Creating or deleting children alone is in place (routes, autoscalers); a resource of one
    kind deleted while another of that kind is created (renames, blue-green, a new node
    pool backend) is a replacement, like the engine's own replace.
    """
    seen = list(steps)
    effects = {e for _, e in seen}
    created = {k for k, e in seen if e is Effect.CREATE}
    deleted = {k for k, e in seen if e is Effect.DELETE}
    if Effect.REPLACE in effects or created & deleted:
        return Effect.REPLACE
    if Effect.RESTART in effects:
        return Effect.RESTART
    return Effect.IN_PLACE if seen else None


def effect_of(changes: Iterable[ResourceChange]) -> Effect | None:
    """The effect class of a set of manifest changes, as the field-effect table states it."""
    return combine((kind(c.type), step_effect(c)) for c in changes)
