"""`GpuNodePool`: one GPU node pool on Karpenter, GKE or EKS, labelled and tainted from the
GPU table so that :class:`ModelDeployment` pods select and tolerate exactly these nodes.

The cloud SDKs are optional extras (`servestack[gcp]`, `servestack[aws]`) and are imported
only when that backend is used.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from servestack.config.models import CloudProvider, ClusterSpec, NodePoolSpec
from servestack.config.validation import parse_node_pool
from servestack.manifests import naming, node_pools
from servestack.manifests.lifecycle import KARPENTER_REPLACE_ON, LOCAL_NODE_REPLACE_ON


class GpuNodePool(pulumi.ComponentResource):
    """A GPU node pool.

    Args:
        name: pool name (DNS-1123 label); the cloud resource and its nodes carry it.
        spec: a :class:`NodePoolSpec` or a dict in the YAML shape.
        cluster: the cluster the pool belongs to; its ``provider`` picks the backend.
    """

    labels: dict[str, str]
    taints: list[dict[str, str]]

    def __init__(
        self,
        name: str,
        spec: NodePoolSpec | dict[str, Any],
        cluster: ClusterSpec | dict[str, Any],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        pool, cl = parse_node_pool(spec, cluster)
        super().__init__(naming.GPU_NODE_POOL, name, None, opts)
        self.labels = node_pools.node_labels(pool, cl)
        self.taints = [node_pools.taint(pool, cl)]
        # Fields whose change the clouds cannot apply in place: a new pool, new nodes.
        child = pulumi.ResourceOptions(parent=self)
        self.resource: pulumi.CustomResource | None = None
        self.nodes: list[k8s.core.v1.Node] = []
        if cl.provider is CloudProvider.karpenter:
            m = node_pools.karpenter_node_pool(pool, cl)
            self.resource = k8s.apiextensions.CustomResource(
                name,
                api_version=m["apiVersion"],
                kind=m["kind"],
                metadata=m["metadata"],
                spec=m["spec"],
                opts=pulumi.ResourceOptions.merge(
                    child,
                    pulumi.ResourceOptions(
                        delete_before_replace=True, replace_on_changes=KARPENTER_REPLACE_ON
                    ),
                ),
            )
        elif cl.provider is CloudProvider.local:
            # The local cluster: kwok turns each Node object into a fake node whose capacity
            # is the machine shape; the real scheduler then decides what fits. A Node's name
            # is fixed, so a new one replaces the old one delete-first.
            self.nodes = [
                k8s.core.v1.Node(
                    m["metadata"]["name"],
                    metadata=m["metadata"],
                    spec=m["spec"],
                    opts=pulumi.ResourceOptions.merge(
                        child,
                        pulumi.ResourceOptions(
                            delete_before_replace=True, replace_on_changes=LOCAL_NODE_REPLACE_ON
                        ),
                    ),
                )
                for m in node_pools.local_nodes(pool, cl)
            ]
        elif cl.provider is CloudProvider.gke:
            from pulumi_gcp import container

            self.resource = container.NodePool(
                name, **node_pools.gke_node_pool_args(pool, cl), opts=child
            )
        elif cl.provider is CloudProvider.eks:
            from pulumi_aws import eks

            # The cluster autoscaler moves desiredSize; re-applying minNodes would evict pods.
            self.resource = eks.NodeGroup(
                name,
                **node_pools.eks_node_group_args(pool, cl),
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(ignore_changes=["scalingConfig.desiredSize"])
                ),
            )
        self.register_outputs(
            {"labels": self.labels, "taints": self.taints, "backend": cl.provider.value}
        )
