"""The cache entry that tools/build-cluster.sh builds: the five binaries, the upstream CRDs
and kwok's Stages; and the Gateway API's CRDs, which tools/build-gateway-api.sh stages."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from .common import COMPONENTS, ClusterError, _log
from .paths import _bin_dir


def cache_entry(
    root: Path, link_name: str, script: str, has: Callable[[Path, Path], bool], cold: str = ""
) -> Path:
    """The build cache entry ``<root>/<link_name>`` points into (its parent dir), complete
    (``.complete``) and holding what ``has(link, entry)`` checks; ``tools/<script>`` builds
    it first when it is missing or incomplete (``cold``: how long that takes, for the log)."""
    link = Path(root).resolve() / link_name

    def ok() -> bool:
        if not link.is_dir():
            return False
        entry = link.resolve().parent
        return (entry / ".complete").is_file() and has(link, entry)

    if not ok():
        _log(f"{link_name} missing: running tools/{script}{f' (cold: {cold})' if cold else ''}")
        subprocess.run(["bash", str(Path(root) / "tools" / script)], check=True, stdout=sys.stderr)
        if not ok():
            raise ClusterError(f"tools/{script} did not produce {link_name}")
    return link.resolve().parent


def ensure_binaries(root: Path) -> Path:
    """The cache entry dir (bin/, crds/, kwok/) of tools/build-cluster.sh."""

    def has(link: Path, entry: Path) -> bool:
        return (
            all(os.access(link / c, os.X_OK) for c in COMPONENTS)
            and (entry / "crds" / "index.json").is_file()
        )

    return cache_entry(root, _bin_dir(root).name, "build-cluster.sh", has, cold="~10 min")


def gateway_api_crds(root: Path) -> Path:
    """The Gateway API CRD dir (index.json and one file per CRD) of
    tools/build-gateway-api.sh (seconds: a module download, nothing compiled)."""
    entry = cache_entry(
        root,
        ".gateway-api-bin",
        "build-gateway-api.sh",
        lambda _link, entry: (entry / "crds" / "index.json").is_file(),
    )
    return entry / "crds"
