"""Where things are: the checkout, its run dir (.cluster/) and its .cluster-bin link."""

from __future__ import annotations

from pathlib import Path


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def run_dir(root: Path) -> Path:
    return Path(root).resolve() / ".cluster"


def kubeconfig_path(root: Path) -> Path:
    return run_dir(root) / "kubeconfig"


def _bin_dir(root: Path) -> Path:
    return Path(root).resolve() / ".cluster-bin"
