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
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.handwritten_program import handwritten
from components.program import build
from components.review.diff import diff_configs
from components.review.explain import explain_preview
from components.validation import parse_stack
from tests.mocks import run_program

HERE = Path(__file__).resolve().parent


def stack_raw(n: int, *, cpu: int = 2) -> dict[str, Any]:
    """A production stack of ``n`` GPU deployments (canary on every tenth)."""
    deployments = []
    for i in range(n):
        dep: dict[str, Any] = {
            "name": f"model-{i:04d}",
            "model": {
                "id": f"m-{i}",
                "version": "v1.0.0",
                "type": "llm",
                "image": f"registry.example.com/models/m{i}:1.0.0",
            },
            "resources": {"cpu": cpu, "memory": "8Gi", "gpu": {"count": 1, "type": "L4"}},
            "autoscaling": {"minReplicas": 2, "maxReplicas": 6, "targetGpuUtilization": 70},
            "env": {"LOG_LEVEL": "info"},
            "tags": {"team": f"team-{i % 7}"},
        }
        if i % 10 == 9:
            dep["strategy"] = {
                "type": "canary",
                "weight": 10,
                "canaryVersion": "v1.1.0",
                "canaryImage": f"registry.example.com/models/m{i}:1.1.0",
            }
        deployments.append(dep)
    return {
        "environment": "production",
        "namespace": "bench",
        "cluster": {"name": "bench", "provider": "karpenter"},
        "nodePools": [{"name": "l4", "gpu": {"type": "L4", "count": 1}, "maxNodes": 50}],
        "deployments": deployments,
    }


def _time(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def bench_mocks(sizes: list[int], repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {"overhead_ratio": {}, "per_deployment_ms": {}, "resources": {}}
    warm = parse_stack(stack_raw(2))  # imports and first-call costs, outside the figures
    run_program(lambda: build(warm, "bench"))
    run_program(lambda: handwritten(warm, "bench"))
    for n in sizes:
        config = parse_stack(stack_raw(n))
        comp, hand = [], []
        for _ in range(repeats):  # alternate, pair by pair, so drift hits both alike
            comp.append(_time(lambda: run_program(lambda: build(config, "bench"))))
            hand.append(_time(lambda: run_program(lambda: handwritten(config, "bench"))))
        c, h = statistics.median(comp), statistics.median(hand)
        custom = len([r for r in run_program(lambda: handwritten(config, "bench")).resources])
        out["overhead_ratio"][str(n)] = round(c / h, 3)
        out["per_deployment_ms"][str(n)] = round(1000 * c / n, 3)
        out["resources"][str(n)] = custom
        print(
            f"mocks N={n}: components {c:.3f}s, hand-written {h:.3f}s, ratio {c / h:.3f}, "
            f"{1000 * c / n:.2f} ms/deployment ({custom} resources)",
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
    ap.add_argument("--engine-sizes", default="1,10")
    args = ap.parse_args()
    results: dict[str, Any] = {
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": __import__("os").cpu_count(),
        },
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    tracemalloc.stop()
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
