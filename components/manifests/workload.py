"""Pure builders for a model's workload: Deployment, ServiceAccount, PodDisruptionBudget.

They return plain Kubernetes manifests (camelCase dicts) so they are tested as data, and the
components pass them to pulumi-kubernetes unchanged.
"""

from __future__ import annotations

from typing import Any

from servestack.config.defaults import Effective
from servestack.config.gpu import gpu_info, slice_resource
from servestack.config.models import DeploymentSpec, GpuLabels, Processing, Spread, StrategyType
from servestack.contract import labels
from servestack.manifests import gpu_scheduling, naming, storage
from servestack.manifests.origins import NO_ORIGINS, Origins, Source
from servestack.manifests.provenance import opt, src

#: The field of the Deployment an autoscaler scales that the autoscaler owns. The component
#: registers it under ``ignoreChanges``, so it is written when the Deployment is created (the
#: autoscaler's floor) and never again: on an update the Kubernetes provider applies the live
#: count in its place (or leaves the field out when only the autoscaler's manager owns it).
#: Leaving it out of the manifest instead would make server-side apply remove it whenever
#: servestack's manager owned it alone (a Deployment becoming autoscaled, or the canary's
#: Deployment taking the stable track under `promote --shift`): the API server resets it to
#: 1 and the Deployment controller ends every pod but one before the autoscaler acts.
AUTOSCALER_OWNS = "spec.replicas"

Manifest = dict[str, Any]

#: Writable scratch for model servers under a read-only root filesystem.
SCRATCH_MOUNTS = (("tmp", "/tmp"), ("model-cache", "/var/cache/model"))
LIVENESS_PATH = "/health"
RUN_AS_USER = 10001
#: The memory-backed volume behind ``resources.sharedMemory``.
SHM_VOLUME, SHM_PATH = "dshm", "/dev/shm"
#: Well-known node labels the scheduler spreads replicas over.
TOPOLOGY_KEYS = {"node": "kubernetes.io/hostname", "zone": "topology.kubernetes.io/zone"}
_WHEN_UNSATISFIABLE = {Spread.prefer: "ScheduleAnyway", Spread.require: "DoNotSchedule"}


def metadata(
    spec: DeploymentSpec, name: str, *, name_from: tuple[str, ...] = ("name",), **extra: Any
) -> Manifest:
    """Metadata of a child; ``name_from`` are the fields its name is derived from."""
    meta: Manifest = {
        "name": src(name, *name_from),
        "namespace": src(spec.namespace, "namespace"),
        "labels": naming.labels(spec),
    }
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
    amounts: dict[str, str | int] = {
        "cpu": src(res.cpu, "resources.cpu"),
        "memory": src(res.memory, "resources.memory"),
    }
    ephemeral = storage.ephemeral(spec)
    if ephemeral is not None:
        # resources.storage, plus the emptyDir a fetched model (model.storage.uri) fills.
        fetched = spec.model.storage is not None and spec.model.storage.uri is not None
        fields = ("resources.storage", *(("model.storage.size",) if fetched else ()))
        amounts["ephemeral-storage"] = src(
            ephemeral, *fields, via=["model.storage.uri"], when=[*fields, "model.storage.uri"]
        )
    requests = dict(amounts)
    limits = dict(amounts)
    if res.gpu.count and res.gpu.type is not None:
        # Extended resources must have requests == limits. A MIG slice is its own resource.
        key = slice_resource(res.gpu.type, res.gpu.mig)
        count = opt(res.gpu.count, "resources.gpu.count", "resources.gpu.mig")
        requests[key] = limits[key] = count
    return {"requests": requests, "limits": limits}


def _env(
    spec: DeploymentSpec, version: str, version_from: str, slot_via: tuple[str, ...] = ()
) -> list[Manifest]:
    env: list[Manifest] = [
        {"name": "MODEL_ID", "value": src(spec.model.id, "model.id")},
        {"name": "MODEL_VERSION", "value": src(version, version_from, via=slot_via)},
        {"name": "MODEL_TYPE", "value": src(spec.model.type.value, "model.type")},
        {"name": "PORT", "value": src(str(spec.port), "port")},
    ]
    if spec.queue is not None:
        # Only queue workers (processing async) have these.
        q = spec.queue
        secret = src(q.connection_secret, "queue.connectionSecret")
        key = src(q.connection_secret_key, "queue.connectionSecretKey")
        url = {"secretKeyRef": {"name": secret, "key": key}}
        env += [
            opt({"name": "QUEUE_KIND", "value": src(q.kind.value, "queue.kind")}, "processing"),
            opt({"name": "QUEUE_NAME", "value": src(q.name, "queue.name")}, "processing"),
            opt({"name": "QUEUE_URL", "valueFrom": url}, "processing"),
        ]
    env += [opt({"name": k, "value": v}, f"env.{k}") for k, v in sorted(spec.env.items())]
    env += [
        opt(
            {
                "name": k,
                "valueFrom": {"secretKeyRef": {"name": src(secret_name(spec), "name"), "key": k}},
            },
            "secretEnv",
        )
        for k in sorted(spec.secret_env)
    ]
    return env


def secret_name(spec: DeploymentSpec) -> str:
    """The Kubernetes Secret holding a deployment's `secretEnv` values."""
    return naming.child_name(spec.name, naming.SECRET_ENV)


def _probes(spec: DeploymentSpec, eff: Effective) -> Manifest:
    http = {"port": "http"}
    ready = eff.load_balancer.health_check if eff.load_balancer else None
    # Set by the user, or defaults; async workers (no load balancer) get fixed values.
    check = (
        "loadBalancer.healthCheck." if ready is not None and spec.load_balancer is not None else ""
    )

    def of(key: str) -> tuple[str, ...]:
        return (check + key,) if check else ()

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
            "httpGet": {**http, "path": src(ready.path if ready else "/ready", *of("path"))},
            "periodSeconds": src(ready.interval_seconds if ready else 10, *of("intervalSeconds")),
            "timeoutSeconds": src(ready.timeout_seconds if ready else 2, *of("timeoutSeconds")),
            "failureThreshold": src(
                ready.failure_threshold if ready else 3, *of("failureThreshold")
            ),
        },
    }


def _spread(
    spec: DeploymentSpec, eff: Effective, track: str
) -> tuple[list[Manifest], tuple[str, ...]]:
    """Topology spread constraints: each track spreads its own pods, and only the current
    ReplicaSet's (``pod-template-hash``), so a rollout's old pods do not skew it. Also the
    fields they come from (the environment where a default applies)."""
    out: list[Manifest] = []
    sources: list[str] = []
    for key, mode in (("node", eff.node_spread), ("zone", eff.zone_spread)):
        if mode is Spread.off:
            continue
        own = getattr(spec.topology_spread, key) is not None
        fields = (f"topologySpread.{key}", *(() if own else ("environment",)))
        constraint = {
            "maxSkew": 1,
            "topologyKey": TOPOLOGY_KEYS[key],
            "whenUnsatisfiable": src(_WHEN_UNSATISFIABLE[mode], *fields),
            "labelSelector": {"matchLabels": naming.selector(spec, track)},
            "matchLabelKeys": ["pod-template-hash"],
        }
        out.append(opt(constraint, *fields))
        sources += [f for f in fields if f not in sources]
    return out, tuple(sources)


def _affinity(
    spec: DeploymentSpec, track: str, gpu: tuple[Manifest, tuple[str, ...]] | None = None
) -> Manifest:
    """The typed subset of affinity (see :class:`servestack.config.models.Affinity`), and
    ``gpu``: the node expression (with the fields it comes from) that places a GPU pod
    under ``gpuLabels: gpu-operator``, required together with the user's."""
    aff = spec.affinity
    out: Manifest = {}
    expressions = []
    for r in aff.node_requirements:
        expr: Manifest = {"key": r.key, "operator": r.operator.value}
        if r.values:
            expr["values"] = list(r.values)
        expressions.append(expr)
    node_from: tuple[str, ...] = ("affinity.nodeRequirements",) if aff.node_requirements else ()
    if gpu is not None:
        expressions.append(opt(gpu[0], *gpu[1]))
        node_from += gpu[1]
    if expressions:
        terms = [{"matchExpressions": expressions}]
        out["nodeAffinity"] = opt(
            {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}},
            *node_from,
        )
    if aff.pod_anti_affinity is not Spread.off:
        term = {
            "labelSelector": {"matchLabels": naming.selector(spec, track)},
            "topologyKey": TOPOLOGY_KEYS["node"],
        }
        rule: Manifest = (
            {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
            if aff.pod_anti_affinity is Spread.require
            else {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 100, "podAffinityTerm": term}
                ]
            }
        )
        out["podAntiAffinity"] = opt(rule, "affinity.podAntiAffinity")
    return out


def pod_template(
    spec: DeploymentSpec,
    eff: Effective,
    *,
    track: str,
    version: str,
    image: str,
    version_from: str = "model.version",
    image_from: str = "model.image",
    slot_via: tuple[str, ...] = (),
    gpu_marks: gpu_scheduling.GpuMarks = GpuLabels.servestack,
) -> Manifest:
    """The pod template; ``version_from``/``image_from`` name the fields the version and
    image come from (the canary track's differ), ``slot_via`` the fields that choose which
    track's they are (the Deployment's slot); ``gpu_marks`` are the cluster's GPU node
    labels and taint."""
    res = spec.resources
    pod_labels = {
        **naming.selector(spec, track),
        naming.VERSION_LABEL: src(naming.version_slug(version), version_from, via=slot_via),
    }
    annotations: dict[str, str] = {}
    if res.bandwidth_mbps:
        # Read by the CNI bandwidth plugin (traffic shaping per pod).
        bandwidth = f"{res.bandwidth_mbps}M"
        annotations[labels.INGRESS_BANDWIDTH] = opt(bandwidth, "resources.bandwidthMbps")
        annotations[labels.EGRESS_BANDWIDTH] = opt(bandwidth, "resources.bandwidthMbps")
    container: Manifest = {
        "name": "model",
        "image": src(image, image_from, via=slot_via),
        "ports": [{"name": "http", "containerPort": src(spec.port, "port"), "protocol": "TCP"}],
        "env": _env(spec, version, version_from, slot_via),
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
    if spec.command is not None:
        container["command"] = opt(list(spec.command), "command")
    if spec.args is not None:
        container["args"] = opt(list(spec.args), "args")
    pod: Manifest = {
        "serviceAccountName": src(spec.name, "name"),
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
            {
                "name": "model-cache",
                "emptyDir": {"sizeLimit": src(res.storage or "10Gi", "resources.storage")},
            },
        ],
    }
    shm_from = ("resources.sharedMemory",) if res.shared_memory is not None else ()
    if res.shared_memory is not None:
        container["volumeMounts"].append(
            opt(
                {"name": SHM_VOLUME, "mountPath": SHM_PATH, "readOnly": False},
                "resources.sharedMemory",
            )
        )
        shm = {"medium": "Memory", "sizeLimit": src(res.shared_memory, "resources.sharedMemory")}
        pod["volumes"].append(opt({"name": SHM_VOLUME, "emptyDir": shm}, "resources.sharedMemory"))
    # After /dev/shm, whose presence decides their position.
    model_storage = spec.model.storage
    if model_storage is not None:
        container["volumeMounts"].append(storage.mount(model_storage, after=shm_from))
        pod["volumes"].append(storage.volume(model_storage, after=shm_from))
        scratch = [{"name": "tmp", "mountPath": "/tmp"}]
        fetcher = storage.init_container(spec, dict(container["securityContext"]), scratch)
        if fetcher is not None:
            pod["initContainers"] = opt([fetcher], "model.storage.uri")
    if spec.image_pull_secrets:
        pod["imagePullSecrets"] = opt(
            [{"name": n} for n in spec.image_pull_secrets], "imagePullSecrets"
        )
    if spec.priority_class_name is not None:
        pod["priorityClassName"] = opt(spec.priority_class_name, "priorityClassName")
    spread, spread_from = _spread(spec, eff, track)
    if spread:
        pod["topologySpreadConstraints"] = opt(spread, *spread_from)
    gpu_term = None
    if res.gpu.type is not None:
        info = gpu_info(res.gpu.type)
        label = ("resources.gpu.type", *gpu_scheduling.label_fields(info, gpu_marks))
        placed = gpu_scheduling.placement(info, gpu_marks)
        if "nodeSelector" in placed:
            pod["nodeSelector"] = opt(placed["nodeSelector"], *label)
        else:  # an affinity term, required with the user's own (one term: both hold)
            gpu_term = (gpu_scheduling.placement_term(info), label)
    affinity = _affinity(spec, track, gpu_term)
    if affinity:
        fields = ["affinity.nodeRequirements", "affinity.podAntiAffinity"]
        pod["affinity"] = opt(affinity, *fields, *(gpu_term[1] if gpu_term else ()))
    if res.gpu.type is not None:
        pod["tolerations"] = opt(
            gpu_scheduling.tolerations(info, gpu_marks),
            "resources.gpu.type",
            *gpu_scheduling.toleration_fields(gpu_marks),
        )
    template: Manifest = {"metadata": {"labels": pod_labels}, "spec": pod}
    if annotations:
        template["metadata"]["annotations"] = opt(annotations, "resources.bandwidthMbps")
    return template


def deployment(
    spec: DeploymentSpec,
    eff: Effective,
    *,
    track: str = naming.STABLE,
    origin: Origins | None = None,
    gpu_marks: gpu_scheduling.GpuMarks = GpuLabels.servestack,
) -> Manifest:
    """The Deployment of one track (stable, or the canary), in the track's slot
    (:func:`naming.slot`): a track's pod template is the same in either slot.

    ``origin`` says which fields the effective settings came from (for provenance only).
    """
    canary = track == naming.CANARY
    strategy = spec.strategy
    o = origin or NO_ORIGINS
    version = strategy.canary_version if canary and strategy.canary_version else spec.model.version
    image = strategy.canary_image if canary and strategy.canary_image else spec.model.image
    name = naming.deployment_name(spec, track)
    # stableSlot chooses which track this Deployment (a slot) runs: flipped on its own
    # during a canary, each Deployment takes the other track's version, image and rollout.
    slot_via = ("stableSlot",) if strategy.type is StrategyType.canary else ()
    annotations = (
        {labels.DESCRIPTION: opt(spec.description, "description")} if spec.description else {}
    )
    body: Manifest = {
        "selector": {"matchLabels": naming.selector(spec, track)},
        "revisionHistoryLimit": 5,
        "progressDeadlineSeconds": 900,
        "template": pod_template(
            spec,
            eff,
            track=track,
            version=version,
            image=image,
            version_from="strategy.canaryVersion" if canary else "model.version",
            image_from="strategy.canaryImage" if canary else "model.image",
            slot_via=slot_via,
            gpu_marks=gpu_marks,
        ),
    }
    if canary:
        # Present while the Deployment is the canary's (it goes when the Deployment becomes
        # the stable track under an autoscaler: promote --shift).
        body["replicas"] = src(
            (strategy.canary_replicas or 1) if spec.active else 0,
            *(("strategy.canaryReplicas",) if spec.active else ()),
            via=["active", *slot_via],
            when=["strategy.type"],
        )
    elif not eff.autoscaled:
        body["replicas"] = src(
            eff.replicas, *o.replicas.fields, via=(*o.replicas.via, *o.autoscaled, *slot_via)
        )
    else:
        # The autoscaler owns the count (see AUTOSCALER_OWNS): written once, its floor, when
        # the Deployment is created; after that the provider keeps the live count.
        floor = o.bounds.get("min_replicas", Source())
        body["replicas"] = src(
            eff.autoscaling.min_replicas if eff.autoscaling else 0,
            *floor.fields,
            via=(*floor.via, *o.autoscaled, *slot_via),
        )
    if strategy.type is StrategyType.blue_green or canary:
        # A blue-green Deployment is new per version; the canary track is small: both
        # start all their pods at once.
        body["strategy"] = src(
            {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "100%", "maxUnavailable": 0}},
            "strategy.type",
            via=slot_via,
        )
    else:
        body["strategy"] = {
            "type": "RollingUpdate",
            "rollingUpdate": {
                "maxSurge": src(
                    eff.max_surge, *o.max_surge.fields, via=(*o.max_surge.via, *slot_via)
                ),
                "maxUnavailable": src(
                    eff.max_unavailable,
                    *o.max_unavailable.fields,
                    via=(*o.max_unavailable.via, *slot_via),
                ),
            },
        }
    meta = metadata(
        spec,
        name,
        name_from=("name", "strategy.type", "stableSlot")
        if canary
        else naming.workload_fields(spec),
    )
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


def _gateway_peer(spec: DeploymentSpec) -> list[Manifest]:
    """With a ``route``: the pods of its Gateway, by the label the Gateway API has
    implementations put on them (``gateway.networking.k8s.io/gateway-name``)."""
    if spec.route is None:
        return []
    gateway = spec.route.gateway
    namespace = (
        src(spec.namespace, "namespace")
        if gateway.namespace is None
        else src(gateway.namespace, "route.gateway.namespace")
    )
    peer = {
        "namespaceSelector": {"matchLabels": {labels.NAMESPACE_NAME: namespace}},
        "podSelector": {
            "matchLabels": {labels.GATEWAY_NAME: src(gateway.name, "route.gateway.name")}
        },
    }
    return [opt(peer, "route.gateway.name")]


def network_policy(spec: DeploymentSpec) -> Manifest:
    """Admit traffic to the model port only from the load-balancer path.

    Sync models accept the mesh ingress gateway and pods of their own namespace (mesh
    clients, whose sidecars the DestinationRule balances), and with a ``route`` the pods of
    its Gateway; async workers accept nothing:
    they pull work from their queue.
    """
    ingress: list[Manifest] = []
    if spec.processing is Processing.sync:
        ingress.append(
            opt(
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {labels.NAMESPACE_NAME: GATEWAY_NAMESPACE}
                            },
                            "podSelector": {"matchLabels": dict(GATEWAY_LABELS)},
                        },
                        {"podSelector": {}},
                        *_gateway_peer(spec),
                    ],
                    "ports": [{"port": src(spec.port, "port"), "protocol": "TCP"}],
                },
                "processing",
            )
        )
    return {
        "metadata": metadata(spec, naming.child_name(spec.name, naming.INGRESS_POLICY)),
        "spec": {
            "podSelector": {"matchLabels": {labels.NAME: src(spec.name, "name")}},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }


def namespace(name: str) -> Manifest:
    """The stack's namespace; Pod Security admission enforces the restricted profile."""
    return {
        "metadata": {
            "name": src(name, "namespace"),
            "labels": {
                labels.MANAGED_BY: labels.MANAGER,
                "pod-security.kubernetes.io/enforce": "restricted",
            },
        }
    }
