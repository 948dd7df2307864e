"""`make bench`: what the components cost over writing the same resources by hand.

Every figure is a ratio or a time measured in the same run against a baseline measured in
the same run; nothing here asserts a time (machines are noisy). Writes bench/results.json
and bench/RESULTS.md.

1. Mocks: a stack of N deployments built with the components vs a program that registers
   exactly the same Kubernetes resources directly (same manifests, no ComponentResources).
2. Real engine (render mode): `pulumi preview` and `pulumi up` of both programs.
   Fleet scale (bench/fleet.py): `servestack up` and one operation at N up to 1,000,
   against the engine's limit without intermediate checkpoints.
3. Real engine on the local cluster (`target: cluster`, provider `local`): `pulumi up` of
   both programs until every Deployment is Ready (bench/cluster.py); and `servestack up`
   against the same program with `PULUMI_SKIP_CHECKPOINTS=true` (the engine's limit). The
   cluster is started with tools/cluster.py when it is not running, and stopped again
   afterwards.
4. Review tool: `servestack diff` of 1,000-deployment stack files; `explain` of a
   10,000-step preview.
5. Instructions (bench/instructions.py): the mocks programs counted by valgrind's
   callgrind, which the machine's load does not move; run with the mocks part, or alone with
   `--instructions-n N`.

`--merge` keeps the parts of the existing results.json that this run does not measure:
`python -m bench --merge --sizes "" --engine-sizes ""` re-measures only the cluster part
(`--sizes ""` skips the mocks and the review tool). The cluster parts record their own date:
`python -m bench --merge --sizes "" --engine-sizes "" --fleet-sizes "" --op-sizes ""
--cluster-sizes "" --cluster-fleet-sizes 10` measures only the cluster fleet at N = 10.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import mock_run
from bench.stacks import stack_raw
from harness import use_checkout_engine
from servestack.config.validation import parse_stack
from servestack.review.diff import diff_configs
from servestack.review.explain import explain_preview

HERE = Path(__file__).resolve().parent


def _time(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _mock_run(variant: str, n: int, gc_mode: str) -> dict[str, Any]:
    argv, env = mock_run.command(variant, n, gc_mode)
    proc = subprocess.run(
        argv,
        cwd=HERE.parent,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def bench_mocks(sizes: list[int], repeats: int) -> dict[str, Any]:
    """Each run in a fresh process, as a stack program runs. Components and hand-written
    take turns, the order swapped every repeat (ABBA), so drift and warm caches hit both
    alike. Headline figures use the collector settings the servestack entry point applies
    (:mod:`servestack.program.process`); the same runs with CPython's defaults show what they do.
    ``overhead_floor_ratio``: the hand-written program plus the components' empty layers
    against the hand-written program (what the layers cost in the SDK by themselves)."""
    out: dict[str, Any] = {
        "overhead_ratio": {},
        "overhead_floor_ratio": {},
        "per_deployment_ms": {},
        "overhead_ratio_default_gc": {},
        "per_deployment_ms_default_gc": {},
        "mocks_peak_rss_mib": {},
        "resources": {},
    }
    variants = ["components", "handwritten"]
    for n in sizes:
        runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for i in range(repeats):
            for gc_mode in ("program", "default"):
                # With the program's settings, also the floor: the hand-written program
                # plus the components' empty layers (bench.handwritten_program).
                turn = variants + ["layers"] if gc_mode == "program" else variants
                for variant in turn if i % 2 == 0 else turn[::-1]:
                    runs.setdefault((variant, gc_mode), []).append(_mock_run(variant, n, gc_mode))
        med = {k: statistics.median(r["s"] for r in v) for k, v in runs.items()}
        key = str(n)
        for gc_mode, suffix in (("program", ""), ("default", "_default_gc")):
            c, h = med[("components", gc_mode)], med[("handwritten", gc_mode)]
            out[f"overhead_ratio{suffix}"][key] = round(c / h, 3)
            out[f"per_deployment_ms{suffix}"][key] = round(1000 * c / n, 2)
        out["overhead_floor_ratio"][key] = round(
            med[("layers", "program")] / med[("handwritten", "program")], 3
        )
        out["mocks_peak_rss_mib"][key] = {
            f"{v}{'' if g == 'program' else '_default_gc'}": round(
                statistics.median(r["peak_rss_mib"] for r in rs)
            )
            for (v, g), rs in runs.items()
        }
        out["resources"][key] = {v: runs[(v, "program")][0]["resources"] for v in variants}
        print(
            f"mocks N={n}: ratio {out['overhead_ratio'][key]} (floor "
            f"{out['overhead_floor_ratio'][key]}), "
            f"{out['per_deployment_ms'][key]} ms/deployment; default GC: ratio "
            f"{out['overhead_ratio_default_gc'][key]}, "
            f"{out['per_deployment_ms_default_gc'][key]} ms/deployment",
            flush=True,
        )
    return out


def bench_review() -> dict[str, Any]:
    old = parse_stack(stack_raw(1000))
    new = parse_stack(stack_raw(1000, cpu=3))
    runs = [_time(lambda: diff_configs(old, new)) for _ in range(5)]
    # Parsing both files is part of `servestack diff`; measure the command end to end too.
    steps = []
    for i in range(10_000):
        name = f"model-{i % 1000:04d}"
        parent = f"urn:pulumi:bench::servestack::servestack:index:ModelDeployment::{name}"
        steps.append(
            {
                "op": "update",
                "urn": f"urn:pulumi:bench::servestack::servestack:index:ModelDeployment$"
                f"kubernetes:apps/v1:Deployment::{name}-{i}",
                "newState": {"parent": parent, "inputs": {}},
                "oldState": {"parent": parent, "inputs": {}},
                "detailedDiff": {
                    "spec.template.spec.containers[0].resources.limits.cpu": {"kind": "update"},
                    "spec.template.spec.containers[0].resources.requests.cpu": {"kind": "update"},
                },
            }
        )
    preview = {"steps": steps}
    explain_runs = [_time(lambda: explain_preview(preview, new)) for _ in range(3)]
    result = {
        "diff_1000_s": round(statistics.median(runs), 4),
        "explain_10000_s": round(statistics.median(explain_runs), 4),
    }
    print(
        f"review: diff of 1000 deployments {result['diff_1000_s']}s; explain of 10000 steps "
        f"{result['explain_10000_s']}s",
        flush=True,
    )
    return result


def _sizes(text: str) -> list[int]:
    """`1,10,100` as a list; an empty string measures nothing."""
    return [int(x) for x in text.split(",") if x.strip()]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def main() -> int:
    use_checkout_engine()
    ap = argparse.ArgumentParser(prog="python -m bench")
    ap.add_argument("--sizes", default="1,10,100,1000", help="mock tier sizes ('' skips it)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--engine-sizes", default="1,10,100", help="render mode ('' skips it)")
    ap.add_argument("--cluster-sizes", default="1,10,100", help="local cluster mode ('' skips it)")
    ap.add_argument(
        "--fleet-sizes", default="10,100,1000", help="servestack up, render mode ('' skips it)"
    )
    ap.add_argument(
        "--cluster-fleet-sizes",
        default="10,100",
        help="servestack up against the engine's limit, local cluster mode ('' skips it)",
    )
    ap.add_argument(
        "--op-sizes", default="3,100,1000", help="one operation at these N ('' skips it)"
    )
    ap.add_argument(
        "--fleet-plain-max",
        type=int,
        default=100,
        help="a plain `pulumi up` in the fleet part up to this N (0: none)",
    )
    ap.add_argument(
        "--review",
        action="store_true",
        help="measure the review tool (diff, explain) even when the mocks part is skipped",
    )
    ap.add_argument(
        "--instructions-n",
        type=int,
        help="count instructions at this N (default: 30 when the mocks part runs; 0 skips it)",
    )
    ap.add_argument(
        "--merge",
        action="store_true",
        help="keep the parts of the existing results.json this run does not measure",
    )
    args = ap.parse_args()
    wall_started = time.perf_counter()
    results: dict[str, Any] = {}
    merged = args.merge and (HERE / "results.json").is_file()
    if merged:
        results = json.loads((HERE / "results.json").read_text())
    if _sizes(args.sizes) or not merged:
        # `date`, `machine` and `bench_wall_s` belong to the run of the mocks and review.
        results["machine"] = {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        }
        results["date"] = _now()
        results.update(bench_mocks(_sizes(args.sizes), args.repeats))
    if _sizes(args.sizes) or not merged or args.review:
        results["review_date"] = _now()
        results.update(bench_review())
    mocks_ran = bool(_sizes(args.sizes)) or not merged
    instructions_n = args.instructions_n if args.instructions_n is not None else 30 * mocks_ran
    if instructions_n:
        from bench.instructions import bench_instructions

        results["instructions_date"] = _now()
        results.update(bench_instructions(instructions_n))
    if _sizes(args.engine_sizes):
        from bench.engine import bench_engine

        results.update(bench_engine(_sizes(args.engine_sizes)))
    if _sizes(args.fleet_sizes) or _sizes(args.op_sizes):
        from bench.fleet import bench_fleet

        results["fleet_date"] = _now()
        kept = results.get("fleet") or {}
        results.update(
            bench_fleet(_sizes(args.fleet_sizes), _sizes(args.op_sizes), args.fleet_plain_max)
        )
        if merged:
            # A size this run did not measure keeps its row (with the date it was measured).
            results["fleet"] = {**kept, **results["fleet"]}
    if _sizes(args.cluster_sizes) or _sizes(args.cluster_fleet_sizes):
        from bench.cluster import bench_cluster, bench_cluster_fleet
        from tests.cluster.live import running_cluster

        with running_cluster() as info:
            if _sizes(args.cluster_sizes):
                results["cluster_date"] = _now()
                results.update(
                    bench_cluster(_sizes(args.cluster_sizes), info.kubeconfig, args.repeats)
                )
                # Measured by a later run than the rest of the file, or by the same one.
                results["cluster_merged"] = merged
            if _sizes(args.cluster_fleet_sizes):
                results["cluster_fleet_date"] = _now()
                kept = results.get("cluster_fleet") or {}
                found = bench_cluster_fleet(
                    _sizes(args.cluster_fleet_sizes), info.kubeconfig, args.repeats
                )
                for row in found["cluster_fleet"].values():
                    row["date"] = results["cluster_fleet_date"]
                # Rows of sizes this run does not measure stay, with the date of theirs.
                found["cluster_fleet"] = {**kept, **found["cluster_fleet"]}
                results.update(found)
    if not merged:
        results["bench_wall_s"] = round(time.perf_counter() - wall_started)
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    subprocess.run([sys.executable, "-m", "bench.report"], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
