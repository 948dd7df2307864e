"""Helpers of the cluster tier: run the real engine against the local cluster and read the
live objects back with the Python `kubernetes` client (never by sending traffic to pods).

A stack of the repository runs as a copy (``servestack.engine.make_project``) with
`target: cluster` and `cluster.provider: local`; the copy's node pools get as many kwok
nodes as the test needs (``min_nodes``).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from kubernetes import client, config, dynamic
from kubernetes.client.rest import ApiException
from kubernetes.dynamic.resource import ResourceList
from pulumi import automation as auto

from harness.live import live_object as live_object  # re-exported for the tier
from harness.local_cluster import cluster_tool, on_local_cluster
from harness.poll import wait_for
from servestack.contract import labels
from servestack.engine import Engine, make_project
from tests import REPO, copy_program, stack_text

PASSPHRASE = "cluster-tier-test-passphrase"
#: kwok nodes per pool when a stack of the repository runs on the local cluster: enough for
#: every replica at once. Staging's g4dn.xlarge carries one T4, so each of its 3 replicas
#: needs a node.
STACK_NODES: dict[str, dict[str, int]] = {
    "dev": {},
    "staging": {"t4": 3},
    "prod": {"a100": 2},
    "mig": {"h200": 1, "h200-wide": 1, "h200-spare": 1},
}
OURS = f"{labels.MANAGED_BY}={labels.MANAGER}"


def load_cluster_module() -> ModuleType:
    """tools/cluster.py, imported by path (tools/ is not a package)."""
    return cluster_tool()


@contextlib.contextmanager
def running_cluster(root: Path = REPO) -> Iterator[Any]:
    """The local cluster's ClusterInfo (tools/cluster.py). A cluster that was already running
    is reused and left running; one started here is stopped at the end (data kept) unless
    SERVESTACK_KEEP_CLUSTER=1."""
    cluster = load_cluster_module()
    info = cluster.up(root)
    try:
        yield info
    finally:
        if not info.already_running and os.environ.get("SERVESTACK_KEEP_CLUSTER") != "1":
            cluster.down(root)


def local_stack_text(stack: str, min_nodes: dict[str, int] | None = None) -> str:
    """The repository's stack file, pointed at the local cluster."""
    return on_local_cluster(stack_text(stack), min_nodes)


@dataclass
class ClusterStack:
    engine: Engine
    project: Path
    stack: str

    def up(self) -> dict[str, int]:
        res = self.engine.stack(self.project, self.stack).up(on_output=lambda _: None)
        return dict(res.summary.resource_changes or {})

    def preview(self, refresh: bool = True) -> dict[str, int]:
        st = self.engine.stack(self.project, self.stack)
        return dict(st.preview(on_output=lambda _: None, refresh=refresh).change_summary)

    def resources(self) -> list[dict[str, Any]]:
        """The Kubernetes resources in the stack's state (type, inputs' apiVersion/kind/...)."""
        out = self.engine.cli(self.project, "stack", "export", "--stack", self.stack).stdout
        return [
            r
            for r in json.loads(out)["deployment"].get("resources", [])
            if r["type"].startswith("kubernetes:")
            and r.get("custom")
            and not r["type"].startswith("pulumi:providers:")
        ]

    def servestack(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """The `servestack` command, as a user runs it in the project."""
        return subprocess.run(
            self.servestack_command(*args),
            env=self.servestack_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def servestack_command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "servestack", "-C", str(self.project), *args]

    def servestack_env(self) -> dict[str, str]:
        """The engine's environment (KUBECONFIG, the stack's backend and passphrase), and a
        wide terminal so that rich's tables keep their columns."""
        return {**os.environ, **self.engine.env(), "COLUMNS": "200"}

    def destroy(self) -> None:
        self.engine.cli(
            self.project,
            "state",
            "unprotect",
            "--all",
            "--yes",
            "--stack",
            self.stack,
            check=False,
        )
        self.engine.stack(self.project, self.stack).destroy(on_output=lambda _: None)


def cluster_engine(tmp: Path, kubeconfig: Path) -> Engine:
    """The real engine, with state under ``tmp`` and KUBECONFIG naming the local cluster."""
    return Engine(
        tmp / "state",
        passphrase=PASSPHRASE,
        cluster=True,
        extra_env={"KUBECONFIG": str(kubeconfig)},
    )


def deploy_stack(tmp: Path, kubeconfig: Path, stack: str, text: str) -> ClusterStack:
    """A stack of the repository's program, with stack file ``text``."""
    project = make_project(tmp / "project", stacks={stack: text})
    return ClusterStack(cluster_engine(tmp, kubeconfig), project, stack)


def deploy_program(
    tmp: Path, kubeconfig: Path, source: Path, stack: str, settings: dict[str, str]
) -> ClusterStack:
    """A stack of another Pulumi program (a copy of ``source``), with config ``settings``
    (keys in the project's namespace)."""
    project = copy_program(source, tmp / source.name)
    s = ClusterStack(cluster_engine(tmp, kubeconfig), project, stack)
    st = s.engine.stack(project, stack)
    for key, value in settings.items():
        st.set_config(key, auto.ConfigValue(value=value))
    return s


def api_client(kubeconfig: Path) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(kubeconfig))


def deployments_ready(api: client.ApiClient, namespace: str) -> list[Any] | None:
    """The namespace's Deployments once every one has readyReplicas == replicas (> 0)."""
    deps = client.AppsV1Api(api).list_namespaced_deployment(namespace).items
    if deps and all(
        (d.spec.replicas or 0) > 0 and (d.status.ready_replicas or 0) == d.spec.replicas
        for d in deps
    ):
        return deps
    return None


def objects_with_our_labels(api: client.ApiClient) -> list[str]:
    """Every object on the server, of every listable kind, labelled managed-by servestack."""
    dyn = dynamic.DynamicClient(api)
    found = []
    seen = set()
    for res in dyn.resources.search():
        if (
            isinstance(res, ResourceList)
            or not getattr(res, "verbs", None)
            or "list" not in res.verbs
            or "/" in res.name  # subresources
            or (res.group_version, res.kind) in seen
        ):
            continue
        seen.add((res.group_version, res.kind))
        try:
            items = res.get(label_selector=OURS).items
        except ApiException as e:
            if e.status in (404, 405):
                continue
            raise
        for item in items:
            ns = item.metadata.get("namespace")
            found.append(f"{res.kind} {ns + '/' if ns else ''}{item.metadata.name}")
    return sorted(found)


def wait_until_clean(api: client.ApiClient, timeout: float = 120) -> None:
    """Until a destroy has left no object labelled managed-by servestack (deletion of
    namespaced objects finishes after the engine returns)."""
    wait_for(
        "no object with servestack's labels after destroy",
        lambda: not objects_with_our_labels(api) or None,
        timeout=timeout,
        every=1,
    )
