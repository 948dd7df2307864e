"""A team's own program: its own provider, namespace and naming, servestack components
for the model-serving parts.

Run it like any Pulumi project (`pulumi up`), with `servestack` installed in its
virtualenv. By default it renders manifests to `out/<stack>/`; with
`pulumi config set target cluster` it applies to the cluster that standard kubeconfig
resolution finds (`KUBECONFIG`, `~/.kube/config`, or the context `context` names).
The engine test tier brings it up and down in render mode, the cluster tier on the
local cluster (`clusterProvider: local`, whose node pools become kwok nodes).
"""

import os

import pulumi
import pulumi_kubernetes as k8s

from servestack import ClusterSpec, GpuNodePool, ModelDeployment
from servestack.program.process import tune_gc

tune_gc()  # collector settings for a large, mostly live heap (see the README)
config = pulumi.Config()
target = config.get("target") or "render"
if target == "render":
    render_dir = config.get("renderDirectory") or os.path.join("out", pulumi.get_stack())
    provider = k8s.Provider("render", render_yaml_to_directory=render_dir)
elif target == "cluster":
    provider = k8s.Provider("cluster", context=config.get("context"))
else:
    raise ValueError(f"target: {target!r} is not one of 'render', 'cluster'")

NAMESPACE = "search"
namespace = k8s.core.v1.Namespace(
    NAMESPACE, metadata={"name": NAMESPACE}, opts=pulumi.ResourceOptions(provider=provider)
)

cluster = ClusterSpec(name="team-search", provider=config.get("clusterProvider") or "karpenter")
pool = GpuNodePool(
    "l4",
    {
        "name": "l4",
        "gpu": {"type": "L4", "count": 1},
        "machineType": "g6.xlarge",
        "minNodes": config.get_int("minNodes") or 0,
        "maxNodes": 2,
    },
    cluster,
    opts=pulumi.ResourceOptions(provider=provider),
)

# The same YAML shape as a stack file, written as a dict in the team's own code.
ranker = ModelDeployment(
    "search-ranker",
    {
        "description": "Re-ranks search results",
        "model": {
            "id": "model-310",
            "version": "v1.4.2",
            "type": "embedding",
            "image": "registry.example.com/search/ranker:1.4.2",
        },
        "resources": {"cpu": 2, "memory": "8Gi", "gpu": {"count": 1, "type": "L4"}},
        "environment": "staging",
        "namespace": NAMESPACE,
        "replicas": 2,
        "loadBalancer": {"algorithm": "least_connections"},
        "tags": {"team": "search"},
    },
    opts=pulumi.ResourceOptions(provider=provider, depends_on=[namespace, pool]),
)

pulumi.export("endpoint", ranker.endpoint)
pulumi.export("nodeLabels", pool.labels)
