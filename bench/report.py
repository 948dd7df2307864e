"""Render bench/results.json as bench/RESULTS.md (the table quoted in notes), with each of
the issue's targets computed from the figures: met or missed, never asserted."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

OVERHEAD_TARGET = 1.10
GROWTH_TARGET = 1.2
DIFF_TARGET_S = 0.5
EXPLAIN_TARGET_S = 1.0
#: Fleet scale (issue 20): `servestack up` against the engine's limit at N = 100, the cost
#: per deployment at 1,000 against 100, one operation at 1,000 against 3.
FLEET_UP_TARGET = 2.0
FLEET_GROWTH_TARGET = 1.5
FLEET_OP_TARGET = 2.0
#: `servestack up` on the local cluster against the engine's limit, every N measured.
CLUSTER_FLEET_TARGET = 1.5


def marginal(per_deployment_ms: dict[str, float]) -> dict[str, float]:
    """Cost of each deployment added since the previous N (fixed start-up costs cancel)."""
    sizes = sorted(per_deployment_ms, key=int)
    return {
        b: round(
            (per_deployment_ms[b] * int(b) - per_deployment_ms[a] * int(a)) / (int(b) - int(a)), 2
        )
        for a, b in itertools.pairwise(sizes)
    }


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def targets(r: dict[str, Any]) -> list[str]:
    rows = []
    mocks = r["overhead_ratio"]
    if mocks:
        rows.append(
            f"| overhead ratio <= {OVERHEAD_TARGET} (mocks), every N | max "
            f"{max(mocks.values())} | {_verdict(max(mocks.values()) <= OVERHEAD_TARGET)} |"
        )
        floor = r.get("overhead_floor_ratio") or {}
        if floor:
            rows.append(
                "| (not a target) the floor of that ratio: hand-written plus the components' "
                f"empty layers (mocks), every N | max {max(floor.values())} | - |"
            )
    rows += instruction_targets(r.get("instructions") or {})
    if r.get("engine_ratio"):
        for op in ("up", "preview", "up_skip_checkpoints"):
            worst = max(v[op] for v in r["engine_ratio"].values())
            rows.append(
                f"| overhead ratio <= {OVERHEAD_TARGET} (engine `{op}`), every N | max "
                f"{worst} | {_verdict(worst <= OVERHEAD_TARGET)} |"
            )
    if r.get("cluster_ratio"):
        worst = max(r["cluster_ratio"].values())
        rows.append(
            f"| overhead ratio <= {OVERHEAD_TARGET} (local cluster `up`), every N | max "
            f"{worst} | {_verdict(worst <= OVERHEAD_TARGET)} |"
        )
    per = r["per_deployment_ms"]
    if "10" in per and "1000" in per:
        growth = round(per["1000"] / per["10"], 2)
        rows.append(
            f"| per-deployment cost at N=1000 within {GROWTH_TARGET}x of N=10 | {growth}x | "
            f"{_verdict(growth <= GROWTH_TARGET)} |"
        )
        add = marginal(per)
        if "100" in add and "1000" in add:
            rows.append(
                "| (not a target) cost per added deployment, N 100 to 1000 against N 10 to 100 "
                f"| {round(add['1000'] / add['100'], 2)}x | - |"
            )
        d = r["per_deployment_ms_default_gc"]
        growth_d = round(d["1000"] / d["10"], 2)
        rows.append(
            f"| the same with CPython's default collector settings | {growth_d}x | "
            f"{_verdict(growth_d <= GROWTH_TARGET)} |"
        )
    rows += fleet_targets(r.get("fleet") or {})
    for n, row in sorted((r.get("cluster_fleet") or {}).items(), key=lambda kv: int(kv[0])):
        rows.append(
            f"| `servestack up` on the local cluster, N={n}, within {CLUSTER_FLEET_TARGET}x of "
            f"the engine's limit | {row['ratio']}x | "
            f"{_verdict(row['ratio'] <= CLUSTER_FLEET_TARGET)} |"
        )
    rows.append(
        f"| diff of 1,000 deployments < {DIFF_TARGET_S} s | {r['diff_1000_s']} s | "
        f"{_verdict(r['diff_1000_s'] < DIFF_TARGET_S)} |"
    )
    rows.append(
        f"| explain of 10,000 steps < {EXPLAIN_TARGET_S} s | {r['explain_10000_s']} s | "
        f"{_verdict(r['explain_10000_s'] < EXPLAIN_TARGET_S)} |"
    )
    return ["| target | measured | |", "|---|---|---|", *rows]


def instruction_targets(i: dict[str, Any]) -> list[str]:
    """The overhead counted in instructions, and how much of it the empty layers are."""
    if not i:
        return []
    if "not_measured" in i:
        return [
            f"| overhead ratio <= {OVERHEAD_TARGET} in instructions | not measured "
            f"({i['not_measured']}) | - |"
        ]
    comp, layers = i["ratio"]["components"], i["ratio"]["layers"]
    share = round(100 * (layers - 1) / (comp - 1)) if comp > 1 else "-"
    return [
        f"| overhead ratio <= {OVERHEAD_TARGET} (mocks, counted in instructions), N={i['n']} "
        f"| {comp} | {_verdict(comp <= OVERHEAD_TARGET)} |",
        f"| (not a target) the floor in instructions: hand-written plus the components' empty "
        f"layers | {layers} ({share} % of the components' extra instructions) | - |",
    ]


def instruction_section(r: dict[str, Any]) -> list[str]:
    i = r["instructions"]
    lines = [
        "",
        "## Instructions (callgrind)",
        "",
        f"Measured {r.get('instructions_date', r['date'])} (bench/instructions.py). "
        "Instructions of `python -m bench.mock_run --variant V --n N` less those of the same "
        "command with `--n 0`, divided by N, `PYTHONHASHSEED=0`: the machine's load does not "
        "move them.",
        "",
    ]
    if "not_measured" in i:
        return [*lines, f"Not measured: {i['not_measured']}."]
    return [
        *lines,
        f"| program, N = {i['n']} | instructions per deployment (M) | against hand-written |",
        "|---|---|---|",
        *(
            f"| `{v}` | {i['per_deployment_m'][v]} | {i['ratio'][v]} |"
            for v in i["per_deployment_m"]  # in bench.instructions.VARIANTS' order
        ),
    ]


def fleet_targets(f: dict[str, Any]) -> list[str]:
    rows = []
    row = f.get("100") or {}
    if "up_s" in row and "limit_s" in row:
        ratio = round(row["up_s"] / row["limit_s"], 2)
        rows.append(
            f"| `servestack up` of 100 deployments within {FLEET_UP_TARGET}x of the engine's "
            f"limit (`PULUMI_SKIP_CHECKPOINTS`) | {ratio}x | "
            f"{_verdict(ratio <= FLEET_UP_TARGET)} |"
        )
    big = f.get("1000") or {}
    if "up_s" in big and "up_s" in row:
        growth = round((big["up_s"] / 1000) / (row["up_s"] / 100), 2)
        # Rows a --merge kept measure N=100 and N=1000 in runs apart: say so.
        apart = str(big.get("date", ""))[:10] != str(row.get("date", ""))[:10]
        rows.append(
            f"| `servestack up`: cost per deployment at N=1000 within {FLEET_GROWTH_TARGET}x "
            f"of N=100 | {growth}x ({big['up_s']} s in all"
            f"{'; the two sizes measured by different runs' if apart else ''}) | "
            f"{_verdict(growth <= FLEET_GROWTH_TARGET)} |"
        )
    small = f.get("3") or {}
    if "operation_s" in big and "operation_s" in small:
        ratio = round(big["operation_s"] / small["operation_s"], 2)
        rows.append(
            f"| one operation on one deployment at N=1000 within {FLEET_OP_TARGET}x of N=3 | "
            f"{ratio}x ({big['operation_s']} s against {small['operation_s']} s) | "
            f"{_verdict(ratio <= FLEET_OP_TARGET)} |"
        )
    if "floor_s" in big and "operation_s" in small:
        # What the miss is made of: the engine's own cost at N=1000 (bench/floor.py).
        rows.append(
            f"| (not a target) the engine's floor of that operation at N=1000 against the "
            f"operation at N=3 | {round(big['floor_s'] / small['operation_s'], 2)}x "
            f"({big['floor_s']} s) | - |"
        )
    if "floor_s" in big and "operation_s" in big:
        rows.append(
            f"| (not a target) the operation at N=1000 against its engine floor | "
            f"{round(big['operation_s'] / big['floor_s'], 2)}x wall, "
            f"{round(big['operation_cpu_s'] / big['floor_cpu_s'], 2)}x CPU | - |"
        )
    return rows


def fleet_section(r: dict[str, Any]) -> list[str]:
    f = r["fleet"]
    lines = [
        "",
        "## Fleet scale: `servestack up` and one operation",
        "",
        "Render mode, the project's local file backend, a production stack of N deployments",
        "(`bench.stacks.stack_raw`), each variant on a fresh stack of one project, in the same",
        "run (bench/fleet.py). `up`: `servestack up STACK --yes` (one checkpoint write, under",
        "servestack's journal). `limit`: the same program by `pulumi up` with",
        "`PULUMI_SKIP_CHECKPOINTS=true`. `plain`: a plain `pulumi up` (a checkpoint write after",
        "every step), measured up to N = 100 only: its cost grows with the square of N.",
        "`hand-written plain`: the hand-written program's plain `pulumi up`, from the render-mode",
        "section above (see its date). `operation`: `servestack scale STACK model-0001 --min 3",
        "--max M --yes` on the stack `servestack up` made, median of three, wall and CPU",
        "seconds of the whole process tree. `floor`: the engine's own cost of that operation,",
        "right after it on the same stack: the same targeted `pulumi up` on the fast path by a",
        "program that registers only what the scoped update registers and reads and exports",
        "nothing (bench/floor.py), median of three. `export`: `pulumi stack export` (load the",
        "checkpoint, serialize it once), median of three.",
        "",
        "| N | up s | limit s | up / limit | plain s | hand-written plain s | up / hand-written "
        "plain | operation s | operation CPU s | floor s | floor CPU s | export s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    engine = r.get("engine") or {}
    for n, row in sorted(f.items(), key=lambda kv: int(kv[0])):
        if "error" in row:
            lines.append(f"| {n} | failed: {row['error'][-200:]!r} | | | | | | | | | | |")
            continue
        hand = (engine.get(n) or {}).get("handwritten", {}).get("up", {}).get("s")
        up, limit = row.get("up_s"), row.get("limit_s")
        lines.append(
            f"| {n} | {up} | {limit or '-'} | "
            f"{round(up / limit, 2) if up and limit else '-'} | {row.get('plain_s', '-')} | "
            f"{hand or '-'} | {round(up / hand, 2) if up and hand else '-'} | "
            f"{row.get('operation_s', '-')} | {row.get('operation_cpu_s', '-')} | "
            f"{row.get('floor_s', '-')} | {row.get('floor_cpu_s', '-')} | "
            f"{row.get('export_s', '-')} |"
        )
    earlier = [
        n
        for n, row in f.items()
        if not str(row.get("date", "")).startswith(str(r.get("fleet_date", ""))[:10])
    ]
    if earlier:
        lines += [
            "",
            f"Kept from an earlier run (`--merge`): N = {', '.join(sorted(earlier, key=int))}; "
            "the other rows were measured on " + str(r.get("fleet_date", "?"))[:10] + ".",
        ]
    writes = r.get("checkpoint_writes")
    if writes:
        lines += [
            "",
            f"Checkpoint writes per deployment of a fresh update of 10 deployments: plain `pulumi "
            f"up` {writes['plain']}, the fast path {writes['fast']} (one write for the whole "
            "update).",
        ]
    return lines


def cluster_section(r: dict[str, Any]) -> list[str]:
    when = f"Measured {r['cluster_date']} ({round(r['cluster_wall_s'] / 60)} minutes)"
    if r.get("cluster_merged"):
        when += (
            ", by a later run than the sections above (`python -m bench --merge --sizes '' "
            "--engine-sizes ''`), merged into results.json"
        )
    lines = [
        "",
        "## Real engine, cluster mode, local control plane",
        "",
        f"{when}. `pulumi up` of each program with `target: cluster` on the local control",
        "plane of tools/cluster.py (etcd, kube-apiserver, controller manager, scheduler, kwok",
        "on 127.0.0.1), node pool provider `local`: one pool of g6.48xlarge kwok nodes (8 L4",
        "each), as many as the pods at rest need (`bench.stacks.cluster_stack_raw`). The",
        "provider awaits every Deployment's rollout (production's bound, 600 s), so `up`",
        "ends when every Deployment is Ready; each run checks that afterwards, and that the",
        "stack holds as many Deployments as it should.",
        "",
        "What is measured: the engine, the provider, the API server, the scheduler and the",
        "await until Ready. What is not: no container runs on a kwok node (kwok marks pods",
        "Ready), so no image pull, no model load and no readiness probe is in these times.",
        "Peak memory is that of the `pulumi up` process tree, as in render mode; the control",
        "plane's processes are not counted. Each run is a fresh stack on a clean cluster: the",
        "stack is destroyed after it, and the next run starts only when no object with",
        "servestack's labels and no node of the pool is left. `runs`: fresh stacks per",
        "variant, taking turns (ABBA), the median shown; with one run, components go first.",
        "Other engineers' builds and tests share the machine, so absolute times are noisy.",
        "",
        "| N | runs | kwok nodes | pods at rest | Kubernetes resources comp / hand "
        "| components s (peak MiB) | hand-written s (peak MiB) | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, ratio in r["cluster_ratio"].items():
        row = r["cluster"][n]
        c, h = row["components"], row["handwritten"]
        lines.append(
            f"| {n} | {r['cluster_repeats'][n]} | {row['nodes']} | {row['pods_at_rest']} | "
            f"{c['resources']} / {h['resources']} | {c['s']} ({c['peak_mib']}) | "
            f"{h['s']} ({h['peak_mib']}) | {ratio} |"
        )
    return lines


def cluster_fleet_section(r: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Fleet scale on the local cluster: `servestack up` against the engine's limit",
        "",
        f"Last measured {r['cluster_fleet_date']} ({round(r['cluster_fleet_wall_s'] / 60)} "
        "minutes; each row's date in its last column),",
        "bench/cluster.py. The same stacks and cluster as the section above. `up`: a fresh",
        "`servestack up STACK --yes` (the fast path: one checkpoint write, under servestack's",
        "journal; its own `stack init`, config reading and review table included). `limit`:",
        "the same program on a fresh stack by `pulumi up` with `PULUMI_SKIP_CHECKPOINTS=true`,",
        "its config in a file as servestack hands it over (`stack init` not timed). Both end",
        "when the provider has awaited every Deployment Ready. `runs`: fresh stacks per",
        "variant, taking turns (ABBA), the median shown; the cluster is cleaned between runs.",
        "",
        "| N | runs | kwok nodes | pods at rest | up s | limit s | up / limit | up runs s "
        "| limit runs s | measured |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, row in sorted(r["cluster_fleet"].items(), key=lambda kv: int(kv[0])):
        lines.append(
            f"| {n} | {row['repeats']} | {row['nodes']} | {row['pods_at_rest']} | "
            f"{row['up_s']} | {row['limit_s']} | {row['ratio']} | {row['up_runs_s']} | "
            f"{row['limit_runs_s']} | {row.get('date', r['cluster_fleet_date'])} |"
        )
    return lines


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Machine: Python {m['python']}, {m['platform']}, {m['cpus']} CPUs; date: "
        f"{r['date']}. Produced by `make bench` "
        f"({round(r.get('bench_wall_s', 0) / 60)} minutes).",
        "",
        "All ratios are components / hand-written, measured pair by pair in the same run. The",
        "hand-written program registers exactly the same Kubernetes resources (a test checks",
        "it: tests/bench/test_baseline.py); the difference is the ComponentResources.",
        "",
        *targets(r),
        "",
        "## Program under mocks",
        "",
        "Each run is a fresh process, as a stack program is; medians of the repeats, the two",
        "programs taking turns (ABBA). Headline columns: the collector settings the servestack",
        "entry point applies (components/process.py); `default GC`: CPython's defaults, same",
        "repeats. `ms per added deployment`: the cost of the deployments added since the",
        "previous N, so fixed start-up costs cancel. `floor`: the hand-written program plus",
        "the components' empty ComponentResources (same types, names, parents and outputs)",
        "against the hand-written program: what the layers cost in the SDK by themselves.",
        "",
        "| N | resources comp / hand | ratio | floor | ms per deployment "
        "| ms per added deployment | peak RSS MiB comp / hand | default GC: ratio "
        "| ms per deployment | ms per added deployment | peak RSS MiB comp / hand |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    floors = r.get("overhead_floor_ratio") or {}
    added, added_d = marginal(r["per_deployment_ms"]), marginal(r["per_deployment_ms_default_gc"])
    for n, ratio in r["overhead_ratio"].items():
        res, mem = r["resources"][n], r["mocks_peak_rss_mib"][n]
        lines.append(
            f"| {n} | {res['components']} / {res['handwritten']} | {ratio} | "
            f"{floors.get(n, '-')} | {r['per_deployment_ms'][n]} | {added.get(n, '-')} | "
            f"{mem['components']} / {mem['handwritten']} | "
            f"{r['overhead_ratio_default_gc'][n]} | {r['per_deployment_ms_default_gc'][n]} | "
            f"{added_d.get(n, '-')} | "
            f"{mem['components_default_gc']} / {mem['handwritten_default_gc']} |"
        )
    if r.get("engine_ratio"):
        lines += [
            "",
            "## Real engine, render mode, local file backend",
            "",
            "Peak memory is the summed RSS of the whole process tree (CLI, language host,",
            "Python program, provider), sampled every 50 ms; pages the processes share count",
            "once per process, so it overstates the tree's real footprint. Each",
            "`up_skip_checkpoints` row repeats `up` on a",
            "fresh stack with `PULUMI_SKIP_CHECKPOINTS=true`: the file backend rewrites the",
            "whole checkpoint after every step, so every extra step (each component is one)",
            "costs more as the stack grows. `runs`: fresh stacks per variant, taking turns (ABBA);",
            "the median is shown. With one run, components go first.",
            "",
            "| N | runs | op | components s (peak MiB) | hand-written s (peak MiB) | ratio |",
            "|---|---|---|---|---|---|",
        ]
        for n, ratio in r["engine_ratio"].items():
            c, h = r["engine"][n]["components"], r["engine"][n]["handwritten"]
            for op in ("up", "preview", "up_skip_checkpoints"):
                lines.append(
                    f"| {n} | {r.get('engine_repeats', {}).get(n, 1)} | `{op}` | "
                    f"{c[op]['s']} ({c[op]['peak_mib']}) | "
                    f"{h[op]['s']} ({h[op]['peak_mib']}) | {ratio[op]} |"
                )
    if r.get("instructions"):
        lines += instruction_section(r)
    if r.get("fleet"):
        lines += fleet_section(r)
    if r.get("cluster_ratio"):
        lines += cluster_section(r)
    if r.get("cluster_fleet"):
        lines += cluster_fleet_section(r)
    lines += [
        "",
        "## Review tool",
        "",
        f"Measured {r.get('review_date', r['date'])}. "
        f"`servestack diff` of two 1,000-deployment stacks: {r['diff_1000_s']} s; "
        f"`servestack explain` of a 10,000-step preview: {r['explain_10000_s']} s.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    data = json.loads((HERE / "results.json").read_text())
    (HERE / "RESULTS.md").write_text(render(data))
    print(render(data))
