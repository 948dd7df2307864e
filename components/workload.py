"""Pure builders for a model's workload: Deployment, ServiceAccount, PodDisruptionBudget.

They return plain Kubernetes manifests (camelCase dicts) so they are tested as data, and the
components pass them to pulumi-kubernetes unchanged.
"""

from __future__ import annotations

from typing import Any

from components import naming
from components.config import DeploymentSpec, Processing, StrategyType
from components.defaults import Effective
from components.gpu import GPU_RESOURCE, gpu_info

Manifest = dict[str, Any]

#: Writable scratch for model servers under a read-only root filesystem.
SCRATCH_MOUNTS = (("tmp", "/tmp"), ("model-cache", "/var/cache/model"))
LIVENESS_PATH = "/health"
RUN_AS_USER = 10001


def metadata(spec: DeploymentSpec, name: str, **extra: Any) -> Manifest:
    meta: Manifest = {"name": name, "namespace": spec.namespace, "labels": naming.labels(spec)}
    meta.update(extra)
    return meta


def service_account(spec: DeploymentSpec) -> Manifest:
    """A dedicated identity per model; its token is not mounted (the server needs none)."""
    return {
        "metadata": metadata(spec, spec.name),
        "automountServiceAccountToken": False,
    }


def _resources(spec: DeploymentSpec) -> Manifest:
    res = spec.resources
    amounts: dict[str, str | int] = {"cpu": res.cpu, "memory": res.memory}
    if res.storage:
        amounts["ephemeral-storage"] = res.storage
    requests = dict(amounts)
    limits = dict(amounts)
    if res.gpu.count:
        # Extended resources must have requests == limits.
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = res.gpu.count
    return {"requests": requests, "limits": limits}


def _env(spec: DeploymentSpec, version: str) -> list[Manifest]:
    env: list[Manifest] = [
        {"name": "MODEL_ID", "value": spec.model.id},
        {"name": "MODEL_VERSION", "value": version},
        {"name": "MODEL_TYPE", "value": spec.model.type.value},
        {"name": "PORT", "value": str(spec.port)},
    ]
    if spec.queue is not None:
        env += [
            {"name": "QUEUE_KIND", "value": spec.queue.kind.value},
            {"name": "QUEUE_NAME", "value": spec.queue.name},
            {
                "name": "QUEUE_URL",
                "valueFrom": {"secretKeyRef": {"name": spec.queue.connection_secret, "key": "url"}},
            },
        ]
    env += [{"name": k, "value": v} for k, v in sorted(spec.env.items())]
    env += [
        {"name": k, "valueFrom": {"secretKeyRef": {"name": secret_name(spec), "key": k}}}
        for k in sorted(spec.secret_env)
    ]
    return env


def secret_name(spec: DeploymentSpec) -> str:
    """The Kubernetes Secret holding a deployment's `secretEnv` values."""
    return naming.child_name(spec.name, naming.SECRET_ENV)


def _probes(spec: DeploymentSpec, eff: Effective) -> Manifest:
    http = {"port": "http"}
    ready = eff.load_balancer.health_check if eff.load_balancer else None
    return {
        # Model loading can take minutes: the startup probe holds liveness off until then.
        "startupProbe": {
            "httpGet": {**http, "path": LIVENESS_PATH},
            "periodSeconds": 10,
            "failureThreshold": 60,
        },
        "livenessProbe": {
            "httpGet": {**http, "path": LIVENESS_PATH},
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            "httpGet": {**http, "path": ready.path if ready else "/ready"},
            "periodSeconds": ready.interval_seconds if ready else 10,
            "timeoutSeconds": ready.timeout_seconds if ready else 2,
            "failureThreshold": ready.failure_threshold if ready else 3,
        },
    }


def pod_template(
    spec: DeploymentSpec, eff: Effective, *, track: str, version: str, image: str
) -> Manifest:
    res = spec.resources
    pod_labels = {
        **naming.selector(spec, track),
        naming.VERSION_LABEL: naming.version_slug(version),
    }
    annotations: dict[str, str] = {}
    if res.bandwidth_mbps:
        # Read by the CNI bandwidth plugin (traffic shaping per pod).
        annotations["kubernetes.io/ingress-bandwidth"] = f"{res.bandwidth_mbps}M"
        annotations["kubernetes.io/egress-bandwidth"] = f"{res.bandwidth_mbps}M"
    container: Manifest = {
        "name": "model",
        "image": image,
        "ports": [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}],
        "env": _env(spec, version),
        "resources": _resources(spec),
        **_probes(spec, eff),
        # Always: the registry is asked on every start, so revoked credentials and moved
        # tags are noticed (cheap with digest-pinned images: the layers stay cached).
        "imagePullPolicy": "Always",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": n, "mountPath": p} for n, p in SCRATCH_MOUNTS],
    }
    pod: Manifest = {
        "serviceAccountName": spec.name,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "fsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [
            {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
            {"name": "model-cache", "emptyDir": {"sizeLimit": res.storage or "10Gi"}},
        ],
    }
    if res.gpu.type is not None:
        info = gpu_info(res.gpu.type)
        pod["nodeSelector"] = info.node_selector()
        pod["tolerations"] = info.tolerations()
    template: Manifest = {"metadata": {"labels": pod_labels}, "spec": pod}
    if annotations:
        template["metadata"]["annotations"] = annotations
    return template


def deployment(spec: DeploymentSpec, eff: Effective, *, track: str = naming.STABLE) -> Manifest:
    """The Deployment of one track (stable, or the canary)."""
    canary = track == naming.CANARY
    strategy = spec.strategy
    version = strategy.canary_version if canary and strategy.canary_version else spec.model.version
    image = strategy.canary_image if canary and strategy.canary_image else spec.model.image
    name = naming.child_name(spec.name, naming.CANARY) if canary else naming.workload_name(spec)
    annotations = {"servestack.io/description": spec.description} if spec.description else {}
    body: Manifest = {
        "selector": {"matchLabels": naming.selector(spec, track)},
        "revisionHistoryLimit": 5,
        "progressDeadlineSeconds": 900,
        "template": pod_template(spec, eff, track=track, version=version, image=image),
    }
    if canary:
        body["replicas"] = (strategy.canary_replicas or 1) if spec.active else 0
    elif not eff.autoscaled:
        # With an autoscaler the HPA owns the replica count; writing it here would fight it.
        body["replicas"] = eff.replicas
    if strategy.type is StrategyType.blue_green or canary:
        # A blue-green Deployment is new per version; the canary track is small: both
        # start all their pods at once.
        body["strategy"] = {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "100%", "maxUnavailable": 0},
        }
    else:
        body["strategy"] = {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": eff.max_surge, "maxUnavailable": eff.max_unavailable},
        }
    meta = metadata(spec, name)
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": body}


def disruption_budget(spec: DeploymentSpec) -> Manifest:
    """Keeps at least one pod up through node drains and upgrades."""
    return {
        "metadata": metadata(spec, naming.child_name(spec.name, naming.BUDGET)),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": naming.selector(spec)}},
    }


#: The mesh ingress gateway: the load-balancer path into a model's pods.
GATEWAY_NAMESPACE = "istio-system"
GATEWAY_LABELS = {"istio": "ingressgateway"}


def network_policy(spec: DeploymentSpec) -> Manifest:
    """Admit traffic to the model port only from the load-balancer path.

    Sync models accept the mesh ingress gateway and pods of their own namespace (mesh
    clients, whose sidecars the DestinationRule balances); async workers accept nothing:
    they pull work from their queue.
    """
    ingress: list[Manifest] = []
    if spec.processing is Processing.sync:
        ingress.append(
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": GATEWAY_NAMESPACE}
                        },
                        "podSelector": {"matchLabels": dict(GATEWAY_LABELS)},
                    },
                    {"podSelector": {}},
                ],
                "ports": [{"port": spec.port, "protocol": "TCP"}],
            }
        )
    return {
        "metadata": metadata(spec, naming.child_name(spec.name, naming.INGRESS_POLICY)),
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": spec.name}},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }


def namespace(name: str) -> Manifest:
    """The stack's namespace; Pod Security admission enforces the restricted profile."""
    return {
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/managed-by": "servestack",
                "pod-security.kubernetes.io/enforce": "restricted",
            },
        }
    }
