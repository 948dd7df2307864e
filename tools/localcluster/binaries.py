"""The cache entry that tools/build-cluster.sh builds: the five binaries, the upstream CRDs
and kwok's Stages; and the Gateway API's CRDs, which tools/build-gateway-api.sh stages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .common import COMPONENTS, ClusterError, _log
from .paths import _bin_dir


def ensure_binaries(root: Path) -> Path:
    """The cache entry dir (bin/, crds/, kwok/); builds it with tools/build-cluster.sh if
    .cluster-bin is missing or incomplete."""
    link = _bin_dir(root)

    def ok() -> bool:
        if not link.is_dir():
            return False
        entry = link.resolve().parent
        return (
            (entry / ".complete").is_file()
            and all(os.access(link / c, os.X_OK) for c in COMPONENTS)
            and (entry / "crds" / "index.json").is_file()
        )

    if not ok():
        _log(".cluster-bin missing: running tools/build-cluster.sh (cold: ~10 min)")
        subprocess.run(
            ["bash", str(Path(root) / "tools" / "build-cluster.sh")], check=True, stdout=sys.stderr
        )
        if not ok():
            raise ClusterError("tools/build-cluster.sh did not produce .cluster-bin")
    return link.resolve().parent


def gateway_api_crds(root: Path) -> Path:
    """The Gateway API CRD dir (index.json and one file per CRD); staged by
    tools/build-gateway-api.sh (seconds: a module download, nothing compiled) when
    .gateway-api-bin is missing or incomplete."""
    link = Path(root).resolve() / ".gateway-api-bin"

    def ok() -> bool:
        entry = link.resolve().parent
        return (
            link.is_dir()
            and (entry / ".complete").is_file()
            and (entry / "crds" / "index.json").is_file()
        )

    if not ok():
        _log(".gateway-api-bin missing: running tools/build-gateway-api.sh")
        subprocess.run(
            ["bash", str(Path(root) / "tools" / "build-gateway-api.sh")],
            check=True,
            stdout=sys.stderr,
        )
        if not ok():
            raise ClusterError("tools/build-gateway-api.sh did not produce .gateway-api-bin")
    return link.resolve().parent / "crds"
