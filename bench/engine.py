"""Real-engine benchmark: `pulumi preview` and `pulumi up` (render mode) of generated stacks,
components vs the hand-written program, wall time and peak memory of the engine's process
tree, measured pair by pair in the same run."""

from __future__ import annotations

import resource
import shutil
import tempfile
import time
from io import StringIO
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from components.engine import Engine, make_project

HERE = Path(__file__).resolve().parent


def _stack_text(raw: dict[str, Any]) -> str:
    buf = StringIO()
    YAML().dump({"config": {f"servestack:{k}": v for k, v in raw.items()}}, buf)
    return buf.getvalue()


def _children_maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _measure_stack(engine: Engine, project: Path, stack: str) -> dict[str, float]:
    started = time.perf_counter()
    engine.cli(project, "up", "--yes", "--skip-preview", "--stack", stack, timeout=3600)
    return {"s": round(time.perf_counter() - started, 2)}


def _measure(engine: Engine, project: Path, op: str) -> dict[str, float]:
    started = time.perf_counter()
    proc = engine.cli(
        project,
        op,
        "--stack",
        "bench",
        *(["--yes"] if op == "up" else []),
        "--skip-preview" if op == "up" else "--diff",
        check=True,
        timeout=3600,
    )
    del proc
    return {"s": round(time.perf_counter() - started, 2)}


def bench_engine(sizes: list[int]) -> dict[str, Any]:
    from bench.__main__ import stack_raw

    out: dict[str, Any] = {"engine_ratio": {}, "engine": {}}
    for n in sizes:
        text = _stack_text(stack_raw(n))
        row: dict[str, Any] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for variant in ("components", "handwritten"):
                root = Path(tmp) / variant
                project = make_project(root / "project", stacks={"bench": text, "fast": text})
                if variant == "handwritten":
                    shutil.copy(HERE / "handwritten_program.py", project / "__main__.py")
                engine = Engine(
                    root / "state",
                    passphrase="bench",
                    extra_env={"SERVESTACK_RENDER_ROOT": str(root / "out")},
                )
                engine.stack(project, "bench")
                row[variant] = {
                    "up": _measure(engine, project, "up")["s"],
                    "preview": _measure(engine, project, "preview")["s"],
                }
                # The file backend rewrites the whole checkpoint after every step (O(n) each),
                # so each extra step (a component) costs more as the stack grows. Measured
                # again, on a fresh stack, with intermediate checkpoints off.
                fast = Engine(
                    root / "state-skip",
                    passphrase="bench",
                    extra_env={
                        "SERVESTACK_RENDER_ROOT": str(root / "out-skip"),
                        "PULUMI_SKIP_CHECKPOINTS": "true",
                    },
                )
                fast.stack(project, "fast")
                row[variant]["up_skip_checkpoints"] = _measure_stack(fast, project, "fast")["s"]
        ratio = {
            op: round(row["components"][op] / row["handwritten"][op], 3)
            for op in ("up", "preview", "up_skip_checkpoints")
        }
        out["engine"][str(n)] = {**row, "peak_children_rss_mib": round(_children_maxrss_mib())}
        out["engine_ratio"][str(n)] = ratio
        print(
            f"engine N={n}: up {row['components']['up']}s vs {row['handwritten']['up']}s "
            f"(ratio {ratio['up']}), preview {row['components']['preview']}s vs "
            f"{row['handwritten']['preview']}s (ratio {ratio['preview']}), up without "
            f"intermediate checkpoints {row['components']['up_skip_checkpoints']}s vs "
            f"{row['handwritten']['up_skip_checkpoints']}s (ratio {ratio['up_skip_checkpoints']})",
            flush=True,
        )
    return out
