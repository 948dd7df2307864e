"""The baseline: the same Kubernetes resources as `servestack.program.stack.build`, registered
directly with pulumi-kubernetes from the same manifests, with no ComponentResources.

Also a Pulumi program: the engine benchmark copies this file as a project's `__main__.py`.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from servestack.config.defaults import effective
from servestack.config.models import CloudProvider, Environment, StackConfig, StrategyType, Target
from servestack.contract import labels
from servestack.gpu_node_pool import KARPENTER_REPLACE_ON, LOCAL_NODE_REPLACE_ON
from servestack.manifests import naming, node_pools, routing, scaling, workload
from servestack.model_deployment import LOCKED_PATHS, PROCESSING_LABEL
from servestack.program.process import tune_gc
from servestack.program.stack import (
    CLUSTER_ANNOTATION,
    kubernetes_provider,
    main,
    rollout_timeouts,
    stack_outputs,
)


def handwritten(config: StackConfig, stack: str) -> dict[str, Any]:
    """The same resources as :func:`servestack.program.stack.build`, registered directly; returns
    the same stack outputs. Node pools: provider karpenter (a NodePool) or local (kwok Nodes)."""
    # The same provider as the components': render mode or the kubeconfig's cluster.
    provider = kubernetes_provider(config, stack)
    # The components' transformation (pin_to_cluster) written out by hand: every manifest
    # carries its cluster's name, and a change of it replaces the resource.
    opts = pulumi.ResourceOptions(
        provider=provider,
        delete_before_replace=True,
        replace_on_changes=[f'metadata.annotations["{CLUSTER_ANNOTATION}"]'],
    )

    # On a cluster, every object also names its one field manager (a Deployment also forces).
    applied = config.target is Target.cluster

    def pin(meta: dict[str, Any], type_token: str = "") -> dict[str, Any]:
        stamps = {CLUSTER_ANNOTATION: config.cluster.name}
        if applied:
            stamps.update(labels.applied_annotations(type_token))
        return {**meta, "annotations": {**(meta.get("annotations") or {}), **stamps}}

    namespace = k8s.core.v1.Namespace(
        config.namespace,
        metadata=pin(workload.namespace(config.namespace)["metadata"]),
        opts=pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(protect=config.environment is Environment.production)
        ),
    )
    pools: list[pulumi.Resource] = []
    for pool in config.node_pools:
        if config.cluster.provider is CloudProvider.local:
            pools += [
                k8s.core.v1.Node(
                    m["metadata"]["name"],
                    metadata=pin(m["metadata"]),
                    spec=m["spec"],
                    opts=pulumi.ResourceOptions.merge(
                        opts,
                        pulumi.ResourceOptions(
                            delete_before_replace=True, replace_on_changes=LOCAL_NODE_REPLACE_ON
                        ),
                    ),
                )
                for m in node_pools.local_nodes(pool, config.cluster)
            ]
            continue
        assert config.cluster.provider is CloudProvider.karpenter, "the baseline's two backends"
        m = node_pools.karpenter_node_pool(pool, config.cluster)
        pools.append(
            k8s.apiextensions.CustomResource(
                pool.name,
                api_version=m["apiVersion"],
                kind=m["kind"],
                metadata=pin(m["metadata"]),
                spec=m["spec"],
                opts=pulumi.ResourceOptions.merge(
                    opts, pulumi.ResourceOptions(replace_on_changes=KARPENTER_REPLACE_ON)
                ),
            )
        )
    # On a cluster, the components' bound_rollouts transformation written out by hand: each
    # Deployment's rollout is awaited within the environment's bound.
    timeouts = rollout_timeouts(config)
    # What the components' depends_on and parents imply, written on each resource: a model's
    # resources wait for the namespace and the pools; its Deployments for its service
    # account; its autoscaler and routing for its Deployments.
    base = [namespace, *pools]
    endpoints: dict[str, Any] = {}
    for spec in config.deployments:
        eff = effective(spec)
        sa = workload.service_account(spec)
        account = k8s.core.v1.ServiceAccount(
            spec.name,
            metadata=pin(sa["metadata"]),
            automount_service_account_token=sa["automountServiceAccountToken"],
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=base)),
        )
        tracks = [naming.STABLE] + (
            [naming.CANARY] if spec.strategy.type is StrategyType.canary else []
        )
        workloads: list[pulumi.Resource] = []
        for track in tracks:
            d = workload.deployment(spec, eff, track=track)
            d["metadata"]["labels"][PROCESSING_LABEL] = spec.processing.value
            workloads.append(
                k8s.apps.v1.Deployment(
                    d["metadata"]["name"],
                    metadata=pin(d["metadata"], labels.DEPLOYMENT_TYPE),
                    spec=d["spec"],
                    opts=pulumi.ResourceOptions.merge(
                        opts,
                        pulumi.ResourceOptions(
                            depends_on=[*base, account],
                            replace_on_changes=LOCKED_PATHS,
                            custom_timeouts=timeouts,
                            # The autoscaler's Deployment: its count is the autoscaler's.
                            ignore_changes=(
                                [workload.AUTOSCALER_OWNS]
                                if eff.autoscaling is not None and track == naming.STABLE
                                else None
                            ),
                        ),
                    ),
                )
            )
        after_base = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=base))
        after_workloads = pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(depends_on=[*base, *workloads])
        )
        np = workload.network_policy(spec)
        k8s.networking.v1.NetworkPolicy(
            np["metadata"]["name"], metadata=pin(np["metadata"]), spec=np["spec"], opts=after_base
        )
        if eff.disruption_budget:
            pdb = workload.disruption_budget(spec)
            k8s.policy.v1.PodDisruptionBudget(
                pdb["metadata"]["name"],
                metadata=pin(pdb["metadata"]),
                spec=pdb["spec"],
                opts=after_base,
            )
        if eff.autoscaling:
            h = scaling.hpa(
                scaling.ScalerTarget(
                    spec.name,
                    naming.workload_name(spec),
                    spec.namespace,
                    eff.autoscaling,
                    naming.labels(spec),
                )
            )
            k8s.autoscaling.v2.HorizontalPodAutoscaler(
                spec.name, metadata=pin(h["metadata"]), spec=h["spec"], opts=after_workloads
            )
        if eff.load_balancer:
            endpoints[spec.name] = pulumi.Output.from_input(routing.endpoint(spec))
            svc = routing.service(spec)
            k8s.core.v1.Service(
                spec.name, metadata=pin(svc["metadata"]), spec=svc["spec"], opts=after_workloads
            )
            for m in [routing.destination_rule(spec, eff.load_balancer)] + (
                [routing.virtual_service(spec)] if spec.strategy.type is StrategyType.canary else []
            ):
                k8s.apiextensions.CustomResource(
                    m["metadata"]["name"],
                    api_version=m["apiVersion"],
                    kind=m["kind"],
                    metadata=pin(m["metadata"]),
                    spec=m["spec"],
                    opts=after_workloads,
                )
    pool_labels = {p.name: node_pools.node_labels(p) for p in config.node_pools}
    return stack_outputs(config, stack, endpoints, pool_labels)


def handwritten_with_layers(config: StackConfig, stack: str) -> dict[str, Any]:
    """The hand-written program plus the components' own registrations and nothing else:
    per deployment an empty ModelDeployment with an empty Autoscaler and LoadBalancer under
    it, per pool an empty GpuNodePool, each registering the outputs the component registers.
    Its ratio to the hand-written program is what the layers cost by themselves in the
    Pulumi SDK, whatever the components do around them: a floor of the overhead ratio while
    the components' URNs stay what they are (a floor: these layers carry no provider and no
    dependencies, which the real ones resolve)."""
    outputs = handwritten(config, stack)
    for pool in config.node_pools:
        layer = pulumi.ComponentResource(naming.GPU_NODE_POOL, pool.name)
        layer.register_outputs(
            {
                "labels": node_pools.node_labels(pool, config.cluster),
                "taints": [node_pools.taint(pool, config.cluster)],
                "backend": config.cluster.provider.value,
            }
        )
    for spec in config.deployments:
        eff = effective(spec)
        md = pulumi.ComponentResource(naming.MODEL_DEPLOYMENT, spec.name)
        under = pulumi.ResourceOptions(parent=md)
        endpoint = None
        if eff.autoscaling:
            scaler = pulumi.ComponentResource(naming.AUTOSCALER, spec.name, opts=under)
            bounds = eff.autoscaling
            scaler.register_outputs(
                {"minReplicas": bounds.min_replicas, "maxReplicas": bounds.max_replicas}
            )
        if eff.load_balancer:
            lb = pulumi.ComponentResource(naming.LOAD_BALANCER, spec.name, opts=under)
            endpoint = pulumi.Output.from_input(routing.endpoint(spec))
            lb.register_outputs({"service": spec.name, "endpoint": endpoint})
        md.register_outputs(
            {
                "deployment": naming.workload_name(spec),
                "endpoint": endpoint,
                "active": spec.active,
                "modelVersion": spec.model.version,
            }
        )
    return outputs


if __name__ == "__main__":
    # The servestack entry point's work around the resources (collector settings, config
    # validation, the forbidden-edit guard, exports), with this builder instead.
    tune_gc()
    main(handwritten)
