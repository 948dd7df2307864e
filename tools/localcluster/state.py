"""The run dir's state files (pids.json, ports.json), its lock, and the ClusterInfo they
describe."""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .common import HOST, ClusterInfo
from .paths import run_dir


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[Path]:
    """Serialise up/down of one run dir (e.g. parallel test workers)."""
    rd = run_dir(root)
    rd.mkdir(parents=True, exist_ok=True)
    with open(rd / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            rd.mkdir(parents=True, exist_ok=True)  # a `down --purge` may have run meanwhile
            yield rd
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _info(
    root: Path,
    state: dict[str, Any],
    already_running: bool = False,
    timings: dict[str, float] | None = None,
) -> ClusterInfo:
    rd = run_dir(root)
    certs = rd / "certs"
    ports = {k: int(v) for k, v in state["ports"].items()}
    return ClusterInfo(
        root=Path(root).resolve(),
        run_dir=rd,
        kubeconfig=rd / "kubeconfig",
        server=f"https://{HOST}:{ports['kube-apiserver']}",
        ports=ports,
        pids={k: int(v["pid"]) for k, v in state["pids"].items()},
        ca_file=certs / "ca.crt",
        client_cert=certs / "admin.crt",
        client_key=certs / "admin.key",
        already_running=already_running,
        timings=dict(timings or {}),
    )
