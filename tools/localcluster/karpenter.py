"""Karpenter with its kwok cloud provider (tools/build-karpenter.sh), started beside the control
plane when asked (`up --karpenter`): for stacks whose pools use cluster provider `karpenter`.

Karpenter runs out of cluster with the admin identity, leader election off. Its instance
types come from a JSON file (servestack generates it from its machine table); it is copied
into the run dir, and a Karpenter already running with other instance types is restarted.
Its node class CRD (KWOKNodeClass) is applied and the node class `default` created, the
object a platform team would create on EKS (an EC2NodeClass). NodePool and NodeClaim come
with the cluster's CRDs.

The stock binary binds its metrics and health-probe servers to ":<port>" (every interface);
servestack's build binds them to 127.0.0.1 (tools/build-karpenter.sh), on free loopback ports
picked here. Karpenter itself only talks to the API server on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from .api import _health, request
from .binaries import cache_entry
from .common import HOST, ClusterError, ClusterInfo, _log
from .components import _child_env
from .crds import FIELD_MANAGER, _crds_established
from .kubeconfig import _write_kubeconfig
from .ports import _pick_ports
from .processes import _alive, _spawn, _stop_entries, _wait

KARPENTER = "karpenter"
PORT_NAMES = ("karpenter-metrics", "karpenter-health")
NODE_CLASS_CRD = "kwoknodeclasses.karpenter.kwok.sh"
NODE_CLASS_CRD_FILE = "karpenter.kwok.sh_kwoknodeclasses.yaml"
#: The node class a stack on the local cluster names (servestack's LOCAL_NODE_CLASS).
NODE_CLASS = {
    "apiVersion": "karpenter.kwok.sh/v1alpha1",
    "kind": "KWOKNodeClass",
    "metadata": {"name": "default"},
}


def karpenter_entry(root: Path) -> Path:
    """The cache entry of tools/build-karpenter.sh (bin/karpenter, crds/)."""

    def has(link: Path, entry: Path) -> bool:
        return (
            os.access(link / KARPENTER, os.X_OK)
            and (entry / "crds" / NODE_CLASS_CRD_FILE).is_file()
        )

    return cache_entry(root, ".karpenter-bin", "build-karpenter.sh", has, cold="~3 min")


def generate_instance_types(root: Path, out: Path) -> Path:
    """The instance types file from servestack's machine table, written by the checkout's
    virtualenv (tools/ itself does not import servestack)."""
    python = Path(root) / ".venv" / "bin" / "python"
    if not python.exists():
        raise ClusterError(f"{python} missing: run `make venv`, or pass --karpenter FILE")
    subprocess.run([str(python), "-m", "harness.local_cluster", str(out)], cwd=root, check=True)
    return out


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _argv(entry: Path, ports: dict[str, int], types: Path) -> list[str]:
    return [
        str(entry / "bin" / KARPENTER),
        "--disable-leader-election=true",
        f"--metrics-port={ports['karpenter-metrics']}",
        f"--health-probe-port={ports['karpenter-health']}",
        f"--instance-types-file-path={types}",
        "--log-level=info",
    ]


def _ensure_node_class(info: ClusterInfo, entry: Path, procs: dict[str, Any]) -> None:
    body = (entry / "crds" / NODE_CLASS_CRD_FILE).read_text()
    status, out = request(
        info,
        "PATCH",
        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{NODE_CLASS_CRD}"
        f"?fieldManager={FIELD_MANAGER}&force=true",
        body,
        content_type="application/apply-patch+yaml",
        timeout=60,
    )
    if status not in (200, 201):
        raise ClusterError(f"apply CRD {NODE_CLASS_CRD}: HTTP {status}: {str(out)[:500]}")
    _wait(
        f"CRD {NODE_CLASS_CRD} Established",
        lambda: _crds_established(info, [NODE_CLASS_CRD]),
        60,
        procs,
        interval=0.5,
    )
    name = NODE_CLASS["metadata"]["name"]
    status, out = request(
        info,
        "PATCH",
        f"/apis/karpenter.kwok.sh/v1alpha1/kwoknodeclasses/{name}"
        f"?fieldManager={FIELD_MANAGER}&force=true",
        NODE_CLASS,
        content_type="application/apply-patch+yaml",
    )
    if status not in (200, 201):
        raise ClusterError(f"apply KWOKNodeClass {name}: HTTP {status}: {str(out)[:500]}")


def ensure_karpenter(
    root: Path, rd: Path, info: ClusterInfo, state: dict[str, Any], types: Path
) -> bool:
    """Karpenter running with the instance types of ``types``: started (or restarted, when
    it runs with other ones) and recorded in ``state`` (the caller writes pids.json).
    Returns whether it was (re)started."""
    procs: dict[str, Any] = state["pids"]
    kd = rd / KARPENTER
    kd.mkdir(mode=0o700, exist_ok=True)
    mine = kd / "instance-types.json"
    running = procs.get(KARPENTER)
    if running and _alive(running) and mine.exists() and _digest(mine) == _digest(types):
        return False
    if running:
        _log("karpenter: restarting (other instance types, or not alive)")
        _stop_entries({KARPENTER: running})
        del procs[KARPENTER]
    entry = karpenter_entry(root)
    if types.resolve() != mine.resolve():
        shutil.copyfile(types, mine)
    _ensure_node_class(info, entry, procs)
    previous = {k: v for k, v in state["ports"].items() if k in PORT_NAMES}
    ports = _pick_ports(previous, PORT_NAMES)
    state["ports"].update(ports)
    kubeconfig = rd / "karpenter.kubeconfig"
    _write_kubeconfig(kubeconfig, info.server, rd / "certs", "admin")
    env = {**_child_env(rd), "KUBECONFIG": str(kubeconfig)}
    procs[KARPENTER] = _spawn(
        KARPENTER, _argv(entry, ports, mine), rd / "logs" / "karpenter.log", env
    )
    _wait(
        "karpenter /readyz",
        lambda: _health(f"http://{HOST}:{ports['karpenter-health']}/readyz"),
        60,
        {KARPENTER: procs[KARPENTER]},
        interval=0.2,
    )
    _log(f"karpenter up: health {HOST}:{ports['karpenter-health']}, instance types {mine}")
    return True
