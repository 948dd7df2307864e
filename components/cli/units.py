"""The operations' quantities, in the stack file's units (the floors under GPU models are
:mod:`servestack.ops.floors`'s).

`servestack resources` takes what a stack file takes (`--cpu 4`, `--cpu 500m`,
`--memory 8Gi`), parsed by :mod:`servestack.config.quantities`. Memory needs a unit on the
command line: a bare number means GiB in a stack file but MiB in the Python API, so the
command refuses to guess. The Python API (`update_model_deployment`) keeps millicores and MiB.
"""

from __future__ import annotations

import re
from typing import Any

from servestack.config import paths
from servestack.config.errors import ConfigError, Problem
from servestack.config.quantities import cpu_millicores, format_cpu, format_memory, memory_bytes
from servestack.ops.floors import GPU_FLOOR, below_floor

#: A number without a unit.
_BARE = re.compile(r"\d+(\.\d*)?|\.\d+")
#: Units `--memory` accepts (Kubernetes quantity suffixes).
MEMORY_UNITS = ("Ki", "Mi", "Gi", "Ti", "K", "M", "G", "T")


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


__all__ = ["GPU_FLOOR", "MEMORY_UNITS", "below_floor", "resource_edits"]
