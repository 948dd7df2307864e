"""Real-engine benchmark on the local cluster (tools/cluster.py): `pulumi up` of generated
stacks with `target: cluster` and node pool provider `local`, components vs the hand-written
program, measured pair by pair in the same run (ABBA).

Each run is a fresh stack on a clean cluster: before it, no object carries servestack's
labels and no node of the bench's pool is left; after it, the stack is destroyed and the
cluster waited clean again. The provider awaits every Deployment's rollout, so `up` returns
once every Deployment is Ready on kwok nodes placed by the real scheduler (checked after each
run). No container runs on a kwok node: this measures the engine, the provider, the API
server, the scheduler and the await, not image pulls or model loading.

Wall time and peak memory are those of the `pulumi up` process tree (bench.engine.measure):
CLI, language host, Python program, provider. The control plane's own processes are not in
that tree and not counted.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from kubernetes import client

from bench.engine import HERE, measure, median_run, stack_text
from bench.stacks import cluster_stack_raw, pods_at_rest
from servestack.config.models import StrategyType
from servestack.config.stackfile import engine_config_text
from servestack.config.validation import parse_stack
from servestack.contract import labels
from servestack.engine import Engine, make_project
from tests.cluster.live import (
    ClusterStack,
    api_client,
    deployments_ready,
    objects_with_our_labels,
    wait_for,
    wait_until_clean,
)

PASSPHRASE = "bench"
VARIANTS = ("components", "handwritten")
#: The fleet part: `servestack up` (the fast path) against the same program by `pulumi up`
#: with no checkpoint between steps (the engine's limit).
FLEET_VARIANTS = ("up", "limit")
SKIP = {"PULUMI_SKIP_CHECKPOINTS": "true"}
#: Destroying 100 deployments leaves pods and the namespace terminating for a while.
CLEAN_TIMEOUT_S = 600


def _pool_nodes(api: client.ApiClient, pools: list[str]) -> list[str]:
    selector = f"{labels.NODE_POOL} in ({','.join(pools)})"
    return [n.metadata.name for n in client.CoreV1Api(api).list_node(label_selector=selector).items]


def _wait_clean(api: client.ApiClient, pools: list[str]) -> None:
    """Until nothing labelled managed-by servestack is left, and no node of ``pools``."""
    wait_until_clean(api, timeout=CLEAN_TIMEOUT_S)
    wait_for(
        "the previous run's kwok nodes gone",
        lambda: not _pool_nodes(api, pools) or None,
        timeout=CLEAN_TIMEOUT_S,
        every=1,
    )


def _engine_on_clean_cluster(
    api: client.ApiClient, kubeconfig: Path, state: Path, pools: list[str]
) -> Engine:
    """The engine of one bench run, once the cluster holds nothing of an earlier one; its own
    file backend, whatever `pulumi login` the machine has."""
    left = objects_with_our_labels(api) + [f"Node {n}" for n in _pool_nodes(api, pools)]
    if left:
        raise RuntimeError(f"the cluster is not clean before a bench run: {left[:10]}")
    return Engine(
        state,
        passphrase=PASSPHRASE,
        backend_url=f"file://{state / 'backend'}",
        cluster=True,
        extra_env={"KUBECONFIG": str(kubeconfig)},
    )


def _one_up(
    api: client.ApiClient,
    kubeconfig: Path,
    project: Path,
    state: Path,
    stack: str,
    namespace: str,
    pools: list[str],
    workloads: int,
) -> dict[str, Any]:
    """`pulumi up` of a fresh stack on a clean cluster; the stack is destroyed afterwards
    and the cluster waited clean, whatever happened."""
    engine = _engine_on_clean_cluster(api, kubeconfig, state, pools)
    engine.stack(project, stack)
    s = ClusterStack(engine, project, stack)
    try:
        run: dict[str, Any] = measure(
            engine, project, "up", "--yes", "--skip-preview", "--stack", stack
        )
        # The provider awaited each rollout; the HPAs then raise their Deployments to
        # minReplicas. Every Deployment Ready, as many as the stack has.
        deps = wait_for(
            f"every Deployment in {namespace} Ready",
            lambda: deployments_ready(api, namespace),
            timeout=300,
        )
        if len(deps) != workloads:
            raise RuntimeError(f"{len(deps)} Deployments in {namespace}, expected {workloads}")
        kinds = Counter(r["type"].removeprefix("kubernetes:") for r in s.resources())
        run["resources"] = sum(kinds.values())
        run["kinds"] = dict(sorted(kinds.items()))
        run["deployments_ready"] = len(deps)
    finally:
        started = time.perf_counter()
        s.destroy()
        _wait_clean(api, pools)
        destroy_s = round(time.perf_counter() - started, 2)
    run["destroy_and_clean_s"] = destroy_s
    return run


def bench_cluster(sizes: list[int], kubeconfig: Path, repeats: int = 3) -> dict[str, Any]:
    """`repeats` fresh stacks per variant for N <= 10 (median reported), one for larger N;
    the two programs take turns, the order swapped every repeat (ABBA)."""
    api = api_client(kubeconfig)
    started = time.perf_counter()
    out: dict[str, Any] = {"cluster_ratio": {}, "cluster": {}, "cluster_repeats": {}}
    for n in sizes:
        raw = cluster_stack_raw(n)
        config = parse_stack(raw)
        pools = [p.name for p in config.node_pools]
        workloads = sum(1 + (d.strategy.type is StrategyType.canary) for d in config.deployments)
        text = stack_text(raw)
        reps = repeats if n <= 10 else 1
        names = [f"bench-{i}" for i in range(reps)]
        runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
        with tempfile.TemporaryDirectory() as tmp:
            projects = {}
            for variant in VARIANTS:
                project = make_project(
                    Path(tmp) / variant / "project", stacks=dict.fromkeys(names, text)
                )
                if variant == "handwritten":
                    shutil.copy(HERE / "handwritten_program.py", project / "__main__.py")
                projects[variant] = project
            for i in range(reps):
                for variant in VARIANTS if i % 2 == 0 else VARIANTS[::-1]:
                    runs[variant].append(
                        _one_up(
                            api,
                            kubeconfig,
                            projects[variant],
                            Path(tmp) / variant / "state",
                            names[i],
                            config.namespace,
                            pools,
                            workloads,
                        )
                    )
        row: dict[str, Any] = {
            v: {**median_run(r), "runs_s": [x["s"] for x in r]} for v, r in runs.items()
        }
        row["nodes"] = sum(p.min_nodes for p in config.node_pools)
        row["pods_at_rest"] = pods_at_rest(config)
        c, h = row["components"], row["handwritten"]
        key = str(n)
        out["cluster"][key] = row
        out["cluster_ratio"][key] = round(c["s"] / h["s"], 3)
        out["cluster_repeats"][key] = reps
        print(
            f"cluster N={n} (median of {reps}, {row['nodes']} kwok nodes, "
            f"{row['pods_at_rest']} pods): up {c['s']}s vs {h['s']}s "
            f"(ratio {out['cluster_ratio'][key]}); peak MiB {c['peak_mib']} vs {h['peak_mib']}; "
            f"{c['resources']} vs {h['resources']} Kubernetes resources",
            flush=True,
        )
    out["cluster_wall_s"] = round(time.perf_counter() - started)
    return out


def _fleet_one(
    api: client.ApiClient,
    kubeconfig: Path,
    project: Path,
    state: Path,
    stack: str,
    variant: str,
    config: Any,
) -> float:
    """Seconds of one fresh apply of ``stack`` on a clean cluster, by `servestack up`
    (``up``) or by `pulumi up` with ``PULUMI_SKIP_CHECKPOINTS=true`` and the config in a
    file, as servestack hands it over (``limit``); every Deployment Ready afterwards. The
    stack is destroyed and the cluster waited clean, whatever happened."""
    pools = [p.name for p in config.node_pools]
    engine = _engine_on_clean_cluster(api, kubeconfig, state, pools)
    s = ClusterStack(engine, project, stack)
    try:
        if variant == "up":
            started = time.perf_counter()
            proc = subprocess.run(
                s.servestack_command("up", stack, "--yes"),
                env=s.servestack_env(),
                capture_output=True,
                text=True,
                timeout=3600,
                check=False,
            )
            seconds = round(time.perf_counter() - started, 2)
            if proc.returncode != 0:
                raise RuntimeError(f"servestack up failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
        else:
            engine.stack(project, stack)  # `pulumi stack init`, not timed (servestack's is)
            text = (project / "stacks" / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")
            handed = state / f"{stack}-program.yaml"
            handed.write_text(text, encoding="utf-8")
            engine_file = state / f"{stack}-engine.yaml"
            engine_file.write_text(engine_config_text(text, handed), encoding="utf-8")
            limit = dataclasses.replace(engine, extra_env={**engine.extra_env, **SKIP})
            args = ("up", "--yes", "--skip-preview", "--stack", stack)
            seconds = measure(limit, project, *args, "--config-file", str(engine_file))["s"]
        workloads = sum(1 + (d.strategy.type is StrategyType.canary) for d in config.deployments)
        deps = wait_for(
            f"every Deployment in {config.namespace} Ready",
            lambda: deployments_ready(api, config.namespace),
            timeout=300,
        )
        if len(deps) != workloads:
            raise RuntimeError(f"{len(deps)} Deployments, expected {workloads}")
    finally:
        s.destroy()
        _wait_clean(api, pools)
    return seconds


def bench_cluster_fleet(sizes: list[int], kubeconfig: Path, repeats: int = 3) -> dict[str, Any]:
    """`servestack up` of a fresh stack on the local cluster against the engine's limit
    (the same program, `PULUMI_SKIP_CHECKPOINTS=true`), taking turns (ABBA); `repeats` runs
    each for N <= 10 (median), one for larger N."""
    api = api_client(kubeconfig)
    started = time.perf_counter()
    out: dict[str, Any] = {}
    for n in sizes:
        raw = cluster_stack_raw(n)
        config = parse_stack(raw)
        text = stack_text(raw)
        reps = repeats if n <= 10 else 1
        runs: dict[str, list[float]] = {v: [] for v in FLEET_VARIANTS}
        with tempfile.TemporaryDirectory() as tmp:
            names = [f"{v}-{i}" for v in FLEET_VARIANTS for i in range(reps)]
            project = make_project(Path(tmp) / "project", stacks=dict.fromkeys(names, text))
            for i in range(reps):
                for v in FLEET_VARIANTS if i % 2 == 0 else FLEET_VARIANTS[::-1]:
                    state = Path(tmp) / "state"
                    state.mkdir(exist_ok=True)
                    runs[v].append(
                        _fleet_one(api, kubeconfig, project, state, f"{v}-{i}", v, config)
                    )
        up, limit = (sorted(runs[v])[len(runs[v]) // 2] for v in FLEET_VARIANTS)
        out[str(n)] = {
            "up_s": up,
            "limit_s": limit,
            "ratio": round(up / limit, 3),
            "repeats": reps,
            "up_runs_s": runs["up"],
            "limit_runs_s": runs["limit"],
            "nodes": sum(p.min_nodes for p in config.node_pools),
            "pods_at_rest": pods_at_rest(config),
        }
        print(f"cluster fleet N={n}: {out[str(n)]}", flush=True)
    return {"cluster_fleet": out, "cluster_fleet_wall_s": round(time.perf_counter() - started)}
