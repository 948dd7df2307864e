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
from servestack.engine import Engine, make_project

HERE = Path(__file__).resolve().parent
SAMPLE_EVERY_S = 0.05


def stack_text(raw: dict[str, Any]) -> str:
    buf = StringIO()
    YAML().dump({"config": {f"servestack:{k}": v for k, v in raw.items()}}, buf)
    return buf.getvalue()


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # exited between listing and reading
            total += p.memory_info().rss
    return total


def measure(engine: Engine, project: Path, *args: str) -> dict[str, float]:
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
        try:
            tree = psutil.Process(child.pid)
            while not done.is_set():
                peak = max(peak, _tree_rss(tree))
                done.wait(SAMPLE_EVERY_S)
        except psutil.Error:  # the CLI exited between two samples
            return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = child.communicate(timeout=3600)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if child.returncode != 0:
        raise RuntimeError(f"pulumi {' '.join(args)} failed:\n{err[-4000:]}")
    if peak == 0:
        raise RuntimeError(f"pulumi {' '.join(args)}: no memory sample was taken")
    return {"s": round(seconds, 2), "peak_mib": round(peak / 2**20)}


def _engine(root: Path, state: str, **env: str) -> Engine:
    return Engine(
        root / state,
        passphrase="bench",
        # Its own file backend, whatever `pulumi login` the machine has.
        backend_url=f"file://{root / state / 'backend'}",
        extra_env={"SERVESTACK_RENDER_ROOT": str(root / f"out-{state}"), **env},
    )


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median time (its own peak memory with it)."""
    return sorted(runs, key=lambda r: r["s"])[len(runs) // 2]


def bench_engine(sizes: list[int], repeats: int = 3) -> dict[str, Any]:
    """`repeats` fresh stacks per variant for N <= 10 (median reported); one for larger N,
    where a single `up` takes minutes and the noise is small against it."""
    out: dict[str, Any] = {"engine_ratio": {}, "engine": {}, "engine_repeats": {}}
    for n in sizes:
        text = stack_text(stack_raw(n))
        reps = repeats if n <= 10 else 1
        names = [f"{kind}-{i}" for kind in ("bench", "fast") for i in range(reps)]
        row: dict[str, Any] = {}
        runs: dict[str, dict[str, list[dict[str, float]]]] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for variant in ("components", "handwritten"):
                root = Path(tmp) / variant
                project = make_project(root / "project", stacks=dict.fromkeys(names, text))
                if variant == "handwritten":
                    shutil.copy(HERE / "handwritten_program.py", project / "__main__.py")
                runs[variant] = {"up": [], "preview": [], "up_skip_checkpoints": []}
            order = ["components", "handwritten"]
            for i in range(reps):  # take turns, the order swapped every repeat (ABBA)
                for variant in order if i % 2 == 0 else order[::-1]:
                    root = Path(tmp) / variant
                    project = root / "project"
                    engine = _engine(root, "state")
                    engine.stack(project, f"bench-{i}")
                    r = runs[variant]
                    r["up"].append(
                        measure(
                            engine,
                            project,
                            "up",
                            "--yes",
                            "--skip-preview",
                            "--stack",
                            f"bench-{i}",
                        )
                    )
                    r["preview"].append(
                        measure(engine, project, "preview", "--diff", "--stack", f"bench-{i}")
                    )
                    # The file backend rewrites the whole checkpoint after every step (O(n)
                    # each), so each extra step (a component is one) costs more as the stack
                    # grows. Measured again on a fresh stack with intermediate checkpoints off.
                    fast = _engine(root, "state-skip", PULUMI_SKIP_CHECKPOINTS="true")
                    fast.stack(project, f"fast-{i}")
                    r["up_skip_checkpoints"].append(
                        measure(
                            fast, project, "up", "--yes", "--skip-preview", "--stack", f"fast-{i}"
                        )
                    )
            for variant, r in runs.items():
                row[variant] = {op: median_run(v) for op, v in r.items()}
        ratio = {
            op: round(row["components"][op]["s"] / row["handwritten"][op]["s"], 3)
            for op in ("up", "preview", "up_skip_checkpoints")
        }
        out["engine"][str(n)] = row
        out["engine_ratio"][str(n)] = ratio
        out["engine_repeats"][str(n)] = reps
        c, h = row["components"], row["handwritten"]
        print(
            f"engine N={n} (median of {reps}): up {c['up']['s']}s vs {h['up']['s']}s "
            f"(ratio {ratio['up']}), preview {c['preview']['s']}s vs {h['preview']['s']}s "
            f"(ratio {ratio['preview']}), up without intermediate checkpoints "
            f"{c['up_skip_checkpoints']['s']}s vs {h['up_skip_checkpoints']['s']}s "
            f"(ratio {ratio['up_skip_checkpoints']}); peak MiB up {c['up']['peak_mib']} vs "
            f"{h['up']['peak_mib']}",
            flush=True,
        )
    return out
