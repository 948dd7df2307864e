"""The kill matrix of the fast path on the local cluster (tests/engine/test_kill_matrix.py
has it in render mode, with every kill point).

`servestack up` of a fresh stack is SIGKILLed as a process group (CLI, language host,
program, provider) after some of its objects exist on the server, or after all of them
with the program held before its exports (so the engine has written no checkpoint). The
next `servestack up` recovers, with the same stack file or a changed one (an image changed,
a deployment removed). Afterwards the live objects labelled by servestack are exactly the
state's Kubernetes resources, each object has one server-side apply manager (servestack's:
no second manager from the re-created objects, so no 409 conflict), and `pulumi preview
--expect-no-changes` passes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, dynamic

from bench.engine import stack_text
from bench.stacks import cluster_stack_raw
from servestack.config.stackfile import set_value
from servestack.contract import labels
from servestack.ops import recovery
from servestack.ops.edits import delete_edits
from servestack.review.predict import apply_edits
from servestack.testhook import DIR_ENV, ENV
from tests.cluster.live import (
    ClusterStack,
    api_client,
    deploy_stack,
    objects_with_our_labels,
    wait_for,
    wait_until_clean,
)

pytestmark = pytest.mark.cluster

STACK = "dev"
N = 3
REMOVED = f"model-{N - 1:04d}"


def _text(namespace: str) -> str:
    raw = cluster_stack_raw(N)
    raw["environment"] = "development"
    raw["namespace"] = namespace
    return stack_text(raw)


def _changed(text: str) -> str:
    text = set_value(text, "deployments.model-0000.model.image", "registry.example.com/m0:2.0.0")
    return apply_edits(text, delete_edits(text, REMOVED))


@pytest.fixture
def fresh(local_cluster: Path, tmp_path: Path) -> Iterator[ClusterStack]:
    s = deploy_stack(tmp_path, local_cluster, STACK, _text(f"kill-{uuid.uuid4().hex[:8]}"))
    yield s
    s.destroy()
    wait_until_clean(api_client(local_cluster))


def _namespace(stack: ClusterStack) -> str:
    from servestack.config.validation import load_stack_config

    return load_stack_config(stack.project / "stacks" / f"Pulumi.{STACK}.yaml").namespace


def _live(api: client.ApiClient, stack: ClusterStack) -> list[str]:
    """The stack's objects on the server (its namespace, and the namespace itself), in the
    words of objects_with_our_labels; the pool's nodes are kwok's as much as ours."""
    ns = _namespace(stack)
    return [
        o
        for o in objects_with_our_labels(api)
        if o == f"Namespace {ns}" or o.split(" ", 1)[1].startswith(f"{ns}/")
    ]


def _in_state(stack: ClusterStack) -> list[str]:
    out = []
    for r in stack.resources():
        kind = r["outputs"]["kind"]
        if kind == "Node":  # the pool's kwok nodes: not in the namespace
            continue
        meta = r["outputs"]["metadata"]
        ns = meta.get("namespace")
        out.append(f"{kind} {ns + '/' if ns else ''}{meta['name']}")
    return sorted(out)


def _appliers(api: client.ApiClient, stack: ClusterStack) -> dict[str, set[str]]:
    """Each state object's server-side apply managers."""
    dyn = dynamic.DynamicClient(api)
    out = {}
    for r in stack.resources():
        o = r["outputs"]
        res = dyn.resources.get(api_version=o["apiVersion"], kind=o["kind"])
        meta = o["metadata"]
        live = res.get(name=meta["name"], namespace=meta.get("namespace"))
        managers = {
            m["manager"]
            for m in live.metadata.get("managedFields") or []
            if m.get("operation") == "Apply"
        }
        out[f"{o['kind']} {meta['name']}"] = managers
    return out


def _kill(stack: ClusterStack, point: str, hooks: Path, expected: int) -> None:
    env = {**stack.servestack_env(), DIR_ENV: str(hooks)}
    if point == "before-final-write":
        env[ENV] = "created"
    proc = subprocess.Popen(
        stack.servestack_command("up", STACK, "--yes"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    api = api_client(Path(stack.engine.extra_env["KUBECONFIG"]))
    want = max(1, expected // 2) if point == "after-some" else expected

    def reached() -> bool | None:
        if proc.poll() is not None:
            raise AssertionError(f"servestack up ended first:\n{proc.communicate()[0]}")
        return len(_live(api, stack)) >= want or None

    if point == "before-final-write":
        wait_for(
            "every resource created",
            lambda: reached() and list(hooks.glob("created.*.ready")),
            timeout=300,
            every=0.2,
        )
    else:
        wait_for(f"{want} of {expected} objects on the server", reached, timeout=300, every=0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=120)


def _expected(stack: ClusterStack) -> int:
    from servestack.config.validation import load_stack_config
    from servestack.manifests.render import render_stack

    config = load_stack_config(stack.project / "stacks" / f"Pulumi.{STACK}.yaml")
    rendered = render_stack(config, STACK)
    return sum(
        1 for k in rendered.resources if k.type.startswith("kubernetes:") and ":Node" not in k.type
    )


@pytest.mark.parametrize("target", ["same", "changed"])
@pytest.mark.parametrize("point", ["after-some", "before-final-write"])
def test_a_killed_up_is_recovered_on_the_cluster(
    point: str, target: str, fresh: ClusterStack, tmp_path: Path
) -> None:
    api = api_client(Path(fresh.engine.extra_env["KUBECONFIG"]))
    _kill(fresh, point, tmp_path / "hooks", _expected(fresh))
    assert recovery.read_journal(fresh.project / ".servestack", STACK) is not None
    stack_file = fresh.project / "stacks" / f"Pulumi.{STACK}.yaml"
    if target == "changed":
        stack_file.write_text(_changed(stack_file.read_text()))
    done = fresh.servestack("up", STACK, "--yes", timeout=900)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "was interrupted" in out
    assert "409" not in out and "conflict" not in out.lower(), out
    live = _live(api, fresh)
    assert live == _in_state(fresh), "live objects and the state disagree"
    assert live  # the stack is up
    if target == "changed":
        assert not [o for o in live if REMOVED in o], live
    managers: dict[str, Any] = _appliers(api, fresh)
    assert all(m == {labels.FIELD_MANAGER} for m in managers.values()), managers
    proc = fresh.engine.cli(
        fresh.project, "preview", "--expect-no-changes", "--stack", STACK, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
