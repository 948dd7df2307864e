"""Pure builders for traffic: the Service and the Istio resources that balance it.

Mapping of `loadBalancer` settings to the data plane that reads them:

| setting                      | resource and field                                           |
|------------------------------|--------------------------------------------------------------|
| algorithm round_robin        | DestinationRule trafficPolicy.loadBalancer.simple ROUND_ROBIN |
| algorithm least_connections  | ... simple LEAST_REQUEST (Envoy's least-request balancer)     |
| algorithm ip_hash            | ... consistentHash.useSourceIp true                           |
| stickySessions               | ... consistentHash.httpCookie (cookie `servestack-affinity`) |
| healthCheck.path/interval    | Pod readinessProbe (who gets traffic) and DestinationRule     |
| healthCheck.failureThreshold | outlierDetection (passive ejection of failing endpoints)     |
| strategy canary weight       | VirtualService route weights over subsets stable / canary    |
| stableSlot                   | which pods (track label) each subset selects                 |
| route (external traffic)     | HTTPRoute on the named Gateway; backends: one Service per    |
|                              | track (`<name>-stable`, `<name>-canary`), canary-weighted    |

Prerequisite: Istio (or any mesh that reads networking.istio.io/v1) in the cluster. With
`loadBalancer.enabled: false` only the Service is created and kube-proxy spreads traffic.
A `route` needs the Gateway API CRDs and an existing Gateway (servestack never creates it).
"""

from __future__ import annotations

from servestack.config.models import (
    Algorithm,
    DeploymentSpec,
    LoadBalancerSpec,
    Route,
    StrategyType,
)
from servestack.manifests import naming
from servestack.manifests.provenance import opt, src
from servestack.manifests.workload import Manifest, metadata

ISTIO_API = "networking.istio.io/v1"
GATEWAY_API = "gateway.networking.k8s.io/v1"
AFFINITY_COOKIE = "servestack-affinity"
SERVICE_PORT = 80


def host(spec: DeploymentSpec) -> str:
    return f"{spec.name}.{spec.namespace}.svc.cluster.local"


def endpoint(spec: DeploymentSpec) -> str:
    """The in-cluster URL clients call: the Service's DNS name and port."""
    return f"http://{host(spec)}:{SERVICE_PORT}"


def _host(spec: DeploymentSpec) -> str:
    return src(host(spec), "name", "namespace")


def service(spec: DeploymentSpec) -> Manifest:
    return {
        "metadata": metadata(spec, spec.name),
        "spec": {
            "type": "ClusterIP",
            "selector": naming.selector(spec),
            "ports": [
                {"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def _load_balancer(lb: LoadBalancerSpec, own: bool) -> Manifest:
    """The balancing policy; ``own``: the settings are the user's (not the defaults)."""
    algorithm = ("loadBalancer.algorithm",) if own else ()
    either = (*algorithm, "loadBalancer.stickySessions") if own else ()
    if lb.sticky_sessions:
        cookie = {"httpCookie": {"name": AFFINITY_COOKIE, "ttl": "3600s"}}
        return {"consistentHash": src(cookie, *either[1:], when=either)}
    if lb.algorithm is Algorithm.ip_hash:
        return {"consistentHash": src({"useSourceIp": True}, *algorithm, when=either)}
    simple = {Algorithm.round_robin: "ROUND_ROBIN", Algorithm.least_connections: "LEAST_REQUEST"}
    return {"simple": src(simple[lb.algorithm], *algorithm, when=either)}


def destination_rule(spec: DeploymentSpec, lb: LoadBalancerSpec) -> Manifest:
    check = lb.health_check
    # Set by the user, or the defaults (no field to name).
    own = spec.load_balancer is not None

    def of(*keys: str) -> tuple[str, ...]:
        return tuple(f"loadBalancer.{k}" for k in keys) if own else ()

    body: Manifest = {
        "host": _host(spec),
        "trafficPolicy": {
            "loadBalancer": _load_balancer(lb, own),
            "outlierDetection": {
                "consecutive5xxErrors": src(
                    check.failure_threshold, *of("healthCheck.failureThreshold")
                ),
                "interval": src(f"{check.interval_seconds}s", *of("healthCheck.intervalSeconds")),
                "baseEjectionTime": "30s",
                "maxEjectionPercent": 50,
            },
        },
    }
    if spec.strategy.type is StrategyType.canary:
        body["subsets"] = opt(
            [
                {
                    "name": track,
                    "labels": {naming.TRACK_LABEL: src(naming.slot(spec, track), "stableSlot")},
                }
                for track in (naming.STABLE, naming.CANARY)
            ],
            "strategy.type",
        )
    return {
        "apiVersion": ISTIO_API,
        "kind": "DestinationRule",
        "metadata": metadata(spec, naming.child_name(spec.name, naming.GATEWAY_RULE)),
        "spec": body,
    }


def virtual_service(spec: DeploymentSpec) -> Manifest:
    """Weighted split between the stable and canary tracks (canary strategy only)."""
    weight = spec.strategy.weight or 0
    return {
        "apiVersion": ISTIO_API,
        "kind": "VirtualService",
        "metadata": metadata(spec, naming.child_name(spec.name, naming.ROUTES)),
        "spec": {
            "hosts": [_host(spec)],
            "http": [
                {
                    "route": [
                        {
                            "destination": {"host": _host(spec), "subset": naming.STABLE},
                            "weight": src(100 - weight, "strategy.weight"),
                        },
                        {
                            "destination": {"host": _host(spec), "subset": naming.CANARY},
                            "weight": src(weight, "strategy.weight"),
                        },
                    ]
                }
            ],
        },
    }


def tracks(spec: DeploymentSpec) -> tuple[str, ...]:
    """The tracks that serve traffic: stable, and the canary while one runs."""
    if spec.strategy.type is StrategyType.canary:
        return (naming.STABLE, naming.CANARY)
    return (naming.STABLE,)


def track_service(spec: DeploymentSpec, track: str) -> Manifest:
    """A Service that selects one track's pods (an HTTPRoute backend weighs tracks by
    Service; the mesh weighs them by subset of the one Service instead)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(spec, naming.child_name(spec.name, track)),
        "spec": {
            "type": "ClusterIP",
            # The track's slot (``stableSlot``), as the DestinationRule's subsets select it.
            "selector": {
                **naming.selector(spec, track),
                naming.TRACK_LABEL: src(naming.slot(spec, track), "stableSlot"),
            },
            "ports": [
                {"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def http_route(spec: DeploymentSpec, route: Route) -> Manifest:
    """The HTTPRoute: attached to the named Gateway, one rule matching the path prefix,
    backends weighted like the mesh's routes (100 - weight to stable, weight to canary)."""
    weight = spec.strategy.weight or 0
    parent: Manifest = {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "name": src(route.gateway.name, "route.gateway.name"),
    }
    if route.gateway.namespace is not None:
        parent["namespace"] = opt(route.gateway.namespace, "route.gateway.namespace")
    # Without a canary the stable track takes all (weight is canary-only config).
    weighted = "strategy.weight" if spec.strategy.type is StrategyType.canary else "strategy.type"
    weights = {naming.STABLE: 100 - weight, naming.CANARY: weight}
    backends = [
        {
            "group": "",
            "kind": "Service",
            "name": naming.child_name(spec.name, track),
            "port": SERVICE_PORT,
            "weight": src(weights[track], weighted),
        }
        for track in tracks(spec)
    ]
    if len(backends) > 1:
        backends[1] = opt(backends[1], "strategy.type")
    body: Manifest = {
        "parentRefs": [parent],
        "rules": [
            {
                "matches": [
                    {"path": {"type": "PathPrefix", "value": src(route.path, "route.path")}}
                ],
                "backendRefs": backends,
            }
        ],
    }
    if route.hostnames:
        body["hostnames"] = opt(list(route.hostnames), "route.hostnames")
    return {
        "apiVersion": GATEWAY_API,
        "kind": "HTTPRoute",
        "metadata": metadata(spec, naming.child_name(spec.name, naming.HTTP_ROUTE)),
        "spec": body,
    }


def manifests(spec: DeploymentSpec, lb: LoadBalancerSpec) -> list[Manifest]:
    """What a LoadBalancer creates: the Service, and with balancing on, the mesh routes;
    with a ``route``, a Service per track and the HTTPRoute."""
    out = [{"apiVersion": "v1", "kind": "Service", **service(spec)}]
    if lb.enabled:
        out.append(destination_rule(spec, lb))
        if spec.strategy.type is StrategyType.canary:
            out.append(virtual_service(spec))
    if spec.route is not None:
        out += [track_service(spec, track) for track in tracks(spec)]
        out.append(http_route(spec, spec.route))
    return out
