"""up and down: start the components in order and wait until the cluster is usable (or find it
running and healthy); stop them by their recorded pids."""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path
from typing import Any

from .api import _admin_context, _health, _insecure_loopback_ctx, request
from .binaries import ensure_binaries, gateway_api_crds
from .certs import _ensure_certs
from .common import COMPONENTS, HOST, ClusterInfo, _log
from .components import _argv, _child_env
from .crds import _apply_crds, _crds_established
from .karpenter import ensure_karpenter
from .kubeconfig import _write_kubeconfig
from .nodes import BOOTSTRAP_NODE, _ensure_bootstrap_node, _node_ready
from .paths import repo_root, run_dir
from .ports import _pick_ports, _wait_ports_free
from .processes import _alive, _spawn, _stop_entries, _wait
from .state import _info, _locked, _read_json, _write_json


def _default_sa(info: ClusterInfo) -> bool:
    status, _ = request(info, "GET", "/api/v1/namespaces/default/serviceaccounts/default")
    return status == 200


def _healthy(root: Path, state: dict[str, Any]) -> bool:
    if not state.get("pids") or not set(COMPONENTS) <= set(state["pids"]):
        return False
    if not all(_alive(e) for e in state["pids"].values()):
        return False
    info = _info(root, state)
    return _health(info.server + "/readyz", _admin_context(info)) and _node_ready(info)


def up(
    root: Path | None = None, timeout: float = 120, karpenter: Path | None = None
) -> ClusterInfo:
    """Start the cluster (or find it running and healthy) and return how to reach it.

    ``karpenter``: an instance types file; Karpenter's kwok provider is then started with it
    beside the control plane (or restarted, if it runs with other instance types)."""
    root = Path(root or repo_root()).resolve()
    entry = ensure_binaries(root)
    gateway_api_crds(root)  # staged (seconds) before anything starts
    with _locked(root) as rd:
        pids_file, ports_file = rd / "pids.json", rd / "ports.json"
        state = _read_json(pids_file)
        if state:
            if _healthy(root, state):
                _log(f"already running (kube-apiserver {HOST}:{state['ports']['kube-apiserver']})")
                if karpenter is not None:
                    _with_karpenter(root, rd, state, karpenter, pids_file, ports_file)
                return _info(root, state, already_running=True)
            # Stale or broken: stop whatever is left of it and start afresh from empty data.
            _log("stale .cluster/pids.json (processes dead or unhealthy): cleaning up")
            _stop_entries(state.get("pids", {}))
            _wait_ports_free(state.get("ports", {}))
            # Keep the certificates, the ports and the logs (appended to); drop the rest.
            for p in rd.iterdir():
                if p.name in ("certs", "logs", "ports.json", ".lock"):
                    continue
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()
        info = _start(root, rd, entry, pids_file, ports_file, timeout)
        if karpenter is not None:
            state = _read_json(pids_file)
            _with_karpenter(root, rd, state, karpenter, pids_file, ports_file)
            info = _info(root, state, timings=info.timings)
        return info


def _with_karpenter(
    root: Path, rd: Path, state: dict[str, Any], types: Path, pids_file: Path, ports_file: Path
) -> None:
    try:
        ensure_karpenter(root, rd, _info(root, state), state, types)
    finally:  # recorded whatever happened: `down` can always stop it
        _write_json(pids_file, state)
        _write_json(ports_file, {**_read_json(ports_file), **state["ports"]})


def _start(
    root: Path, rd: Path, entry: Path, pids_file: Path, ports_file: Path, timeout: float
) -> ClusterInfo:
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    gateway_crds = gateway_api_crds(root)
    _ensure_certs(rd / "certs")
    timings["certs"] = time.monotonic() - t0
    ports = _pick_ports(_read_json(ports_file))
    _write_json(ports_file, ports)
    for d in (
        "etcd",
        "logs",
        "kwok",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ):
        (rd / d).mkdir(mode=0o700, exist_ok=True)
    server = f"https://{HOST}:{ports['kube-apiserver']}"
    certs = rd / "certs"
    _write_kubeconfig(rd / "controller-manager.kubeconfig", server, certs, "controller-manager")
    _write_kubeconfig(rd / "scheduler.kubeconfig", server, certs, "scheduler")
    _write_kubeconfig(rd / "kwok.kubeconfig", server, certs, "kwok")
    argv = _argv(entry, rd, ports)
    env = _child_env(rd)
    procs: dict[str, dict[str, Any]] = {}
    state: dict[str, Any] = {"ports": ports, "pids": procs, "bin": str(entry / "bin")}

    def spawn(name: str) -> None:
        procs[name] = _spawn(name, argv[name], rd / "logs" / f"{name}.log", env)
        _write_json(pids_file, state)  # recorded at once: `down` can always stop them

    try:
        spawn("etcd")
        _wait("etcd /health", lambda: _health(f"http://{HOST}:{ports['etcd']}/health"), 30, procs)
        timings["etcd"] = time.monotonic() - t0
        spawn("kube-apiserver")
        info = _info(root, state)
        ctx = _admin_context(info)
        _wait(
            "kube-apiserver /readyz",
            lambda: _health(server + "/readyz", ctx),
            timeout,
            procs,
            interval=0.2,
        )
        timings["apiserver_ready"] = time.monotonic() - t0
        for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
            spawn(name)
        info = _info(root, state)
        _write_kubeconfig(rd / "kubeconfig", server, certs, "admin")
        names = _apply_crds(info, entry / "crds") + _apply_crds(info, gateway_crds)
        timings["crds_applied"] = time.monotonic() - t0
        _ensure_bootstrap_node(info)
        insecure = _insecure_loopback_ctx()
        _wait(
            "kube-controller-manager /healthz",
            lambda: _health(f"https://{HOST}:{ports['kube-controller-manager']}/healthz", insecure),
            60,
            procs,
        )
        _wait(
            "kube-scheduler /healthz",
            lambda: _health(f"https://{HOST}:{ports['kube-scheduler']}/healthz", insecure),
            60,
            procs,
        )
        _wait("kwok /healthz", lambda: _health(f"http://{HOST}:{ports['kwok']}/healthz"), 60, procs)
        _wait(
            f"{len(names)} CRDs Established",
            lambda: _crds_established(info, names),
            60,
            procs,
            interval=0.5,
        )
        timings["crds_established"] = time.monotonic() - t0
        _wait(f"node {BOOTSTRAP_NODE} Ready", lambda: _node_ready(info), 60, procs)
        _wait("ServiceAccount default/default", lambda: _default_sa(info), 60, procs)
        timings["ready"] = time.monotonic() - t0
    except BaseException:
        _log("start failed: stopping what was started")
        with contextlib.suppress(Exception):
            _stop_entries(procs)
        pids_file.unlink(missing_ok=True)
        raise
    _log(
        f"up in {timings['ready']:.1f}s: kube-apiserver {server}, {len(names)} CRDs, "
        f"node {BOOTSTRAP_NODE} Ready"
    )
    return _info(root, state, timings=timings)


def down(root: Path | None = None, purge: bool = False) -> None:
    """Stop the processes recorded in .cluster/pids.json; purge removes .cluster/ too."""
    root = Path(root or repo_root()).resolve()
    rd = run_dir(root)
    if not rd.exists():
        return
    with _locked(root):
        state = _read_json(rd / "pids.json")
        if state:
            _stop_entries(state.get("pids", {}))
            _wait_ports_free(state.get("ports", {}))
            (rd / "pids.json").unlink(missing_ok=True)
        if purge:
            shutil.rmtree(rd)
            _log(f"removed {rd}")
