"""Pure builders for autoscaling: an autoscaling/v2 HPA, or a KEDA ScaledObject for queues.

GPU utilisation is a Pods metric named :data:`GPU_METRIC`: the NVIDIA DCGM exporter's
`DCGM_FI_DEV_GPU_UTIL`, served to the HPA by a metrics adapter (prometheus-adapter). Both
are prerequisites in the cluster; without them the HPA reports the GPU metric as unknown and
scales on CPU and memory only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from components.config import Autoscaling, Queue, QueueKind
from components.workload import Manifest

GPU_METRIC = "DCGM_FI_DEV_GPU_UTIL"
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


def _meta(t: ScalerTarget) -> Manifest:
    return {"name": t.name, "namespace": t.namespace, "labels": dict(t.labels)}


def hpa(t: ScalerTarget) -> Manifest:
    b = t.bounds
    metrics: list[Manifest] = []
    for resource, target in (
        ("cpu", b.target_cpu_utilization),
        ("memory", b.target_memory_utilization),
    ):
        if target is not None:
            metrics.append(
                {
                    "type": "Resource",
                    "resource": {
                        "name": resource,
                        "target": {"type": "Utilization", "averageUtilization": target},
                    },
                }
            )
    if b.target_gpu_utilization is not None:
        metrics.append(
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": GPU_METRIC},
                    "target": {
                        "type": "AverageValue",
                        "averageValue": str(b.target_gpu_utilization),
                    },
                },
            }
        )
    return {
        "metadata": _meta(t),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": t.deployment},
            "minReplicas": b.min_replicas,
            "maxReplicas": b.max_replicas,
            "metrics": metrics,
            "behavior": {
                "scaleDown": {
                    "stabilizationWindowSeconds": b.scale_down_stabilization_seconds,
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                }
            },
        },
    }


def _queue_trigger(q: Queue) -> Manifest:
    depth = str(q.target_depth)
    if q.kind is QueueKind.rabbitmq:
        meta = {
            "queueName": q.name,
            "mode": "QueueLength",
            "value": depth,
            "hostFromEnv": "QUEUE_URL",
        }
    elif q.kind is QueueKind.kafka:
        meta = {
            "topic": q.name,
            "consumerGroup": q.name,
            "lagThreshold": depth,
            "bootstrapServersFromEnv": "QUEUE_URL",
        }
    else:
        meta = {"listName": q.name, "listLength": depth, "addressFromEnv": "QUEUE_URL"}
    return {"type": q.kind.value, "metadata": meta}


def scaled_object(t: ScalerTarget) -> Manifest:
    """KEDA ScaledObject: queue depth first, CPU/memory targets as extra triggers."""
    assert t.queue is not None
    b = t.bounds
    triggers = [_queue_trigger(t.queue)]
    for resource, target in (
        ("cpu", b.target_cpu_utilization),
        ("memory", b.target_memory_utilization),
    ):
        if target is not None:
            triggers.append(
                {"type": resource, "metricType": "Utilization", "metadata": {"value": str(target)}}
            )
    return {
        "apiVersion": KEDA_API,
        "kind": "ScaledObject",
        "metadata": _meta(t),
        "spec": {
            "scaleTargetRef": {"name": t.deployment},
            "minReplicaCount": b.min_replicas,
            "maxReplicaCount": b.max_replicas,
            "cooldownPeriod": b.scale_down_stabilization_seconds,
            "triggers": triggers,
        },
    }
