"""What every module shares: the loopback address and the cluster's fake address ranges,
the components in start order, ClusterError, ClusterInfo (how to reach a running cluster) and
the log line."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
SERVICE_CIDR = "198.18.0.0/16"  # RFC 2544 test range; the `kubernetes` Service gets 198.18.0.1
POD_CIDR = "198.19.0.0/17"  # RFC 2544 test range (kwok hands out pod IPs from here)
NODE_IP = "198.19.128.1"  # RFC 2544 test range, outside POD_CIDR (kwok nodes' InternalIP)
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")

# Start order; stopped in reverse.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


class ClusterError(RuntimeError):
    pass


@dataclass(frozen=True)
class ClusterInfo:
    root: Path
    run_dir: Path
    kubeconfig: Path
    server: str
    ports: dict[str, int]
    pids: dict[str, int]
    ca_file: Path
    client_cert: Path
    client_key: Path
    already_running: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    def export_line(self) -> str:
        return f"export KUBECONFIG={self.kubeconfig}"


def _log(msg: str) -> None:
    print(f"cluster: {msg}", file=sys.stderr, flush=True)
