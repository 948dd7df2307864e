"""`Autoscaler`: an autoscaling/v2 HPA, or a KEDA ScaledObject for queue workers."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from servestack.manifests import naming, scaling
from servestack.manifests.scaling import ScalerTarget


class Autoscaler(pulumi.ComponentResource):
    """Scales one Deployment on CPU, memory and GPU utilisation, or on queue depth.

    GPU utilisation needs the DCGM exporter and a metrics adapter; queue depth needs KEDA
    (see :mod:`servestack.manifests.scaling`).
    """

    def __init__(
        self, name: str, target: ScalerTarget, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(naming.AUTOSCALER, name, None, opts)
        child = pulumi.ResourceOptions(parent=self, delete_before_replace=True)
        m = scaling.scaler(target)
        scaler: pulumi.CustomResource
        if m["kind"] == "HorizontalPodAutoscaler":
            scaler = k8s.autoscaling.v2.HorizontalPodAutoscaler(
                target.name, metadata=m["metadata"], spec=m["spec"], opts=child
            )
        else:
            scaler = k8s.apiextensions.CustomResource(
                target.name,
                api_version=m["apiVersion"],
                kind=m["kind"],
                metadata=m["metadata"],
                spec=m["spec"],
                opts=child,
            )
        self.scaler = scaler
        self.min_replicas = target.bounds.min_replicas
        self.max_replicas = target.bounds.max_replicas
        self.register_outputs({"minReplicas": self.min_replicas, "maxReplicas": self.max_replicas})
