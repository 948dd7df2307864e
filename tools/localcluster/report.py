"""status: the recorded processes (alive, memory), their ports, and the nodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .api import _admin_context, _health, request
from .common import COMPONENTS
from .paths import repo_root, run_dir
from .processes import _alive
from .state import _info, _read_json


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def status(root: Path | None = None) -> dict[str, Any]:
    root = Path(root or repo_root()).resolve()
    rd = run_dir(root)
    state = _read_json(rd / "pids.json")
    result: dict[str, Any] = {
        "running": False,
        "run_dir": str(rd),
        "components": {},
        "ports": state.get("ports", {}),
        "nodes": [],
    }
    for name, e in state.get("pids", {}).items():
        alive = _alive(e)
        result["components"][name] = {
            "pid": e["pid"],
            "alive": alive,
            "rss_mib": round(_rss_mib(e["pid"]), 1) if alive else 0,
        }
    if (
        state
        and all(c["alive"] for c in result["components"].values())
        and set(COMPONENTS) <= set(result["components"])
    ):
        info = _info(root, state)
        result["running"] = _health(info.server + "/readyz", _admin_context(info))
        if result["running"]:
            result["kubeconfig"] = str(info.kubeconfig)
            code, out = request(info, "GET", "/api/v1/nodes")
            for n in out.get("items", []) if code == 200 else []:
                ready = any(
                    c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (n.get("status") or {}).get("conditions") or []
                )
                result["nodes"].append(
                    {
                        "name": n["metadata"]["name"],
                        "ready": ready,
                        "pool": n["metadata"].get("labels", {}).get("servestack.io/pool", ""),
                        "allocatable": n.get("status", {}).get("allocatable", {}),
                    }
                )
    result["rss_mib_total"] = round(sum(c["rss_mib"] for c in result["components"].values()), 1)
    return result
