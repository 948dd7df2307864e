"""The local control plane of `make cluster` (tools/cluster.py) and stack files pointed at it."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from harness import REPO
from servestack.config.stackfile import set_value


def cluster_tool() -> ModuleType:
    """tools/cluster.py, imported by path: tools/ is not a package of the wheel."""
    name = "servestack_tools_cluster"
    if name in sys.modules:
        return sys.modules[name]
    path = REPO / "tools" / "cluster.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def on_local_cluster(text: str, min_nodes: dict[str, int] | None = None) -> str:
    """The stack file pointed at the local control plane of `make cluster`: `target: cluster`,
    `cluster.provider: local` (Karpenter's `nodeClass` dropped), and ``min_nodes`` kwok nodes
    for the named pools."""
    text = set_value(text, "target", "cluster")
    text = set_value(text, "cluster.provider", "local")
    text = set_value(text, "cluster.nodeClass", None)
    for pool, n in (min_nodes or {}).items():
        text = set_value(text, f"nodePools.{pool}.minNodes", n)
    return text
