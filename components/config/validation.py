"""Whole-stack validation and loading of `Pulumi.<stack>.yaml` files.

Everything here is pure: it runs before the Pulumi runtime registers anything, so a bad
config never reaches the engine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from servestack.config import capacity, paths, reader
from servestack.config.capacity import pool_machine as pool_machine
from servestack.config.defaults import effective
from servestack.config.errors import ConfigError, Problem, from_validation_error
from servestack.config.gpu import (
    gpu_info,
    node_gpu_resources,
    partition_profile,
    replica_gpu_resources,
    short_of,
    unit,
)
from servestack.config.machines import default_machine, known, machine, provider_defaults
from servestack.config.models import (
    CloudProvider,
    ClusterSpec,
    CustomGpuLabels,
    DeploymentSpec,
    Environment,
    GpuLabels,
    NodePoolSpec,
    StackConfig,
)

NAMESPACE = "servestack"
#: Pulumi secret config: `servestack:secrets.<deployment>.<ENV>` (never part of the models).
SECRETS_KEY = "secrets"
#: Key under which only the *names* of the secrets reach validation.
SECRET_NAMES = "_secretNames"


def parse_stack(raw: Any, *, source: str | None = None) -> StackConfig:
    """Validate a plain `servestack` config mapping (keys without the `servestack:` prefix)."""
    if not isinstance(raw, dict):
        raise ConfigError(
            [Problem("", f"expected a mapping of servestack keys, got {raw!r}")], source
        )
    raw = dict(raw)
    secret_names = raw.pop(SECRET_NAMES, {})
    try:
        stack = StackConfig.model_validate(raw)
    except ValidationError as exc:
        err = from_validation_error(exc, raw, StackConfig)
        raise ConfigError(err.problems, source) from None
    problems = cross_checks(stack) + secret_checks(stack, secret_names)
    if problems:
        raise ConfigError(problems, source)
    return stack


def secret_checks(stack: StackConfig, names: dict[str, list[str]] | None) -> list[Problem]:
    """Every `secretEnv` name has a secret value under `servestack:secrets`."""
    if names is None:
        return []
    problems = []
    for dep in stack.deployments:
        have = set(names.get(dep.name, ()))
        problems += [
            Problem(
                paths.deployment(dep.name, "secretEnv"),
                f"{env} has no secret value: run pulumi config set --secret --path "
                f"'{NAMESPACE}:{SECRETS_KEY}.{dep.name}.{env}' <value>",
            )
            for env in dep.secret_env
            if env not in have
        ]
    return problems


def parse_deployment(raw: Any) -> DeploymentSpec:
    """Validate one deployment given as a plain dict in the YAML shape."""
    try:
        spec = DeploymentSpec.model_validate(raw)
    except ValidationError as exc:
        name = raw.get("name") if isinstance(raw, dict) else None
        raise from_validation_error(
            exc, raw, DeploymentSpec, root=paths.deployment(name) if name else "deployment"
        ) from None
    problems = deployment_checks(spec)
    if problems:
        raise ConfigError(problems)
    return spec


def scaling_checks(dep: DeploymentSpec) -> list[Problem]:
    """The autoscaler a deployment names can do what it is asked: scale to zero only with
    KEDA and an activation threshold, and an HPA only on a target the config names."""
    scaling = dep.autoscaling
    if scaling is None or not scaling.enabled:
        return []
    path = paths.deployment(dep.name, "autoscaling")
    if dep.queue is not None:
        if scaling.min_replicas == 0 and dep.queue.activation_depth is None:
            return [
                Problem(
                    f"{path}.minReplicas",
                    "0 needs queue.activationDepth: the queue depth above which KEDA starts "
                    "a worker from zero",
                )
            ]
        return []
    if scaling.min_replicas == 0:
        return [
            Problem(
                f"{path}.minReplicas",
                "0 is only for processing async (KEDA scales queue workers to zero); "
                "an HPA keeps at least 1 replica",
            )
        ]
    if not scaling.targets:
        return [
            Problem(
                path,
                "names no target: set targetCpuUtilization, targetMemoryUtilization or "
                "targetGpuUtilization (none is implied; the former default was "
                "targetCpuUtilization: 70)",
            )
        ]
    return []


def route_checks(dep: DeploymentSpec) -> list[Problem]:
    """A production route names the hosts it serves: without hostnames an HTTPRoute takes
    every host its Gateway's listener serves, which in production is rarely meant."""
    if dep.route is None or dep.route.hostnames or dep.environment is not Environment.production:
        return []
    return [
        Problem(
            paths.deployment(dep.name, "route.hostnames"),
            "none given: production needs at least one hostname (e.g. api.example.com), or "
            "the route takes every host the Gateway serves",
        )
    ]


def deployment_checks(dep: DeploymentSpec) -> list[Problem]:
    """Rules of one deployment that need its per-environment defaults."""
    scaling = scaling_checks(dep) + route_checks(dep)
    if scaling:
        return scaling
    eff = effective(dep)
    if eff.max_surge in (0, "0%") and eff.max_unavailable in (0, "0%"):
        set_here = dep.strategy.max_surge, dep.strategy.max_unavailable
        default = f" ({dep.environment.value} default)"
        surge = f"{eff.max_surge!r}{default if set_here[0] is None else ''}"
        unavailable = f"{eff.max_unavailable!r}{default if set_here[1] is None else ''}"
        return [
            Problem(
                paths.deployment(dep.name, "strategy"),
                f"maxSurge {surge} with maxUnavailable {unavailable}: "
                "a rollout could never make progress",
            )
        ]
    return []


def custom_label_checks(
    marks: GpuLabels | CustomGpuLabels,
    deployments: Sequence[DeploymentSpec],
    pools: Sequence[NodePoolSpec] = (),
) -> list[Problem]:
    """`gpuLabels: custom` names a label value for every GPU type the stack uses."""
    if not isinstance(marks, CustomGpuLabels):
        return []
    users: dict[str, str] = {}
    for pool in pools:
        if pool.gpu.type is not None:
            users.setdefault(pool.gpu.type.value, paths.node_pool(pool.name))
    for dep in deployments:
        if dep.resources.gpu.type is not None:
            users.setdefault(dep.resources.gpu.type.value, paths.deployment(dep.name))
    given = {t.value for t in marks.values}
    listed = f"values are given for {', '.join(sorted(given))}" if given else "none is given"
    return [
        Problem(
            "cluster.customGpuLabels.values",
            f"no label value for {gpu} (used by {where}): add {gpu}: <value of "
            f"{marks.key} on its nodes>; {listed}",
        )
        for gpu, where in users.items()
        if gpu not in given
    ]


def cross_checks(stack: StackConfig) -> list[Problem]:
    """Rules that span several deployments or node pools."""
    cluster = stack.cluster
    problems = custom_label_checks(
        cluster.custom_gpu_labels or cluster.gpu_labels, stack.deployments, stack.node_pools
    )
    for kind, items in (("deployments", stack.deployments), ("nodePools", stack.node_pools)):
        counts = Counter(item.name for item in items)
        problems += [
            Problem(f"{kind}.{name}.name", f"{name!r} is used {n} times; names must be unique")
            for name, n in counts.items()
            if n > 1
        ]
    for dep in stack.deployments:
        problems += gpu_checks(dep, stack)
    problems += partitioning_checks(stack)
    for dep in stack.deployments:
        problems += deployment_checks(dep)
    problems += machine_checks(stack)
    if not problems:
        # Only a stack whose pools and replicas are each valid is packed.
        problems += capacity.at_rest_checks(stack)
    provider = stack.cluster.provider
    for pool in stack.node_pools:
        info = gpu_info(pool.gpu.type) if pool.gpu.type else None
        path = paths.node_pool(pool.name)
        if provider is CloudProvider.karpenter and pool.min_nodes > 0:
            problems.append(
                Problem(
                    f"{path}.minNodes",
                    f"{pool.min_nodes} is not allowed with "
                    "provider karpenter: it launches nodes on demand; use 0",
                )
            )
        if pool.disk_size_gb is not None and provider in (
            CloudProvider.karpenter,
            CloudProvider.existing,
            CloudProvider.local,
        ):
            problems.append(
                Problem(
                    f"{path}.diskSizeGb",
                    f"{pool.disk_size_gb} is not read "
                    f"with provider {provider}: only gke and eks create disks",
                )
            )
        if provider is CloudProvider.gke and info and info.gke_accelerator is None:
            problems.append(Problem(f"{path}.gpu.type", f"{info.type} is not offered on GKE"))
        if provider is CloudProvider.gke and pool.gpu.mig is not None:
            problems.append(
                Problem(
                    f"{path}.gpu.mig",
                    f"{pool.gpu.mig} is not allowed with provider gke: GKE partitions GPUs "
                    "itself and offers its slices as nvidia.com/gpu, while servestack's slices "
                    "are the GPU operator's (mixed strategy); use provider eks, karpenter, "
                    "existing or local",
                )
            )
        needs_machine = provider in (
            CloudProvider.gke,
            CloudProvider.eks,
            CloudProvider.karpenter,
            CloudProvider.local,
        )
        if (
            needs_machine
            and info is not None
            and pool.machine_type is None
            and default_machine(provider, info.type, pool.gpu.count) is None
        ):
            machines = provider_defaults(provider, info.type)
            listed = ", ".join(f"{n} ({m})" for n, m in sorted(machines.items())) or "none"
            problems.append(
                Problem(
                    f"{path}.machineType",
                    f"required: no default {provider} machine carries {pool.gpu.count} "
                    f"{pool.gpu.type}; defaults exist for GPUs per node: {listed}",
                )
            )
    return problems


def _offer(pool: NodePoolSpec) -> str:
    """What a pool offers, for messages: whole GPUs or one profile's slices."""
    profile = partition_profile(pool.gpu.mig)
    kind = f"{profile} slices" if profile else "whole GPUs"
    return f"{pool.name} ({pool.gpu.type} {kind})"


def gpu_checks(dep: DeploymentSpec, stack: StackConfig) -> list[Problem]:
    """A GPU deployment's GPUs (or MIG slices) are offered by a pool whose node holds them."""
    gpu = dep.resources.gpu
    if gpu.type is None or not stack.node_pools:
        return []
    same_type = [p for p in stack.node_pools if p.gpu.type == gpu.type]
    if not same_type:
        offered = {p.gpu.type for p in stack.node_pools}
        names = ", ".join(sorted(t.value for t in offered if t is not None))
        return [
            Problem(
                paths.deployment(dep.name, "resources.gpu.type"),
                f"{gpu.type.value} is offered by no node pool; declared pools offer: {names}",
            )
        ]
    pools = [p for p in same_type if partition_profile(p.gpu.mig) == gpu.mig]
    if not pools:
        offers = ", ".join(_offer(p) for p in same_type)
        what = f"{gpu.mig} slices of {gpu.type}" if gpu.mig else f"whole {gpu.type} GPUs"
        return [
            Problem(
                paths.deployment(dep.name, "resources.gpu.mig"),
                f"{gpu.mig or 'none'}: no node pool offers {what}; {gpu.type} pools offer: "
                f"{offers}",
            )
        ]
    wants = replica_gpu_resources(gpu.type, gpu.count, gpu.mig)
    per_node = [node_gpu_resources(gpu.type, p.gpu.count, p.gpu.mig) for p in pools]
    if all(short_of(wants, offer) for offer in per_node):
        (resource,) = wants
        most = max(offer.get(resource, 0) for offer in per_node)
        return [
            Problem(
                paths.deployment(dep.name, "resources.gpu.count"),
                f"{gpu.count} {unit(resource)} per replica, but the largest {gpu.type} node "
                f"has {most}",
            )
        ]
    return fit_checks(dep, pools, stack.cluster)


def partitioning_checks(stack: StackConfig) -> list[Problem]:
    """A pool partitioned into MIG slices serves deployments asking for slices: where its GPU
    type's deployments all ask for whole GPUs, no pod could use its nodes. (A deployment asking
    for a slice no pool offers is refused by :func:`gpu_checks`.)"""
    problems = []
    for pool in stack.node_pools:
        users = [d for d in stack.deployments if d.resources.gpu.type == pool.gpu.type]
        if pool.gpu.mig is None or not users or any(d.resources.gpu.mig for d in users):
            continue
        problems.append(
            Problem(
                paths.node_pool(pool.name, "gpu.mig"),
                f"{pool.gpu.mig} partitions every {pool.gpu.type} into slices, but its "
                f"deployments ask for whole GPUs: {', '.join(d.name for d in users)}; "
                "drop mig or give them resources.gpu.mig",
            )
        )
    return problems


def machine_checks(stack: StackConfig) -> list[Problem]:
    """A named machine type is one of the table's, carrying the pool's GPUs."""
    problems = []
    for pool in stack.node_pools:
        if pool.machine_type is None or pool.gpu.type is None:
            continue
        shape = machine(pool.machine_type, pool.gpu.type)
        path = paths.node_pool(pool.name, "machineType")
        if shape is None:
            problems.append(
                Problem(
                    path,
                    f"{pool.machine_type} is not a known machine carrying {pool.gpu.type}; "
                    f"known: {', '.join(known(pool.gpu.type))}",
                )
            )
        elif shape.gpus != pool.gpu.count:
            problems.append(
                Problem(
                    path,
                    f"{shape.describe()} carries {shape.gpus} GPUs, "
                    f"but gpu.count is {pool.gpu.count}",
                )
            )
    return problems


def fit_checks(
    dep: DeploymentSpec, pools: list[NodePoolSpec], cluster: ClusterSpec
) -> list[Problem]:
    """One replica must fit one node of some pool offering its GPU, by what the node offers
    pods (allocatable: CPU, memory, ephemeral storage, GPUs)."""
    pool = capacity.pools_by_gpu(StackConfig(cluster=cluster, node_pools=tuple(pools)))
    found = pool.get(dep.resources.gpu.type) if dep.resources.gpu.type else None
    return capacity.fit_problems(dep, found) if found is not None else []


def read_stack_file(path: str | Path) -> dict[str, Any]:
    """Read the `servestack:*` keys of a `Pulumi.<stack>.yaml` file, prefix removed.

    The file goes through :mod:`servestack.config.reader`, which bounds its size, nesting
    and aliases.

    Raises:
        ConfigError: the file is missing, too large, or not YAML of the expected shape.
    """
    _text, doc = reader.read_document(path)
    return servestack_keys(doc, source=str(path))


def read_stack_text(text: str, *, source: str | None = None) -> dict[str, Any]:
    """The `servestack:*` keys of a stack file's text, prefix removed (bounded as files are)."""
    return servestack_keys(reader.load_yaml(text, source=source), source=source)


def servestack_keys(doc: Any, *, source: str | None = None) -> dict[str, Any]:
    """The `servestack:*` keys of a parsed stack file, prefix removed; secrets by name only."""
    doc = doc or {}
    config = doc.get("config", {}) if isinstance(doc, dict) else None
    if not isinstance(config, dict):
        raise ConfigError([Problem("config", "must be a mapping of keys")], source)
    raw = {
        k.split(":", 1)[1]: v
        for k, v in config.items()
        if isinstance(k, str) and k.startswith(f"{NAMESPACE}:")
    }
    secrets = raw.pop(SECRETS_KEY, None)
    if secrets is not None:
        raw[SECRET_NAMES] = _secret_names(secrets, source)
    return raw


def _secret_names(secrets: Any, source: str | None) -> dict[str, list[str]] | None:
    """Names under `servestack:secrets`, checked to be encrypted; values never leave here."""
    if _is_secure(secrets):
        return None  # the whole map is one ciphertext: names are checked at deploy time
    if not isinstance(secrets, dict):
        raise ConfigError(
            [
                Problem(
                    SECRETS_KEY,
                    "must map deployment names to secret values "
                    "(pulumi config set --secret --path ...)",
                )
            ],
            source,
        )
    names: dict[str, list[str]] = {}
    problems = []
    for dep, values in secrets.items():
        if not isinstance(values, dict):
            problems.append(Problem(f"{SECRETS_KEY}.{dep}", "must map env names to secrets"))
            continue
        names[str(dep)] = sorted(values)
        for key, value in values.items():
            if not _is_secure(value):
                problems.append(
                    Problem(
                        f"{SECRETS_KEY}.{dep}.{key}",
                        "is stored in plain text: set it with pulumi config set --secret "
                        f"--path '{NAMESPACE}:{SECRETS_KEY}.{dep}.{key}'",
                    )
                )
    if problems:
        raise ConfigError(problems, source)
    return names


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def load_stack_config(path: str | Path) -> StackConfig:
    """Read and validate a `Pulumi.<stack>.yaml` file.

    Raises:
        ConfigError: one line per problem, each naming the path, the value and what is allowed.
    """
    return parse_stack(read_stack_file(path), source=str(path))


def parse_node_pool(
    spec: NodePoolSpec | dict[str, Any], cluster: ClusterSpec | dict[str, Any]
) -> tuple[NodePoolSpec, ClusterSpec]:
    """Validate a node pool and its cluster given as models or YAML-shaped dicts."""
    try:
        cl = cluster if isinstance(cluster, ClusterSpec) else ClusterSpec.model_validate(cluster)
    except ValidationError as exc:
        raise from_validation_error(exc, cluster, ClusterSpec, root="cluster") from None
    try:
        pool = spec if isinstance(spec, NodePoolSpec) else NodePoolSpec.model_validate(spec)
    except ValidationError as exc:
        name = spec.get("name") if isinstance(spec, dict) else None
        raise from_validation_error(
            exc, spec, NodePoolSpec, root=paths.node_pool(name) if name else "nodePool"
        ) from None
    problems = [p for p in cross_checks(StackConfig(cluster=cl, node_pools=(pool,)))]
    if problems:
        raise ConfigError(problems)
    return pool, cl
