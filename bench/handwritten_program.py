"""The baseline: the same Kubernetes resources as `components.program.build`, registered
directly with pulumi-kubernetes from the same manifests, with no ComponentResources.

Also a Pulumi program: the engine benchmark copies this file as a project's `__main__.py`.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components import naming, node_pools, routing, scaling, workload
from components.config import StackConfig, StrategyType
from components.defaults import effective
from components.program import render_directory, stack_config
from components.validation import parse_stack


def handwritten(config: StackConfig, stack: str) -> None:
    """The same resources as :func:`components.program.build`, registered directly."""
    provider = k8s.Provider(
        f"k8s-{config.cluster.name}",
        render_yaml_to_directory=str(render_directory(stack)),
        enable_server_side_apply=True,
    )
    opts = pulumi.ResourceOptions(provider=provider)
    k8s.core.v1.Namespace(
        config.namespace,
        metadata={
            "name": config.namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "servestack",
                "pod-security.kubernetes.io/enforce": "restricted",
            },
        },
        opts=opts,
    )
    for pool in config.node_pools:
        m = node_pools.karpenter_node_pool(pool, config.cluster)
        k8s.apiextensions.CustomResource(
            pool.name,
            api_version=m["apiVersion"],
            kind=m["kind"],
            metadata=m["metadata"],
            spec=m["spec"],
            opts=opts,
        )
    for spec in config.deployments:
        eff = effective(spec)
        sa = workload.service_account(spec)
        k8s.core.v1.ServiceAccount(
            spec.name, metadata=sa["metadata"], automount_service_account_token=False, opts=opts
        )
        tracks = [naming.STABLE] + (
            [naming.CANARY] if spec.strategy.type is StrategyType.canary else []
        )
        for track in tracks:
            d = workload.deployment(spec, eff, track=track)
            k8s.apps.v1.Deployment(
                d["metadata"]["name"], metadata=d["metadata"], spec=d["spec"], opts=opts
            )
        np = workload.network_policy(spec)
        k8s.networking.v1.NetworkPolicy(
            np["metadata"]["name"], metadata=np["metadata"], spec=np["spec"], opts=opts
        )
        if eff.disruption_budget:
            pdb = workload.disruption_budget(spec)
            k8s.policy.v1.PodDisruptionBudget(
                pdb["metadata"]["name"], metadata=pdb["metadata"], spec=pdb["spec"], opts=opts
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
                spec.name, metadata=h["metadata"], spec=h["spec"], opts=opts
            )
        if eff.load_balancer:
            svc = routing.service(spec)
            k8s.core.v1.Service(spec.name, metadata=svc["metadata"], spec=svc["spec"], opts=opts)
            for m in [routing.destination_rule(spec, eff.load_balancer)] + (
                [routing.virtual_service(spec)] if spec.strategy.type is StrategyType.canary else []
            ):
                k8s.apiextensions.CustomResource(
                    m["metadata"]["name"],
                    api_version=m["apiVersion"],
                    kind=m["kind"],
                    metadata=m["metadata"],
                    spec=m["spec"],
                    opts=opts,
                )


if __name__ == "__main__":
    handwritten(parse_stack(stack_config()), pulumi.get_stack())
