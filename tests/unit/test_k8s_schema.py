"""Every built-in Kubernetes manifest servestack renders passes the API's OpenAPI schema.

Schemas come from the `kubernetes_validate` package (strict mode: unknown fields fail).
Custom resources (Istio DestinationRule/VirtualService, KEDA ScaledObject, Karpenter
NodePool) are not in those schemas, so they are skipped by kind below, and a test proves the
package indeed has no schema for them rather than silently passing them.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
from kubernetes_validate.utils import SchemaNotFoundError, latest_version

from servestack import Autoscaling
from servestack.config.defaults import effective
from servestack.manifests import naming, routing, scaling
from servestack.manifests.scaling import ScalerTarget
from servestack.manifests.workload import (
    deployment,
    disruption_budget,
    network_policy,
    service_account,
)
from tests.unit.specs import STACK_NAMES, run_stack
from tests.unit.specs import deployment as make_deployment

#: Newest Kubernetes release the installed package ships schemas for.
K8S_VERSION = latest_version()

BUILT_IN = {
    "Deployment": "apps/v1",
    "Service": "v1",
    "ServiceAccount": "v1",
    "PodDisruptionBudget": "policy/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "Namespace": "v1",
    "NetworkPolicy": "networking.k8s.io/v1",
    "ConfigMap": "v1",
}
#: CRDs: kubernetes_validate has no schema for them (asserted below); not validated here.
CUSTOM = {
    "DestinationRule": "networking.istio.io/v1",
    "VirtualService": "networking.istio.io/v1",
    "ScaledObject": "keda.sh/v1alpha1",
    "NodePool": "karpenter.sh/v1",
    "ServiceMonitor": "monitoring.coreos.com/v1",
    "PrometheusRule": "monitoring.coreos.com/v1",
    # The Gateway API's (validated against its CRD by the live API server: tests/cluster).
    "HTTPRoute": "gateway.networking.k8s.io/v1",
}
#: CRDs no stack in stacks/ renders (async workers' scrape config is the dev stack's, where
#: monitoring is off).
CUSTOM_ELSEWHERE = {"PodMonitor": "monitoring.coreos.com/v1"}


def validate(manifest: dict[str, Any]) -> None:
    name = manifest["metadata"]["name"]
    try:
        version = kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as err:
        path = ".".join(str(p) for p in err.path)
        pytest.fail(f"{manifest['kind']} {name}: {path}: {err.message}")
    assert version == ".".join(K8S_VERSION.split(".")[:2])


def kubernetes_manifests(stack: str) -> list[dict[str, Any]]:
    return [r.inputs for r in run_stack(stack).resources if r.type.startswith("kubernetes:")]


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_stack_manifests_pass_the_kubernetes_schema(stack: str) -> None:
    manifests = kubernetes_manifests(stack)
    kinds = {(m["kind"], m["apiVersion"]) for m in manifests}
    # Every kind is either validated or a known CRD: nothing is skipped by accident.
    assert kinds <= set(BUILT_IN.items()) | set(CUSTOM.items())
    for manifest in manifests:
        if manifest["kind"] in BUILT_IN:
            validate(manifest)


def test_stacks_cover_every_built_in_kind() -> None:
    kinds = {m["kind"] for s in STACK_NAMES for m in kubernetes_manifests(s)}
    assert kinds == set(BUILT_IN) | set(CUSTOM)


@pytest.mark.parametrize(("kind", "api_version"), sorted({**CUSTOM, **CUSTOM_ELSEWHERE}.items()))
def test_custom_resources_have_no_schema_here(kind: str, api_version: str) -> None:
    manifest = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}
    with pytest.raises(SchemaNotFoundError):
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


QUEUE = {"kind": "kafka", "name": "jobs", "connectionSecret": "kafka-conn"}
CANARY = {
    "type": "canary",
    "weight": 20,
    "canaryVersion": "v3",
    "canaryImage": "r.io/m:3",
    "canaryReplicas": 2,
}
VARIANTS = {
    "defaults": {},
    "production": {"environment": "production"},
    "staging-percent-surge": {"environment": "staging"},
    "stopped": {"active": False, "environment": "production"},
    "everything": {
        "description": "All the fields",
        "port": 9000,
        "env": {"A": "1"},
        "tags": {"team": "nlp"},
        "replicas": 3,
        "resources": {
            "cpu": "1500m",
            "memory": "512Mi",
            "storage": 40,
            "bandwidthMbps": 100,
            "gpu": {"type": "H100", "count": 4},
        },
        "loadBalancer": {
            "algorithm": "round_robin",
            "stickySessions": True,
            "healthCheck": {"path": "/ready", "intervalSeconds": 5},
        },
        "strategy": {"maxSurge": "30%", "maxUnavailable": 2},
    },
    "blue-green": {"strategy": {"type": "blue_green"}, "environment": "production"},
    "canary": {"strategy": CANARY},
    "async-kafka": {"processing": "async", "queue": QUEUE},
}


@pytest.mark.parametrize("overrides", VARIANTS.values(), ids=VARIANTS.keys())
def test_workload_manifests_pass_the_kubernetes_schema(overrides: dict[str, Any]) -> None:
    spec = make_deployment(**overrides)
    eff = effective(spec)
    manifests = [
        {"apiVersion": "v1", "kind": "ServiceAccount", **service_account(spec)},
        {"apiVersion": "apps/v1", "kind": "Deployment", **deployment(spec, eff)},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", **disruption_budget(spec)},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", **network_policy(spec)},
    ]
    if spec.strategy.type.value == "canary":
        manifests.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                **deployment(spec, eff, track=naming.CANARY),
            }
        )
    if eff.load_balancer is not None:
        manifests.append({"apiVersion": "v1", "kind": "Service", **routing.service(spec)})
    for manifest in manifests:
        validate(manifest)


@pytest.mark.parametrize(
    "bounds",
    [
        {},
        {"targetCpuUtilization": None, "targetGpuUtilization": 60},
        {
            "targetMemoryUtilization": 80,
            "targetGpuUtilization": 60,
            "minReplicas": 2,
            "maxReplicas": 20,
            "scaleDownStabilizationSeconds": 0,
        },
    ],
)
def test_hpa_passes_the_kubernetes_schema(bounds: dict[str, Any]) -> None:
    target = ScalerTarget(
        name="bert",
        deployment="bert",
        namespace="models",
        bounds=Autoscaling.model_validate(bounds),
        labels={"a": "b"},
    )
    validate(
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", **scaling.hpa(target)}
    )


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda m: m["spec"].update(replicaz=1), ""),
        (lambda m: m["spec"].update(replicas="two"), "spec.replicas"),
        (
            lambda m: m["spec"]["template"]["spec"]["containers"][0].update(image=7),
            "spec.template.spec.containers.0.image",
        ),
    ],
)
def test_schema_check_can_fail(mutate: Any, path: str) -> None:
    spec = make_deployment()
    manifest = {"apiVersion": "apps/v1", "kind": "Deployment", **deployment(spec, effective(spec))}
    validate(manifest)
    mutate(manifest)
    with pytest.raises(kubernetes_validate.ValidationError) as info:
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    assert ".".join(str(p) for p in info.value.path).startswith(path)
