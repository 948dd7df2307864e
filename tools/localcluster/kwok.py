"""kwok's Stages: the cache entry's, with node-initialize replaced by one that takes a Node's
capacity and allocatable from its CAPACITY_ANNOTATION."""

from __future__ import annotations

from pathlib import Path

from .common import ClusterError

#: A Node may declare the capacity of the machine it stands for in this annotation (JSON, as
#: servestack's `local` node pools write it); the node-initialize Stage below copies it into
#: status.capacity and status.allocatable, which the scheduler places by. The Pulumi provider
#: cannot write a Node's status, so the shape has to travel in metadata.
CAPACITY_ANNOTATION = "servestack.io/capacity"
#: What such a Node offers pods (JSON): its capacity less the kubelet's reserves, which a
#: real kubelet keeps. Without it, allocatable is the declared capacity.
ALLOCATABLE_ANNOTATION = "servestack.io/allocatable"


def _stock_block(key: str) -> str:
    """The `allocatable` or `capacity` block of kwok's stock node-initialize Stage."""
    return (
        f"      {key}:\n"
        f"      {{{{ with .status.{key} }}}}\n"
        "      {{ YAML . 1 }}\n"
        "      {{ else }}\n"
        "        cpu: 1k\n"
        "        memory: 1Ti\n"
        "        pods: 1M\n"
        "      {{ end }}\n"
    )


_STOCK_CAPACITY = {key: _stock_block(key) for key in ("allocatable", "capacity")}


def _node_initialize_stage(stock: str) -> str:
    """kwok's stock node-initialize Stage, with capacity and allocatable taken first from the
    node's CAPACITY_ANNOTATION, then from its status (a Node created with status, as the
    bootstrap node is), then kwok's defaults."""
    # $declared: the capacity annotation; $offered: the allocatable one, else the capacity.
    declared = (
        '      {{ $declared := "" }}{{ $offered := "" }}\n'
        "      {{ with .metadata.annotations }}"
        f'{{{{ with index . "{CAPACITY_ANNOTATION}" }}}}'
        "{{ $declared = . }}{{ $offered = . }}{{ end }}"
        f'{{{{ with index . "{ALLOCATABLE_ANNOTATION}" }}}}{{{{ $offered = . }}}}{{{{ end }}}}'
        "{{ end }}\n"
    )
    out = stock
    for i, (key, block) in enumerate(_STOCK_CAPACITY.items()):
        if out.count(block) != 1:
            raise ClusterError(
                f"kwok's node-initialize Stage changed shape (no unique {key} block): "
                "update _node_initialize_stage in tools/localcluster/kwok.py"
            )
        var = "$offered" if key == "allocatable" else "$declared"
        new = (declared if i == 0 else "") + (
            f"      {key}:\n"
            f"      {{{{ if {var} }}}}\n"
            f"      {{{{ YAML (fromJson {var}) 1 }}}}\n"
            "      {{ else }}\n" + block.split("\n", 1)[1] + "      {{ end }}\n"
        )
        out = out.replace(block, new)
    return out


def _kwok_stages(entry: Path, rd: Path) -> list[str]:
    """The Stages of the cache entry, with node-initialize replaced by ours (written to
    <run dir>/kwok-stages/)."""
    own = rd / "kwok-stages"
    own.mkdir(mode=0o700, exist_ok=True)
    stages = []
    for p in sorted((entry / "kwok").glob("*.yaml")):
        if p.name == "node-initialize.yaml":
            mine = own / p.name
            mine.write_text(_node_initialize_stage(p.read_text()))
            stages.append(str(mine))
        else:
            stages.append(str(p))
    return stages
