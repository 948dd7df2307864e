"""`Autoscaler`: an autoscaling/v2 HPA, or a KEDA ScaledObject for queue workers."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components import naming, scaling
from components.scaling import ScalerTarget


class Autoscaler(pulumi.ComponentResource):
    """Scales one Deployment on CPU, memory and GPU utilisation, or on queue depth.

    GPU utilisation needs the DCGM exporter and a metrics adapter; queue depth needs KEDA
    (see :mod:`components.scaling`).
    """

    def __init__(
        self, name: str, target: ScalerTarget, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(naming.AUTOSCALER, name, None, opts)
        child = pulumi.ResourceOptions(parent=self, delete_before_replace=True)
        if target.queue is not None:
            so = scaling.scaled_object(target)
            scaler: pulumi.CustomResource = k8s.apiextensions.CustomResource(
                target.name,
                api_version=so["apiVersion"],
                kind=so["kind"],
                metadata=so["metadata"],
                spec=so["spec"],
                opts=child,
            )
        else:
            hpa = scaling.hpa(target)
            scaler = k8s.autoscaling.v2.HorizontalPodAutoscaler(
                target.name, metadata=hpa["metadata"], spec=hpa["spec"], opts=child
            )
        self.scaler = scaler
        self.min_replicas = target.bounds.min_replicas
        self.max_replicas = target.bounds.max_replicas
        self.register_outputs({"minReplicas": self.min_replicas, "maxReplicas": self.max_replicas})
