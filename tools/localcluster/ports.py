"""Free loopback ports for the components, the previous ones reused while still free."""

from __future__ import annotations

import socket
import time

from .common import HOST, ClusterError

PORT_NAMES = (
    "etcd",
    "etcd-peer",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Go's listeners do
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _pick_ports(previous: dict[str, int], names: tuple[str, ...] = PORT_NAMES) -> dict[str, int]:
    """Free loopback ports: the previous ones where still free (stable kubeconfig and etcd
    peer URL across restarts), fresh ones from the kernel otherwise."""
    ports: dict[str, int] = {}
    held: list[socket.socket] = []
    try:
        for name in names:
            port = previous.get(name)
            if port and port not in ports.values() and _port_free(port):
                ports[name] = port
                continue
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))  # held open until all are picked: no duplicates
            held.append(s)
            ports[name] = s.getsockname()[1]
    finally:
        for s in held:
            s.close()
    return ports


def _wait_ports_free(ports: dict[str, int], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    busy = list(ports.values())
    while busy and time.monotonic() < deadline:
        busy = [p for p in busy if not _port_free(p)]
        if busy:
            time.sleep(0.1)
    if busy:
        raise ClusterError(f"ports still in use after stop: {busy}")
