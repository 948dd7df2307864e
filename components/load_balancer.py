"""`LoadBalancer`: the Service of a model, the mesh resources that balance its traffic, and
the Gateway API route that brings external traffic in."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from servestack.config.models import DeploymentSpec, LoadBalancerSpec
from servestack.manifests import naming, routing


class LoadBalancer(pulumi.ComponentResource):
    """Service (always) plus Istio DestinationRule/VirtualService when balancing is enabled,
    and with a ``route``, a Service per track and the Gateway API HTTPRoute.

    Args:
        name: the deployment's name; the Service carries it, so clients' DNS never changes.
        spec: the deployment the traffic goes to (selector, port, strategy).
        lb: the effective load-balancer settings.
    """

    service: k8s.core.v1.Service
    endpoint: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        spec: DeploymentSpec,
        lb: LoadBalancerSpec,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(naming.LOAD_BALANCER, name, None, opts)
        child = pulumi.ResourceOptions(parent=self, delete_before_replace=True)
        svc, *mesh = routing.manifests(spec, lb)
        self.service = k8s.core.v1.Service(
            name, metadata=svc["metadata"], spec=svc["spec"], opts=child
        )
        # Known names rather than outputs of the children: the same values, no apply chain.
        outputs: dict[str, Any] = {"service": svc["metadata"]["name"]}
        for manifest in mesh:
            if manifest["kind"] == "Service":  # a track's Service (an HTTPRoute backend)
                k8s.core.v1.Service(
                    manifest["metadata"]["name"],
                    metadata=manifest["metadata"],
                    spec=manifest["spec"],
                    opts=child,
                )
            else:
                self._custom(manifest, child)
        self.endpoint = pulumi.Output.from_input(routing.endpoint(spec))
        outputs["endpoint"] = self.endpoint
        self.register_outputs(outputs)

    def _custom(self, manifest: dict[str, Any], opts: pulumi.ResourceOptions) -> None:
        k8s.apiextensions.CustomResource(
            manifest["metadata"]["name"],
            api_version=manifest["apiVersion"],
            kind=manifest["kind"],
            metadata=manifest["metadata"],
            spec=manifest["spec"],
            opts=opts,
        )
