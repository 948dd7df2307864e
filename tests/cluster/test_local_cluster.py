"""Smoke tests of the local control plane (tools/cluster.py): a real API server with the
upstream CRDs, the real scheduler and controllers, and kwok's fake kubelets.

Everything is observed through the API: pod and service addresses are fake (nothing runs).
"""

from __future__ import annotations

import ipaddress
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from harness import poll
from servestack.config.validation import parse_deployment
from servestack.manifests import routing

pytestmark = pytest.mark.cluster

T = TypeVar("T")

# Upstream CRDs staged by tools/build-cluster.sh and tools/build-gateway-api.sh, by API group.
EXPECTED_CRDS_PER_GROUP = {
    # istio.io/api v1.31.4
    "extensions.istio.io": 2,
    "networking.istio.io": 9,
    "security.istio.io": 3,
    "telemetry.istio.io": 1,
    # github.com/kedacore/keda/v2 v2.21.0
    "keda.sh": 4,
    "eventing.keda.sh": 2,
    # sigs.k8s.io/karpenter v1.14.1
    "karpenter.sh": 3,
    "autoscaling.x-k8s.io": 1,
    # github.com/prometheus-operator/prometheus-operator v0.85.0
    "monitoring.coreos.com": 10,
    # sigs.k8s.io/gateway-api v1.6.3, standard channel (tools/build-gateway-api.sh)
    "gateway.networking.k8s.io": 10,
}
POD_CIDR = ipaddress.ip_network("198.19.0.0/17")


def wait_for(what: str, fn: Callable[[], T | None], timeout: float = 60) -> T:
    """This file's waits: 60 s, polled every 0.25 s."""
    return poll.wait_for(what, fn, timeout, every=0.25)


@pytest.fixture(scope="module")
def api(local_cluster: Path) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(local_cluster))


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    core = client.CoreV1Api(api)
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    wait_for(
        "default ServiceAccount in the new namespace",
        lambda: _exists(lambda: core.read_namespaced_service_account("default", name)),
    )
    yield name
    core.delete_namespace(name)


def _exists(read: Callable[[], Any]) -> bool:
    try:
        read()
    except ApiException as e:
        if e.status == 404:
            return False
        raise
    return True


def _deployment(name: str, image: str, replicas: int = 1) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[
                        client.V1Container(
                            name="main",
                            image=image,
                            resources=client.V1ResourceRequirements(
                                requests={
                                    "cpu": "100m",
                                    "memory": "128Mi",
                                    "ephemeral-storage": "1Gi",
                                },
                            ),
                        )
                    ]
                ),
            ),
        ),
    )


def _ready_condition(pod: client.V1Pod) -> str | None:
    for c in pod.status.conditions or []:
        if c.type == "Ready":
            return str(c.status)
    return None


def test_bootstrap_node_ready(api: client.ApiClient) -> None:
    node = client.CoreV1Api(api).read_node("local-system")
    ready = [c for c in node.status.conditions if c.type == "Ready"]
    assert ready and ready[0].status == "True"
    assert node.metadata.annotations["kwok.x-k8s.io/node"] == "fake"
    assert node.metadata.labels["servestack.io/pool"] == "system"
    alloc = node.status.allocatable
    assert (alloc["cpu"], alloc["memory"], alloc["ephemeral-storage"], alloc["pods"]) == (
        "8",
        "32Gi",
        "100Gi",
        "110",
    )
    version = client.VersionApi(api).get_code()
    assert version.git_version == "v1.36.3"


def test_upstream_crds_established(api: client.ApiClient, cluster_module: Any) -> None:
    crds = client.ApiextensionsV1Api(api).list_custom_resource_definition().items
    per_group = Counter(c.spec.group for c in crds)
    # Karpenter's kwok provider (`up --karpenter`, tests/cluster/test_karpenter.py) adds its
    # node class CRD, and only it; a cluster restarted with its data keeps that CRD.
    karpenter = cluster_module.KARPENTER in cluster_module.status()["components"]
    assert per_group.pop("karpenter.kwok.sh", 0) in ((1,) if karpenter else (0, 1))
    assert dict(per_group) == EXPECTED_CRDS_PER_GROUP
    assert sum(per_group.values()) == sum(EXPECTED_CRDS_PER_GROUP.values()) == 45
    not_established = [
        c.metadata.name
        for c in crds
        if not any(x.type == "Established" and x.status == "True" for x in c.status.conditions)
    ]
    assert not_established == []
    managers = {
        m.manager for c in crds for m in (c.metadata.managed_fields or []) if m.operation == "Apply"
    }
    assert managers == {"servestack-cluster"}


def test_deployment_becomes_ready(api: client.ApiClient, namespace: str) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_deployment(namespace, _deployment("web", "registry.example.com/x:1"))
    dep = wait_for(
        "readyReplicas == 1",
        lambda: (
            (d := apps.read_namespaced_deployment("web", namespace)).status.ready_replicas == 1
            and d
        ),
    )
    assert dep.status.available_replicas == 1
    (pod,) = core.list_namespaced_pod(namespace, label_selector="app=web").items
    assert pod.spec.node_name == "local-system"
    assert pod.status.phase == "Running"
    assert _ready_condition(pod) == "True"
    assert ipaddress.ip_address(pod.status.pod_ip) in POD_CIDR


def test_never_ready_image_stays_unready(api: client.ApiClient, namespace: str) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_deployment(
        namespace, _deployment("model-v2", "registry.example.com/model:v2-never-ready")
    )
    pod = wait_for(
        "the never-ready pod to be Running",
        lambda: next(
            (
                p
                for p in core.list_namespaced_pod(namespace, label_selector="app=model-v2").items
                if p.status.phase == "Running"
            ),
            None,
        ),
    )
    # Started, but its readiness never passes: watch it for a while (pod-ready would have
    # turned it Ready within a second or so).
    for _ in range(12):
        pod = core.read_namespaced_pod(pod.metadata.name, namespace)
        assert pod.status.phase == "Running"
        assert _ready_condition(pod) == "False"
        (cs,) = pod.status.container_statuses
        assert cs.ready is False and cs.started is True and cs.state.running is not None
        time.sleep(0.5)
    dep = apps.read_namespaced_deployment("model-v2", namespace)
    assert not dep.status.ready_replicas
    assert dep.status.unavailable_replicas == 1


def test_never_ready_label_stays_unready(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(
            name="labelled", labels={"servestack.io/test-never-ready": "true"}
        ),
        spec=client.V1PodSpec(
            containers=[client.V1Container(name="main", image="registry.example.com/x:1")]
        ),
    )
    core.create_namespaced_pod(namespace, pod)
    wait_for(
        "the labelled pod to be Running",
        lambda: core.read_namespaced_pod("labelled", namespace).status.phase == "Running",
    )
    time.sleep(2)
    assert _ready_condition(core.read_namespaced_pod("labelled", namespace)) == "False"


def test_virtualservice_schema_is_enforced(api: client.ApiClient, namespace: str) -> None:
    custom = client.CustomObjectsApi(api)

    def vs(hosts: Any) -> dict[str, Any]:
        return {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "model"},
            "spec": {
                "hosts": hosts,
                "http": [{"route": [{"destination": {"host": "model"}}]}],
            },
        }

    args = ("networking.istio.io", "v1", namespace, "virtualservices")
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(*args, vs("model.example.com"))
    assert err.value.status == 422
    assert "spec.hosts" in err.value.body
    # The same object with a list is accepted.
    created = custom.create_namespaced_custom_object(*args, vs(["model.example.com"]))
    assert created["spec"]["hosts"] == ["model.example.com"]


def test_http_route_is_validated_by_the_gateway_api_crd(
    api: client.ApiClient, namespace: str
) -> None:
    """The Gateway API's own rules run in the API server (CEL): a path prefix servestack's
    config refuses is refused there too; the one the builders make is accepted (dry run)."""
    spec = parse_deployment(
        {
            "name": "model",
            "namespace": namespace,
            "model": {"id": "m", "version": "v1", "type": "llm", "image": "r.example.com/m:1"},
            "resources": {"cpu": 1, "memory": "1Gi"},
            "route": {"gateway": {"name": "public"}, "hostnames": ["model.example.com"]},
        }
    )
    assert spec.route is not None
    route = routing.http_route(spec, spec.route)
    custom = client.CustomObjectsApi(api)
    args = ("gateway.networking.k8s.io", "v1", namespace, "httproutes")
    bad = {**route, "spec": {**route["spec"], "rules": [dict(route["spec"]["rules"][0])]}}
    bad["spec"]["rules"][0]["matches"] = [{"path": {"type": "PathPrefix", "value": "/a/../b"}}]
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(*args, bad, dry_run="All")
    assert err.value.status == 422
    assert "must not contain '/../'" in err.value.body
    created = custom.create_namespaced_custom_object(*args, route, dry_run="All")
    assert created["spec"]["rules"][0]["backendRefs"] == route["spec"]["rules"][0]["backendRefs"]


def test_server_side_dry_run(api: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(api)
    out = apps.create_namespaced_deployment(
        namespace, _deployment("dry", "registry.example.com/x:1"), dry_run="All"
    )
    assert out.metadata.name == "dry"
    assert not _exists(lambda: apps.read_namespaced_deployment("dry", namespace))
    # A server-side apply dry run is validated too: an immutable field edit is refused.
    apps.create_namespaced_deployment(namespace, _deployment("real", "registry.example.com/x:1"))
    changed = _deployment("real", "registry.example.com/x:1")
    changed.spec.selector.match_labels = {"app": "real", "track": "other"}
    changed.spec.template.metadata.labels = {"app": "real", "track": "other"}
    body = api.sanitize_for_serialization(changed)
    body.update(apiVersion="apps/v1", kind="Deployment")
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment(
            "real",
            namespace,
            body,
            field_manager="servestack-smoke",
            force=True,
            dry_run="All",
            _content_type="application/apply-patch+yaml",
        )
    assert err.value.status == 422
    assert "field is immutable" in err.value.body
