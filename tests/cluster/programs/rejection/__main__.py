"""A team's program that composes a ServiceMonitor by hand, next to a ConfigMap.

The scrape interval comes from config `interval` as written: a value the Prometheus
operator's CRD refuses (its pattern wants a duration such as `30s`) reaches the API server
unchanged, because no servestack validation stands in front of a hand-made custom resource.
"""

import pulumi
import pulumi_kubernetes as k8s

NAMESPACE = "rejection"
LABELS = {"app.kubernetes.io/managed-by": "servestack", "app.kubernetes.io/name": "scraped"}

config = pulumi.Config()
provider = k8s.Provider("cluster", enable_server_side_apply=True)
opts = pulumi.ResourceOptions(provider=provider)

namespace = k8s.core.v1.Namespace(
    NAMESPACE, metadata={"name": NAMESPACE, "labels": LABELS}, opts=opts
)
inside = pulumi.ResourceOptions(provider=provider, depends_on=[namespace])
k8s.core.v1.ConfigMap(
    "settings",
    metadata={"name": "settings", "namespace": NAMESPACE, "labels": LABELS},
    data={"threshold": "0.5"},
    opts=inside,
)
k8s.apiextensions.CustomResource(
    "scrape",
    api_version="monitoring.coreos.com/v1",
    kind="ServiceMonitor",
    metadata={"name": "scrape", "namespace": NAMESPACE, "labels": LABELS},
    spec={
        "selector": {"matchLabels": {"app.kubernetes.io/name": "scraped"}},
        "endpoints": [{"port": "metrics", "interval": config.get("interval") or "30s"}],
    },
    opts=inside,
)
