"""The local control plane of `make cluster` (tools/cluster.py) and stack files pointed at it."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from harness import REPO
from servestack.config.models import LOCAL_NODE_CLASS, CloudProvider
from servestack.config.stackfile import set_value
from servestack.manifests.instance_types import kwok_instance_types


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


def on_local_cluster(
    text: str,
    min_nodes: dict[str, int] | None = None,
    provider: CloudProvider = CloudProvider.local,
) -> str:
    """The stack file pointed at the local control plane of `make cluster`: `target: cluster`
    and ``provider``. With `local` (Karpenter's `nodeClass` dropped), ``min_nodes`` kwok
    nodes for the named pools; with `karpenter`, the kwok provider's node class
    (`LOCAL_NODE_CLASS`): the cluster must then run Karpenter (:func:`up`)."""
    text = set_value(text, "target", "cluster")
    text = set_value(text, "cluster.provider", provider.value)
    if provider is CloudProvider.karpenter:
        text = set_value(text, "cluster.nodeClass", LOCAL_NODE_CLASS.model_dump(by_alias=True))
    else:
        text = set_value(text, "cluster.nodeClass", None)
    for pool, n in (min_nodes or {}).items():
        text = set_value(text, f"nodePools.{pool}.minNodes", n)
    return text


def write_instance_types(path: Path) -> Path:
    """Karpenter's kwok instance types, generated from the machine table, written to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(kwok_instance_types(), indent=1) + "\n", encoding="utf-8")
    return path


def up(root: Path = REPO, karpenter: bool = False, timeout: float = 120) -> Any:
    """Start the local cluster (or find it running); with ``karpenter``, Karpenter's kwok
    provider beside it, its instance types generated from the machine table."""
    tool = cluster_tool()
    types = None
    if karpenter:
        types = write_instance_types(Path(root) / ".cluster" / "karpenter-instance-types.json")
    return tool.up(root, timeout=timeout, karpenter=types)


if __name__ == "__main__":
    # `python -m harness.local_cluster FILE`: what `tools/cluster.py up --karpenter` runs.
    write_instance_types(Path(sys.argv[1]))
