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

Prerequisite: Istio (or any mesh that reads networking.istio.io/v1) in the cluster. With
`loadBalancer.enabled: false` only the Service is created and kube-proxy spreads traffic.
"""

from __future__ import annotations

from components import naming
from components.config import Algorithm, DeploymentSpec, LoadBalancerSpec, StrategyType
from components.workload import Manifest, metadata

ISTIO_API = "networking.istio.io/v1"
AFFINITY_COOKIE = "servestack-affinity"
SERVICE_PORT = 80


def host(spec: DeploymentSpec) -> str:
    return f"{spec.name}.{spec.namespace}.svc.cluster.local"


def endpoint(spec: DeploymentSpec) -> str:
    """The in-cluster URL clients call: the Service's DNS name and port."""
    return f"http://{host(spec)}:{SERVICE_PORT}"


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


def _load_balancer(lb: LoadBalancerSpec) -> Manifest:
    if lb.sticky_sessions:
        return {"consistentHash": {"httpCookie": {"name": AFFINITY_COOKIE, "ttl": "3600s"}}}
    if lb.algorithm is Algorithm.ip_hash:
        return {"consistentHash": {"useSourceIp": True}}
    simple = {Algorithm.round_robin: "ROUND_ROBIN", Algorithm.least_connections: "LEAST_REQUEST"}
    return {"simple": simple[lb.algorithm]}


def destination_rule(spec: DeploymentSpec, lb: LoadBalancerSpec) -> Manifest:
    check = lb.health_check
    body: Manifest = {
        "host": host(spec),
        "trafficPolicy": {
            "loadBalancer": _load_balancer(lb),
            "outlierDetection": {
                "consecutive5xxErrors": check.failure_threshold,
                "interval": f"{check.interval_seconds}s",
                "baseEjectionTime": "30s",
                "maxEjectionPercent": 50,
            },
        },
    }
    if spec.strategy.type is StrategyType.canary:
        body["subsets"] = [
            {"name": track, "labels": {naming.TRACK_LABEL: track}}
            for track in (naming.STABLE, naming.CANARY)
        ]
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
            "hosts": [host(spec)],
            "http": [
                {
                    "route": [
                        {
                            "destination": {"host": host(spec), "subset": naming.STABLE},
                            "weight": 100 - weight,
                        },
                        {
                            "destination": {"host": host(spec), "subset": naming.CANARY},
                            "weight": weight,
                        },
                    ]
                }
            ],
        },
    }
