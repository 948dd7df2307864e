"""The components' overhead counted in instructions, which do not move with the machine's load.

Times on a shared two-core machine move by 5 to 10 % from run to run, as much as the
overhead itself, so `make bench` also counts it with valgrind's callgrind (on every machine
kind this project runs on; when it is missing the part is recorded as not measured). For each
program of :mod:`bench.mock_run` (hand-written, hand-written plus the components' empty
layers, components), the instructions of a run with N deployments less those of the same
run with none (imports, warm-up and the fixed resources cancel), divided by N.
``PYTHONHASHSEED=0`` makes a count repeat exactly.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import mock_run

HERE = Path(__file__).resolve().parent
#: Hand-written first: the others are counted against it.
VARIANTS = ("handwritten", "layers", "components")
#: callgrind's closing summary, on standard error: `==123== Collected : 4058663812`.
_COLLECTED = re.compile(r"^==\d+== Collected : (\d+)$", re.MULTILINE)


def collected(stderr: str) -> int:
    """The instructions callgrind counted, from its summary."""
    found = _COLLECTED.findall(stderr)
    if len(found) != 1:
        raise ValueError(f"expected one callgrind summary, found {len(found)}:\n{stderr[-2000:]}")
    return int(found[0])


def _count(valgrind: str, variant: str, n: int) -> int:
    argv, env = mock_run.command(variant, n)
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [valgrind, "--tool=callgrind", f"--callgrind-out-file={tmp}/callgrind.out", *argv],
            cwd=HERE.parent,
            env={**env, "PYTHONHASHSEED": "0"},
            check=True,
            capture_output=True,
            text=True,
        )
    return collected(proc.stderr)


def bench_instructions(n: int) -> dict[str, Any]:
    """Instructions per deployment of each program at N, and each against hand-written.
    Two counts at a time (the machine has two cores; a count does not depend on load)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("instructions: not measured (valgrind not found)", flush=True)
        return {"instructions": {"n": n, "not_measured": "valgrind not found"}}
    runs = [(v, size) for v in VARIANTS for size in (0, n)]
    with ThreadPoolExecutor(2) as pool:
        counts = dict(zip(runs, pool.map(lambda r: _count(valgrind, *r), runs), strict=True))
    per = {v: (counts[(v, n)] - counts[(v, 0)]) / n for v in VARIANTS}
    result = {
        "n": n,
        "per_deployment_m": {v: round(per[v] / 1e6, 1) for v in VARIANTS},
        "ratio": {v: round(per[v] / per["handwritten"], 3) for v in VARIANTS},
    }
    print(
        f"instructions N={n}: components {result['ratio']['components']}x, empty layers "
        f"{result['ratio']['layers']}x of hand-written "
        f"({result['per_deployment_m']['handwritten']} M per deployment)",
        flush=True,
    )
    return {"instructions": result}
