"""What one served model is made of: the plan :class:`~servestack.ModelDeployment` follows.

:func:`plan` decides which children exist and builds their manifests; the component turns
the plan into resources, and :func:`manifests` lists the same children, complete with their
scaler and routes, for the review tool and the tests (no Pulumi runtime involved).
"""

from __future__ import annotations

from dataclasses import dataclass

from servestack.config.defaults import Effective, effective
from servestack.config.models import DeploymentSpec, GpuLabels, LoadBalancerSpec, StrategyType
from servestack.contract import labels
from servestack.manifests import monitoring, naming, routing, scaling, workload
from servestack.manifests.gpu_scheduling import GpuMarks
from servestack.manifests.origins import NO_ORIGINS, Origins, origins
from servestack.manifests.provenance import is_recording, plain, src
from servestack.manifests.scaling import ScalerTarget
from servestack.manifests.workload import Manifest


@dataclass(frozen=True)
class ModelPlan:
    spec: DeploymentSpec
    effective: Effective
    origin: Origins
    service_account: Manifest
    #: The Secret of `secretEnv` (metadata only: the values are Pulumi secrets).
    secret: Manifest | None
    #: The stable Deployment, then the canary's.
    workloads: tuple[Manifest, ...]
    network_policy: Manifest
    disruption_budget: Manifest | None
    scaler: ScalerTarget | None
    load_balancer: LoadBalancerSpec | None
    #: Scrape monitor, PrometheusRule, dashboard ConfigMap, scrape NetworkPolicy (or none).
    monitoring: tuple[Manifest, ...] = ()


def plan(spec: DeploymentSpec, gpu_marks: GpuMarks = GpuLabels.servestack) -> ModelPlan:
    """``gpu_marks``: the cluster's GPU node labels and taint (`cluster.gpuLabels`)."""
    eff = effective(spec)
    # Where effective settings come from matters only to a provenance record.
    o = origins(spec) if is_recording() else NO_ORIGINS
    tracks = [naming.STABLE]
    if spec.strategy.type is StrategyType.canary:
        tracks.append(naming.CANARY)
    workloads = []
    for track in tracks:
        deployment = workload.deployment(spec, eff, track=track, origin=o, gpu_marks=gpu_marks)
        # Pins the processing type: its change replaces the Deployment (see lifecycle).
        deployment["metadata"]["labels"][labels.PROCESSING] = src(
            spec.processing.value, "processing"
        )
        workloads.append({"apiVersion": "apps/v1", "kind": "Deployment", **deployment})
    scaler = None
    if eff.autoscaling is not None:
        scaler = ScalerTarget(
            name=spec.name,
            deployment=naming.workload_name(spec),
            namespace=spec.namespace,
            bounds=eff.autoscaling,
            labels=naming.labels(spec),
            queue=spec.queue,
            sources=o.bounds,
            deployment_from=naming.workload_fields(spec),
        )
    secret = None
    if spec.secret_env:
        name = workload.secret_name(spec)
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": workload.metadata(spec, name),
            "type": "Opaque",
        }
    budget = None
    if eff.disruption_budget:
        budget = {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            **workload.disruption_budget(spec),
        }
    return ModelPlan(
        spec=spec,
        effective=eff,
        origin=o,
        service_account={
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            **workload.service_account(spec),
        },
        secret=secret,
        workloads=tuple(workloads),
        network_policy={
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            **workload.network_policy(spec),
        },
        disruption_budget=budget,
        scaler=scaler,
        load_balancer=eff.load_balancer,
        monitoring=tuple(monitoring.manifests(spec, eff.monitoring)) if eff.monitoring else (),
    )


def endpoint(spec: DeploymentSpec) -> str | None:
    """The URL clients call (a stack output), when the model has a Service: what
    :class:`~servestack.LoadBalancer` exports, known without building the model."""
    return routing.endpoint(spec) if effective(spec).load_balancer is not None else None


def manifests(spec: DeploymentSpec, gpu_marks: GpuMarks = GpuLabels.servestack) -> list[Manifest]:
    """Every manifest of one model, in the order the components register them.

    Each is marked with the fields that decide whether it exists (its name among them: a
    new name is a new object). Secret values are not config: the Secret lists their keys.
    """
    p = plan(spec, gpu_marks)
    o = p.origin
    out: list[Manifest] = [exists(p.service_account, "name")]
    if p.secret is not None:
        data = {key: "<secret>" for key in spec.secret_env}
        out.append(exists({**p.secret, "stringData": src(data, "secretEnv")}, "name", "secretEnv"))
    out.append(exists(p.workloads[0], *naming.workload_fields(spec)))
    if len(p.workloads) > 1:
        out.append(exists(p.workloads[1], "name", "strategy.type"))
    out.append(exists(p.network_policy, "name"))
    if p.disruption_budget is not None:
        out.append(exists(p.disruption_budget, "name", *o.budget))
    if p.scaler is not None:
        out.append(exists(scaling.scaler(p.scaler), "name", *o.autoscaled))
    if p.load_balancer is not None:
        service, *mesh = routing.manifests(spec, p.load_balancer)
        out.append(exists(service, "name", "processing"))
        for extra in mesh:
            if extra["apiVersion"] == routing.ISTIO_API:
                when = ["name", "processing", "loadBalancer.enabled"]
            else:  # the HTTPRoute and its track Services
                when = ["name", "processing", "route.gateway.name"]
            canary = extra["kind"] == "Service" and plain(extra["metadata"]["name"]) == (
                naming.child_name(spec.name, naming.CANARY)
            )
            if extra["kind"] == "VirtualService" or canary:
                when.append("strategy.type")
            out.append(exists(extra, *when))
    out += p.monitoring
    return out


def exists(manifest: Manifest, *fields: str) -> Manifest:
    """A whole resource, there because of ``fields`` (its content has marks of its own)."""
    return src(manifest, when=fields)
