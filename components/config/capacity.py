"""The capacity model: what each node of a pool offers pods, and what a pool can ever hold.

A node offers its *allocatable* resources, not its machine's capacity: the kubelet and the
system keep reserves, and the scheduler places pods by what is left. The reserves are the
providers' published ones, by the catalogue the machine comes from:

* EC2 (EKS, Karpenter, the local cluster's stand-ins): the EKS AMI's kubelet config
  (awslabs/amazon-eks-ami, ``bootstrap``/nodeadm's ``kubeReserved``; Karpenter computes the
  same defaults): CPU 6 % of the first core, 1 % of the second, 0.5 % of the third and
  fourth, 0.25 % of each core above four; memory ``11 MiB x maxPods + 255 MiB``; ephemeral
  storage 1 GiB; and the eviction thresholds ``memory.available < 100Mi`` and
  ``nodefs.available < 10%``.
* GCE (GKE, cloud.google.com/kubernetes-engine/docs/concepts/plan-node-sizes): CPU as
  above; memory 25 % of the first 4 GiB, 20 % of the next 4 GiB, 10 % of the next 8 GiB,
  6 % of the next 112 GiB and 2 % above 128 GiB (255 MiB below 1 GiB), plus the 100 MiB
  eviction threshold; ephemeral storage ``min(50 %, 6 GiB + 35 %, 100 GiB)`` of the boot
  disk plus the 10 % eviction threshold.
* Karpenter's kwok cloud provider (the local cluster's Karpenter, node class
  ``LOCAL_NODE_CLASS``): every instance type carries one fixed overhead, kube-reserved
  100m CPU and 10Mi memory, hard-coded in sigs.k8s.io/karpenter v1.14.1
  ``kwok/cloudprovider/helpers.go`` (``newInstanceType``), with no eviction threshold and no
  storage reserve. Its nodes advertise the instance type's resources less that; the
  instance types are the machine table's (:mod:`servestack.manifests.instance_types`).
  On EKS the same NodePool gets the EC2 reserves above.

The `local` pools' Node objects advertise exactly these allocatable amounts
(:func:`servestack.manifests.node_pools.local_nodes`), so this model and the live scheduler
decide alike. Everything counts in base units: CPU in millicores, memory and storage in
bytes, pods and GPUs (by their resource name) as counts.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from servestack.config import paths
from servestack.config.defaults import effective
from servestack.config.errors import Problem
from servestack.config.gpu import (
    GPU_RESOURCE,
    GpuType,
    node_gpu_resources,
    replica_gpu_resources,
    slice_resource,
    unit,
)
from servestack.config.machines import Family, Machine, default_machine, machine
from servestack.config.models import (
    LOCAL_NODE_CLASS,
    CloudProvider,
    ClusterSpec,
    DeploymentSpec,
    NodePoolSpec,
    Resources,
    StackConfig,
    StrategyType,
)
from servestack.config.quantities import format_cpu, format_memory, memory_bytes

CPU, MEMORY, STORAGE, PODS = "cpu", "memory", "ephemeral-storage", "pods"
GIB, MIB = 1024**3, 1024**2
#: Amounts per resource name, in base units.
Amounts = dict[str, int]

#: kubelet `evictionHard memory.available` on both providers.
EVICTION_MEMORY = 100 * MIB
#: kubelet `evictionHard nodefs.available` on both providers (percent of the disk).
EVICTION_NODEFS_PERCENT = 10
#: What Karpenter's kwok provider keeps from every instance type (its kube-reserved; see the
#: module's docstring), by resource.
KWOK_OVERHEAD: Mapping[str, int] = {CPU: 100, MEMORY: 10 * MIB}


def cpu_reserve_millicores(vcpu: int) -> int:
    """Kubelet CPU reserve, the same tiers on EKS and GKE (rounded up to whole millicores)."""
    tiers = ((1, 60.0), (1, 10.0), (2, 5.0), (math.inf, 2.5))  # (cores, millicores per core)
    left, total = float(vcpu), 0.0
    for cores, per in tiers:
        used = min(left, cores)
        total += used * per
        left -= used
    return math.ceil(total)


def gke_memory_reserve(memory: int) -> int:
    """GKE's kube-reserved memory for a machine of ``memory`` bytes (without eviction)."""
    if memory < GIB:
        return 255 * MIB
    tiers = ((4 * GIB, 25), (4 * GIB, 20), (8 * GIB, 10), (112 * GIB, 6), (math.inf, 2))
    left, total = float(memory), 0.0
    for size, percent in tiers:
        used = min(left, size)
        total += used * percent / 100
        left -= used
    return math.ceil(total)


def eks_memory_reserve(max_pods: int) -> int:
    """The EKS AMI's kube-reserved memory: 11 MiB per pod the node accepts, plus 255 MiB."""
    return (11 * max_pods + 255) * MIB


def storage_reserve(family: Family, disk: int) -> int:
    """Ephemeral storage kept from pods on a disk of ``disk`` bytes (reserve + eviction)."""
    eviction = math.ceil(disk * EVICTION_NODEFS_PERCENT / 100)
    if family is Family.gce:
        return eviction + math.ceil(min(disk * 0.5, 6 * GIB + disk * 0.35, 100 * GIB))
    return eviction + GIB


@dataclass(frozen=True)
class NodeShape:
    """One node of a pool: its machine and what it offers pods."""

    machine: Machine
    capacity: Mapping[str, int]
    allocatable: Mapping[str, int]

    def describe(self) -> str:
        a = self.allocatable
        return (
            f"{self.machine.name}: allocatable {format_cpu(a[CPU])} CPU, "
            f"{format_memory(a[MEMORY])} memory, {format_memory(a[STORAGE])} storage"
        )


def node_shape(
    shape: Machine,
    *,
    disk_gib: int | None = None,
    gpus: Mapping[str, int] | None = None,
    overhead: Mapping[str, int] | None = None,
) -> NodeShape:
    """A node of machine ``shape`` (with a boot disk of ``disk_gib`` where the pool sets one),
    offering ``gpus`` (by resource name: whole GPUs unless its GPUs are partitioned). With
    ``overhead``, the node keeps exactly that (a provider's fixed reserve, as Karpenter's kwok
    provider) instead of the published kubelet reserves."""
    disk = (disk_gib or shape.ephemeral_gib) * GIB
    memory = shape.memory_gib * GIB
    capacity = {
        CPU: shape.vcpu * 1000,
        MEMORY: memory,
        STORAGE: disk,
        PODS: shape.max_pods,
        **(gpus if gpus is not None else {GPU_RESOURCE: shape.gpus}),
    }
    if overhead is not None:
        kept = {name: amount - overhead.get(name, 0) for name, amount in capacity.items()}
        return NodeShape(shape, capacity, kept)
    kube = gke_memory_reserve(memory) if shape.family is Family.gce else None
    reserved_memory = (kube if kube is not None else eks_memory_reserve(shape.max_pods)) + (
        EVICTION_MEMORY
    )
    allocatable = {
        **capacity,
        CPU: capacity[CPU] - cpu_reserve_millicores(shape.vcpu),
        # Whole MiB, rounded down: what a Node advertises stays a readable quantity.
        MEMORY: (memory - reserved_memory) // MIB * MIB,
        STORAGE: (disk - storage_reserve(shape.family, disk)) // MIB * MIB,
    }
    return NodeShape(shape, capacity, allocatable)


def quantity(name: str, amount: int) -> str:
    """An amount as a Kubernetes quantity (what a Node advertises)."""
    if name == CPU:
        return format_cpu(amount)
    if name in (MEMORY, STORAGE):
        return f"{amount // MIB}Mi" if amount % GIB else f"{amount // GIB}Gi"
    return str(amount)


def shown(name: str, amount: int) -> str:
    """An amount in the stack file's units, for messages."""
    if name == CPU:
        return format_cpu(amount)
    if name in (MEMORY, STORAGE):
        return format_memory(amount)
    return str(amount)


def pool_machine(pool: NodePoolSpec, cluster: ClusterSpec) -> Machine | None:
    """The shape of a pool's nodes: its machine type, or the default for its GPUs."""
    if pool.gpu.type is None:
        return None
    name = pool.machine_type or default_machine(cluster.provider, pool.gpu.type, pool.gpu.count)
    return machine(name, pool.gpu.type) if name else None


def pool_node(pool: NodePoolSpec, cluster: ClusterSpec) -> NodeShape | None:
    shape = pool_machine(pool, cluster)
    if shape is None:
        return None
    creates_disk = cluster.provider in (CloudProvider.gke, CloudProvider.eks)
    assert pool.gpu.type is not None
    return node_shape(
        shape,
        disk_gib=pool.disk_size_gb if creates_disk else None,
        gpus=node_gpu_resources(pool.gpu.type, pool.gpu.count, pool.gpu.mig),
        overhead=KWOK_OVERHEAD if kwok_provisioned(cluster) else None,
    )


def kwok_provisioned(cluster: ClusterSpec) -> bool:
    """Karpenter pools launched by its kwok provider (the local cluster's node class)."""
    ref = cluster.node_class
    return cluster.provider is CloudProvider.karpenter and (ref.group, ref.kind) == (
        LOCAL_NODE_CLASS.group,
        LOCAL_NODE_CLASS.kind,
    )


def pod_requests(dep: DeploymentSpec) -> Amounts:
    """What one pod of ``dep`` requests: the model container's requests, as
    :mod:`servestack.manifests.workload` writes them (ephemeral storage is
    ``resources.storage`` plus a fetched model's emptyDir, as
    :func:`servestack.manifests.storage.ephemeral` sums them; a unit test holds the two
    together). A fetching init container asks less than any model container."""
    res = dep.resources
    out = {CPU: res.cpu_millicores, MEMORY: memory_bytes(res.memory), PODS: 1}
    model = dep.model.storage
    fetched = memory_bytes(model.size) if model is not None and model.uri and model.size else 0
    storage = (memory_bytes(res.storage) if res.storage else 0) + fetched
    if storage:
        out[STORAGE] = storage
    out.update(replica_gpu_resources(res.gpu.type, res.gpu.count, res.gpu.mig))
    return out


def gpu_resource(res: Resources) -> str:
    """The resource a pod's GPUs are counted in: whole GPUs, or its MIG slices."""
    assert res.gpu.type is not None
    return slice_resource(res.gpu.type, res.gpu.mig)


def amount(n: int, resource: str, gpu: GpuType) -> str:
    """``n`` of ``resource`` in a message's words: ``4 x L4``, ``56 x H200 1g.18gb slices``."""
    if resource == GPU_RESOURCE:
        return f"{n} x {gpu.value}"
    return f"{n} x {gpu.value} {unit(resource)}"


def fits(pod: Mapping[str, int], free: Mapping[str, int]) -> bool:
    return all(amount <= free.get(name, 0) for name, amount in pod.items())


def short_of(pod: Mapping[str, int], free: Mapping[str, int]) -> list[str]:
    """The resources a pod asks more of than ``free`` offers."""
    return [name for name, amount in pod.items() if amount > free.get(name, 0)]


@dataclass(frozen=True)
class Pool:
    """The nodes GPU pods of one type may land on: the pools offering it (usually one)."""

    gpu: GpuType
    pools: tuple[NodePoolSpec, ...]
    nodes: tuple[NodeShape, ...]
    provider: CloudProvider

    @property
    def name(self) -> str:
        return ", ".join(p.name for p in self.pools)

    @property
    def label(self) -> str:
        return f"pool{'s' if len(self.pools) > 1 else ''} {self.name}"

    def ceiling(self, pool: NodePoolSpec) -> int:
        """Nodes the pool can ever have. The local cluster has no autoscaler: its pools are
        their `minNodes` Node objects."""
        return pool.min_nodes if self.provider is CloudProvider.local else pool.max_nodes

    @property
    def max_nodes(self) -> int:
        return sum(self.ceiling(p) for p in self.pools)

    @property
    def min_nodes(self) -> int:
        return sum(p.min_nodes for p in self.pools)

    @property
    def autoscaled(self) -> bool:
        return self.max_nodes > self.min_nodes

    def node_list(self, limit: int | None = None) -> list[tuple[NodePoolSpec, NodeShape]]:
        """Every node the pools can have, pool by pool (the first ``limit`` of them)."""
        out = [
            (p, shape)
            for p, shape in zip(self.pools, self.nodes, strict=True)
            for _ in range(self.ceiling(p))
        ]
        return out if limit is None else out[:limit]

    def at_most(self, resource: str = GPU_RESOURCE) -> int:
        return sum(s.allocatable.get(resource, 0) * self.ceiling(p) for p, s in self._pairs())

    def _pairs(self) -> Iterable[tuple[NodePoolSpec, NodeShape]]:
        return zip(self.pools, self.nodes, strict=True)

    def holds(self, resource: str = GPU_RESOURCE) -> str:
        """What the pool holds at most, in the words a verdict uses (``4 x L4``)."""
        return amount(self.at_most(resource), resource, self.gpu)


def pools_by_gpu(stack: StackConfig) -> dict[GpuType, Pool]:
    """One :class:`Pool` per GPU type the stack's node pools offer (pools with an unknown
    machine are left out: validation refuses them)."""
    grouped: dict[GpuType, list[tuple[NodePoolSpec, NodeShape]]] = {}
    for p in stack.node_pools:
        node = pool_node(p, stack.cluster)
        if p.gpu.type is not None and node is not None:
            grouped.setdefault(p.gpu.type, []).append((p, node))
    return {
        gpu: Pool(gpu, tuple(p for p, _ in rows), tuple(n for _, n in rows), stack.cluster.provider)
        for gpu, rows in grouped.items()
    }


def pack(pods: Sequence[Mapping[str, int]], pool: Pool) -> int | None:
    """Nodes the pods need, placed first-fit in decreasing size onto the pool's nodes in
    order (the scheduler places one pod at a time; first-fit decreasing is at most a node
    or two off the optimum, and exact for pods of one shape). A pod opens the first unused
    node that offers what it asks (pools of one GPU type may offer different MIG slices).
    None: they never fit.

    Pods of one shape are placed one after the other (in the order each shape first
    appears), so the answer depends only on the pool and how many pods of each shape there
    are (:func:`shapes_of`): it is remembered. A review of an edit to every deployment of a
    large stack packs the same pool with the same pods once per deployment."""
    return pack_shapes(shapes_of(pods), pool)


#: A pod's requests as a key: ``(("cpu", 4000), ("memory", ...), ...)``.
Shape = tuple[tuple[str, int], ...]
#: Pods by shape, each shape once, in the order it first appears among the pods.
Shapes = tuple[tuple[Shape, int], ...]


def shape_of(pod: Mapping[str, int]) -> Shape:
    return tuple(sorted(pod.items()))


def shapes_of(pods: Sequence[Mapping[str, int]]) -> Shapes:
    """How many pods of each shape, in the order each shape first appears."""
    counts = Counter(map(id, pods))  # a deployment's pods are one object, repeated
    first = dict(zip(map(id, pods), pods, strict=True))
    shapes: dict[Shape, int] = {}
    for key, n in counts.items():
        shape = shape_of(first[key])
        shapes[shape] = shapes.get(shape, 0) + n
    return tuple(shapes.items())


def plus(shapes: Shapes, pod: Mapping[str, int], n: int) -> Shapes:
    """``shapes`` with ``n`` more pods like ``pod`` placed after them: :func:`shapes_of` of
    the pods followed by ``n`` copies of ``pod``."""
    if n <= 0:
        return shapes
    mine = shape_of(pod)
    if any(shape == mine for shape, _ in shapes):
        return tuple((shape, count + n if shape == mine else count) for shape, count in shapes)
    return (*shapes, (mine, n))


def total(shapes: Shapes, resource: str) -> int:
    """What the pods ask of ``resource`` together."""
    return sum(count * dict(shape).get(resource, 0) for shape, count in shapes)


def pack_shapes(shapes: Shapes, pool: Pool) -> int | None:
    """:func:`pack` of pods given by shape."""
    nodes = tuple(
        (pool.ceiling(p), shape_of(shape.allocatable))
        for p, shape in zip(pool.pools, pool.nodes, strict=True)
    )
    return _pack(shapes, nodes)


@functools.lru_cache(maxsize=1024)
def _pack(shapes: Shapes, pools: tuple[tuple[int, Shape], ...]) -> int | None:
    """:func:`pack` of ``count`` pods of each shape onto ``count`` nodes of each shape."""
    pods = [dict(shape) for shape, count in shapes for _ in range(count)]
    nodes = [dict(shape) for count, shape in pools for _ in range(count)]
    rooms: dict[int, dict[str, int]] = {}
    order = sorted(pods, key=lambda p: (sum(_extended(p).values()), p.get(CPU, 0)), reverse=True)
    # Rooms only shrink: a node that could not take a pod cannot take the next pod of the
    # same shape either, so a run of equal pods (a deployment's replicas) resumes where the
    # last one landed instead of trying every open node again.
    shape: Shape | None = None
    tried: list[int] = []
    for pod in order:
        if (key := shape_of(pod)) != shape:
            shape, tried = key, list(reversed(rooms))  # the first opened is tried first
        at = None
        while tried:
            if fits(pod, rooms[tried[-1]]):
                at = tried[-1]
                break
            tried.pop()
        if at is None:
            at = next(
                (i for i, node in enumerate(nodes) if i not in rooms and fits(pod, node)),
                None,
            )
            if at is None:
                return None
            rooms[at] = dict(nodes[at])
            tried = [at]
        for name, amount in pod.items():
            rooms[at][name] -= amount
    return len(rooms)


def _extended(pod: Mapping[str, int]) -> dict[str, int]:
    return {k: v for k, v in pod.items() if k not in (CPU, MEMORY, STORAGE, PODS)}


def at_rest_pods(dep: DeploymentSpec, *, ceiling: bool = False) -> int:
    """Pods of the stable track at rest: replicas, or minReplicas under an autoscaler
    (maxReplicas with ``ceiling``)."""
    eff = effective(dep)
    if eff.autoscaling is not None:
        return eff.autoscaling.max_replicas if ceiling else eff.autoscaling.min_replicas
    return eff.replicas


def canary_pods(dep: DeploymentSpec) -> int:
    """Pods of the canary track (present while the strategy is canary)."""
    if dep.strategy.type is not StrategyType.canary or not dep.active:
        return 0
    return dep.strategy.canary_replicas or 1


def demand(dep: DeploymentSpec, *, ceiling: bool = False) -> list[Amounts]:
    """Every pod of ``dep`` at rest: both tracks."""
    pod = pod_requests(dep)
    return [pod] * (at_rest_pods(dep, ceiling=ceiling) + canary_pods(dep))


def sharing(stack: StackConfig, gpu: GpuType) -> list[DeploymentSpec]:
    return [d for d in stack.deployments if d.resources.gpu.type is gpu]


def at_rest_checks(stack: StackConfig) -> list[Problem]:
    """Every pool holds, at rest, the pods of all the deployments it serves."""
    problems = []
    for gpu, pool in pools_by_gpu(stack).items():
        deps = sharing(stack, gpu)
        pods = [pod for d in deps for pod in demand(d)]
        if not pods or pack(pods, pool) is not None:
            continue
        asked = ", ".join(
            f"{d.name}: {len(mine)} pod{'s' if len(mine) != 1 else ''}, "
            f"{amount(d.resources.gpu.count, gpu_resource(d.resources), gpu)} each"
            for d in deps
            if (mine := demand(d))
        )
        shape = pool.nodes[0]
        where = paths.node_pool(pool.pools[-1].name, _bound(pool))
        held = " and ".join(
            pool.holds(r) for r in dict.fromkeys(gpu_resource(d.resources) for d in deps)
        )
        problems.append(
            Problem(
                where,
                f"{pool.label} holds at most {held} on {pool.max_nodes} node(s) of "
                f"{shape.describe()}; at rest its deployments need {len(pods)} pods "
                f"({asked}): raise {_bound(pool)} or lower their replicas",
            )
        )
    return problems


def _bound(pool: Pool) -> str:
    return "minNodes" if pool.provider is CloudProvider.local else "maxNodes"


def fit_problems(dep: DeploymentSpec, pool: Pool) -> list[Problem]:
    """One replica must fit one node of its pool: CPU, memory and storage, by allocatable."""
    pod = pod_requests(dep)
    gpus = replica_gpu_resources(
        dep.resources.gpu.type, dep.resources.gpu.count, dep.resources.gpu.mig
    )
    # Nodes that offer the replica's GPUs (or slices); gpu checks refuse the rest.
    offering = [
        (p, n)
        for p, n in zip(pool.pools, pool.nodes, strict=True)
        if all(amount <= n.allocatable.get(name, 0) for name, amount in gpus.items())
    ]
    if not offering or any(fits(pod, n.allocatable) for _, n in offering):
        return []
    p, node = max(offering, key=lambda pn: (pn[1].allocatable[CPU], pn[1].allocatable[MEMORY]))
    where = (
        f"{p.name}'s {node.machine.name} ({node.machine.vcpu} vCPU, {node.machine.memory_gib} GiB"
    )
    fields = {CPU: "resources.cpu", MEMORY: "resources.memory", STORAGE: "resources.storage"}
    return [
        Problem(
            paths.deployment(dep.name, fields[name]),
            f"{shown(name, pod[name])} does not fit {where}; "
            f"allocatable {shown(name, node.allocatable[name])} after the kubelet's reserves)",
        )
        for name in short_of(pod, node.allocatable)
        if name in fields
    ]
