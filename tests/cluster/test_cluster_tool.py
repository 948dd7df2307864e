"""Unit tests of tools/cluster.py that need no cluster binaries: process handling by recorded
pid, port picking, certificates and kubeconfig. Fast; not marked `cluster`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path
from types import ModuleType

import pytest


def test_spawn_and_stop_by_recorded_pid(cluster_module: ModuleType, tmp_path: Path) -> None:
    c = cluster_module
    entry = c._spawn(
        "sleeper", ["sleep", "300"], tmp_path / "logs" / "sleeper.log", dict(os.environ)
    )
    assert c._alive(entry)
    # The recorded start time guards against a recycled pid: a wrong one means "not ours".
    assert not c._alive({**entry, "start": entry["start"] + 1})
    c._stop_entries({"sleeper": entry}, timeout=5)
    assert not c._alive(entry)
    assert "==== " in (tmp_path / "logs" / "sleeper.log").read_text()


def test_stop_escalates_to_sigkill(cluster_module: ModuleType, tmp_path: Path) -> None:
    c = cluster_module
    script = "trap '' TERM; while :; do sleep 0.1; done"
    entry = c._spawn("stubborn", ["sh", "-c", script], tmp_path / "stubborn.log", dict(os.environ))
    t0 = time.monotonic()
    c._stop_entries({"stubborn": entry}, timeout=1)
    assert not c._alive(entry)
    assert time.monotonic() - t0 < 10


def test_stop_ignores_dead_and_foreign_entries(cluster_module: ModuleType) -> None:
    c = cluster_module
    done = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True, check=True)
    dead = {"pid": int(done.stdout), "start": 1, "log": "/dev/null"}
    me = subprocess.Popen(["sleep", "30"])
    try:
        # Our own child, recorded with a different start time: must not be signalled.
        foreign = {"pid": me.pid, "start": c._proc_start_time(me.pid) + 7, "log": "/dev/null"}
        c._stop_entries({"dead": dead, "foreign": foreign}, timeout=1)
        assert me.poll() is None
    finally:
        me.send_signal(signal.SIGKILL)
        me.wait()


def test_pick_ports_loopback_unique_and_sticky(cluster_module: ModuleType) -> None:
    c = cluster_module
    ports = c._pick_ports({})
    assert set(ports) == set(c.PORT_NAMES)
    assert len(set(ports.values())) == len(ports)
    assert all(c._port_free(p) for p in ports.values())
    assert c._pick_ports(ports) == ports  # free previous ports are reused
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports["kube-apiserver"]))
        s.listen()
        again = c._pick_ports(ports)
    assert again["kube-apiserver"] != ports["kube-apiserver"]
    assert again["etcd"] == ports["etcd"]


def test_refuses_non_loopback_urls(cluster_module: ModuleType) -> None:
    with pytest.raises(cluster_module.ClusterError):
        cluster_module._health("http://198.18.0.1/healthz")
    with pytest.raises(cluster_module.ClusterError):
        cluster_module._health("http://localhost:1/healthz")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_certs_and_kubeconfig(cluster_module: ModuleType, tmp_path: Path) -> None:
    c = cluster_module
    certs = tmp_path / "certs"
    c._ensure_certs(certs)
    names = {p.name for p in certs.iterdir()}
    assert {"ca.crt", "ca.key", "apiserver.crt", "admin.crt", "admin.key", "sa.key"} <= names
    text = subprocess.run(
        ["openssl", "x509", "-in", str(certs / "apiserver.crt"), "-noout", "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "IP Address:127.0.0.1" in text
    subject = subprocess.run(
        ["openssl", "x509", "-in", str(certs / "admin.crt"), "-noout", "-subject"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "O = system:masters" in subject
    for name in ("apiserver", "admin", "controller-manager", "scheduler", "kwok"):
        subprocess.run(
            ["openssl", "verify", "-CAfile", str(certs / "ca.crt"), str(certs / f"{name}.crt")],
            check=True,
            capture_output=True,
        )
    # The client chain loads into Python's ssl as the tests' clients will load it.
    ctx = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    ctx.load_cert_chain(str(certs / "admin.crt"), str(certs / "admin.key"))
    before = (certs / "ca.crt").read_bytes()
    c._ensure_certs(certs)  # kept as they are
    assert (certs / "ca.crt").read_bytes() == before

    kc = tmp_path / "kubeconfig"
    c._write_kubeconfig(kc, "https://127.0.0.1:6443", certs, "admin")
    content = kc.read_text()
    assert "current-context: servestack-local" in content
    assert "server: https://127.0.0.1:6443" in content
    assert kc.stat().st_mode & 0o077 == 0


def test_status_without_cluster(cluster_module: ModuleType, tmp_path: Path) -> None:
    st = cluster_module.status(tmp_path)
    assert st["running"] is False and st["nodes"] == []
    (tmp_path / ".cluster").mkdir()
    pids = {"pids": {"etcd": {"pid": 1, "start": -1, "log": "x"}}, "ports": {"etcd": 1}}
    (tmp_path / ".cluster" / "pids.json").write_text(json.dumps(pids))
    st = cluster_module.status(tmp_path)
    assert st["running"] is False
    assert st["components"]["etcd"]["alive"] is False
    assert cluster_module.main(["--root", str(tmp_path), "env"]) == 0


def test_a_missing_cache_entry_is_built_by_its_script(
    cluster_module: ModuleType, tmp_path: Path
) -> None:
    import sys

    binaries = sys.modules["localcluster.binaries"]
    (tmp_path / "tools").mkdir()
    entry = tmp_path / "cache" / "entry"
    build = f"mkdir -p {entry}/bin && touch {entry}/.complete {entry}/bin/thing && "
    build += f"ln -sfn {entry}/bin {tmp_path}/.thing-bin"
    (tmp_path / "tools" / "build-thing.sh").write_text(build)

    def has(link: Path, _entry: Path) -> bool:
        return (link / "thing").is_file()

    assert binaries.cache_entry(tmp_path, ".thing-bin", "build-thing.sh", has) == entry
    # Complete: the script is not run again (it would fail now).
    (tmp_path / "tools" / "build-thing.sh").write_text("exit 1")
    assert binaries.cache_entry(tmp_path, ".thing-bin", "build-thing.sh", has) == entry
    # A script that leaves the entry incomplete is an error naming it.
    (entry / ".complete").unlink()
    (tmp_path / "tools" / "build-thing.sh").write_text("true")
    with pytest.raises(cluster_module.ClusterError, match=r"build-thing\.sh did not produce"):
        binaries.cache_entry(tmp_path, ".thing-bin", "build-thing.sh", has)
