"""Real-engine benchmark: `pulumi up` (render mode) and `pulumi preview` of generated stacks,
components vs the hand-written program, measured pair by pair in the same run: wall time,
and peak memory of the whole process tree (CLI, language host, Python program, provider)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from io import StringIO
from pathlib import Path
from typing import Any

import psutil
from ruamel.yaml import YAML

from bench.stacks import stack_raw
from components.engine import Engine, make_project

HERE = Path(__file__).resolve().parent
SAMPLE_EVERY_S = 0.05


def _stack_text(raw: dict[str, Any]) -> str:
    buf = StringIO()
    YAML().dump({"config": {f"servestack:{k}": v for k, v in raw.items()}}, buf)
    return buf.getvalue()


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # exited between listing and reading
            total += p.memory_info().rss
    return total


def _run(engine: Engine, project: Path, *args: str) -> dict[str, float]:
    """Run `pulumi ARGS`; wall seconds and the peak summed RSS of its process tree."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [str(engine.bin_dir / "pulumi"), *args, "--non-interactive"],
        cwd=project,
        env={**os.environ, **engine.env()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        tree = psutil.Process(child.pid)
        while not done.is_set():
            try:
                peak = max(peak, _tree_rss(tree))
            except psutil.Error:
                return
            done.wait(SAMPLE_EVERY_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = child.communicate(timeout=3600)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if child.returncode != 0:
        raise RuntimeError(f"pulumi {' '.join(args)} failed:\n{err[-4000:]}")
    return {"s": round(seconds, 2), "peak_mib": round(peak / 2**20)}


def _engine(root: Path, state: str, **env: str) -> Engine:
    return Engine(
        root / state,
        passphrase="bench",
        extra_env={"SERVESTACK_RENDER_ROOT": str(root / f"out-{state}"), **env},
    )


def bench_engine(sizes: list[int]) -> dict[str, Any]:
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
                engine = _engine(root, "state")
                engine.stack(project, "bench")
                up = _run(engine, project, "up", "--yes", "--skip-preview", "--stack", "bench")
                preview = _run(engine, project, "preview", "--diff", "--stack", "bench")
                # The file backend rewrites the whole checkpoint after every step (O(n) each),
                # so each extra step (a component is one) costs more as the stack grows.
                # Measured again on a fresh stack with intermediate checkpoints off.
                fast = _engine(root, "state-skip", PULUMI_SKIP_CHECKPOINTS="true")
                fast.stack(project, "fast")
                skip = _run(fast, project, "up", "--yes", "--skip-preview", "--stack", "fast")
                row[variant] = {"up": up, "preview": preview, "up_skip_checkpoints": skip}
        ratio = {
            op: round(row["components"][op]["s"] / row["handwritten"][op]["s"], 3)
            for op in ("up", "preview", "up_skip_checkpoints")
        }
        out["engine"][str(n)] = row
        out["engine_ratio"][str(n)] = ratio
        c, h = row["components"], row["handwritten"]
        print(
            f"engine N={n}: up {c['up']['s']}s vs {h['up']['s']}s (ratio {ratio['up']}), "
            f"preview {c['preview']['s']}s vs {h['preview']['s']}s (ratio {ratio['preview']}), "
            f"up without intermediate checkpoints {c['up_skip_checkpoints']['s']}s vs "
            f"{h['up_skip_checkpoints']['s']}s (ratio {ratio['up_skip_checkpoints']}); "
            f"peak MiB up {c['up']['peak_mib']} vs {h['up']['peak_mib']}",
            flush=True,
        )
    return out
