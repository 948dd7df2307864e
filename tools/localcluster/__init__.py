"""The local Kubernetes control plane of `make cluster` (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and kwok on 127.0.0.1), as a package: tools/cluster.py
is its command line and re-exports this API. Standard library only (plus the `openssl`
command for certificates).

One module per part, each importing only the ones above it:

    common      the loopback address, the fake address ranges, COMPONENTS in start order,
                ClusterError, ClusterInfo, the log line
    paths       the checkout, its run dir (.cluster/) and its .cluster-bin link
    binaries    the cache entry of tools/build-cluster.sh (built when missing)
    processes   spawning, waiting for and stopping by recorded pid and start time, never by name
    ports       free loopback ports, the previous ones reused while still free
    certs       the CA and the certificates (openssl)
    kubeconfig  kubeconfig files, certificates embedded
    api         HTTP to 127.0.0.1 only: API requests as the admin user, health checks
    state       pids.json, ports.json, the run dir's lock, the ClusterInfo they describe
    kwok        kwok's Stages (node-initialize takes a Node's CAPACITY_ANNOTATION)
    components  the five components' command lines and environment
    crds        the upstream CRDs, applied and waited Established
    karpenter   Karpenter's kwok provider (`up --karpenter`): its node class, its process
    nodes       the bootstrap node
    lifecycle   up and down
    report      status
    cli         main: the command line of tools/cluster.py

Importing it has no side effects.
"""

from __future__ import annotations

from .api import request
from .binaries import ensure_binaries
from .cli import main
from .common import (
    COMPONENTS,
    HOST,
    KWOK_NODE_ANNOTATION,
    NODE_IP,
    POD_CIDR,
    SERVICE_CIDR,
    ClusterError,
    ClusterInfo,
)
from .crds import FIELD_MANAGER
from .karpenter import KARPENTER, NODE_CLASS, generate_instance_types
from .kubeconfig import CONTEXT
from .kwok import CAPACITY_ANNOTATION
from .lifecycle import down, up
from .nodes import BOOTSTRAP_NODE, BOOTSTRAP_NODE_CAPACITY, BOOTSTRAP_NODE_LABELS
from .paths import kubeconfig_path, repo_root, run_dir
from .ports import PORT_NAMES
from .processes import STOP_TIMEOUT
from .report import status

__all__ = [
    "BOOTSTRAP_NODE",
    "BOOTSTRAP_NODE_CAPACITY",
    "BOOTSTRAP_NODE_LABELS",
    "CAPACITY_ANNOTATION",
    "COMPONENTS",
    "CONTEXT",
    "FIELD_MANAGER",
    "HOST",
    "KARPENTER",
    "KWOK_NODE_ANNOTATION",
    "NODE_CLASS",
    "NODE_IP",
    "POD_CIDR",
    "PORT_NAMES",
    "SERVICE_CIDR",
    "STOP_TIMEOUT",
    "ClusterError",
    "ClusterInfo",
    "down",
    "ensure_binaries",
    "generate_instance_types",
    "kubeconfig_path",
    "main",
    "repo_root",
    "request",
    "run_dir",
    "status",
    "up",
]
