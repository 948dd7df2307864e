"""Fleet scale: `servestack up` of a whole stack and one operation on one deployment, at
growing N, against the engine's own limit measured in the same run (render mode, the
project's local file backend).

- ``up``: a fresh `servestack up STACK --yes` (the fast path: one checkpoint write, under
  servestack's journal);
- ``limit``: the same program on a fresh stack by `pulumi up` with
  ``PULUMI_SKIP_CHECKPOINTS=true`` (what the engine costs with no checkpoint between steps),
  its config handed over in a file as `servestack up` does (`--config-file`): past about 300
  deployments a plain `pulumi up` cannot start the program at all (the config is one
  environment variable, over Linux's 128 KiB for one);
- ``plain``: the same program by a plain `pulumi up` (a checkpoint write after every step),
  up to ``plain_max`` deployments: its cost grows with the square of N (4 h at 1,000);
- ``operation``: `servestack scale STACK model-0001 --min 3 --max M --yes` on the stack
  `servestack up` made, three times (M alternating), median, wall and CPU seconds (the
  whole process tree: the CLI, the engine, the program, the provider);
- ``floor``: the engine's own cost of that operation at that N, measured right after it on
  the same stack (bench/floor.py): the same targeted `pulumi up` on the fast path, by a
  program that registers only what the scoped update registers and reads and exports
  nothing, three times; and ``export``: `pulumi stack export` (load the checkpoint and
  serialize it once), three times. What the operation costs over the floor is servestack's;
- ``writes``: checkpoint writes per deployment of a fresh update, counted from the engine's
  log (`-v=7` logs each as "Saved stack"), with and without intermediate checkpoints.
"""

from __future__ import annotations

import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.engine import stack_text
from bench.floor import NAME
from bench.stacks import stack_raw
from servestack.config.stackfile import engine_config_text
from servestack.engine import Engine, load_project, make_project
from servestack.manifests import naming

#: The checkout (the floor's program imports `bench` from it).
REPO = Path(__file__).resolve().parent.parent

PASSPHRASE = "bench"
SKIP = {"PULUMI_SKIP_CHECKPOINTS": "true"}


def _env(project: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PULUMI_BACKEND_URL", "PULUMI_HOME")}
    env.update(
        {
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "SERVESTACK_RENDER_ROOT": str(project.parent / "out"),
            **extra,
        }
    )
    return env


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``argv``: wall seconds, CPU seconds of its process tree (those it waited for),
    and its stderr."""
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=7200)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        tail = proc.stdout[-3000:] + proc.stderr[-3000:]
        raise RuntimeError(f"{' '.join(argv[:6])} failed:\n{tail}")
    used = after.ru_utime - cpu.ru_utime + after.ru_stime - cpu.ru_stime
    return round(seconds, 2), round(used, 2), proc.stderr


def _timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    seconds, _, err = _run(argv, cwd, env)
    return seconds, err


def _pulumi(project: Path, stack: str, *args: str, **env: str) -> tuple[float, str]:
    proj = load_project(project)
    engine = Engine(proj.engine_state, passphrase=PASSPHRASE, project_dir=project)
    engine.stack(project, stack)  # `pulumi stack init`
    argv = [str(engine.bin_dir / "pulumi"), "up", "--yes", "--skip-preview", "-s", stack, *args]
    return _timed([*argv, "--non-interactive"], project, {**_env(project), **engine.env(), **env})


def _servestack(project: Path, *args: str) -> float:
    return _servestack_cpu(project, *args)[0]


def _servestack_cpu(project: Path, *args: str) -> tuple[float, float]:
    argv = [sys.executable, "-m", "servestack", "-C", str(project), *args]
    seconds, cpu, _ = _run(argv, project, _env(project, COLUMNS="200"))
    return seconds, cpu


#: The floor's Pulumi program (bench/floor.py), in a project directory of its own.
FLOOR_PROGRAM = '''"""The engine's floor of one operation (bench/floor.py)."""

from bench.floor import main

main()
'''


def engine_floor(project: Path, stack: str, n: int, repeats: int = 3) -> dict[str, Any]:
    """The engine's own cost of an operation on one deployment of ``stack`` (``n``
    deployments; see bench/floor.py), and of loading and serializing its checkpoint once
    (`pulumi stack export`); medians. It leaves the stack without its outputs: measure it
    after the operations."""
    proj = load_project(project)
    engine = Engine(proj.engine_state, passphrase=PASSPHRASE, project_dir=project)
    pulumi = str(engine.bin_dir / "pulumi")
    env = {**_env(project), **engine.env()}
    floor = project.parent / "floor"
    floor.mkdir(exist_ok=True)
    (floor / "Pulumi.yaml").write_text((project / "Pulumi.yaml").read_text())
    (floor / "__main__.py").write_text(FLOOR_PROGRAM)
    # The stack's encryption salt alone: the floor reads no config.
    salt = re.search(r"^encryptionsalt: .*$", proj.stack_file(stack).read_text(), re.M)
    (floor / "engine.yaml").write_text(f"{salt.group(0) if salt else ''}\n")
    urn = f"urn:pulumi:{stack}::{proj.name}::{naming.MODEL_DEPLOYMENT}::{NAME}"
    up = [pulumi, "up", "--yes", "--skip-preview", "--non-interactive", "--suppress-outputs"]
    up += ["--stack", stack, "--config-file", str(floor / "engine.yaml")]
    up += [f"--target={urn}", "--target-dependents"]
    export = [pulumi, "stack", "export", "--stack", stack, "--non-interactive"]
    export += ["--file", str(floor / "export.json")]
    runs, exports = [], []
    for top in range(9, 9 + repeats):  # one update step each time
        run_env = {**env, **SKIP, "PYTHONPATH": str(REPO)}
        run_env.update(BENCH_FLOOR_N=str(n), BENCH_FLOOR_MAX=str(top))
        runs.append(_run(up, floor, run_env)[:2])
        exports.append(_run(export, project, env)[0])
    return {
        "floor_s": round(statistics.median(w for w, _ in runs), 2),
        "floor_cpu_s": round(statistics.median(c for _, c in runs), 2),
        "floor_runs_s": [w for w, _ in runs],
        "export_s": round(statistics.median(exports), 2),
    }


def writes_per_deployment(n: int) -> dict[str, float]:
    """Checkpoint writes of a fresh update of ``n`` deployments, per deployment."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        text = stack_text(stack_raw(n))
        project = make_project(Path(tmp) / "project", stacks={"plain": text, "fast": text})
        for name, env in (("plain", {}), ("fast", SKIP)):
            _, log = _pulumi(project, name, "-v=7", "--logtostderr", **env)
            out[name] = round(log.count("Saved stack ") / n, 2)
    print(f"checkpoint writes per deployment (N={n}): {out}", flush=True)
    return out


def bench_fleet(sizes: list[int], op_sizes: list[int], plain_max: int = 100) -> dict[str, Any]:
    fleet: dict[str, Any] = {}
    for n in sorted(set(sizes) | set(op_sizes)):
        started = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            fleet[str(n)] = _fleet_row(n, sizes, op_sizes, plain_max)
        except RuntimeError as exc:  # recorded, and the other sizes still measured
            fleet[str(n)] = {"error": str(exc)[-2000:]}
        fleet[str(n)]["date"] = started
        print(f"fleet N={n}: {fleet[str(n)]}", flush=True)
    return {"fleet": fleet, "checkpoint_writes": writes_per_deployment(10)}


def _fleet_row(n: int, sizes: list[int], op_sizes: list[int], plain_max: int) -> dict[str, Any]:
    row: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        text = stack_text(stack_raw(n))
        stacks = {"fast": text, "limit": text, "plain": text}
        project = make_project(Path(tmp) / "project", stacks=stacks)
        row["up_s"] = _servestack(project, "up", "fast", "--yes")
        if n in sizes:
            # After `pulumi stack init`, which writes the stack's encryption salt.
            proj = load_project(project)
            Engine(proj.engine_state, passphrase=PASSPHRASE, project_dir=project).stack(
                project, "limit"
            )
            limit_text = proj.stack_file("limit").read_text()
            handed = project / "limit-program.yaml"
            handed.write_text(limit_text)
            engine_file = project / "limit-engine.yaml"
            engine_file.write_text(engine_config_text(limit_text, handed))
            row["limit_s"] = _pulumi(project, "limit", "--config-file", str(engine_file), **SKIP)[0]
            if n <= plain_max:
                row["plain_s"] = _pulumi(project, "plain")[0]
        if n in op_sizes:
            scale = ("scale", "fast", NAME, "--min", "3", "--max")
            runs = [_servestack_cpu(project, *scale, str(m), "--yes") for m in (7, 8, 7)]
            row["operation_s"] = statistics.median(w for w, _ in runs)
            row["operation_cpu_s"] = round(statistics.median(c for _, c in runs), 2)
            row["operation_runs_s"] = [w for w, _ in runs]
            row.update(engine_floor(project, "fast", n))
    return row
