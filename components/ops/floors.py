"""The floors under GPU models: the least CPU and memory a deployment with GPUs is given.

Both the CLI (`servestack resources`, which asks before going below) and the Python API
(`update_model_deployment`, which refuses unless told) read them from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from servestack.config import paths
from servestack.config.models import StackConfig
from servestack.config.quantities import format_cpu, format_memory


@dataclass(frozen=True)
class Floor:
    """The least a deployment with GPUs is given: below it a GPU model does not load, and
    the value is far more likely a unit mistake (`4` millicores meant as 4 cores)."""

    cpu_millicores: int
    memory_mib: int


#: The one place the GPU floors are set (docs/operations.md#resources-and-gpu-floors).
GPU_FLOOR = Floor(cpu_millicores=1000, memory_mib=1024)


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
