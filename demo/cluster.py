"""Part 2 of `make demo`: the dev stack on the local control plane (`make cluster`).

The dev stack file, pointed at the local cluster (`target: cluster`, `cluster.provider:
local`), goes up through the real engine; the pods turn Ready on kwok nodes placed by the
real scheduler. Then one edit of each effect class is applied with the `servestack` command
a user would type, and what the API server shows afterwards is compared with what the
field-effect table said the edit would do:

- in-place: the Deployment keeps its UID and pod-template hash, and no pod is replaced;
- restart: a new ReplicaSet (new pod-template hash) takes over, the Deployment stays;
- replace: the Deployment is a new object (new UID);
- forbidden: refused before anything is applied; the engine writes no object (no field
  manager's entry of the engine changes; controllers may still write).

What the server shows, its classes and "the engine wrote nothing" are
:mod:`harness.live`'s, as in the cluster tier.

Then one capacity verdict: bert-sentiment runs on a pool of two T4 nodes, and a blue-green
switch of its two replicas needs four. `servestack diff` says beforehand that this rollout
cannot finish, with the pool's room, the peak and the remedies (development warns;
production refuses the same edit); the first remedy (more nodes) is applied with the same
edit, and the switch finishes on the nodes it added. Nothing waits for a Pending pod.

A stop and a start close it: 0 pods with the Service kept, then the pods back with the same
pod template. The demo fails (exit code 1) when the server disagrees with the table. It
destroys its stack at the end and stops the cluster if it started it
(``SERVESTACK_DEMO_KEEP=1`` keeps both).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness import REPO
from harness.live import (
    Live,
    Snapshot,
    engine_writes,
    kinds_reached,
    labelled,
    observed,
    settled,
    snapshot,
)
from harness.local_cluster import cluster_tool, on_local_cluster
from harness.poll import wait_for
from servestack.config.models import StrategyType
from servestack.config.stackfile import set_value
from servestack.config.validation import parse_stack, read_stack_text
from servestack.contract import labels
from servestack.contract.effects import Effect
from servestack.engine import make_project
from servestack.ops.operations import Edits, Workspace, resource_edits, set_model_edits
from servestack.program.guards import refusal_problems
from servestack.review.predict import predict

from .render import STACK, passphrase

DEPLOYMENT = "bert-sentiment"
SELECTOR = f"{labels.NAME}={DEPLOYMENT}"
OURS = f"{labels.MANAGED_BY}={labels.MANAGER}"
#: What the demo shows for a forbidden edit the program refused, the engine writing nothing.
REFUSED = "refused, nothing changed"
#: Seconds the demo waits for the cluster to settle after an edit.
SETTLE_S = 120.0


@dataclass(frozen=True)
class Edit:
    label: str
    #: `servestack` arguments after the command's stack and deployment (None: a hand edit).
    command: tuple[str, ...] | None
    #: The stack-file edits it makes, from the same builders the operations use: what the
    #: field-effect table classifies.
    fields: Callable[[str], Edits]


def _set_model(version: str, strategy: StrategyType) -> Callable[[str], Edits]:
    return lambda text: set_model_edits(
        text, DEPLOYMENT, version=version, image=None, strategy=strategy
    )


#: bert-sentiment's pool: two T4 nodes (kwok Nodes with a g4dn.xlarge's allocatable). In this
#: order, each edit below fits them: one replica and its surge pod, a blue-green pair of one
#: replica each, then two replicas. The capacity step's switch of two replicas does not.
POOL = "t4"
GPU_POOL = {
    "name": POOL,
    "gpu": {"type": "T4", "count": 1},
    "machineType": "g4dn.xlarge",
    "minNodes": 2,
    "maxNodes": 4,
}
#: The capacity step's edit: a blue-green switch to this version (both colours at once).
CAPACITY_VERSION = "v2.4.0"
RAISE_RE = re.compile(rf"remedy: raise nodePools\.{POOL}\.minNodes to (\d+)")

EDITS = [
    Edit(
        "restart",
        ("set-model", "--version", "v2.2.0"),
        _set_model("v2.2.0", StrategyType.rolling),
    ),
    Edit(
        "replace",
        ("set-model", "--version", "v2.3.0", "--strategy", "blue_green", "--yes"),
        _set_model("v2.3.0", StrategyType.blue_green),
    ),
    Edit(
        "in-place",
        ("scale", "--replicas", "2"),
        lambda _text: resource_edits(DEPLOYMENT, replicas=2),
    ),
    Edit("forbidden", None, lambda _text: {f"deployments.{DEPLOYMENT}.model.type": "vision"}),
]


@dataclass(frozen=True)
class Seen:
    """The deployment's live objects once its rollout has settled."""

    objects: Snapshot

    def one(self, kind: str) -> Live:
        (found,) = (o for o in self.objects.values() if o.kind == kind)
        return found

    @property
    def deployment(self) -> Live:
        return self.one("Deployment")


class Cluster:
    """Reads of the live objects, through the Python Kubernetes client."""

    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        from kubernetes import client, config, dynamic

        # The client's models type every field Optional: read them as Any, as ops.live does.
        self.api: Any = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        self.apps: Any = client.AppsV1Api(self.api)
        self.core: Any = client.CoreV1Api(self.api)
        self.dyn: Any = dynamic.DynamicClient(self.api)  # type: ignore[no-untyped-call]
        self.ns = namespace

    def ready_line(self) -> str:
        deps = self.apps.list_namespaced_deployment(self.ns).items
        return ", ".join(
            f"{d.metadata.name} {d.status.ready_replicas or 0}/{d.spec.replicas or 0} Ready"
            for d in sorted(deps, key=lambda d: d.metadata.name)
        )

    def all_ready(self) -> bool:
        deps = self.apps.list_namespaced_deployment(self.ns).items
        return bool(deps) and all(
            (d.status.ready_replicas or 0) == (d.spec.replicas or 0) for d in deps
        )

    def settled(self) -> Seen | None:
        """The deployment's objects once its rollout is complete: one Deployment, one
        Service."""
        if not settled(self.api, self.ns, SELECTOR):
            return None
        seen = Seen(snapshot(self.api, labelled(self.api, self.ns, SELECTOR)))
        kinds = [o.kind for o in seen.objects.values()]
        if kinds.count("Deployment") != 1 or kinds.count("Service") != 1:
            return None
        return seen

    def seen(self) -> Seen:
        return wait_for(f"{DEPLOYMENT}'s rollout to settle", self.settled, SETTLE_S)

    def clean(self) -> bool:
        return not self.leftovers()

    def leftovers(self) -> list[str]:
        return [
            f"{res.kind}/{item.metadata.name}"
            for res in (
                self.dyn.resources.get(api_version="apps/v1", kind="Deployment"),
                self.dyn.resources.get(api_version="v1", kind="Service"),
                self.dyn.resources.get(api_version="v1", kind="Pod"),
            )
            for item in res.get(label_selector=OURS).items
        ]


def what_changed(before: Seen, after: Seen) -> str:
    """What the server shows, in a few words under the class."""
    b, a = before.deployment, after.deployment
    kept = len(b.pods & a.pods)
    same_service = after.one("Service").uid == before.one("Service").uid
    parts = [
        f"Deployment {b.name} → {a.name}" if a.name != b.name else None,
        "uid " + ("new" if a.uid != b.uid else "same"),
        f"pod-template hash {b.template_hash} → {a.template_hash}"
        if a.template_hash != b.template_hash
        else f"pod-template hash {a.template_hash} same",
        f"pods {len(b.pods)} → {len(a.pods)} ({kept} kept)",
        "Service " + ("same" if same_service else "new"),
        f"image {a.images[0].rsplit(':', 1)[-1]}" if a.images else None,
    ]
    return "\n".join(p for p in parts if p)


class Demo:
    def __init__(self, console: Console, root: Path, kubeconfig: Path) -> None:
        self.console = console
        text = on_local_cluster((REPO / "stacks" / f"Pulumi.{STACK}.yaml").read_text("utf-8"))
        text = set_value(text, "nodePools", [GPU_POOL])
        gpu = {"count": 1, "type": "T4"}
        text = set_value(text, f"deployments.{DEPLOYMENT}.resources.gpu", gpu)
        self.project = make_project(root / ".servestack" / "demo-cluster", stacks={STACK: text})
        self.ws = Workspace(project_dir=self.project)
        backend = f"file://{self.ws.project.engine_state / 'backend'}"
        self.env = {
            "KUBECONFIG": str(kubeconfig),
            "PULUMI_CONFIG_PASSPHRASE": passphrase(),
            # The embedded default, whatever `pulumi login` the user has.
            "PULUMI_BACKEND_URL": backend,
        }
        self.engine = replace(self.ws.runner, backend_url=backend, cluster=True, extra_env=self.env)
        self.live = Cluster(kubeconfig, parse_stack(read_stack_text(text)).namespace)
        self.failures: list[str] = []

    def stack_text(self) -> str:
        return self.ws.stack_file(STACK).read_text(encoding="utf-8")

    def servestack(
        self, *args: str, quiet: tuple[int, ...] = (), width: int = 200
    ) -> subprocess.CompletedProcess[str]:
        """The `servestack` command, as a user runs it in the project (its output shown when
        it exits with a code not in ``quiet``), on a terminal ``width`` columns wide."""
        cmd = [sys.executable, "-m", "servestack", "-C", str(self.project), *args]
        self.console.print(f"     [bold]$ servestack {escape(' '.join(args))}[/bold]")
        proc = subprocess.run(
            cmd,
            # Relative file arguments name files of the project (`stacks/...`).
            cwd=self.project,
            env={**os.environ, **self.env, "COLUMNS": str(width)},
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode not in (0, *quiet):
            self.console.print(escape(proc.stdout + proc.stderr), markup=False)
        return proc

    def up(self) -> None:
        """`pulumi up`, with the pods' readiness shown as it changes."""
        stack = self.engine.stack(self.project, STACK)
        errors: list[BaseException] = []
        summary: dict[Any, int] = {}

        def run() -> None:
            try:
                res = stack.up(on_output=lambda _: None)
                summary.update(res.summary.resource_changes or {})
            except BaseException as exc:  # reported below, in the main thread
                errors.append(exc)

        started = time.monotonic()
        worker = threading.Thread(target=run)
        worker.start()
        last = ""
        while worker.is_alive():
            line = self.live.ready_line()
            if line and line != last:
                self.console.print(f"     +{time.monotonic() - started:4.1f}s  {line}")
                last = line
            time.sleep(0.25)
        worker.join()
        if errors:
            raise errors[0]
        changes = ", ".join(f"{k} {v}" for k, v in sorted(summary.items()))
        self.console.print(
            f"     pulumi up done in {time.monotonic() - started:.0f}s ({changes}); "
            f"{self.live.ready_line()}"
        )

    def edit(self, edit: Edit) -> tuple[str, str, str]:
        """Apply one edit; (what was done, what the table says, what the server shows)."""
        text = self.stack_text()
        found = predict(text, edit.fields(text))
        table_says = found.effect.value
        before = self.live.seen()
        if edit.command is not None:
            proc = self.servestack(*edit.command[:1], STACK, DEPLOYMENT, *edit.command[1:])
            if proc.returncode != 0:
                self.failures.append(f"{edit.label}: servestack exited {proc.returncode}")
                return table_says, "servestack failed", ""
            after = self.live.seen()
            seen = str(observed(before.objects, after.objects, kinds_reached(found)))
            shown = what_changed(before, after)
            command = "servestack " + " ".join(edit.command)
        else:
            fields = edit.fields(text)
            seen, shown = self.refused(fields)
            command = "edit " + ", ".join(f"{k.split('.', 2)[-1]}: {v}" for k, v in fields.items())
            command += " by hand, pulumi up"
        expected = REFUSED if table_says == Effect.FORBIDDEN else table_says
        if seen != expected:
            self.failures.append(
                f"{edit.label}: the table says {expected}, the server shows {seen}"
            )
        return command, table_says, f"{seen}\n[dim]{escape(shown)}[/dim]"

    def refused(self, fields: Edits) -> tuple[str, str]:
        """A forbidden edit made by hand in the stack file: the program refuses it."""
        path = self.ws.stack_file(STACK)
        good = path.read_text(encoding="utf-8")
        bad = good
        for key, value in fields.items():
            bad = set_value(bad, key, value)
        before = self.live.seen().objects
        path.write_text(bad, encoding="utf-8")
        try:
            proc = self.engine.cli(self.project, "up", "--yes", "--stack", STACK, check=False)
        finally:
            path.write_text(good, encoding="utf-8")
        after = self.live.seen().objects
        # The program's refusal, then one line per refused field: show the first of those.
        said = next(iter(refusal_problems(proc.stdout + proc.stderr)), "")
        if proc.returncode == 0 or not said:
            return "applied", said
        wrote = engine_writes(before, after)
        return ("refused, the engine wrote " + ", ".join(wrote) if wrote else REFUSED), said

    def capacity(self) -> None:
        """A rollout that cannot finish: the review's verdict beforehand, then its first
        remedy applied with the same edit."""
        text = self.stack_text()
        edited = text
        fields = set_model_edits(
            text,
            DEPLOYMENT,
            version=CAPACITY_VERSION,
            image=None,
            strategy=StrategyType.blue_green,
        )
        for key, value in fields.items():
            edited = set_value(edited, key, value)
        files = {
            name: self.project / "stacks" / f"capacity-{name}.yaml"
            for name in ("now", "edited", "prod-now", "prod-edited")
        }
        files["now"].write_text(text, encoding="utf-8")
        files["edited"].write_text(edited, encoding="utf-8")
        files["prod-now"].write_text(set_value(text, "environment", "production"), "utf-8")
        prod = set_value(edited, "environment", "production")
        files["prod-edited"].write_text(prod, encoding="utf-8")
        rel = {k: str(v.relative_to(self.project)) for k, v in files.items()}

        self.console.print(
            f"     set-model --version {CAPACITY_VERSION} --strategy blue_green, reviewed first:"
        )
        # Wide enough that no verdict's line wraps: the lines are picked out below.
        proc = self.servestack("diff", rel["now"], rel["edited"], width=1000)
        said = [
            line
            for line in proc.stdout.splitlines()
            if line.startswith(("WARNING capacity", "  remedy:"))
        ]
        for line in said:
            self.console.print(f"       {escape(line)}", highlight=False)
        if proc.returncode != 0 or not said or "cannot finish" not in said[0]:
            self.failures.append("capacity: development did not warn that it cannot finish")
            return
        proc = self.servestack("diff", rel["prod-now"], rel["prod-edited"], quiet=(2,), width=1000)
        blocked = [line for line in proc.stdout.splitlines() if line.startswith("BLOCKED")]
        for line in blocked:
            self.console.print(f"       {escape(line)} (exit {proc.returncode})", highlight=False)
        if proc.returncode != 2 or not blocked:
            self.failures.append("capacity: production did not refuse the same edit")
        raise_to = next((m for line in said if (m := RAISE_RE.search(line))), None)
        if raise_to is None:
            self.failures.append("capacity: no remedy raising the pool's nodes")
            return
        nodes = int(raise_to.group(1))
        self.console.print(
            f"     the first remedy with the same edit: nodePools.{POOL}.minNodes {nodes}, "
            "pulumi up:"
        )
        self.ws.stack_file(STACK).write_text(
            set_value(edited, f"nodePools.{POOL}.minNodes", nodes), encoding="utf-8"
        )
        self.up()
        pool = self.live.core.list_node(label_selector=f"{labels.NODE_POOL}={POOL}").items
        seen = self.live.seen()
        live = self.live.apps.read_namespaced_deployment(seen.deployment.name, self.live.ns)
        (model,) = [c for c in live.spec.template.spec.containers if c.name == "model"]
        version = next((e.value for e in model.env or [] if e.name == "MODEL_VERSION"), None)
        self.console.print(
            f"       the switch finished: {len(pool)} {POOL} nodes, "
            f"{seen.deployment.name} {len(seen.deployment.pods)} pods Ready, version {version}"
        )
        if len(pool) != nodes or version != CAPACITY_VERSION:
            self.failures.append("capacity: the remedy did not finish the switch")

    def stop_start(self) -> None:
        before = self.live.seen()
        if self.servestack("stop", STACK, DEPLOYMENT).returncode != 0:
            self.failures.append("stop: servestack failed")
            return
        stopped = wait_for("the pods to go", self.live.settled, SETTLE_S)
        kept = stopped.one("Service").uid == before.one("Service").uid
        pods = stopped.deployment.pods
        self.console.print(f"       {len(pods)} pods; Service " + ("kept" if kept else "NEW"))
        if pods or not kept:
            self.failures.append("stop: pods left or the Service was replaced")
        if self.servestack("start", STACK, DEPLOYMENT).returncode != 0:
            self.failures.append("start: servestack failed")
            return
        started = self.live.seen().deployment
        same = started.template_hash == before.deployment.template_hash
        self.console.print(
            f"       {len(started.pods)} pods Ready; pod-template hash "
            f"{started.template_hash} " + ("same as before the stop" if same else "CHANGED")
        )
        if not same or len(started.pods) != len(before.deployment.pods):
            self.failures.append("start: not the pods of before the stop")

    def destroy(self) -> None:
        self.engine.cli(
            self.project, "state", "unprotect", "--all", "--yes", "--stack", STACK, check=False
        )
        self.engine.stack(self.project, STACK).destroy(on_output=lambda _: None)
        wait_for(
            "no object with servestack's labels",
            lambda: not self.live.leftovers() or None,
            SETTLE_S,
        )


def run(console: Console, root: Path) -> int:
    tool = cluster_tool()
    console.rule("part 2: the dev stack on the local cluster (127.0.0.1)")
    started = time.monotonic()
    info = tool.up(REPO)
    console.print(
        f"4/8  local cluster: {'already running' if info.already_running else 'started'} "
        f"in {time.monotonic() - started:.0f}s ({info.server}); "
        f'`eval "$(python3 tools/cluster.py env)"` points kubectl and pulumi at it'
    )
    keep = os.environ.get("SERVESTACK_DEMO_KEEP") == "1"
    demo = Demo(console, root, info.kubeconfig)
    try:
        return _steps(console, demo, keep)
    finally:
        if not keep and not info.already_running:
            tool.down(REPO)
            console.print("     cluster stopped (`make cluster` starts it again)")


def _steps(console: Console, demo: Demo, keep: bool) -> int:
    console.print(
        f"5/8  pulumi up {STACK} with target: cluster, cluster.provider: local "
        "(pods on kwok nodes; no container runs):"
    )
    if demo.live.leftovers():
        console.print("     a previous demo's stack is still up: destroying it first")
        demo.destroy()
    demo.up()
    console.print("\n6/8  one edit of each effect class, applied and observed on the server:\n")
    table = Table(show_lines=True)
    for col in ("command", "table says", "the server shows"):
        table.add_column(col, overflow="fold")
    for edit in EDITS:
        command, said, seen = demo.edit(edit)
        table.add_row(escape(command), said, seen)
    console.print(table)
    console.print(f"\n7/8  capacity: a rollout that cannot finish in pool {POOL}, and its remedy:")
    began = time.monotonic()
    demo.capacity()
    console.print(f"     (the capacity step took {time.monotonic() - began:.0f}s)")
    console.print("\n8/8  stop and start:")
    demo.stop_start()
    if keep:
        console.print("     SERVESTACK_DEMO_KEEP=1: the stack and the cluster stay up")
    else:
        demo.destroy()
        console.print("     pulumi destroy: no object with servestack's labels is left")
    for failure in demo.failures:
        console.print(f"[red]the server disagrees with the table: {escape(failure)}[/red]")
    return 1 if demo.failures else 0
