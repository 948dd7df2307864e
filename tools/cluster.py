#!/usr/bin/env python3
"""A real Kubernetes control plane on 127.0.0.1 for local tests: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and kwok (fake kubelets), built by
tools/build-cluster.sh. Standard library only (plus the `openssl` command for certificates).

    python3 tools/cluster.py up [--timeout S]   start (or find running) and print the export line
    python3 tools/cluster.py up --karpenter [F] also run Karpenter's kwok provider (cluster provider
                                                karpenter); F: its instance types (default: from
                                                servestack's machine table)
    python3 tools/cluster.py down [--purge]     stop by the recorded pids; --purge removes .cluster/
    python3 tools/cluster.py status             running?, ports, memory, nodes
    python3 tools/cluster.py env                print `export KUBECONFIG=...`

    eval "$(python3 tools/cluster.py up)"

Everything listens on 127.0.0.1 only, on free ports picked at start (reused on a restart when
still free). The cluster's service and pod addresses are fake (nothing answers there): they come
from 198.18.0.0/15, the block RFC 2544 reserves for benchmark testing, which is routed nowhere
and collides with none of the private, CGNAT (100.64.0.0/10) or cloud/Kubernetes default ranges.

State lives in <root>/.cluster/: certs/, etcd/ (data, --unsafe-no-fsync), logs/, kubeconfig
(context `servestack-local`), pids.json (pids, process start times, ports) and ports.json.

The code is the package tools/localcluster/, one module per part (its docstring has the map).
This script puts tools/ on sys.path and re-exports the package's API. Tests, the demo and the
bench import it (importlib from tools/cluster.py, harness.local_cluster.cluster_tool):
`up(root) -> ClusterInfo`, `down(root)`, `status(root)`, `kubeconfig_path(root)`,
`request(info, method, path, body)`, and the helpers tests/cluster/test_cluster_tool.py drives.
Importing it has no side effects beyond that sys.path entry.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, tools/ is sys.path[0]; imported by path, it is not there yet. Appended, so
# that nothing under tools/ shadows an installed module.
_TOOLS = str(Path(__file__).resolve().parent)
if _TOOLS not in sys.path:
    sys.path.append(_TOOLS)

from localcluster import (  # noqa: E402
    BOOTSTRAP_NODE,
    BOOTSTRAP_NODE_CAPACITY,
    BOOTSTRAP_NODE_LABELS,
    CAPACITY_ANNOTATION,
    COMPONENTS,
    CONTEXT,
    FIELD_MANAGER,
    HOST,
    KARPENTER,
    KWOK_NODE_ANNOTATION,
    NODE_CLASS,
    NODE_IP,
    POD_CIDR,
    PORT_NAMES,
    SERVICE_CIDR,
    STOP_TIMEOUT,
    ClusterError,
    ClusterInfo,
    down,
    ensure_binaries,
    generate_instance_types,
    kubeconfig_path,
    main,
    repo_root,
    request,
    run_dir,
    status,
    up,
)

# Internals that tests/cluster/test_cluster_tool.py drives directly.
from localcluster.api import _health  # noqa: E402
from localcluster.certs import _ensure_certs  # noqa: E402
from localcluster.kubeconfig import _write_kubeconfig  # noqa: E402
from localcluster.ports import _pick_ports, _port_free  # noqa: E402
from localcluster.processes import _alive, _proc_start_time, _spawn, _stop_entries  # noqa: E402

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
    "_alive",
    "_ensure_certs",
    "_health",
    "_pick_ports",
    "_port_free",
    "_proc_start_time",
    "_spawn",
    "_stop_entries",
    "_write_kubeconfig",
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

if __name__ == "__main__":
    sys.exit(main())
