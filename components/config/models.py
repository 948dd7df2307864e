"""Typed stack config: the public contract of every `servestack:*` key.

YAML keys are camelCase (the Pulumi config convention); Python attributes are snake_case.
Models are frozen and reject unknown keys. Rules that involve a single model live here as
validators; rules that span deployments and node pools live in :mod:`servestack.config.validation`.
"""

from __future__ import annotations

import re
from enum import StrEnum
from types import UnionType
from typing import Annotated, Any, ClassVar, Self, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from servestack.config.gpu import GpuType, with_mig
from servestack.config.mig import mig_problem
from servestack.config.quantities import cpu_millicores, format_cpu, format_memory, memory_bytes

DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
#: Longest deployment/pool name: leaves room for child suffixes within 63 characters.
MAX_NAME_LEN = 40
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_IMAGE_RE = re.compile(r"^[a-z0-9]([a-z0-9._/:-]*[a-z0-9])?(@sha256:[a-f0-9]{64})?$")


class Environment(StrEnum):
    development = "development"
    staging = "staging"
    production = "production"


class Target(StrEnum):
    render = "render"
    cluster = "cluster"


class CloudProvider(StrEnum):
    existing = "existing"
    gke = "gke"
    eks = "eks"
    karpenter = "karpenter"
    #: The local cluster (`make cluster`): each pool's nodes are kwok-managed Node objects.
    local = "local"


class ModelType(StrEnum):
    llm = "llm"
    stt = "stt"
    tts = "tts"
    vision = "vision"
    embedding = "embedding"
    tabular = "tabular"


class Processing(StrEnum):
    sync = "sync"
    async_ = "async"


class Algorithm(StrEnum):
    round_robin = "round_robin"
    least_connections = "least_connections"
    ip_hash = "ip_hash"


class StrategyType(StrEnum):
    rolling = "rolling"
    blue_green = "blue_green"
    canary = "canary"


class Slot(StrEnum):
    """Which of a deployment's two Deployments runs its stable track (``stableSlot``).

    ``main`` is the Deployment named after the deployment (pods labelled
    ``servestack.io/track: stable``), ``canary`` the one named ``<name>-canary`` (pods labelled
    ``servestack.io/track: canary``). A label names the slot, not the role: after
    ``promote --shift`` the ``canary`` slot serves the stable track with its pods unchanged,
    and the next canary runs in the ``main`` slot.
    """

    main = "main"
    canary = "canary"


class QueueKind(StrEnum):
    rabbitmq = "rabbitmq"
    kafka = "kafka"
    redis = "redis"


class Severity(StrEnum):
    """Alertmanager routing severity of an alert (its ``severity`` label)."""

    critical = "critical"
    warning = "warning"
    info = "info"


def _problem(msg: str) -> PydanticCustomError:
    return PydanticCustomError("servestack", msg)


def _check_version(key: str, value: str) -> None:
    """The one rule for a model version (``version``, ``canaryVersion``)."""
    if not _VERSION_RE.match(value):
        raise _problem(
            f"{key} {value!r} is not allowed: letters, digits, '.', '_', '-', at most 63 characters"
        )


def _check_image(key: str, value: str) -> None:
    """The one rule for an image reference (``image``, ``canaryImage``)."""
    if not _IMAGE_RE.match(value):
        raise _problem(
            f"{key} {value!r} is not a valid image reference "
            "(registry/name:tag or registry/name@sha256:<digest>)"
        )


def _dns_label(value: str) -> str:
    if len(value) > MAX_NAME_LEN or not DNS_LABEL_RE.match(value):
        raise _problem(
            f"{value!r} is not a DNS-1123 label of at most {MAX_NAME_LEN} characters "
            "(lower-case letters, digits and '-', starting and ending with a letter or digit)"
        )
    return value


def _cpu(value: object) -> str:
    return format_cpu(cpu_millicores(value))


def _memory(value: object) -> str:
    return format_memory(memory_bytes(value))


def _string_map(kind: str, key_re: re.Pattern[str]) -> Any:
    def check(value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not key_re.match(key):
                raise _problem(f"{kind} key {key!r} is not allowed: must match {key_re.pattern}")
        return value

    return AfterValidator(check)


Name = Annotated[str, AfterValidator(_dns_label)]
Cpu = Annotated[str, BeforeValidator(_cpu)]
Memory = Annotated[str, BeforeValidator(_memory)]
EnvMap = Annotated[dict[str, str], _string_map("env", _ENV_NAME_RE)]


def _tag_values(value: dict[str, str]) -> dict[str, str]:
    for key, val in value.items():
        if not DNS_LABEL_RE.match(key) or len(key) > 63:
            raise _problem(f"tag key {key!r} is not allowed: must be a DNS-1123 label")
        if len(val) > 63 or not _LABEL_VALUE_RE.match(val):
            raise _problem(
                f"tag {key}={val!r} is not allowed: values are Kubernetes label values "
                "(at most 63 of letters, digits, '-', '_', '.')"
            )
    return value


Tags = Annotated[dict[str, str], AfterValidator(_tag_values)]

#: A Kubernetes object name that is a DNS-1123 subdomain (Secrets, PriorityClasses).
_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
#: The namespace of a deployment the stack file (or the Python API) does not place elsewhere.
DEFAULT_NAMESPACE = "models"


def _secret_name(value: object) -> str:
    """An image pull Secret is named, never given: its content stays out of stack files.

    A refused item is not echoed: it may be the credential itself."""
    if isinstance(value, dict):
        keys = ", ".join(sorted(str(k) for k in value))[:80]
        raise _problem(
            f"a mapping ({keys}) is not a Secret name: list only the names of existing "
            "Secrets of type kubernetes.io/dockerconfigjson; their content never goes in a "
            "stack file (create the Secret with kubectl or your secret manager)"
        )
    if not isinstance(value, str) or len(value) > 253 or not _SUBDOMAIN_RE.match(value):
        raise _problem(
            "is not a Secret name (a DNS-1123 subdomain; the value is not shown, it may be a "
            "credential): list only the names of existing Secrets; a registry credential "
            "never goes in a stack file"
        )
    return value


def _subdomain(value: str) -> str:
    if len(value) > 253 or not _SUBDOMAIN_RE.match(value):
        raise _problem(
            f"{value[:60]!r} is not a Kubernetes object name (a DNS-1123 subdomain: lower-case "
            "letters, digits, '-' and '.', at most 253 characters)"
        )
    return value


def _pull_secrets(value: tuple[str, ...]) -> tuple[str, ...]:
    dup = sorted({v for v in value if value.count(v) > 1})
    if dup:
        raise _problem(f"{', '.join(dup)} listed more than once")
    return value


SecretName = Annotated[str, BeforeValidator(_secret_name)]
PullSecrets = Annotated[tuple[SecretName, ...], AfterValidator(_pull_secrets)]


class Spec(BaseModel):
    """Base of every config model: camelCase keys, frozen, no unknown keys."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        alias_generator=to_camel,
        use_enum_values=False,
    )


_GROUP_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$")
_KIND_RE = re.compile(r"^[A-Z][A-Za-z0-9]{0,62}$")
_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _matching(what: str, pattern: re.Pattern[str], allowed: str, longest: int) -> Any:
    def check(value: str) -> str:
        if len(value) > longest or not pattern.match(value):
            raise _problem(f"{value!r} is not {what} ({allowed})")
        return value

    return AfterValidator(check)


class NodeClassRef(Spec):
    """The node class a Karpenter NodePool launches its nodes with (`nodeClassRef`).

    The default is AWS's `EC2NodeClass`; on the local cluster Karpenter's kwok provider serves
    `{group: karpenter.kwok.sh, kind: KWOKNodeClass}`. The object itself is the platform's
    (servestack only names it). The server refuses an in-place change of group and kind.
    """

    group: Annotated[
        str,
        _matching(
            "an API group", _GROUP_RE, "a DNS subdomain with a dot, e.g. karpenter.k8s.aws", 253
        ),
    ] = "karpenter.k8s.aws"
    kind: Annotated[
        str,
        _matching(
            "a Kubernetes kind",
            _KIND_RE,
            "letters and digits, starting with an upper-case letter, e.g. EC2NodeClass",
            63,
        ),
    ] = "EC2NodeClass"
    name: Annotated[
        str,
        _matching(
            "a DNS-1123 subdomain",
            _SUBDOMAIN_RE,
            "lower-case letters, digits, '-' and '.', at most 253 characters",
            253,
        ),
    ] = "default"


def _node_class_name(value: object) -> object:
    """A bare name (the form before group and kind were configurable) names an EC2NodeClass."""
    if isinstance(value, str):
        return {"name": value}
    if not isinstance(value, dict | NodeClassRef):
        raise _problem(f"{value!r} is not allowed: a mapping {{group, kind, name}} or a name")
    return value


#: The node class of Karpenter's kwok provider, which the local cluster runs (its Karpenter
#: creates the object named `default`; docs/cluster.md).
LOCAL_NODE_CLASS = NodeClassRef(group="karpenter.kwok.sh", kind="KWOKNodeClass", name="default")


_QUALIFIED_KEY_RE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)


def _qualified_key(value: str) -> str:
    """A Kubernetes label or taint key (``example.com/gpu``)."""
    prefix, _, _ = value.rpartition("/")
    if len(prefix) > 253 or not _QUALIFIED_KEY_RE.match(value):
        raise _problem(
            f"{value!r} is not a Kubernetes label key ([prefix/]name: a DNS subdomain prefix, "
            "a name of at most 63 letters, digits, '-', '_', '.')"
        )
    return value


def _label_value(value: str) -> str:
    if len(value) > 63 or not _LABEL_VALUE_RE.match(value) or not value:
        raise _problem(
            f"{value!r} is not a Kubernetes label value (1 to 63 of letters, digits, '-', '_', "
            "'.', starting and ending with a letter or digit)"
        )
    return value


LabelKey = Annotated[str, AfterValidator(_qualified_key)]
LabelValue = Annotated[str, AfterValidator(_label_value)]


class GpuLabels(StrEnum):
    """Which node labels and taint mark GPU nodes (docs/cluster.md, "GPU nodes")."""

    #: `servestack.io/gpu: <type>` and the `servestack.io/gpu` taint (servestack's own pools).
    servestack = "servestack"
    #: NVIDIA GPU feature discovery's `nvidia.com/gpu.product` and the `nvidia.com/gpu` taint.
    gpu_operator = "gpu-operator"
    #: A label key, a value per GPU type and a taint of the cluster's own (`customGpuLabels`).
    custom = "custom"


class CustomGpuLabels(Spec):
    """`gpuLabels: custom`: the node label GPU pods select, by GPU type, and the taint
    they tolerate (any value, effect NoSchedule)."""

    key: LabelKey
    values: Annotated[dict[GpuType, LabelValue], Field(min_length=1)]
    taint: LabelKey


class ClusterSpec(Spec):
    name: Name
    provider: CloudProvider = CloudProvider.existing
    #: GKE: project and location of the cluster; EKS: region (informational).
    project: str | None = None
    location: str | None = None
    #: EKS node groups need an IAM role and subnets.
    node_role_arn: str | None = None
    subnet_ids: tuple[str, ...] = ()
    #: Karpenter: the node class nodes are launched with (group, kind, name).
    node_class: Annotated[NodeClassRef, BeforeValidator(_node_class_name)] = NodeClassRef()
    #: `target: cluster`: the kubeconfig context to use (default: the current one).
    context: str | None = None
    #: Which labels and taint mark the cluster's GPU nodes.
    gpu_labels: GpuLabels = GpuLabels.servestack
    custom_gpu_labels: CustomGpuLabels | None = None

    @model_validator(mode="after")
    def _provider_fields(self) -> Self:
        if self.gpu_labels is GpuLabels.custom and self.custom_gpu_labels is None:
            raise _problem(
                "gpuLabels custom needs customGpuLabels (key, values per GPU type, taint)"
            )
        if self.gpu_labels is not GpuLabels.custom and self.custom_gpu_labels is not None:
            raise _problem(
                f"customGpuLabels is read only with gpuLabels custom (gpuLabels is "
                f"{self.gpu_labels.value}): set gpuLabels: custom or drop customGpuLabels"
            )
        if self.provider is CloudProvider.eks and (not self.node_role_arn or not self.subnet_ids):
            raise _problem("provider eks needs nodeRoleArn and subnetIds")
        if self.provider is CloudProvider.gke and not self.location:
            raise _problem("provider gke needs location (e.g. europe-west4)")
        return self


class GpuSpec(Spec):
    """GPUs per replica (deployments) or per node (node pools)."""

    count: Annotated[int, Field(ge=0, le=16)] = 0
    type: GpuType | None = None
    #: MIG: the slice profile a replica asks for (`1g.18gb`); ``count`` then counts slices.
    mig: str | None = None
    #: Whether ``mig`` names a node's partitioning (`all-<profile>`) rather than one slice.
    partitioning: ClassVar[bool] = False

    @field_validator("mig")
    @classmethod
    def _mig_of_type(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or "type" not in info.data:
            return value  # a bad or missing type is reported on its own
        gpu = info.data["type"]
        if gpu is None:
            raise _problem(f"{value!r} needs type: name one of {', '.join(map(str, with_mig()))}")
        problem = mig_problem(gpu, value, partitioning=cls.partitioning)
        if problem:
            raise _problem(problem)
        return value

    @model_validator(mode="after")
    def _type_iff_count(self) -> Self:
        if self.count > 0 and self.type is None:
            raise _problem(
                f"count is {self.count} but type is missing: name one of "
                f"{', '.join(t.value for t in GpuType)}"
            )
        if self.count == 0 and self.type is not None:
            raise _problem(
                f"type {self.type.value} given but count is 0: set count >= 1 or drop type"
            )
        return self


class PoolGpuSpec(GpuSpec):
    """GPUs per node; ``mig`` partitions every GPU of a node (`all-1g.18gb`)."""

    partitioning: ClassVar[bool] = True


class NodePoolSpec(Spec):
    name: Name
    gpu: PoolGpuSpec
    machine_type: str | None = None
    min_nodes: Annotated[int, Field(ge=0, le=1000)] = 0
    max_nodes: Annotated[int, Field(ge=1, le=1000)] = 1
    spot: bool = False
    #: Boot disk per node (GKE, EKS). Karpenter takes it from the EC2NodeClass instead.
    disk_size_gb: Annotated[int, Field(ge=20, le=65536)] | None = None
    #: Karpenter: how long a node stays empty before it is consolidated away.
    consolidate_after_seconds: Annotated[int, Field(ge=0, le=86400)] = 600

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.gpu.count == 0:
            raise _problem("gpu.count must be >= 1: a GPU node pool needs GPUs")
        if self.min_nodes > self.max_nodes:
            raise _problem(f"minNodes ({self.min_nodes}) must be <= maxNodes ({self.max_nodes})")
        return self


_STORAGE_URI_RE = re.compile(r"^(s3|gs|hf|https)://[^\s'\"]+$")
_MOUNT_PATH_RE = re.compile(r"^/[A-Za-z0-9._/-]*$")
#: The init container that fetches ``model.storage.uri``: it takes the URI and the target
#: directory as its two arguments (KServe's storage initializer does; so may your own).
DEFAULT_FETCH_IMAGE = "kserve/storage-initializer:v0.15.0"


class ModelStorage(Spec):
    """Where the model's weights come from, mounted read-only into the model container.

    Either ``pvc`` (an existing PersistentVolumeClaim, mounted read-only) or ``uri`` (an
    object-store location fetched by an init container into an emptyDir of ``size``, which
    counts in the pod's ephemeral storage). Credentials for the store are the fetcher's
    (its ServiceAccount or workload identity), never the stack file's.
    """

    pvc: Name | None = None
    uri: Annotated[str, Field(max_length=1000)] | None = None
    #: uri only: the emptyDir's sizeLimit (and the pod's extra ephemeral storage).
    size: Memory | None = None
    mount_path: Annotated[str, Field(max_length=200)] = "/models"
    #: uri only: the fetching init container's image.
    fetch_image: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if self.pvc is not None and self.uri is not None:
            raise _problem(
                "pvc and uri are both set: the weights come from one source, an existing "
                "PersistentVolumeClaim (pvc) or an object-store location (uri)"
            )
        if self.pvc is None and self.uri is None:
            raise _problem(
                "needs pvc (an existing PersistentVolumeClaim) or uri (s3://, gs://, hf://, https://)"
            )
        if self.uri is not None:
            if not _STORAGE_URI_RE.match(self.uri):
                raise _problem(
                    "uri is not allowed (not shown: it may carry a credential): s3://, gs://, "
                    "hf:// or https:// followed by a location without spaces or quotes"
                )
            if "@" in self.uri.split("://", 1)[1].split("/", 1)[0] or "?" in self.uri:
                raise _problem(
                    "uri carries credentials (user@host, or a query string such as a presigned "
                    "URL's signature; not shown): give the fetcher its credentials through its "
                    "identity, never in the stack file"
                )
            if self.size is None:
                raise _problem("uri needs size: the emptyDir the weights are fetched into")
        else:
            extra = [k for k, v in (("size", self.size), ("fetchImage", self.fetch_image)) if v]
            if extra:
                raise _problem(f"{' and '.join(extra)} only with uri (a pvc is mounted as it is)")
        if not _MOUNT_PATH_RE.match(self.mount_path) or self.mount_path in (
            "/",
            "/tmp",
            "/dev/shm",
        ):
            raise _problem(
                f"mountPath {self.mount_path!r} must be an absolute path of letters, digits, "
                "'.', '_', '-' and '/', other than /, /tmp and /dev/shm"
            )
        if self.fetch_image is not None:
            _check_image("fetchImage", self.fetch_image)
        return self


class ModelRef(Spec):
    id: Annotated[str, Field(min_length=1, max_length=128)]
    version: str
    type: ModelType
    image: str
    storage: ModelStorage | None = None

    @model_validator(mode="after")
    def _formats(self) -> Self:
        _check_version("version", self.version)
        _check_image("image", self.image)
        return self


class Resources(Spec):
    cpu: Cpu
    memory: Memory
    gpu: GpuSpec = GpuSpec()
    storage: Memory | None = None
    bandwidth_mbps: Annotated[int, Field(ge=1, le=400_000)] | None = None
    #: A memory-backed /dev/shm of this size (tensor-parallel LLM servers need one). Pages
    #: written there count against the container's memory limit.
    shared_memory: Memory | None = None

    @model_validator(mode="after")
    def _shared_memory_fits(self) -> Self:
        if self.shared_memory is not None and memory_bytes(self.shared_memory) > memory_bytes(
            self.memory
        ):
            raise _problem(
                f"sharedMemory {self.shared_memory} is larger than memory {self.memory}: "
                "/dev/shm is counted in the memory limit; raise memory or lower sharedMemory"
            )
        return self

    @property
    def cpu_millicores(self) -> int:
        return cpu_millicores(self.cpu)

    @property
    def memory_mib(self) -> int:
        return memory_bytes(self.memory) // (1024 * 1024)


class Autoscaling(Spec):
    enabled: bool = True
    #: 0 only for queue workers (KEDA scales them to zero; an HPA cannot).
    min_replicas: Annotated[int, Field(ge=0, le=1000)] = 1
    max_replicas: Annotated[int, Field(ge=1, le=1000)] = 3
    #: The targets are exactly those named: none is implied (an HPA needs at least one).
    target_cpu_utilization: Annotated[int, Field(ge=1, le=100)] | None = None
    target_memory_utilization: Annotated[int, Field(ge=1, le=100)] | None = None
    target_gpu_utilization: Annotated[int, Field(ge=1, le=100)] | None = None
    scale_down_stabilization_seconds: Annotated[int, Field(ge=0, le=3600)] = 300

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise _problem(
                f"minReplicas ({self.min_replicas}) must be <= maxReplicas ({self.max_replicas})"
            )
        return self

    @property
    def targets(self) -> tuple[str, ...]:
        """The utilisation targets set, by config key."""
        named = (
            ("targetCpuUtilization", self.target_cpu_utilization),
            ("targetMemoryUtilization", self.target_memory_utilization),
            ("targetGpuUtilization", self.target_gpu_utilization),
        )
        return tuple(key for key, value in named if value is not None)


class HealthCheck(Spec):
    path: str = "/health"
    interval_seconds: Annotated[int, Field(ge=1, le=300)] = 10
    timeout_seconds: Annotated[int, Field(ge=1, le=60)] = 2
    failure_threshold: Annotated[int, Field(ge=1, le=30)] = 3

    @model_validator(mode="after")
    def _path(self) -> Self:
        if not self.path.startswith("/") or any(c.isspace() for c in self.path):
            raise _problem(f"path {self.path!r} must start with '/' and contain no spaces")
        return self


class LoadBalancerSpec(Spec):
    enabled: bool = True
    algorithm: Algorithm = Algorithm.round_robin
    health_check: HealthCheck = HealthCheck()
    sticky_sessions: bool = False

    @model_validator(mode="after")
    def _sticky(self) -> Self:
        if self.sticky_sessions and self.algorithm is not Algorithm.round_robin:
            raise _problem(
                f"stickySessions needs algorithm round_robin (got {self.algorithm.value}): "
                "ip_hash is already sticky per client address and least_connections "
                "cannot be combined with cookie affinity"
            )
        return self


class Strategy(Spec):
    type: StrategyType = StrategyType.rolling
    #: rolling only: extra pods during a rollout, as a count or a percentage.
    max_surge: int | str | None = None
    #: rolling only: pods that may be unavailable during a rollout.
    max_unavailable: int | str | None = None
    #: canary only: share of traffic (percent) sent to the canary; 100 while
    #: `promote --shift` moves all of it (the stable track stays, warm).
    weight: Annotated[int, Field(ge=1, le=100)] | None = None
    #: canary only: model version and image of the canary track.
    canary_version: str | None = None
    canary_image: str | None = None
    #: canary only: replicas of the canary track.
    canary_replicas: Annotated[int, Field(ge=1, le=1000)] | None = None

    @model_validator(mode="after")
    def _params_for_type(self) -> Self:
        owners = {
            "maxSurge": (self.max_surge, StrategyType.rolling),
            "maxUnavailable": (self.max_unavailable, StrategyType.rolling),
            "weight": (self.weight, StrategyType.canary),
            "canaryVersion": (self.canary_version, StrategyType.canary),
            "canaryImage": (self.canary_image, StrategyType.canary),
            "canaryReplicas": (self.canary_replicas, StrategyType.canary),
        }
        for key, (value, owner) in owners.items():
            if value is not None and self.type is not owner:
                raise _problem(
                    f"{key} is only allowed with type {owner.value} (type is {self.type.value})"
                )
        if self.type is StrategyType.canary:
            missing = [
                k for k in ("weight", "canaryVersion", "canaryImage") if owners[k][0] is None
            ]
            if missing:
                raise _problem(f"type canary needs {', '.join(missing)}")
            assert self.canary_version is not None and self.canary_image is not None
            _check_version("canaryVersion", self.canary_version)
            _check_image("canaryImage", self.canary_image)
        for key in ("maxSurge", "maxUnavailable"):
            value = owners[key][0]
            if isinstance(value, str) and not re.fullmatch(r"\d{1,3}%", value):
                raise _problem(f"{key} {value!r} must be a count or a percentage such as '25%'")
            if key == "maxUnavailable" and isinstance(value, str) and int(value[:-1]) > 100:
                raise _problem(f"maxUnavailable {value!r} must be at most '100%'")
            if isinstance(value, int) and value < 0:
                raise _problem(f"{key} ({value}) must be >= 0")
        # Both zero is refused by validation.deployment_checks, which also sees the defaults.
        return self


class Queue(Spec):
    """Work queue an async deployment consumes; KEDA scales the workers on its depth."""

    kind: QueueKind
    name: Annotated[str, Field(min_length=1, max_length=255)]
    target_depth: Annotated[int, Field(ge=1, le=100_000)] = 10
    #: KEDA's activation threshold: the depth above which workers scale up from zero
    #: (rabbitmq ``activationValue``, kafka ``activationLagThreshold``, redis
    #: ``activationListLength``). Required with ``autoscaling.minReplicas: 0``.
    activation_depth: Annotated[int, Field(ge=0, le=100_000)] | None = None
    #: Kubernetes Secret (same namespace) holding the connection string ...
    connection_secret: Name
    #: ... under this key (QUEUE_URL in the pod; KEDA reads it from there).
    connection_secret_key: Annotated[
        str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    ] = "url"


_METRIC_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _metric_name(value: str) -> str:
    if not _METRIC_RE.match(value) or len(value) > 200:
        raise _problem(f"{value!r} is not a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)")
    return value


def _label_name(value: str) -> str:
    if not _LABEL_NAME_RE.match(value) or value.startswith("__") or len(value) > 100:
        raise _problem(f"{value!r} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)")
    return value


def _http_path(value: str) -> str:
    if not value.startswith("/") or any(c.isspace() or c in "\"'{}" for c in value):
        raise _problem(f"{value!r} must start with '/' and contain no spaces, quotes or braces")
    return value


MetricName = Annotated[str, AfterValidator(_metric_name)]
LabelName = Annotated[str, AfterValidator(_label_name)]
HttpPath = Annotated[str, AfterValidator(_http_path)]


class Scrape(Spec):
    """Where and how often Prometheus scrapes the model's metrics."""

    path: HttpPath = "/metrics"
    #: Container port serving the metrics (default: the deployment's ``port``).
    port: Annotated[int, Field(ge=1024, le=65535)] | None = None
    interval_seconds: Annotated[int, Field(ge=5, le=300)] = 30


class Slo(Spec):
    """Service level objectives; the alerts and the promotion gate compare against them."""

    latency_p99_ms: Annotated[int, Field(ge=1, le=600_000)] = 500
    error_rate_percent: Annotated[float, Field(gt=0, le=100)] = 1.0
    availability_percent: Annotated[float, Field(ge=50, lt=100)] = 99.5


class Alert(Spec):
    enabled: bool = True
    severity: Severity = Severity.warning


class Alerts(Spec):
    """One toggle and severity per alert of the deployment's PrometheusRule."""

    error_rate: Alert = Alert(severity=Severity.critical)
    latency: Alert = Alert()
    replicas_unavailable: Alert = Alert(severity=Severity.critical)
    gpu_saturation: Alert = Alert()
    canary_worse: Alert = Alert()


class MetricNames(Spec):
    """The series the model server exposes (defaults: examples/model-server)."""

    #: Histogram of request latency in seconds (``_bucket``, ``_sum``, ``_count``).
    request_duration: MetricName = "model_request_duration_seconds"
    #: Counter of requests answered.
    requests: MetricName = "model_requests_total"
    #: Label holding the HTTP status code.
    status_label: LabelName = "status"
    #: Label holding the route, and the route that serves predictions.
    route_label: LabelName = "route"
    route: HttpPath = "/predict"


class Monitoring(Spec):
    """Metrics, SLO rules, alerts and a dashboard for one deployment (see docs/monitoring.md)."""

    enabled: bool = True
    scrape: Scrape = Scrape()
    slo: Slo = Slo()
    alerts: Alerts = Alerts()
    metrics: MetricNames = MetricNames()
    #: Namespace of Prometheus: admitted to the metrics port by a NetworkPolicy.
    namespace: Name = "monitoring"
    #: Prometheus the promotion gate and `servestack status` query (http or https URL).
    prometheus_url: Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=500)] | None = (
        None
    )


class Spread(StrEnum):
    """How hard the scheduler spreads a deployment's replicas over a topology."""

    off = "off"
    #: ScheduleAnyway: spread when it can, never leave a pod Pending for it.
    prefer = "prefer"
    #: DoNotSchedule: a pod that would unbalance the spread stays Pending.
    require = "require"


class TopologySpread(Spec):
    """Spread replicas over nodes and zones (maxSkew 1). Unset keys take the environment's
    default (servestack.config.defaults): production prefers spreading over nodes."""

    node: Spread | None = None
    zone: Spread | None = None


class NodeOperator(StrEnum):
    In = "In"
    NotIn = "NotIn"
    Exists = "Exists"
    DoesNotExist = "DoesNotExist"


_LABEL_KEY_RE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)


class NodeRequirement(Spec):
    """One node label requirement: every requirement of the list must hold."""

    key: Annotated[str, Field(max_length=316, pattern=_LABEL_KEY_RE.pattern)]
    operator: NodeOperator = NodeOperator.In
    values: tuple[Annotated[str, Field(max_length=63, pattern=_LABEL_VALUE_RE.pattern)], ...] = ()

    @model_validator(mode="after")
    def _values_for_operator(self) -> Self:
        listed = self.operator in (NodeOperator.In, NodeOperator.NotIn)
        if listed and not self.values:
            raise _problem(f"operator {self.operator.value} needs values")
        if not listed and self.values:
            raise _problem(f"operator {self.operator.value} takes no values")
        return self


class Affinity(Spec):
    """A small, typed subset of Kubernetes affinity.

    Supported: required node label requirements (one term: all must hold), and
    anti-affinity of the deployment's replicas to each other per node. Not supported:
    preferred node affinity, several OR-ed node terms, pod affinity, anti-affinity to other
    applications or per zone (use ``topologySpread.zone``).
    """

    node_requirements: tuple[NodeRequirement, ...] = ()
    #: Keep replicas of this deployment off each other's nodes.
    pod_anti_affinity: Spread = Spread.off


_COMMAND_ITEM = Annotated[str, Field(min_length=1, max_length=4096)]

#: The Gateway API's hostname (RFC 1123, lower case, an optional leading `*.` label).
_HOSTNAME_RE = re.compile(
    r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_IPV4_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
#: The characters the Gateway API admits in a PathPrefix value (and %-escapes).
_ROUTE_PATH_RE = re.compile(r"^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+$")
#: At most this many hostnames per HTTPRoute (the Gateway API's limit).
MAX_HOSTNAMES = 16


def _hostname(value: str) -> str:
    if _IPV4_RE.match(value) or (":" in value and set(value) <= set("0123456789abcdef:.")):
        raise _problem(
            f"{value[:60]!r} is an address, not a hostname: an HTTPRoute matches the Host header "
            "by DNS name (e.g. api.example.com or *.example.com)"
        )
    if len(value) > 253 or not _HOSTNAME_RE.match(value):
        raise _problem(
            f"{value[:60]!r} is not a hostname: lower-case DNS labels of letters, digits and "
            "'-' joined by '.', at most 253 characters, optionally starting with '*.' "
            "(e.g. api.example.com or *.example.com); no scheme, port or path"
        )
    return value


def _hostname_list(value: object) -> object:
    if isinstance(value, str):
        raise _problem(f"{value[:60]!r} is one hostname: write a list ([{value[:60]}])")
    return value


def _gateway_ref(value: object) -> object:
    if isinstance(value, str):
        raise _problem(
            f"{value[:60]!r} is not allowed: write {{name: {value[:60]}}}, with namespace: "
            "when the Gateway is in another namespace than the deployment"
        )
    return value


def _namespace_name(value: str) -> str:
    if len(value) > 63 or not DNS_LABEL_RE.match(value):
        raise _problem(
            f"{value[:70]!r} is not a namespace name (a DNS-1123 label: at most 63 lower-case "
            "letters, digits and '-', starting and ending with a letter or digit)"
        )
    return value


def _hostnames(value: tuple[str, ...]) -> tuple[str, ...]:
    dup = sorted({v for v in value if value.count(v) > 1})
    if dup:
        raise _problem(f"{', '.join(dup)} listed more than once")
    return value


def _route_path(value: str) -> str:
    bad = [
        why
        for why, hit in (
            ("start with '/'", not value.startswith("/")),
            ("contain no '//'", "//" in value),
            (
                "contain no '/./' or '/../' and not end in '/.' or '/..'",
                "/./" in value or "/../" in value or value.endswith(("/.", "/..")),
            ),
            ("contain no '#' and no encoded '/' (%2F)", "#" in value or "%2f" in value.lower()),
            (
                "use only letters, digits, %-escapes and -/._~!$&'()*+,;=:@ (no spaces, "
                "quotes, '?' or braces)",
                not _ROUTE_PATH_RE.match(value),
            ),
        )
        if hit
    ]
    if bad or len(value) > 1024:
        rule = bad[0] if bad else "be at most 1024 characters"
        raise _problem(f"{value[:60]!r} is not a path prefix: it must {rule} (e.g. /v1/chat)")
    return value


Hostname = Annotated[str, AfterValidator(_hostname)]
RoutePath = Annotated[str, AfterValidator(_route_path)]


class GatewayRef(Spec):
    """The Gateway an HTTPRoute attaches to. It is the platform's: servestack never creates
    it, and its listeners must admit routes from the deployment's namespace."""

    name: Annotated[str, AfterValidator(_subdomain)]
    #: Default: the deployment's namespace.
    namespace: Annotated[str, AfterValidator(_namespace_name)] | None = None


class Route(Spec):
    """External traffic through the Gateway API: one HTTPRoute per deployment, attached to
    a named Gateway, whose backends are the stable (and canary) track Services weighted as
    the canary says."""

    gateway: Annotated[GatewayRef, BeforeValidator(_gateway_ref)]
    #: Host headers the route matches (none: every host the Gateway's listener serves;
    #: refused in production).
    hostnames: Annotated[
        tuple[Hostname, ...],
        Field(max_length=MAX_HOSTNAMES),
        BeforeValidator(_hostname_list),
        AfterValidator(_hostnames),
    ] = ()
    #: Path prefix the route matches.
    path: RoutePath = "/"


class DeploymentSpec(Spec):
    name: Name
    description: Annotated[str, Field(max_length=500)] = ""
    model: ModelRef
    processing: Processing = Processing.sync
    resources: Resources
    replicas: Annotated[int, Field(ge=0, le=1000)] | None = None
    active: bool = True
    autoscaling: Autoscaling | None = None
    load_balancer: LoadBalancerSpec | None = None
    strategy: Strategy = Strategy()
    #: The Deployment that runs the stable track (see :class:`Slot`); `promote --shift`
    #: moves it to the canary's.
    stable_slot: Slot = Slot.main
    queue: Queue | None = None
    port: Annotated[int, Field(ge=1024, le=65535)] = 8080
    #: Default per environment (servestack.config.defaults): on in production, else off.
    monitoring: Monitoring | None = None
    env: EnvMap = {}
    #: Names of env vars whose values are Pulumi secrets under `servestack:secrets.<name>`.
    secret_env: tuple[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], ...] = ()
    tags: Tags = {}
    #: Names of existing image pull Secrets (never their content). Inherited from the
    #: stack's ``imagePullSecrets`` unless the deployment lists its own, which replace them.
    image_pull_secrets: PullSecrets = ()
    #: The container's entrypoint and its arguments (default: the image's).
    command: Annotated[tuple[_COMMAND_ITEM, ...], Field(min_length=1, max_length=64)] | None = None
    args: Annotated[tuple[_COMMAND_ITEM, ...], Field(max_length=256)] | None = None
    #: An existing PriorityClass.
    priority_class_name: Annotated[str, AfterValidator(_subdomain)] | None = None
    topology_spread: TopologySpread = TopologySpread()
    affinity: Affinity = Affinity()
    #: External traffic: an HTTPRoute attached to an existing Gateway.
    route: Route | None = None
    #: Filled from the stack's `servestack:environment` when the deployment is part of a stack.
    environment: Environment = Environment.development
    #: Filled from the stack's `servestack:namespace`; the same default as the stack's.
    namespace: Name = DEFAULT_NAMESPACE

    @model_validator(mode="after")
    def _processing_shape(self) -> Self:
        if self.processing is Processing.async_:
            if self.queue is None:
                raise _problem("processing async needs queue (kind, name, connectionSecret)")
            if self.load_balancer is not None:
                raise _problem(
                    "loadBalancer is only for processing sync: async workers "
                    "take work from their queue, not from a Service"
                )
            if self.strategy.type is not StrategyType.rolling:
                raise _problem(
                    f"strategy {self.strategy.type.value} needs processing sync "
                    "(it splits or switches request traffic)"
                )
            if self.autoscaling is not None and self.autoscaling.target_gpu_utilization:
                raise _problem(
                    "autoscaling.targetGpuUtilization is not supported for processing "
                    "async: KEDA scales workers on queue depth, CPU and memory"
                )
            if self.route is not None:
                raise _problem(
                    "route is only for processing sync: async workers take work from "
                    "their queue, not from a Gateway"
                )
        elif self.queue is not None:
            raise _problem("queue is only for processing async")
        clash = sorted(set(self.secret_env) & set(self.env))
        if clash:
            raise _problem(
                f"secretEnv {', '.join(clash)} also set in env: a value is either "
                "plain (env) or secret (secretEnv), not both"
            )
        if self.stable_slot is Slot.canary and self.strategy.type is StrategyType.blue_green:
            raise _problem(
                "stableSlot canary is only for strategy rolling or canary: blue-green keys "
                "the stable Deployment by version (stableSlot main)"
            )
        if (
            self.strategy.type is StrategyType.canary
            and self.load_balancer is not None
            and not self.load_balancer.enabled
        ):
            raise _problem(
                "strategy canary needs loadBalancer.enabled: the canary weight is "
                "applied by the mesh's routes"
            )
        return self


#: Deployment fields filled from the stack when a deployment leaves them out; the review
#: tool diffs them once, at the stack level.
INHERITED_FIELDS = ("environment", "namespace", "imagePullSecrets")


class StackConfig(Spec):
    environment: Environment = Environment.development
    target: Target = Target.render
    namespace: Name = DEFAULT_NAMESPACE
    #: Image pull Secrets (names only) of every deployment that lists none of its own.
    image_pull_secrets: PullSecrets = ()
    cluster: ClusterSpec
    node_pools: tuple[NodePoolSpec, ...] = ()
    deployments: tuple[DeploymentSpec, ...] = ()
    #: Reviewed allowances for replacements in production (see docs/review.md).
    allow_replacements: tuple[Allowance, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _inherit(cls, data: Any) -> Any:
        """Give each deployment the stack's environment, namespace and image pull Secrets
        unless it sets them."""
        if not isinstance(data, dict):
            return data
        env = data.get("environment", Environment.development.value)
        namespace = data.get("namespace", DEFAULT_NAMESPACE)
        pull = data.get("imagePullSecrets")
        inherited: dict[str, Any] = {}
        # Invalid stack-level values are reported once, at the stack level.
        if isinstance(env, str) and env in {e.value for e in Environment}:
            inherited["environment"] = env
        if (
            isinstance(namespace, str)
            and DNS_LABEL_RE.match(namespace)
            and len(namespace) <= MAX_NAME_LEN
        ):
            inherited["namespace"] = namespace
        if isinstance(pull, list | tuple) and all(
            isinstance(p, str) and _SUBDOMAIN_RE.match(p) for p in pull
        ):
            # Checked once, at the stack level; a deployment's own list replaces it.
            inherited["imagePullSecrets"] = pull
        deployments = data.get("deployments")
        if isinstance(deployments, list):
            data = {
                **data,
                "deployments": [
                    {**inherited, **d} if isinstance(d, dict) else d for d in deployments
                ],
            }
        return data


class Allowance(Spec):
    """An explicit, reasoned permission for one replacement or deletion in production.

    It names the edit it allows: the field and its values before and after (``to: null``
    for a deletion; a whole deployment or node pool, being long, by the fingerprint that
    ``servestack diff`` prints). It covers exactly that edit, so once applied it allows
    nothing more (see docs/review.md, "The production gate").
    """

    path: Annotated[str, Field(min_length=1)]
    before: Any = Field(alias="from")
    after: Any = Field(alias="to")
    reason: Annotated[str, Field(min_length=10)]

    @model_validator(mode="before")
    @classmethod
    def _names_the_edit(cls, data: Any) -> Any:
        if isinstance(data, dict) and ("from" not in data or "to" not in data):
            path = data.get("path", "<field path>")
            raise _problem(
                f"{{path, reason}} without from and to is no longer accepted: an entry allows "
                f"one edit; write {{path: {path}, from: <value before>, to: <value after, "
                "null for a deletion>, reason: ...} (servestack diff prints the entry)"
            )
        return data

    @model_validator(mode="after")
    def _one_field_or_one_item(self) -> Self:
        parts = self.path.split(".")
        if parts[0] in ("deployments", "nodePools"):
            if len(parts) == 1:
                raise _problem(
                    f"path {self.path!r} is not allowed: name one field "
                    f"({parts[0]}.<name>.<field>) or one item to delete ({parts[0]}.<name>)"
                )
            if len(parts) == 2 and self.after is not None:
                raise _problem(
                    f"path {self.path!r} names a whole {parts[0][:-1]}: it allows only its "
                    f"deletion (to: null); to allow an edit, name its field "
                    f"({self.path}.<field>)"
                )
            if len(parts) == 2:
                return self
        if not _is_leaf(StackConfig, parts) or parts[0] == "allowReplacements":
            raise _problem(
                f"path {self.path!r} is not allowed: an entry names one field of the stack "
                "config (such as nodePools.<name>.machineType), never a prefix of several"
            )
        return self


def _is_leaf(model: type[BaseModel], parts: list[str]) -> bool:
    """Whether ``parts`` (camelCase keys, list items by name) names one field of ``model``
    that holds a value, or one key of a mapping field (``env.HF_HOME``)."""
    by_alias = {f.alias or n: f for n, f in model.model_fields.items()}
    field = by_alias.get(parts[0]) if parts else None
    if field is None:
        return False
    rest = parts[1:]
    inner = _bare(field.annotation)
    if get_origin(inner) is tuple:
        inner = _bare(get_args(inner)[0])
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            rest = rest[1:]  # the item's name
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return bool(rest) and _is_leaf(inner, rest)
    if get_origin(inner) is dict:
        return len(rest) <= 1
    return not rest


def _bare(annotation: Any) -> Any:
    """``X`` of ``X | None`` and ``Annotated[X, ...]``."""
    while get_origin(annotation) in (Union, UnionType, Annotated):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    return annotation


StackConfig.model_rebuild()
