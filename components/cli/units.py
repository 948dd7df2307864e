"""The operations' quantities, in the stack file's units, and the floors under GPU models.

`servestack resources` takes what a stack file takes (`--cpu 4`, `--cpu 500m`,
`--memory 8Gi`), parsed by :mod:`servestack.config.quantities`. Memory needs a unit on the
command line: a bare number means GiB in a stack file but MiB in the Python API, so the
command refuses to guess. The Python API (`update_model_deployment`) keeps millicores and MiB.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from servestack.config.errors import ConfigError, Problem
from servestack.config.models import StackConfig
from servestack.config.quantities import cpu_millicores, format_cpu, format_memory, memory_bytes
from servestack.contract import paths

#: A number without a unit.
_BARE = re.compile(r"\d+(\.\d*)?|\.\d+")
#: Units `--memory` accepts (Kubernetes quantity suffixes).
MEMORY_UNITS = ("Ki", "Mi", "Gi", "Ti", "K", "M", "G", "T")


@dataclass(frozen=True)
class Floor:
    """The least a deployment with GPUs is given: below it a GPU model does not load, and
    the value is far more likely a unit mistake (`4` millicores meant as 4 cores)."""

    cpu_millicores: int
    memory_mib: int


#: The one place the GPU floors are set (docs/operations.md#resources-and-gpu-floors).
GPU_FLOOR = Floor(cpu_millicores=1000, memory_mib=1024)


def resource_edits(deployment: str, cpu: str | None, memory: str | None) -> dict[str, Any]:
    """Stack-file edits for `--cpu`/`--memory`; every bad value reported at once.

    Raises:
        ConfigError: one problem per bad option, naming field, value and what is allowed.
    """
    edits: dict[str, Any] = {}
    problems: list[Problem] = []
    if cpu is not None:
        path = paths.deployment(deployment, "resources.cpu")
        try:
            millis = cpu_millicores(cpu)
        except ValueError as err:
            problems.append(Problem(path, f"{cpu} {err}"))
        else:
            # Whole cores stay a YAML number, as users write them; others are "500m".
            edits[path] = millis // 1000 if millis % 1000 == 0 else format_cpu(millis)
    if memory is not None:
        path = paths.deployment(deployment, "resources.memory")
        units = ", ".join(MEMORY_UNITS)
        if _BARE.fullmatch(memory.strip()):
            problems.append(
                Problem(path, f"{memory} has no unit: give one of {units} (e.g. 512Mi, 8Gi)")
            )
        else:
            try:
                edits[path] = format_memory(memory_bytes(memory))
            except ValueError:
                problems.append(
                    Problem(path, f"{memory} must be a quantity above 0 with a unit of {units}")
                )
    if problems:
        raise ConfigError(problems)
    return edits


def below_floor(before: StackConfig, after: StackConfig) -> list[str]:
    """Edits that take a deployment with GPUs below :data:`GPU_FLOOR`, before and after
    named: ``deployments.x.resources.cpu: 4 -> 4m, below 1 core (the floor with GPUs)``."""
    olds = {d.name: d for d in before.deployments}
    found = []
    for new in after.deployments:
        old = olds.get(new.name)
        if old is None or not new.resources.gpu.count:
            continue
        gpu = new.resources.gpu
        gpus = f"{gpu.count} x {gpu.type.value}" if gpu.type else str(gpu.count)
        o, n = old.resources, new.resources
        if n.cpu_millicores < GPU_FLOOR.cpu_millicores and n.cpu_millicores < o.cpu_millicores:
            found.append(
                f"{paths.deployment(new.name, 'resources.cpu')}: {o.cpu} -> {n.cpu}, below "
                f"{format_cpu(GPU_FLOOR.cpu_millicores)} core(s), the floor for a deployment "
                f"with GPUs ({gpus})"
            )
        if n.memory_mib < GPU_FLOOR.memory_mib and n.memory_mib < o.memory_mib:
            found.append(
                f"{paths.deployment(new.name, 'resources.memory')}: {o.memory} -> {n.memory}, "
                f"below {format_memory(GPU_FLOOR.memory_mib * 1024 * 1024)}, the floor for a "
                f"deployment with GPUs ({gpus})"
            )
    return found
