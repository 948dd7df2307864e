"""The kill matrix of the fast path on the local cluster (tests/engine/test_kill_matrix.py
has it in render mode, with every kill point and both targets, and compares with a run on
default checkpoints).

Two stacks side by side, each in its own namespace with its own pool (its own kwok Nodes),
run `servestack up` at once; each process group (CLI, engine, language host, program,
provider) is SIGKILLed at one point:

- ``after-some``: k of the stack's N objects exist on the server, the rest not yet. The
  engine creates objects as fast as it can and most at once, so the point is held: an
  admission policy refuses one deployment's pods (:class:`Hold`), its Deployment never
  becomes Ready and what the program makes depend on it (Service, HorizontalPodAutoscaler,
  DestinationRule) is never created; the kill comes once everything else exists, and the
  hold is lifted before the recovery;
- ``before-final-write``: every object exists and the program is held before its exports,
  so the engine has written no checkpoint.

Then each stack file is changed (an image changed, a deployment removed) and the next
`servestack up` of both, again at once, recovers. Afterwards, for each stack: the state holds
exactly the program's resources for the changed config, and the objects servestack's field
manager wrote on the server are exactly those (no orphan of the killed run, none of the
removed deployment); each object has one server-side apply manager, servestack's (no 409
conflict); the Deployments are Ready; `pulumi preview --expect-no-changes` passes; no journal
and no engine lock is left.

Each stack's Nodes have names of their own (the pool's name): a Node of the same name left
by another stack would be adopted by server-side apply, and its pods would hold the GPUs
these pods wait for.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException

from bench.engine import stack_text
from bench.stacks import cluster_stack_raw
from servestack.config.models import StackConfig
from servestack.config.stackfile import set_value
from servestack.contract import labels
from servestack.manifests import node_pools
from servestack.manifests.render import render_stack
from servestack.ops import recovery
from servestack.ops.edits import delete_edits
from servestack.review.predict import apply_edits, parse_text
from servestack.testhook import DIR_ENV, ENV
from tests.cluster.live import (
    ClusterStack,
    api_client,
    deploy_stack,
    deployments_ready,
    wait_for,
)

pytestmark = pytest.mark.cluster

STACK = "dev"
N = 3
REMOVED = f"model-{N - 1:04d}"
POINTS = ("after-some", "before-final-write")
#: How long a kill point or a recovery may take on a loaded 2-core machine.
REACH_SECONDS = 300


@dataclass
class Case:
    point: str
    stack: ClusterStack
    namespace: str
    hooks: Path
    hold: Hold | None = None
    proc: subprocess.Popen[str] | None = None
    killed_with: list[str] = field(default_factory=list)

    @property
    def stack_file(self) -> Path:
        return self.stack.project / "stacks" / f"Pulumi.{STACK}.yaml"

    def config(self) -> StackConfig:
        return parse_text(self.stack_file.read_text(encoding="utf-8"), STACK)


def _text(namespace: str) -> str:
    raw = cluster_stack_raw(N)
    raw["environment"] = "development"
    raw["namespace"] = namespace
    raw["nodePools"][0]["name"] = namespace
    return stack_text(raw)


def _changed(text: str) -> str:
    text = set_value(text, "deployments.model-0000.model.image", "registry.example.com/m0:2.0.0")
    return apply_edits(text, delete_edits(text, REMOVED))


def _program(config: StackConfig) -> dict[str, dict[str, Any]]:
    """What the program applies for ``config``: ``"Kind ns/name"`` -> its apiVersion, kind,
    name and namespace (derived from the builders, not written here)."""
    manifests = [
        rec.manifest
        for key, rec in render_stack(config, STACK).resources.items()
        if key.type.startswith("kubernetes:")
    ]
    for pool in config.node_pools:
        manifests += node_pools.local_nodes(pool, config.cluster)
    out = {}
    for m in manifests:
        meta = m["metadata"]
        ns = meta.get("namespace")
        out[f"{m['kind']} {ns + '/' if ns else ''}{meta['name']}"] = {
            "apiVersion": m["apiVersion"],
            "kind": m["kind"],
            "name": meta["name"],
            "namespace": ns,
        }
    return out


def _ours(api: client.ApiClient, case: Case, kinds: list[Any]) -> dict[str, Any]:
    """The objects servestack's field manager wrote for this case's stack, of ``kinds`` (the
    program's kinds for the first config: the killed run can have made no other): in its
    namespace, the namespace itself and its pool's Nodes. Objects a controller derives
    (EndpointSlices, Endpoints, ReplicaSets, Pods) copy our labels but are its own writes."""
    nodes = f"{case.namespace}-"
    found = {}
    for res in kinds:
        kind = res.kind
        try:
            items = res.get(namespace=case.namespace).items if res.namespaced else res.get().items
        except ApiException as e:
            if e.status == 404:
                continue
            raise
        for item in items:
            name = item.metadata.name
            if not res.namespaced and name != case.namespace and not name.startswith(nodes):
                continue
            managed = item.metadata.get("managedFields") or []
            if labels.FIELD_MANAGER in {m["manager"] for m in managed}:
                ns = f"{case.namespace}/" if res.namespaced else ""
                found[f"{kind} {ns}{name}"] = managed
    return found


def _in_state(stack: ClusterStack) -> list[str]:
    out = []
    for r in stack.resources():
        kind = r["outputs"]["kind"]
        meta = r["outputs"]["metadata"]
        ns = meta.get("namespace")
        out.append(f"{kind} {ns + '/' if ns else ''}{meta['name']}")
    return sorted(out)


def _pod_labels(config: StackConfig, deployment: str) -> dict[str, str]:
    """The labels of ``deployment``'s pods (its Deployment's selector)."""
    for key, rec in render_stack(config, STACK).resources.items():
        if key.type == "kubernetes:apps/v1:Deployment" and key.name == deployment:
            found: dict[str, str] = rec.manifest["spec"]["selector"]["matchLabels"]
            return found
    raise AssertionError(f"no Deployment {deployment}")


@dataclass
class Hold:
    """A ValidatingAdmissionPolicy that refuses to create the pods of one deployment in one
    namespace: its Deployment never becomes Ready, so the engine never creates what depends
    on it (its Service, HorizontalPodAutoscaler, DestinationRule) and the update is held
    with some of its objects on the server and the rest not. ``default`` is matched too, for
    a server-side dry run that tells when the API server enforces the policy."""

    api: client.ApiClient
    name: str
    namespace: str
    pod_labels: dict[str, str]

    def _objects(self) -> list[tuple[str, dict[str, Any]]]:
        group = "admissionregistration.k8s.io/v1"
        namespaces = {"key": "kubernetes.io/metadata.name", "operator": "In"}
        policy = {
            "apiVersion": group,
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": self.name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["pods"],
                        }
                    ],
                    "namespaceSelector": {
                        "matchExpressions": [{**namespaces, "values": [self.namespace, "default"]}]
                    },
                    "objectSelector": {"matchLabels": self.pod_labels},
                },
                "validations": [{"expression": "false", "message": "held by the kill matrix"}],
            },
        }
        binding = {
            "apiVersion": group,
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": self.name},
            "spec": {"policyName": self.name, "validationActions": ["Deny"]},
        }
        return [
            ("ValidatingAdmissionPolicy", policy),
            ("ValidatingAdmissionPolicyBinding", binding),
        ]

    def _held(self) -> bool:
        pod = {
            "metadata": {"generateName": "kill-probe-", "labels": self.pod_labels},
            "spec": {"containers": [{"name": "probe", "image": "registry.example.com/probe:1"}]},
        }
        try:
            client.CoreV1Api(self.api).create_namespaced_pod("default", pod, dry_run="All")
        except ApiException as e:
            if "held by the kill matrix" in str(e.body):
                return True
            raise
        return False

    def start(self) -> None:
        dyn = dynamic.DynamicClient(self.api)
        for kind, body in self._objects():
            res = dyn.resources.get(api_version="admissionregistration.k8s.io/v1", kind=kind)
            res.create(body=body)
        wait_for("the hold enforced", lambda: self._held() or None, REACH_SECONDS)

    def release(self) -> None:
        """Remove the policy and have the deployment's ReplicaSets try again at once (they
        back off after refused creates)."""
        dyn = dynamic.DynamicClient(self.api)
        for kind, body in reversed(self._objects()):
            res = dyn.resources.get(api_version="admissionregistration.k8s.io/v1", kind=kind)
            try:
                res.delete(name=body["metadata"]["name"])
            except ApiException as e:
                if e.status != 404:
                    raise
        wait_for("the hold lifted", lambda: not self._held() or None, REACH_SECONDS)
        apps = client.AppsV1Api(self.api)
        selector = ",".join(f"{k}={v}" for k, v in self.pod_labels.items())
        for rs in apps.list_namespaced_replica_set(self.namespace, label_selector=selector).items:
            apps.delete_namespaced_replica_set(rs.metadata.name, self.namespace)


def _start(case: Case) -> None:
    env = {**case.stack.servestack_env(), DIR_ENV: str(case.hooks)}
    if case.point == "before-final-write":
        env[ENV] = "created"
    case.proc = subprocess.Popen(
        case.stack.servestack_command("up", STACK, "--yes"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _kill_all(api: client.ApiClient, cases: list[Case], kinds: list[Any]) -> None:
    """Kill each case's process group once it reached its point."""
    deadline = time.monotonic() + REACH_SECONDS
    while any(not c.killed_with for c in cases):
        for c in cases:
            if c.killed_with:
                continue
            assert c.proc is not None
            expected = _program(c.config())
            if c.proc.poll() is not None:
                out = c.proc.communicate()[0]
                raise AssertionError(f"{c.point}: servestack up ended first:\n{out}")
            if c.point == "after-some":
                # Every object but the held deployment's, and its Deployment.
                there = set(_ours(api, c, kinds))
                held = f"Deployment {c.namespace}/{REMOVED}"
                reached = held in there and {o for o in expected if REMOVED not in o} <= there
            else:
                reached = bool(list(c.hooks.glob("created.*.ready")))
            if reached:
                os.killpg(c.proc.pid, signal.SIGKILL)
                c.proc.communicate(timeout=120)
                c.killed_with = sorted(_ours(api, c, kinds))
        assert time.monotonic() < deadline, [c.point for c in cases if not c.killed_with]
        time.sleep(0.1)


def _teardown(api: client.ApiClient, made: list[Case]) -> None:
    """Delete the stacks' namespaces, then their Nodes, on the server (the state is thrown
    away with the test's directory): whatever a failed case left (a lock, a pending
    operation) cannot keep its objects, and its pods, for the next test. Nodes last: kwok
    finishes the deletion of the pods bound to them."""
    try:
        for c in made:
            if c.proc is not None and c.proc.poll() is None:
                os.killpg(c.proc.pid, signal.SIGKILL)
                c.proc.communicate(timeout=120)
            if c.hold is not None:
                c.hold.release()
    finally:
        _delete_on_server(api, made)


def _delete_on_server(api: client.ApiClient, made: list[Case]) -> None:
    core = client.CoreV1Api(api)

    def namespaces() -> list[str]:
        spaces = {n.metadata.name for n in core.list_namespace().items}
        return [c.namespace for c in made if c.namespace in spaces]

    def nodes() -> list[str]:
        ours = tuple(f"{c.namespace}-" for c in made)
        return [n.metadata.name for n in core.list_node().items if n.metadata.name.startswith(ours)]

    for ns in namespaces():
        core.delete_namespace(ns)
    wait_for("the stacks' namespaces deleted", lambda: not namespaces() or None, REACH_SECONDS)
    for name in nodes():
        core.delete_node(name)
    wait_for("the stacks' Nodes deleted", lambda: not nodes() or None, REACH_SECONDS)


@pytest.fixture
def cases(local_cluster: Path, tmp_path: Path) -> Iterator[list[Case]]:
    tag = uuid.uuid4().hex[:6]
    made = []
    for i, point in enumerate(POINTS):
        namespace = f"kill-{tag}-{i}"  # the pool's name too: its Nodes are <namespace>-<i>
        stack = deploy_stack(tmp_path / point, local_cluster, STACK, _text(namespace))
        case = Case(point, stack, namespace, tmp_path / point / "hooks")
        if point == "after-some":
            labels_ = _pod_labels(case.config(), REMOVED)
            case.hold = Hold(api_client(local_cluster), f"kill-hold-{tag}", namespace, labels_)
        made.append(case)
    yield made
    _teardown(api_client(local_cluster), made)


def test_killed_ups_are_recovered_on_the_cluster(cases: list[Case], local_cluster: Path) -> None:
    api = api_client(local_cluster)
    first = _program(cases[0].config())
    dyn = dynamic.DynamicClient(api)
    kinds = [
        dyn.resources.get(api_version=api_version, kind=kind)
        for api_version, kind in sorted({(v["apiVersion"], v["kind"]) for v in first.values()})
    ]
    for c in cases:
        if c.hold is not None:
            c.hold.start()
        _start(c)
    _kill_all(api, cases, kinds)
    some, every = cases
    # k of N: what depends on the held Deployment was never created.
    assert f"Service {some.namespace}/{REMOVED}" not in some.killed_with, some.killed_with
    assert len(some.killed_with) < len(first), some.killed_with
    assert every.killed_with == sorted(_program(every.config())), every.killed_with
    assert some.hold is not None
    some.hold.release()
    for c in cases:
        # The kill came before the engine's one checkpoint write: the objects the killed
        # run made are outside the state.
        assert _in_state(c.stack) == [], c.point
        assert recovery.read_journal(c.stack.project / ".servestack", STACK) is not None
        c.stack_file.write_text(_changed(c.stack_file.read_text(encoding="utf-8")))
    with ThreadPoolExecutor(len(cases)) as pool:
        runs = list(
            pool.map(lambda c: c.stack.servestack("up", STACK, "--yes", timeout=900), cases)
        )
    for c, done in zip(cases, runs, strict=True):
        out = done.stdout + done.stderr
        assert done.returncode == 0, f"{c.point}:\n{out}"
        assert "was interrupted" in out, out
        assert "applying the interrupted change's config once more first" in out, out
        # \b: a port such as 127.0.0.1:40903 in the recovery's log is not an HTTP status.
        assert not re.search(r"\b409\b", out) and "conflict" not in out.lower(), out
        # The progress line's total (from the builders) is what the engine finished.
        assert re.search(r"\b(\d+)/\1 resources, \d+ deleted, ", out), out
        want = sorted(_program(c.config()))
        assert not [o for o in want if REMOVED in o]
        assert _in_state(c.stack) == want, f"{c.point}: the state is not the program's set"
        live = _ours(api, c, kinds)
        assert sorted(live) == want, f"{c.point}: orphaned or missing objects on the server"
        appliers = {
            o: {m["manager"] for m in managed if m.get("operation") == "Apply"}
            for o, managed in live.items()
        }
        assert all(m == {labels.FIELD_MANAGER} for m in appliers.values()), appliers
        assert deployments_ready(api, c.namespace), f"{c.point}: Deployments not Ready"
        assert recovery.read_journal(c.stack.project / ".servestack", STACK) is None
        backend = recovery.diy_backend_dir(c.stack.engine.env())
        assert backend is not None
        assert recovery.engine_lock_files(backend, "servestack", STACK) == []
        proc = c.stack.engine.cli(
            c.stack.project, "preview", "--expect-no-changes", "--stack", STACK, check=False
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
