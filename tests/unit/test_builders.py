"""Pure builders: workload, routing, scaling and node pools, as plain data."""

from __future__ import annotations

from typing import Any

import pytest

from servestack import GPU_TABLE, ClusterSpec, GpuType, NodePoolSpec
from servestack.config.gpu import gpu_info
from servestack.config.machines import default_machine, provider_defaults
from servestack.config.models import CloudProvider
from servestack.manifests import naming, routing, scaling
from servestack.manifests.node_pools import (
    eks_node_group_args,
    gke_node_pool_args,
    karpenter_node_pool,
)
from servestack.manifests.scaling import ScalerTarget
from servestack.manifests.workload import deployment as deployment_manifest
from servestack.manifests.workload import disruption_budget, pod_template, service_account
from tests.unit.specs import deployment, with_effective

GPU_TYPES = [pytest.param(t, id=t.value) for t in GPU_TABLE]
CANARY = {
    "type": "canary",
    "weight": 10,
    "canaryVersion": "v2.2.0",
    "canaryImage": "registry.example.com/nlp/bert:2.2.0",
}
QUEUE = {"kind": "rabbitmq", "name": "jobs", "connectionSecret": "rabbit-conn"}
LABELS = {
    "app.kubernetes.io/name": "bert",
    "app.kubernetes.io/managed-by": "servestack",
    "servestack.io/model-type": "llm",
    "servestack.io/environment": "development",
}
KARPENTER = ClusterSpec(name="prod-eu-1", provider="karpenter", node_class={"name": "gpu-al2023"})
GKE = ClusterSpec(name="gke-1", provider="gke", project="proj", location="europe-west4")
EKS = ClusterSpec(
    name="eks-1",
    provider="eks",
    node_role_arn="arn:aws:iam::1:role/nodes",
    subnet_ids=("subnet-a", "subnet-b"),
)


def container(**overrides: Any) -> dict[str, Any]:
    spec, eff = with_effective(**overrides)
    return deployment_manifest(spec, eff)["spec"]["template"]["spec"]["containers"][0]


def pod_spec(**overrides: Any) -> dict[str, Any]:
    spec, eff = with_effective(**overrides)
    return deployment_manifest(spec, eff)["spec"]["template"]["spec"]


def gpu_resources(gpu_type: str, count: int = 1) -> dict[str, Any]:
    return {"cpu": 4, "memory": "16Gi", "gpu": {"type": gpu_type, "count": count}}


def pool(gpu_type: GpuType | str, count: int = 1, **extra: Any) -> NodePoolSpec:
    return NodePoolSpec.model_validate(
        {"name": "pool", "gpu": {"type": gpu_type, "count": count}, **extra}
    )


# --- workload: resources -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resources", "amounts"),
    [
        ({"cpu": 4, "memory": 16}, {"cpu": "4", "memory": "16Gi"}),
        (
            {"cpu": "500m", "memory": "512Mi", "storage": 50},
            {"cpu": "500m", "memory": "512Mi", "ephemeral-storage": "50Gi"},
        ),
        (
            {"cpu": 2, "memory": 8, "gpu": {"type": "A100", "count": 2}},
            {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": 2},
        ),
    ],
)
def test_requests_equal_limits(resources: dict[str, Any], amounts: dict[str, Any]) -> None:
    assert container(resources=resources)["resources"] == {"requests": amounts, "limits": amounts}


def test_cpu_only_pod_has_no_gpu_scheduling_constraints() -> None:
    pod = pod_spec()
    assert ("nodeSelector" in pod, "tolerations" in pod) == (False, False)


@pytest.mark.parametrize("gpu_type", GPU_TYPES)
def test_gpu_node_selector_and_tolerations(gpu_type: GpuType) -> None:
    label = gpu_type.value.lower()
    pod = pod_spec(resources=gpu_resources(gpu_type, 2))
    assert pod["nodeSelector"] == {"servestack.io/gpu": label}
    assert pod["tolerations"] == [
        {"key": "servestack.io/gpu", "operator": "Equal", "value": label, "effect": "NoSchedule"},
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    ]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 2


def test_volumes_give_writable_scratch_under_a_read_only_root() -> None:
    assert pod_spec(resources={"cpu": 1, "memory": 1, "storage": "20Gi"})["volumes"] == [
        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "model-cache", "emptyDir": {"sizeLimit": "20Gi"}},
    ]
    assert pod_spec()["volumes"][1] == {"name": "model-cache", "emptyDir": {"sizeLimit": "10Gi"}}
    assert container()["volumeMounts"] == [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "model-cache", "mountPath": "/var/cache/model"},
    ]


# --- workload: probes ----------------------------------------------------------------------


def test_probes_with_default_health_check() -> None:
    c = container()
    assert {k: c[k] for k in ("startupProbe", "livenessProbe", "readinessProbe")} == {
        "startupProbe": {
            "httpGet": {"port": "http", "path": "/health"},
            "periodSeconds": 10,
            "failureThreshold": 60,
        },
        "livenessProbe": {
            "httpGet": {"port": "http", "path": "/health"},
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            "httpGet": {"port": "http", "path": "/health"},
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
    }


def test_readiness_probe_follows_the_load_balancer_health_check() -> None:
    check = {"path": "/ready", "intervalSeconds": 30, "timeoutSeconds": 5, "failureThreshold": 4}
    c = container(loadBalancer={"healthCheck": check})
    assert c["readinessProbe"] == {
        "httpGet": {"port": "http", "path": "/ready"},
        "periodSeconds": 30,
        "timeoutSeconds": 5,
        "failureThreshold": 4,
    }
    # Liveness and startup stay on /health: readiness decides traffic, liveness restarts.
    assert (c["livenessProbe"]["httpGet"]["path"], c["startupProbe"]["httpGet"]["path"]) == (
        "/health",
        "/health",
    )


def test_async_worker_readiness_probe_is_the_fixed_default() -> None:
    c = container(processing="async", queue=QUEUE)
    assert c["readinessProbe"] == {
        "httpGet": {"port": "http", "path": "/ready"},
        "periodSeconds": 10,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    }


# --- workload: security ---------------------------------------------------------------------


def test_security_context() -> None:
    pod = pod_spec()
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["containers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["containers"][0]["imagePullPolicy"] == "Always"
    assert (
        pod["automountServiceAccountToken"],
        pod["serviceAccountName"],
        pod["enableServiceLinks"],
    ) == (False, "bert", False)


def test_service_account_mounts_no_token() -> None:
    assert service_account(deployment()) == {
        "metadata": {"name": "bert", "namespace": "models", "labels": LABELS},
        "automountServiceAccountToken": False,
    }


# --- workload: env, ports, annotations -------------------------------------------------------


def test_env_model_variables_then_user_env_sorted() -> None:
    c = container(env={"ZED": "1", "ALPHA": "2", "LOG_LEVEL": "info"}, port=9000)
    assert c["env"] == [
        {"name": "MODEL_ID", "value": "model-001"},
        {"name": "MODEL_VERSION", "value": "v2.1.0"},
        {"name": "MODEL_TYPE", "value": "llm"},
        {"name": "PORT", "value": "9000"},
        {"name": "ALPHA", "value": "2"},
        {"name": "LOG_LEVEL", "value": "info"},
        {"name": "ZED", "value": "1"},
    ]
    assert c["ports"] == [{"name": "http", "containerPort": 9000, "protocol": "TCP"}]


@pytest.mark.parametrize(("kind", "name"), [("rabbitmq", "jobs"), ("kafka", "t"), ("redis", "l")])
def test_env_of_a_queue_worker(kind: str, name: str) -> None:
    queue = {"kind": kind, "name": name, "connectionSecret": "conn"}
    assert container(processing="async", queue=queue, env={"A": "b"})["env"][4:] == [
        {"name": "QUEUE_KIND", "value": kind},
        {"name": "QUEUE_NAME", "value": name},
        {"name": "QUEUE_URL", "valueFrom": {"secretKeyRef": {"name": "conn", "key": "url"}}},
        {"name": "A", "value": "b"},
    ]


def test_bandwidth_annotations() -> None:
    spec, eff = with_effective(resources={"cpu": 1, "memory": 1, "bandwidthMbps": 1000})
    assert deployment_manifest(spec, eff)["spec"]["template"]["metadata"] == {
        "labels": {
            "app.kubernetes.io/name": "bert",
            "servestack.io/track": "stable",
            "servestack.io/model-version": "v2-1-0",
        },
        "annotations": {
            "kubernetes.io/ingress-bandwidth": "1000M",
            "kubernetes.io/egress-bandwidth": "1000M",
        },
    }
    spec, eff = with_effective()
    assert "annotations" not in deployment_manifest(spec, eff)["spec"]["template"]["metadata"]


def test_metadata_labels_tags_and_description() -> None:
    spec, eff = with_effective(
        description="Sentiment API",
        tags={"team": "nlp"},
        environment="production",
        namespace="models",
    )
    assert deployment_manifest(spec, eff)["metadata"] == {
        "name": "bert",
        "namespace": "models",
        "labels": {
            **LABELS,
            "servestack.io/environment": "production",
            "tags.servestack.io/team": "nlp",
        },
        "annotations": {"servestack.io/description": "Sentiment API"},
    }


# --- workload: replicas and strategies ----------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "replicas"),
    [
        ({"environment": "development"}, 1),
        ({"environment": "staging"}, 2),
        ({"environment": "production"}, 2),  # the autoscaler's floor (production: 2)
        ({"environment": "production", "autoscaling": {"enabled": False}}, 2),
        ({"environment": "development", "replicas": 4}, 4),
        (
            {
                "environment": "development",
                "autoscaling": {"maxReplicas": 5, "targetCpuUtilization": 70},
            },
            1,
        ),
        ({"environment": "development", "processing": "async", "queue": QUEUE}, 1),
        ({"environment": "production", "active": False}, 0),
        ({"environment": "staging", "replicas": 3, "active": False}, 0),
    ],
)
def test_replicas_or_the_autoscalers_floor(overrides: dict[str, Any], replicas: int | None) -> None:
    """A fixed count, or under an autoscaler its floor: what the Deployment is created with
    (the component registers it under ignoreChanges: tests/engine/test_autoscaler_owns.py)."""
    spec, eff = with_effective(**overrides)
    assert deployment_manifest(spec, eff)["spec"].get("replicas") == replicas


@pytest.mark.parametrize(
    ("environment", "strategy", "rolling"),
    [
        ("development", {}, {"maxSurge": 1, "maxUnavailable": 1}),
        ("staging", {}, {"maxSurge": "25%", "maxUnavailable": 0}),
        ("production", {}, {"maxSurge": 1, "maxUnavailable": 0}),
        (
            "production",
            {"maxSurge": "50%", "maxUnavailable": 2},
            {"maxSurge": "50%", "maxUnavailable": 2},
        ),
        ("production", {"type": "blue_green"}, {"maxSurge": "100%", "maxUnavailable": 0}),
        ("staging", CANARY, {"maxSurge": "25%", "maxUnavailable": 0}),
    ],
)
def test_rolling_update_parameters(
    environment: str, strategy: dict[str, Any], rolling: dict[str, Any]
) -> None:
    spec, eff = with_effective(environment=environment, strategy=strategy)
    assert deployment_manifest(spec, eff)["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": rolling,
    }


def test_deployment_shape() -> None:
    spec, eff = with_effective()
    body = deployment_manifest(spec, eff)["spec"]
    assert {k: v for k, v in body.items() if k not in ("template", "strategy")} == {
        "selector": {
            "matchLabels": {"app.kubernetes.io/name": "bert", "servestack.io/track": "stable"}
        },
        "revisionHistoryLimit": 5,
        "progressDeadlineSeconds": 900,
        "replicas": 1,
    }
    assert body["template"] == pod_template(
        spec, eff, track="stable", version="v2.1.0", image="registry.example.com/nlp/bert:2.1.0"
    )


@pytest.mark.parametrize(("overrides", "replicas"), [({}, 1), ({"canaryReplicas": 3}, 3)])
def test_canary_track_deployment(overrides: dict[str, Any], replicas: int) -> None:
    spec, eff = with_effective(environment="production", strategy={**CANARY, **overrides})
    canary = deployment_manifest(spec, eff, track=naming.CANARY)
    c = canary["spec"]["template"]["spec"]["containers"][0]
    assert canary["metadata"]["name"] == "bert-canary"
    assert canary["spec"]["replicas"] == replicas
    assert canary["spec"]["selector"] == {
        "matchLabels": {"app.kubernetes.io/name": "bert", "servestack.io/track": "canary"}
    }
    assert canary["spec"]["template"]["metadata"]["labels"] == {
        "app.kubernetes.io/name": "bert",
        "servestack.io/track": "canary",
        "servestack.io/model-version": "v2-2-0",
    }
    assert c["image"] == "registry.example.com/nlp/bert:2.2.0"
    assert c["env"][1] == {"name": "MODEL_VERSION", "value": "v2.2.0"}
    assert canary["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "100%", "maxUnavailable": 0},
    }
    stable = deployment_manifest(spec, eff)
    assert (
        stable["metadata"]["name"],
        stable["spec"]["template"]["spec"]["containers"][0]["image"],
    ) == ("bert", "registry.example.com/nlp/bert:2.1.0")


def test_stopped_canary_track_has_no_pods() -> None:
    spec, eff = with_effective(active=False, strategy={**CANARY, "canaryReplicas": 3})
    assert deployment_manifest(spec, eff, track=naming.CANARY)["spec"]["replicas"] == 0


@pytest.mark.parametrize(
    ("version", "name", "slug"),
    [
        ("v2.1.0", "bert-v2-1-0", "v2-1-0"),
        ("2024.11", "bert-2024-11", "2024-11"),
        ("abcdefghij0123456789", "bert-abcdefghij0123456789", "abcdefghij0123456789"),
        # Anything but dot-separated [a-z0-9]+ words of <= 20 characters gets its first 12
        # folded characters, '--' and a 6-character sha256 of the exact version.
        ("V3_RC.1", "bert-v3-rc-1--a1000c", "v3-rc-1--a1000c"),
        ("v2_1_0", "bert-v2-1-0--b18466", "v2-1-0--b18466"),
        ("V2.1.0", "bert-v2-1-0--79b74a", "v2-1-0--79b74a"),
        ("1..2", "bert-1-2--7ac9fb", "1-2--7ac9fb"),
        ("abcdefghij0123456789a", "bert-abcdefghij01--883467", "abcdefghij01--883467"),
        ("release-candidate-number-12", "bert-release-cand--0e5440", "release-cand--0e5440"),
    ],
)
def test_blue_green_deployment_is_keyed_by_version(version: str, name: str, slug: str) -> None:
    spec, eff = with_effective(
        model={**deployment().model.model_dump(), "version": version},
        strategy={"type": "blue_green"},
    )
    manifest = deployment_manifest(spec, eff)
    selector = {
        "app.kubernetes.io/name": "bert",
        "servestack.io/track": "stable",
        "servestack.io/model-version": slug,
    }
    assert manifest["metadata"]["name"] == name
    assert manifest["spec"]["selector"] == {"matchLabels": selector}
    assert manifest["spec"]["template"]["metadata"]["labels"] == selector
    assert routing.service(spec)["spec"]["selector"] == {
        "app.kubernetes.io/name": "bert",
        "servestack.io/model-version": slug,
    }


def blue_green_name(version: str) -> str:
    model = {**deployment().model.model_dump(), "version": version}
    return naming.workload_name(deployment(model=model, strategy={"type": "blue_green"}))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("2024-11-01-nightly-build-17", "2024-11-01-nightly-build-18"),
        ("v2.1.0", "v2_1_0"),
        ("v2.1.0", "v2-1-0"),
        ("v2.1.0", "V2.1.0"),
        ("1.2", "1..2"),
    ],
)
def test_distinct_versions_get_distinct_blue_green_deployments(old: str, new: str) -> None:
    assert blue_green_name(old) != blue_green_name(new)


@pytest.mark.parametrize(("old", "new"), [("v2.1", "v2.1."), ("v2-1-0", "v2.1.0.e5b814")])
def test_plain_versions_never_share_a_slug_with_another_version(old: str, new: str) -> None:
    assert blue_green_name(old) != blue_green_name(new)


def test_disruption_budget() -> None:
    assert disruption_budget(deployment()) == {
        "metadata": {"name": "bert-pdb", "namespace": "models", "labels": LABELS},
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "bert"}},
        },
    }


# --- routing -------------------------------------------------------------------------------------


def test_service() -> None:
    assert routing.service(deployment(namespace="models")) == {
        "metadata": {"name": "bert", "namespace": "models", "labels": LABELS},
        "spec": {
            "type": "ClusterIP",
            "selector": {"app.kubernetes.io/name": "bert"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


# The mapping table in components/routing.py's docstring.
@pytest.mark.parametrize(
    ("lb", "policy"),
    [
        ({"algorithm": "round_robin"}, {"simple": "ROUND_ROBIN"}),
        ({"algorithm": "least_connections"}, {"simple": "LEAST_REQUEST"}),
        ({"algorithm": "ip_hash"}, {"consistentHash": {"useSourceIp": True}}),
        (
            {"algorithm": "round_robin", "stickySessions": True},
            {"consistentHash": {"httpCookie": {"name": "servestack-affinity", "ttl": "3600s"}}},
        ),
    ],
)
def test_load_balancer_mapping(lb: dict[str, Any], policy: dict[str, Any]) -> None:
    spec, eff = with_effective(loadBalancer=lb, namespace="models")
    assert eff.load_balancer is not None
    assert routing.destination_rule(spec, eff.load_balancer) == {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "bert-lb", "namespace": "models", "labels": LABELS},
        "spec": {
            "host": "bert.models.svc.cluster.local",
            "trafficPolicy": {
                "loadBalancer": policy,
                "outlierDetection": {
                    "consecutive5xxErrors": 3,
                    "interval": "10s",
                    "baseEjectionTime": "30s",
                    "maxEjectionPercent": 50,
                },
            },
        },
    }


def test_health_check_drives_outlier_detection() -> None:
    spec, eff = with_effective(
        loadBalancer={"healthCheck": {"intervalSeconds": 15, "failureThreshold": 5}}
    )
    assert eff.load_balancer is not None
    rule = routing.destination_rule(spec, eff.load_balancer)
    assert rule["spec"]["trafficPolicy"]["outlierDetection"] == {
        "consecutive5xxErrors": 5,
        "interval": "15s",
        "baseEjectionTime": "30s",
        "maxEjectionPercent": 50,
    }


@pytest.mark.parametrize("weight", [1, 10, 50, 99])
def test_canary_subsets_and_route_weights(weight: int) -> None:
    spec, eff = with_effective(strategy={**CANARY, "weight": weight})
    assert eff.load_balancer is not None
    assert routing.destination_rule(spec, eff.load_balancer)["spec"]["subsets"] == [
        {"name": "stable", "labels": {"servestack.io/track": "stable"}},
        {"name": "canary", "labels": {"servestack.io/track": "canary"}},
    ]
    host = "bert.models.svc.cluster.local"
    assert routing.virtual_service(spec) == {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "bert-routes", "namespace": "models", "labels": LABELS},
        "spec": {
            "hosts": [host],
            "http": [
                {
                    "route": [
                        {"destination": {"host": host, "subset": "stable"}, "weight": 100 - weight},
                        {"destination": {"host": host, "subset": "canary"}, "weight": weight},
                    ]
                }
            ],
        },
    }


ROUTE = {
    "gateway": {"name": "public", "namespace": "gateways"},
    "hostnames": ["api.example.com", "*.api.example.org"],
    "path": "/v1",
}


def service_of(track: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"bert-{track}", "namespace": "models", "labels": LABELS},
        "spec": {
            "type": "ClusterIP",
            "selector": {"app.kubernetes.io/name": "bert", "servestack.io/track": track},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def backend(track: str, weight: int) -> dict[str, Any]:
    return {"group": "", "kind": "Service", "name": f"bert-{track}", "port": 80, "weight": weight}


@pytest.mark.parametrize("weight", [1, 10, 99])
def test_http_route_weights_follow_the_canary(weight: int) -> None:
    spec, eff = with_effective(strategy={**CANARY, "weight": weight}, route=ROUTE)
    assert eff.load_balancer is not None
    *_, stable, canary, route = routing.manifests(spec, eff.load_balancer)
    assert (stable, canary) == (service_of("stable"), service_of("canary"))
    assert route == {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "bert-route", "namespace": "models", "labels": LABELS},
        "spec": {
            "parentRefs": [
                {
                    "group": "gateway.networking.k8s.io",
                    "kind": "Gateway",
                    "name": "public",
                    "namespace": "gateways",
                }
            ],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}],
                    "backendRefs": [backend("stable", 100 - weight), backend("canary", weight)],
                }
            ],
            "hostnames": ["api.example.com", "*.api.example.org"],
        },
    }


def test_http_route_without_a_canary_sends_all_to_the_stable_service() -> None:
    spec, eff = with_effective(route={"gateway": {"name": "public"}})
    assert eff.load_balancer is not None
    kinds = [(m["kind"], m["metadata"]["name"]) for m in routing.manifests(spec, eff.load_balancer)]
    assert kinds == [
        ("Service", "bert"),
        ("DestinationRule", "bert-lb"),
        ("Service", "bert-stable"),
        ("HTTPRoute", "bert-route"),
    ]
    route = routing.manifests(spec, eff.load_balancer)[-1]["spec"]
    # The Gateway in the route's own namespace; no hostnames: every host the listener serves.
    assert route["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public"}
    ]
    assert "hostnames" not in route
    assert route["rules"][0]["backendRefs"] == [backend("stable", 100)]
    assert route["rules"][0]["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]


def test_promote_shift_moves_the_http_route_with_the_tracks() -> None:
    """promote --shift: the canary takes all (weight 100), then serves as the stable track
    from its own slot; the stable Service follows it there (its selector, not its name)."""
    spec, eff = with_effective(strategy={**CANARY, "weight": 100}, route=ROUTE)
    assert eff.load_balancer is not None
    route = routing.manifests(spec, eff.load_balancer)[-1]["spec"]
    assert route["rules"][0]["backendRefs"] == [backend("stable", 0), backend("canary", 100)]
    shifted = deployment(stableSlot="canary", route=ROUTE)
    assert routing.track_service(shifted, "stable")["spec"]["selector"] == {
        "app.kubernetes.io/name": "bert",
        "servestack.io/track": "canary",
    }


def test_blue_green_stable_service_selects_the_live_version() -> None:
    spec = deployment(strategy={"type": "blue_green"}, route={"gateway": {"name": "gw"}})
    assert routing.track_service(spec, "stable")["spec"]["selector"] == {
        "app.kubernetes.io/name": "bert",
        "servestack.io/track": "stable",
        "servestack.io/model-version": "v2-1-0",
    }


def test_no_route_no_track_services() -> None:
    spec, eff = with_effective(strategy=CANARY)
    assert eff.load_balancer is not None
    assert [m["kind"] for m in routing.manifests(spec, eff.load_balancer)] == [
        "Service",
        "DestinationRule",
        "VirtualService",
    ]


def test_the_network_policy_admits_the_gateway_pods() -> None:
    from servestack.manifests.workload import network_policy

    def peers(**route: Any) -> list[Any]:
        spec = deployment(**route)
        return network_policy(spec)["spec"]["ingress"][0]["from"]

    assert len(peers()) == 2
    assert peers(route=ROUTE)[2] == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gateways"}},
        "podSelector": {"matchLabels": {"gateway.networking.k8s.io/gateway-name": "public"}},
    }
    # A Gateway in the deployment's own namespace.
    assert peers(route={"gateway": {"name": "gw"}})[2]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "models"}
    }


def test_no_subsets_without_canary() -> None:
    spec, eff = with_effective()
    assert eff.load_balancer is not None
    assert "subsets" not in routing.destination_rule(spec, eff.load_balancer)["spec"]


# --- scaling --------------------------------------------------------------------------------------


def target(bounds: dict[str, Any], queue: dict[str, Any] | None = None) -> ScalerTarget:
    from servestack import Autoscaling, Queue

    return ScalerTarget(
        name="bert",
        deployment="bert-v2",
        namespace="models",
        bounds=Autoscaling.model_validate(bounds),
        labels={"a": "b"},
        queue=Queue.model_validate(queue) if queue else None,
    )


def cpu_metric(kind: str, value: int) -> dict[str, Any]:
    return {
        "type": "Resource",
        "resource": {"name": kind, "target": {"type": "Utilization", "averageUtilization": value}},
    }


GPU_METRIC = {
    "type": "Pods",
    "pods": {
        "metric": {"name": "DCGM_FI_DEV_GPU_UTIL"},
        "target": {"type": "AverageValue", "averageValue": "60"},
    },
}


def test_hpa() -> None:
    assert scaling.hpa(
        target(
            {
                "minReplicas": 2,
                "maxReplicas": 10,
                "targetCpuUtilization": 70,
                "scaleDownStabilizationSeconds": 120,
            }
        )
    ) == {
        "metadata": {"name": "bert", "namespace": "models", "labels": {"a": "b"}},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "bert-v2"},
            "minReplicas": 2,
            "maxReplicas": 10,
            "metrics": [cpu_metric("cpu", 70)],
            "behavior": {
                "scaleDown": {
                    "stabilizationWindowSeconds": 120,
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                }
            },
        },
    }


@pytest.mark.parametrize(
    ("targets", "metrics"),
    [
        ({"targetCpuUtilization": 80}, [cpu_metric("cpu", 80)]),
        ({"targetCpuUtilization": None, "targetMemoryUtilization": 75}, [cpu_metric("memory", 75)]),
        ({"targetCpuUtilization": None, "targetGpuUtilization": 60}, [GPU_METRIC]),
        (
            {"targetCpuUtilization": 70, "targetMemoryUtilization": 80, "targetGpuUtilization": 60},
            [cpu_metric("cpu", 70), cpu_metric("memory", 80), GPU_METRIC],
        ),
    ],
)
def test_hpa_metrics(targets: dict[str, Any], metrics: list[dict[str, Any]]) -> None:
    assert scaling.hpa(target(targets))["spec"]["metrics"] == metrics


@pytest.mark.parametrize(
    ("kind", "trigger"),
    [
        (
            "rabbitmq",
            {"queueName": "jobs", "mode": "QueueLength", "value": "20", "hostFromEnv": "QUEUE_URL"},
        ),
        (
            "kafka",
            {
                "topic": "jobs",
                "consumerGroup": "jobs",
                "lagThreshold": "20",
                "bootstrapServersFromEnv": "QUEUE_URL",
            },
        ),
        ("redis", {"listName": "jobs", "listLength": "20", "addressFromEnv": "QUEUE_URL"}),
    ],
)
def test_keda_scaled_object(kind: str, trigger: dict[str, str]) -> None:
    queue = {"kind": kind, "name": "jobs", "targetDepth": 20, "connectionSecret": "conn"}
    bounds = {
        "minReplicas": 1,
        "maxReplicas": 3,
        "targetCpuUtilization": 80,
        "targetMemoryUtilization": 90,
        "scaleDownStabilizationSeconds": 60,
    }
    assert scaling.scaled_object(target(bounds, queue)) == {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "bert", "namespace": "models", "labels": {"a": "b"}},
        "spec": {
            "scaleTargetRef": {"name": "bert-v2"},
            "minReplicaCount": 1,
            "maxReplicaCount": 3,
            "cooldownPeriod": 60,
            "triggers": [
                {"type": kind, "metadata": trigger},
                {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "80"}},
                {"type": "memory", "metricType": "Utilization", "metadata": {"value": "90"}},
            ],
        },
    }


def test_keda_without_resource_targets_scales_on_the_queue_only() -> None:
    queue = {"kind": "redis", "name": "l", "connectionSecret": "conn"}
    so = scaling.scaled_object(target({"targetCpuUtilization": None}, queue))
    assert so["spec"]["triggers"] == [
        {
            "type": "redis",
            "metadata": {"listName": "l", "listLength": "10", "addressFromEnv": "QUEUE_URL"},
        }
    ]


# --- node pools -------------------------------------------------------------------------------


def tolerated(taint: dict[str, str], tolerations: list[dict[str, str]]) -> bool:
    """Kubernetes' rule: does any toleration match the taint?"""
    for t in tolerations:
        if t.get("effect") not in (None, "", taint["effect"]):
            continue
        if t.get("operator", "Equal") == "Exists":
            if t.get("key") in (None, "", taint["key"]):
                return True
        elif t.get("key") == taint["key"] and t.get("value", "") == taint.get("value", ""):
            return True
    return False


def selected(node_labels: dict[str, str], node_selector: dict[str, str]) -> bool:
    return all(node_labels.get(k) == v for k, v in node_selector.items())


def cloud_taint(taint: dict[str, str]) -> dict[str, str]:
    """GKE/EKS spell effects NO_SCHEDULE; Kubernetes spells them NoSchedule."""
    effects = {
        "NO_SCHEDULE": "NoSchedule",
        "PREFER_NO_SCHEDULE": "PreferNoSchedule",
        "NO_EXECUTE": "NoExecute",
    }
    return {**taint, "effect": effects[taint["effect"]]}


def smallest(gpu_type: GpuType, provider: str) -> int:
    """The smallest GPUs-per-node count with a default machine on ``provider``."""
    return min(provider_defaults(CloudProvider(provider), gpu_type))


def test_karpenter_node_pool() -> None:
    p = NodePoolSpec.model_validate(
        {
            "name": "a100",
            "gpu": {"type": "A100", "count": 8},
            "machineType": "p4d.24xlarge",
            "maxNodes": 4,
        }
    )
    assert karpenter_node_pool(p, KARPENTER) == {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "a100", "labels": {"app.kubernetes.io/managed-by": "servestack"}},
        "spec": {
            "template": {
                "metadata": {
                    "labels": {"servestack.io/gpu": "a100", "servestack.io/node-pool": "a100"}
                },
                "spec": {
                    "nodeClassRef": {
                        "group": "karpenter.k8s.aws",
                        "kind": "EC2NodeClass",
                        "name": "gpu-al2023",
                    },
                    "taints": [
                        {"key": "servestack.io/gpu", "value": "a100", "effect": "NoSchedule"}
                    ],
                    "requirements": [
                        {
                            "key": "node.kubernetes.io/instance-type",
                            "operator": "In",
                            "values": ["p4d.24xlarge"],
                        },
                        {
                            "key": "karpenter.k8s.aws/instance-gpu-name",
                            "operator": "In",
                            "values": ["a100"],
                        },
                        {
                            "key": "karpenter.sh/capacity-type",
                            "operator": "In",
                            "values": ["on-demand"],
                        },
                    ],
                },
            },
            "limits": {"nodes": "4", "nvidia.com/gpu": "32"},
            "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "10m"},
        },
    }


@pytest.mark.parametrize(("spot", "capacity"), [(True, "spot"), (False, "on-demand")])
def test_karpenter_capacity_type(spot: bool, capacity: str) -> None:
    requirements = karpenter_node_pool(pool("T4", spot=spot), KARPENTER)["spec"]["template"][
        "spec"
    ]["requirements"]
    assert requirements[2] == {
        "key": "karpenter.sh/capacity-type",
        "operator": "In",
        "values": [capacity],
    }
    assert requirements[0]["values"] == ["g4dn.xlarge"]


@pytest.mark.parametrize("gpu_type", GPU_TYPES)
def test_karpenter_pool_matches_the_deployments_for_its_gpu(gpu_type: GpuType) -> None:
    count = smallest(gpu_type, "karpenter")
    template = karpenter_node_pool(pool(gpu_type, count), KARPENTER)["spec"]["template"]
    pod = pod_spec(resources=gpu_resources(gpu_type, count))
    (taint,) = template["spec"]["taints"]
    assert tolerated(taint, pod["tolerations"])
    assert selected(template["metadata"]["labels"], pod["nodeSelector"])
    assert template["spec"]["requirements"][1]["values"] == [gpu_info(gpu_type).karpenter_gpu_name]


@pytest.mark.parametrize("gpu_type", [t for t in GPU_TABLE if GPU_TABLE[t].gke_accelerator])
def test_gke_pool_matches_the_deployments_for_its_gpu(gpu_type: GpuType) -> None:
    count = smallest(gpu_type, "gke")
    node_config = gke_node_pool_args(pool(gpu_type, count), GKE)["node_config"]
    pod = pod_spec(resources=gpu_resources(gpu_type, count))
    # GKE taints every GPU node with nvidia.com/gpu=present:NoSchedule by itself.
    taints = [
        *(cloud_taint(t) for t in node_config["taints"]),
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"},
    ]
    assert [tolerated(t, pod["tolerations"]) for t in taints] == [True, True]
    assert selected(node_config["labels"], pod["nodeSelector"])


@pytest.mark.parametrize("gpu_type", GPU_TYPES)
def test_eks_pool_matches_the_deployments_for_its_gpu(gpu_type: GpuType) -> None:
    count = smallest(gpu_type, "eks")
    args = eks_node_group_args(pool(gpu_type, count), EKS)
    pod = pod_spec(resources=gpu_resources(gpu_type, count))
    assert [tolerated(cloud_taint(t), pod["tolerations"]) for t in args["taints"]] == [True]
    assert selected(args["labels"], pod["nodeSelector"])


@pytest.mark.parametrize(
    ("pool_gpu", "pod_gpu"),
    [(GpuType.A100, GpuType.T4), (GpuType.T4, GpuType.A100), (GpuType.L4, GpuType.L40S)],
)
def test_pods_of_another_gpu_neither_tolerate_nor_select_a_pool(
    pool_gpu: GpuType, pod_gpu: GpuType
) -> None:
    template = karpenter_node_pool(pool(pool_gpu, smallest(pool_gpu, "karpenter")), KARPENTER)[
        "spec"
    ]["template"]
    pod = pod_spec(resources=gpu_resources(pod_gpu))
    assert tolerated(template["spec"]["taints"][0], pod["tolerations"]) is False
    assert selected(template["metadata"]["labels"], pod["nodeSelector"]) is False


@pytest.mark.parametrize(
    ("gpu_type", "count", "machine"),
    [
        pytest.param(t, n, m, id=f"{t.value}-{n}")
        for t in GPU_TABLE
        for n, m in provider_defaults(CloudProvider.gke, t).items()
    ],
)
def test_gke_accelerator_comes_from_the_gpu_table(
    gpu_type: GpuType, count: int, machine: str
) -> None:
    info = gpu_info(gpu_type)
    node_config = gke_node_pool_args(pool(gpu_type, count), GKE)["node_config"]
    assert node_config["guest_accelerators"] == [
        {
            "type": info.gke_accelerator,
            "count": count,
            "gpu_driver_installation_config": {"gpu_driver_version": "LATEST"},
        }
    ]
    assert node_config["machine_type"] == machine


def test_machine_type_given_wins_over_the_default() -> None:
    p = pool("A100", 1, machineType="p4de.24xlarge")
    assert eks_node_group_args(p, EKS)["instance_types"] == ["p4de.24xlarge"]
    p = pool("L4", 1, machineType="g2-standard-16")
    assert gke_node_pool_args(p, GKE)["node_config"]["machine_type"] == "g2-standard-16"


def test_gke_node_pool_args() -> None:
    p = pool("L4", minNodes=1, maxNodes=3, spot=True, diskSizeGb=500, machineType="g2-standard-24")
    assert gke_node_pool_args(p, GKE) == {
        "cluster": "gke-1",
        "location": "europe-west4",
        "project": "proj",
        "name": "pool",
        "autoscaling": {"min_node_count": 1, "max_node_count": 3},
        "node_config": {
            "machine_type": "g2-standard-24",
            "spot": True,
            "disk_size_gb": 500,
            "labels": {"servestack.io/gpu": "l4", "servestack.io/node-pool": "pool"},
            "taints": [{"key": "servestack.io/gpu", "value": "l4", "effect": "NO_SCHEDULE"}],
            "guest_accelerators": [
                {
                    "type": "nvidia-l4",
                    "count": 1,
                    "gpu_driver_installation_config": {"gpu_driver_version": "LATEST"},
                }
            ],
            "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"],
        },
        "management": {"auto_repair": True, "auto_upgrade": True},
    }


def test_gke_min_nodes_edit_only_touches_autoscaling() -> None:
    before = gke_node_pool_args(pool("L4", minNodes=0, maxNodes=3), GKE)
    after = gke_node_pool_args(pool("L4", minNodes=2, maxNodes=3), GKE)
    assert sorted(k for k in before if before[k] != after[k]) == ["autoscaling"]


def test_eks_node_group_args() -> None:
    p = pool("A10G", 1, minNodes=1, maxNodes=5, spot=True)
    assert eks_node_group_args(p, EKS) == {
        "cluster_name": "eks-1",
        "node_group_name": "pool",
        "node_role_arn": "arn:aws:iam::1:role/nodes",
        "subnet_ids": ["subnet-a", "subnet-b"],
        "ami_type": "AL2023_x86_64_NVIDIA",
        "instance_types": ["g5.xlarge"],
        "capacity_type": "SPOT",
        "disk_size": 200,
        "scaling_config": {"min_size": 1, "max_size": 5, "desired_size": 1},
        "labels": {"servestack.io/gpu": "a10g", "servestack.io/node-pool": "pool"},
        "taints": [{"key": "servestack.io/gpu", "value": "a10g", "effect": "NO_SCHEDULE"}],
    }


@pytest.mark.parametrize(
    ("gpu_type", "count", "instance"),
    [
        pytest.param(t, n, m, id=f"{t.value}-{n}")
        for t in GPU_TABLE
        for n, m in provider_defaults(CloudProvider.eks, t).items()
    ],
)
def test_eks_instance_type_comes_from_the_gpu_table(
    gpu_type: GpuType, count: int, instance: str
) -> None:
    args = eks_node_group_args(pool(gpu_type, count), EKS)
    assert (args["ami_type"], args["instance_types"], args["capacity_type"]) == (
        "AL2023_x86_64_NVIDIA",
        [instance],
        "ON_DEMAND",
    )


# GPUs per machine of the table's fixed-shape machine types (AWS and GCP documentation).
# GKE N1 machines take attached T4/V100 GPUs in several counts, so they are not listed.
GPUS_PER_MACHINE = {
    "g4dn.xlarge": 1,
    "g4dn.12xlarge": 4,
    "g4dn.metal": 8,
    "p3.2xlarge": 1,
    "p3.8xlarge": 4,
    "p3.16xlarge": 8,
    "g5.xlarge": 1,
    "g5.12xlarge": 4,
    "g5.48xlarge": 8,
    "p4d.24xlarge": 8,
    "g6.xlarge": 1,
    "g6.12xlarge": 4,
    "g6.48xlarge": 8,
    "g6e.xlarge": 1,
    "g6e.12xlarge": 4,
    "g6e.48xlarge": 8,
    "p5.48xlarge": 8,
    "a2-highgpu-1g": 1,
    "a2-highgpu-2g": 2,
    "a2-highgpu-4g": 4,
    "a2-highgpu-8g": 8,
    "a2-megagpu-16g": 16,
    "g2-standard-8": 1,
    "g2-standard-24": 2,
    "g2-standard-48": 4,
    "g2-standard-96": 8,
    "a3-highgpu-8g": 8,
    "a2-ultragpu-1g": 1,
    "a2-ultragpu-2g": 2,
    "a2-ultragpu-4g": 4,
    "a2-ultragpu-8g": 8,
    "a3-ultragpu-8g": 8,
    "a4-highgpu-8g": 8,
    "p4de.24xlarge": 8,
    "p5e.48xlarge": 8,
    "p6-b200.48xlarge": 8,
}
DEFAULT_MACHINES = [
    pytest.param(t, provider, count, machine, id=f"{t.value}-{provider}-{count}")
    for t in GPU_TABLE
    for provider in (CloudProvider.gke, CloudProvider.eks)
    for count, machine in provider_defaults(provider, t).items()
]


@pytest.mark.parametrize(("gpu_type", "provider", "count", "machine"), DEFAULT_MACHINES)
def test_default_machine_carries_the_pools_gpu_count(
    gpu_type: GpuType, provider: str, count: int, machine: str
) -> None:
    assert default_machine(CloudProvider(provider), gpu_type, count) == machine
    if machine.startswith("n1-"):
        assert gpu_type in (GpuType.T4, GpuType.V100)
    else:
        assert GPUS_PER_MACHINE[machine] == count


def test_default_machine_tables() -> None:
    assert {
        t.value: (provider_defaults(CloudProvider.gke, t), provider_defaults(CloudProvider.eks, t))
        for t in GPU_TABLE
    } == {
        "T4": (
            {1: "n1-standard-8", 2: "n1-standard-16", 4: "n1-standard-32"},
            {1: "g4dn.xlarge", 4: "g4dn.12xlarge", 8: "g4dn.metal"},
        ),
        "V100": (
            {1: "n1-standard-8", 2: "n1-standard-16", 4: "n1-standard-32", 8: "n1-standard-64"},
            {1: "p3.2xlarge", 4: "p3.8xlarge", 8: "p3.16xlarge"},
        ),
        "A10G": ({}, {1: "g5.xlarge", 4: "g5.12xlarge", 8: "g5.48xlarge"}),
        "A100": (
            {
                1: "a2-highgpu-1g",
                2: "a2-highgpu-2g",
                4: "a2-highgpu-4g",
                8: "a2-highgpu-8g",
                16: "a2-megagpu-16g",
            },
            {8: "p4d.24xlarge"},
        ),
        "L4": (
            {1: "g2-standard-8", 2: "g2-standard-24", 4: "g2-standard-48", 8: "g2-standard-96"},
            {1: "g6.xlarge", 4: "g6.12xlarge", 8: "g6.48xlarge"},
        ),
        "L40S": ({}, {1: "g6e.xlarge", 4: "g6e.12xlarge", 8: "g6e.48xlarge"}),
        "A100-80GB": (
            {1: "a2-ultragpu-1g", 2: "a2-ultragpu-2g", 4: "a2-ultragpu-4g", 8: "a2-ultragpu-8g"},
            {8: "p4de.24xlarge"},
        ),
        "H100": ({8: "a3-highgpu-8g"}, {8: "p5.48xlarge"}),
        "H200": ({8: "a3-ultragpu-8g"}, {8: "p5e.48xlarge"}),
        "B200": ({8: "a4-highgpu-8g"}, {8: "p6-b200.48xlarge"}),
    }


@pytest.mark.parametrize(
    ("gpu_type", "provider", "count"),
    [
        (GpuType.A100, "eks", 1),
        (GpuType.H100, "gke", 1),
        (GpuType.H100, "eks", 4),
        (GpuType.A10G, "gke", 1),
        (GpuType.T4, "eks", 2),
    ],
)
def test_no_default_machine_for_other_counts(gpu_type: GpuType, provider: str, count: int) -> None:
    assert default_machine(CloudProvider(provider), gpu_type, count) is None


def test_karpenter_uses_the_eks_instance_table() -> None:
    assert default_machine(CloudProvider.karpenter, GpuType.L4, 4) == "g6.12xlarge"
    p = pool("L4", 4)
    requirements = karpenter_node_pool(p, KARPENTER)["spec"]["template"]["spec"]["requirements"]
    assert requirements[0]["values"] == ["g6.12xlarge"]


def test_gpu_table_is_consistent() -> None:
    assert [(t.value, i.type, i.label_value) for t, i in GPU_TABLE.items()] == [
        (t.value, t, t.value.lower()) for t in GpuType
    ]
    for info in GPU_TABLE.values():
        gke = provider_defaults(CloudProvider.gke, info.type)
        assert (info.gke_accelerator is None) == (not gke), info.type
        assert provider_defaults(CloudProvider.eks, info.type), info.type


# --- LLM pod settings, image pull Secrets, queue workers (issue 23) ----------------------------


def test_shared_memory_is_a_memory_backed_dev_shm() -> None:
    pod = pod_spec(resources={"cpu": 8, "memory": "64Gi", "sharedMemory": "16Gi"})
    assert pod["volumes"][-1] == {
        "name": "dshm",
        "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"},
    }
    assert pod["containers"][0]["volumeMounts"][-1] == {
        "name": "dshm",
        "mountPath": "/dev/shm",
        "readOnly": False,
    }
    # Counted in the memory limit, which stays the container's one limit.
    assert pod["containers"][0]["resources"]["limits"]["memory"] == "64Gi"


def test_no_shared_memory_no_dev_shm() -> None:
    pod = pod_spec()
    assert [v["name"] for v in pod["volumes"]] == ["tmp", "model-cache"]
    assert "command" not in pod["containers"][0] and "args" not in pod["containers"][0]
    assert not {"imagePullSecrets", "priorityClassName", "affinity"} & set(pod)
    assert "topologySpreadConstraints" not in pod


def test_pod_settings() -> None:
    pod = pod_spec(
        command=["python", "-m", "vllm.entrypoints.openai.api_server"],
        args=["--tensor-parallel-size", "2"],
        priorityClassName="llm-high",
        imagePullSecrets=["regcred", "mirror"],
    )
    assert pod["containers"][0]["command"] == ["python", "-m", "vllm.entrypoints.openai.api_server"]
    assert pod["containers"][0]["args"] == ["--tensor-parallel-size", "2"]
    assert pod["priorityClassName"] == "llm-high"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror"}]


SPREAD_SELECTOR = {"app.kubernetes.io/name": "bert", "servestack.io/track": "stable"}


def spread(key: str, when: str) -> dict[str, Any]:
    return {
        "maxSkew": 1,
        "topologyKey": key,
        "whenUnsatisfiable": when,
        "labelSelector": {"matchLabels": SPREAD_SELECTOR},
        "matchLabelKeys": ["pod-template-hash"],
    }


@pytest.mark.parametrize(
    ("overrides", "constraints"),
    [
        ({"environment": "production"}, [spread("kubernetes.io/hostname", "ScheduleAnyway")]),
        ({"environment": "staging"}, None),
        ({"environment": "production", "topologySpread": {"node": "off"}}, None),
        (
            {"topologySpread": {"node": "require", "zone": "prefer"}},
            [
                spread("kubernetes.io/hostname", "DoNotSchedule"),
                spread("topology.kubernetes.io/zone", "ScheduleAnyway"),
            ],
        ),
    ],
)
def test_topology_spread(overrides: dict[str, Any], constraints: list[Any] | None) -> None:
    assert pod_spec(**overrides).get("topologySpreadConstraints") == constraints


def test_affinity_subset() -> None:
    pod = pod_spec(
        affinity={
            "nodeRequirements": [
                {"key": "topology.kubernetes.io/zone", "values": ["eu-west-1a"]},
                {"key": "example.com/reserved", "operator": "DoesNotExist"},
            ],
            "podAntiAffinity": "prefer",
        }
    )
    term = {
        "labelSelector": {"matchLabels": SPREAD_SELECTOR},
        "topologyKey": "kubernetes.io/hostname",
    }
    assert pod["affinity"] == {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {
                                "key": "topology.kubernetes.io/zone",
                                "operator": "In",
                                "values": ["eu-west-1a"],
                            },
                            {"key": "example.com/reserved", "operator": "DoesNotExist"},
                        ]
                    }
                ]
            }
        },
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": term}
            ]
        },
    }
    required = pod_spec(affinity={"podAntiAffinity": "require"})["affinity"]
    assert required == {
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
    }


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        ("rabbitmq", "activationValue"),
        ("kafka", "activationLagThreshold"),
        ("redis", "activationListLength"),
    ],
)
def test_keda_activation_threshold_scales_from_zero(kind: str, key: str) -> None:
    queue = {**QUEUE, "kind": kind, "activationDepth": 3}
    so = scaling.scaled_object(target({"minReplicas": 0, "targetCpuUtilization": None}, queue))
    assert so["spec"]["minReplicaCount"] == 0
    assert [t["type"] for t in so["spec"]["triggers"]] == [kind]
    assert so["spec"]["triggers"][0]["metadata"][key] == "3"


def test_queue_secret_key_is_configurable() -> None:
    env = container(
        processing="async",
        loadBalancer=None,
        queue={**QUEUE, "connectionSecretKey": "amqp-uri"},
    )["env"]
    url = next(e for e in env if e["name"] == "QUEUE_URL")
    assert url["valueFrom"] == {"secretKeyRef": {"name": "rabbit-conn", "key": "amqp-uri"}}
    default = container(processing="async", loadBalancer=None, queue=QUEUE)["env"]
    assert (
        next(e for e in default if e["name"] == "QUEUE_URL")["valueFrom"]["secretKeyRef"]["key"]
        == "url"
    )


def test_hpa_scales_on_gpu_only_when_only_gpu_is_named() -> None:
    hpa = scaling.hpa(target({"targetGpuUtilization": 60}))
    assert [m["type"] for m in hpa["spec"]["metrics"]] == ["Pods"]


# --- model storage ------------------------------------------------------------------------------

MODEL_REF = {
    "id": "model-001",
    "version": "v2.1.0",
    "type": "llm",
    "image": "registry.example.com/nlp/bert:2.1.0",
}


def test_model_from_a_pvc_is_mounted_read_only() -> None:
    pod = pod_spec(model={**MODEL_REF, "storage": {"pvc": "bert-weights"}})
    assert pod["volumes"][-1] == {
        "name": "model",
        "persistentVolumeClaim": {"claimName": "bert-weights", "readOnly": True},
    }
    assert pod["containers"][0]["volumeMounts"][-1] == {
        "name": "model",
        "mountPath": "/models",
        "readOnly": True,
    }
    assert "initContainers" not in pod


def test_model_from_a_uri_is_fetched_into_ephemeral_storage() -> None:
    pod = pod_spec(
        model={**MODEL_REF, "storage": {"uri": "s3://models/bert/v2", "size": "20Gi"}},
        resources={"cpu": 2, "memory": "8Gi", "storage": "10Gi"},
    )
    assert pod["volumes"][-1] == {"name": "model", "emptyDir": {"sizeLimit": "20Gi"}}
    (fetch,) = pod["initContainers"]
    assert (fetch["name"], fetch["image"], fetch["args"]) == (
        "fetch-model",
        "kserve/storage-initializer:v0.15.0",
        ["s3://models/bert/v2", "/models"],
    )
    assert fetch["volumeMounts"][-1] == {"name": "model", "mountPath": "/models"}
    assert fetch["securityContext"] == pod["containers"][0]["securityContext"]
    assert fetch["resources"]["requests"] == fetch["resources"]["limits"]
    # The fetched copy counts in the pod's ephemeral storage: 10Gi of its own + 20Gi.
    limits = pod["containers"][0]["resources"]["limits"]
    assert limits["ephemeral-storage"] == "30Gi"
