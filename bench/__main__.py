"""`make bench`: what the components cost over writing the same resources by hand.

Every figure is a ratio or a time measured in the same run against a baseline measured in
the same run; nothing here asserts a time (machines are noisy). Writes bench/results.json
and bench/RESULTS.md.

1. Mocks: a stack of N deployments built with the components vs a program that registers
   exactly the same Kubernetes resources directly (same manifests, no ComponentResources).
2. Real engine (render mode): `pulumi preview` and `pulumi up` of both programs.
3. Review tool: `servestack diff` of 1,000-deployment stack files; `explain` of a
   10,000-step preview.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.stacks import stack_raw
from components.review.diff import diff_configs
from components.review.explain import explain_preview
from components.validation import parse_stack

HERE = Path(__file__).resolve().parent


def _time(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _mock_run(variant: str, n: int, gc_mode: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.mock_run", "--variant", variant, "--n", str(n)]
        + ["--gc", gc_mode],
        cwd=HERE.parent,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def bench_mocks(sizes: list[int], repeats: int) -> dict[str, Any]:
    """Each run in a fresh process, as a stack program runs; components and hand-written
    alternate pair by pair so drift hits both alike. Headline figures use the collector
    settings the servestack program applies (:mod:`components.process`); one more pair per
    N runs with CPython's defaults to show what those settings change."""
    out: dict[str, Any] = {
        "overhead_ratio": {},
        "per_deployment_ms": {},
        "overhead_ratio_default_gc": {},
        "per_deployment_ms_default_gc": {},
        "mocks_peak_rss_mib": {},
        "resources": {},
    }
    for n in sizes:
        runs: dict[str, list[dict[str, Any]]] = {"components": [], "handwritten": []}
        for _ in range(repeats):
            for variant in runs:
                runs[variant].append(_mock_run(variant, n, "program"))
        c = statistics.median(r["s"] for r in runs["components"])
        h = statistics.median(r["s"] for r in runs["handwritten"])
        dc = _mock_run("components", n, "default")
        dh = _mock_run("handwritten", n, "default")
        key = str(n)
        out["overhead_ratio"][key] = round(c / h, 3)
        out["per_deployment_ms"][key] = round(1000 * c / n, 2)
        out["overhead_ratio_default_gc"][key] = round(dc["s"] / dh["s"], 3)
        out["per_deployment_ms_default_gc"][key] = round(1000 * dc["s"] / n, 2)
        out["mocks_peak_rss_mib"][key] = {
            v: round(max(r["peak_rss_mib"] for r in rs)) for v, rs in runs.items()
        } | {"components_default_gc": round(dc["peak_rss_mib"])}
        out["resources"][key] = {v: rs[0]["resources"] for v, rs in runs.items()}
        print(
            f"mocks N={n}: components {c:.3f}s, hand-written {h:.3f}s, ratio {c / h:.3f}, "
            f"{1000 * c / n:.2f} ms/deployment; default GC: ratio {dc['s'] / dh['s']:.3f}, "
            f"{1000 * dc['s'] / n:.2f} ms/deployment",
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


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench")
    ap.add_argument("--sizes", default="1,10,100,1000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--engine-sizes", default="1,10,100")
    args = ap.parse_args()
    results: dict[str, Any] = {
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": __import__("os").cpu_count(),
        },
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    results.update(bench_mocks([int(x) for x in args.sizes.split(",")], args.repeats))
    results.update(bench_review())
    if args.engine_sizes:
        from bench.engine import bench_engine

        results.update(bench_engine([int(x) for x in args.engine_sizes.split(",")]))
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    subprocess.run([sys.executable, "-m", "bench.report"], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
