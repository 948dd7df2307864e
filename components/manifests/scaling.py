"""Pure builders for autoscaling: an autoscaling/v2 HPA, or a KEDA ScaledObject for queues.

The metrics and triggers are exactly those the config names (``targetCpuUtilization``,
``targetMemoryUtilization``, ``targetGpuUtilization``; a queue worker's queue depth): none
is implied. An HPA must name one (validation refuses one that does not: Kubernetes would
default it to 80 % CPU); a ScaledObject always has its queue trigger.

GPU utilisation is a Pods metric named :data:`GPU_METRIC`: the NVIDIA DCGM exporter's
`DCGM_FI_DEV_GPU_UTIL`, served to the HPA by a metrics adapter (prometheus-adapter). Both
are prerequisites in the cluster; without them the HPA reports the GPU metric as unknown and
scales on CPU and memory only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from servestack.config.models import Autoscaling, Queue, QueueKind
from servestack.manifests.origins import Source
from servestack.manifests.provenance import opt, src
from servestack.manifests.workload import Manifest

GPU_METRIC = "DCGM_FI_DEV_GPU_UTIL"
NO_SOURCE = Source()
KEDA_API = "keda.sh/v1alpha1"


@dataclass(frozen=True)
class ScalerTarget:
    """What an Autoscaler scales: a Deployment by name, with the labels of its owner."""

    name: str
    deployment: str
    namespace: str
    bounds: Autoscaling
    labels: dict[str, str] = field(default_factory=dict)
    queue: Queue | None = None
    #: Provenance only: where each bound (an :class:`Autoscaling` attribute) comes from
    #: (see :mod:`servestack.manifests.origins`), and the fields the Deployment's name is.
    sources: Mapping[str, Source] = field(default_factory=dict)
    deployment_from: tuple[str, ...] = ()

    def bound(self, attr: str, value: Any = None) -> Any:
        """A bound (or ``value`` made from it), marked with the fields it comes from."""
        s = self.sources.get(attr, NO_SOURCE)
        return src(getattr(self.bounds, attr) if value is None else value, *s.fields, via=s.via)

    def optional(self, attr: str, value: Any) -> Any:
        """A trigger or metric that exists because a bound is set."""
        s = self.sources.get(attr, NO_SOURCE)
        return opt(value, *s.fields, via=s.via)


def _meta(t: ScalerTarget) -> Manifest:
    return {
        "name": src(t.name, "name"),
        "namespace": src(t.namespace, "namespace"),
        "labels": dict(t.labels),
    }


def hpa(t: ScalerTarget) -> Manifest:
    b = t.bounds
    metrics: list[Manifest] = []
    for resource, attr in (
        ("cpu", "target_cpu_utilization"),
        ("memory", "target_memory_utilization"),
    ):
        if getattr(b, attr) is not None:
            target = {"type": "Utilization", "averageUtilization": t.bound(attr)}
            metrics.append(
                t.optional(
                    attr, {"type": "Resource", "resource": {"name": resource, "target": target}}
                )
            )
    if b.target_gpu_utilization is not None:
        gpu = t.bound("target_gpu_utilization", str(b.target_gpu_utilization))
        metrics.append(
            t.optional(
                "target_gpu_utilization",
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": GPU_METRIC},
                        "target": {"type": "AverageValue", "averageValue": gpu},
                    },
                },
            )
        )
    return {
        "metadata": _meta(t),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": src(t.deployment, *t.deployment_from),
            },
            "minReplicas": t.bound("min_replicas"),
            "maxReplicas": t.bound("max_replicas"),
            "metrics": metrics,
            "behavior": {
                "scaleDown": {
                    "stabilizationWindowSeconds": t.bound("scale_down_stabilization_seconds"),
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                }
            },
        },
    }


#: Per queue kind: KEDA's key for the activation threshold (scale from zero above it).
ACTIVATION_KEYS = {
    QueueKind.rabbitmq: "activationValue",
    QueueKind.kafka: "activationLagThreshold",
    QueueKind.redis: "activationListLength",
}


def _queue_trigger(q: Queue) -> Manifest:
    # The kind decides the trigger's shape: which keys exist and what they are called.
    depth = src(str(q.target_depth), "queue.targetDepth")
    name = src(q.name, "queue.name")
    meta: dict[str, Any]
    if q.kind is QueueKind.rabbitmq:
        meta = {
            "queueName": name,
            "mode": "QueueLength",
            "value": depth,
            "hostFromEnv": "QUEUE_URL",
        }
    elif q.kind is QueueKind.kafka:
        meta = {
            "topic": name,
            "consumerGroup": name,
            "lagThreshold": depth,
            "bootstrapServersFromEnv": "QUEUE_URL",
        }
    else:
        meta = {"listName": name, "listLength": depth, "addressFromEnv": "QUEUE_URL"}
    if q.activation_depth is not None:
        # Its key is the kind's: a kind edit renames it.
        meta[ACTIVATION_KEYS[q.kind]] = opt(
            str(q.activation_depth), "queue.activationDepth", via=["queue.kind"]
        )
    return {"type": src(q.kind.value, "queue.kind"), "metadata": src(meta, "queue.kind")}


def scaled_object(t: ScalerTarget) -> Manifest:
    """KEDA ScaledObject: queue depth first, CPU/memory targets as extra triggers."""
    assert t.queue is not None
    b = t.bounds
    triggers = [_queue_trigger(t.queue)]
    for resource, attr in (
        ("cpu", "target_cpu_utilization"),
        ("memory", "target_memory_utilization"),
    ):
        target = getattr(b, attr)
        if target is not None:
            value = t.bound(attr, str(target))
            triggers.append(
                t.optional(
                    attr,
                    {"type": resource, "metricType": "Utilization", "metadata": {"value": value}},
                )
            )
    return {
        "apiVersion": KEDA_API,
        "kind": "ScaledObject",
        "metadata": _meta(t),
        "spec": {
            "scaleTargetRef": {"name": src(t.deployment, *t.deployment_from)},
            "minReplicaCount": t.bound("min_replicas"),
            "maxReplicaCount": t.bound("max_replicas"),
            "cooldownPeriod": t.bound("scale_down_stabilization_seconds"),
            "triggers": triggers,
        },
    }


def scaler(t: ScalerTarget) -> Manifest:
    """The scaler of a target: a KEDA ScaledObject for queue workers, else an HPA."""
    if t.queue is not None:
        return scaled_object(t)
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", **hpa(t)}
