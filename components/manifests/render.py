"""Everything a stack creates, as manifests with their provenance, without Pulumi.

This is the review tool's model of what the stack program registers: the same plans and
builders the components use, plus what the program adds around them (the namespace, the
provider, the cluster annotation). A component test holds it to what the program really
registers under mocks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from servestack.config.models import CloudProvider, ClusterSpec, NodePoolSpec, StackConfig, Target
from servestack.config.paths import FieldPath
from servestack.contract import labels
from servestack.manifests import gpu_scheduling, model, naming, node_pools, workload
from servestack.manifests.provenance import (
    From,
    Mark,
    Prop,
    Record,
    Scope,
    opt,
    recording,
    src,
    strip,
)

PROVIDER_TYPE = "pulumi:providers:kubernetes"
GKE_NODE_POOL = "gcp:container/nodePool:NodePool"
EKS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"


class Key(NamedTuple):
    """A resource as the engine names it: Pulumi type token and resource name."""

    type: str
    name: str


def type_token(manifest: dict[str, Any]) -> str:
    """The pulumi-kubernetes type of a manifest (``kubernetes:apps/v1:Deployment``)."""
    api = manifest["apiVersion"]
    return f"kubernetes:{api if '/' in api else 'core/' + api}:{manifest['kind']}"


@dataclass
class Rendered:
    """Each resource's manifest and provenance, and the component (``deployments.<name>``,
    ``nodePools.<name>``, or None for the stack's own) it belongs to."""

    resources: dict[Key, Record] = field(default_factory=dict)
    components: dict[Key, str | None] = field(default_factory=dict)
    #: The inner components (Autoscaler, LoadBalancer) -> the child whose existence is
    #: theirs: the engine creates or deletes the component exactly when that child.
    stand_ins: dict[Key, Key] = field(default_factory=dict)
    #: Applied to a cluster (not rendered): every object names its field manager.
    applied: bool = False

    def record(self, key: Key) -> Record | None:
        """The resource's provenance, or for an inner component its stand-in's."""
        return self.resources.get(key) or self.resources.get(self.stand_ins.get(key, key))

    def add(
        self, key: Key, built: Any, scope: Scope, component: str | None, cluster: str | None
    ) -> None:
        marks: dict[Prop, Mark] = {}
        manifest = strip(built, scope, marks)
        if cluster is not None:
            # What the program's pin_to_cluster transformation adds to every resource.
            meta = manifest["metadata"]
            meta["annotations"] = {**(meta.get("annotations") or {}), labels.CLUSTER: cluster}
            marks[("metadata", "annotations", labels.CLUSTER)] = Mark(
                frozenset({"cluster.name"}), frozenset(), None
            )
            if self.applied:
                # There because of `target: cluster` (render mode has no field manager).
                for name, value in labels.applied_annotations(key.type).items():
                    meta["annotations"][name] = value
                    marks[("metadata", "annotations", name)] = Mark(
                        frozenset({"target"}), frozenset(), frozenset({"target"})
                    )
        self.resources[key] = Record(manifest, marks)
        self.components[key] = component


def _scope(collection: str, name: str, inherits: dict[str, bool] | None = None) -> Scope:
    aliases = {k: k for k, same in (inherits or {}).items() if same}
    return Scope(str(FieldPath.item(collection, name)), aliases)


def render_stack(
    config: StackConfig, stack: str = "stack", *, deployments: bool | set[str] = True
) -> Rendered:
    """Every resource the stack program registers for ``config``, with provenance.

    ``deployments``: a set of names builds only those models (the rest of the stack is
    cheap); see :func:`render_deployment` to add others later.
    """
    out = Rendered(applied=config.target is Target.cluster)
    cluster = config.cluster.name
    stack_scope = Scope()
    with recording():
        out.add(*_provider(config, stack), stack_scope, None, None)
        ns = {"apiVersion": "v1", "kind": "Namespace", **workload.namespace(config.namespace)}
        out.add(
            Key(type_token(ns), config.namespace),
            model.exists(ns, "namespace"),
            stack_scope,
            None,
            cluster,
        )
        for pool in config.node_pools:
            found = node_pool(pool, config.cluster)
            if found is not None:
                key, built = found
                is_k8s = key.type.startswith("kubernetes:")
                out.add(
                    key,
                    built,
                    _scope("nodePools", pool.name),
                    f"nodePools.{pool.name}",
                    cluster if is_k8s else None,
                )
    for dep in config.deployments:
        if deployments is True or (deployments and dep.name in deployments):
            render_deployment(out, config, dep.name)
    return out


def render_deployment(out: Rendered, config: StackConfig, name: str) -> None:
    """Add one model's resources (with provenance) to ``out``; unknown names add nothing."""
    dep = next((d for d in config.deployments if d.name == name), None)
    if dep is None:
        return
    inherits = {
        "environment": dep.environment is config.environment,
        "namespace": dep.namespace == config.namespace,
        "imagePullSecrets": dep.image_pull_secrets == config.image_pull_secrets,
    }
    scope = _scope("deployments", dep.name, inherits)
    with recording():
        for built in model.manifests(dep, gpu_scheduling.marks_of(config.cluster)):
            m = _peek(built)
            key = Key(type_token(m), _peek(m["metadata"]["name"]))
            out.add(key, built, scope, f"deployments.{dep.name}", config.cluster.name)
            inner = _INNER_COMPONENTS.get(_peek(m["kind"]))
            if inner is not None:
                # The first Service is the deployment's own (track Services come later).
                out.stand_ins.setdefault(Key(inner, dep.name), key)


#: The kind of the child that an inner component exists with (see model.plan: the
#: Autoscaler exists with its scaler, the LoadBalancer with the Service).
_INNER_COMPONENTS = {
    "HorizontalPodAutoscaler": naming.AUTOSCALER,
    "ScaledObject": naming.AUTOSCALER,
    "Service": naming.LOAD_BALANCER,
}


def _peek(value: Any) -> Any:
    """The value under any markers (to read a name or kind while recording)."""
    while isinstance(value, From):
        value = value.value
    return value


def _provider(config: StackConfig, stack: str) -> tuple[Key, Any]:
    """The Kubernetes provider the program creates: its inputs as the engine diffs them."""
    args: dict[str, Any] = {}
    if config.target is Target.render:
        args["renderYamlToDirectory"] = opt(f"out/{stack}", "target")
    else:
        args["namespace"] = src(config.namespace, "namespace", when=["target"])
        if config.cluster.context is not None:
            args["context"] = opt(config.cluster.context, "cluster.context")
    args["enableServerSideApply"] = "true"
    return Key(PROVIDER_TYPE, f"k8s-{config.cluster.name}"), model.exists(args, "cluster.name")


def node_pool(pool: NodePoolSpec, cluster: ClusterSpec) -> tuple[Key, Any] | None:
    """The resource a GpuNodePool creates on its backend (None for `existing`)."""
    because = ("name", "cluster.provider")
    if cluster.provider is CloudProvider.karpenter:
        m = node_pools.karpenter_node_pool(pool, cluster)
        return Key(type_token(m), pool.name), model.exists(m, *because)
    if cluster.provider is CloudProvider.gke:
        args = _camel(node_pools.gke_node_pool_args(pool, cluster))
        return Key(GKE_NODE_POOL, pool.name), model.exists(args, *because)
    if cluster.provider is CloudProvider.eks:
        args = _camel(node_pools.eks_node_group_args(pool, cluster))
        return Key(EKS_NODE_GROUP, pool.name), model.exists(args, *because)
    return None


def _camel(value: Any, data: bool = False) -> Any:
    """Python SDK argument names as the engine spells them (``node_config`` -> ``nodeConfig``);
    the keys of ``labels`` are data, not names."""
    if isinstance(value, From):
        return From(_camel(value.value, data), value.fields, value.via, value.when)
    if isinstance(value, dict):
        return {
            (k if data else re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k)): _camel(
                v, data=k == "labels"
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value
