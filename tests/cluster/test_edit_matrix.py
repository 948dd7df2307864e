"""Every edit of the edit matrix (tests/engine/matrix.py), applied with `pulumi up` to its
stack on the local cluster (provider `local`), and what the API server then shows compared
with what the field-effect table says of the same edit (``servestack.review.diff``):

- `replace`: an object stands in for another of the same component and kind (a new UID
  under the same URN, or a blue-green Deployment keyed by the new version);
- `restart`: no replacement, and a Deployment has a new pod template (its newest
  ReplicaSet's pod-template hash changed);
- `in-place`: no replacement, no new pod template, no pod replaced (the pods after are a
  subset or a superset of those before), and some object changed; where the stack holds
  none of the kinds the table says the edit reaches, nothing changes ("no change");
- `no change`: nothing deployed reads the field (replicas under an autoscaler): no object
  is new, gone, replaced or changed in content;
- `forbidden`: `pulumi up` refuses, and no object of the stack is new, gone, or written by
  the engine (its field managers' entries are unchanged; controllers may still write).

An object deleted or created with nothing standing in for it (a stop removes the
autoscaler) counts under any class, if the table names its kind for the edit.

The edits of a stack are applied one after another, each to the stack the previous one
left (the table's verdict is taken against that same stack file), in the matrix's order with
the stops (`active: false`) last. Objects are compared by content (labels, annotations and
every field but `status`), never by resourceVersion: controllers write status all the time.
The snapshot, the classes and "the engine wrote nothing" are :mod:`harness.live`'s, which
the demo and test_edits use too.

After every `up`, each HTTPRoute (a deployment's `route`) is on the server as the builders
make it from the stack file: its backends and their weights, hostnames, Gateway and path
(:func:`routes_as_built`); after a route or canary weight edit it is no longer the one
before. The local cluster has no Gateway controller, so route status is not checked.

``SERVESTACK_MATRIX_EDITS=sharedMemory,priorityClassName`` applies only the edits whose id
contains one of those words (a new row checked live without the whole matrix); unset, all.
A PriorityClass an edit names is created for the test (no model may name a missing one:
the API server refuses its pods). So are the PersistentVolumeClaims the stack file and its
edits name (``model.storage.pvc``: the scheduler holds a pod whose claim is missing or
unbound), each bound to a hostPath PersistentVolume of its own: they are made as soon as the
stack's first `up` has made its namespace (kwok fakes the pods: nothing is mounted).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from pulumi import automation as auto

from harness.live import engine_writes, in_state, kinds_reached, observed, settled, snapshot
from servestack.config.stackfile import set_value
from servestack.config.validation import parse_stack, read_stack_text
from servestack.contract.effects import Effect
from servestack.manifests import routing
from servestack.program.guards import refusal_problems
from tests.cluster.live import (
    STACK_NODES,
    api_client,
    deploy_stack,
    local_stack_text,
    objects_with_our_labels,
    wait_for,
    wait_until_clean,
)
from tests.engine.matrix import EDITS, Edit, as_reviewed

pytestmark = pytest.mark.cluster


def table_says(text: str, edit: Edit, kinds: set[str]) -> tuple[str, set[str], str]:
    """The field-effect table's class for the edit (:func:`servestack.review.predict`), the
    kinds it says the edit reaches, and the edited text. `in-place` on a stack holding none
    of those kinds means no object changes: "no change". In production a replacement goes
    with the allowReplacements entry naming it (:func:`tests.engine.matrix.as_reviewed`)."""
    found = as_reviewed(text, edit)
    reached = kinds_reached(found)
    effect = found.effect
    if effect is Effect.IN_PLACE and not reached & kinds:
        effect = Effect.NONE
    return effect.value, reached, found.text


def ordered(stack: str) -> list[Edit]:
    words = [w for w in os.environ.get("SERVESTACK_MATRIX_EDITS", "").split(",") if w]
    mine = [e for e in EDITS if e.stack == stack and (not words or any(w in e.id for w in words))]
    return sorted(mine, key=lambda e: e.path.endswith(".active"))


@contextlib.contextmanager
def priority_classes(api: client.ApiClient, edits: list[Edit]) -> Iterator[None]:
    """The PriorityClasses the edits name, there for the test's duration."""
    names = sorted({str(e.value) for e in edits if e.path.endswith(".priorityClassName")})
    scheduling = client.SchedulingV1Api(api)
    for name in names:
        body = client.V1PriorityClass(metadata=client.V1ObjectMeta(name=name), value=1000)
        scheduling.create_priority_class(body)
    try:
        yield
    finally:
        for name in names:
            scheduling.delete_priority_class(name)


def claim_names(text: str, edits: list[Edit]) -> list[str]:
    """The PersistentVolumeClaims the stack file's models and the edits name."""
    config = parse_stack(read_stack_text(text))
    names = {d.model.storage.pvc for d in config.deployments if d.model.storage is not None}
    names |= {str(e.value) for e in edits if e.path.endswith(".model.storage.pvc")}
    return sorted(n for n in names if n is not None)


@contextlib.contextmanager
def claims(api: client.ApiClient, namespace: str, names: list[str]) -> Iterator[Callable[[], None]]:
    """The claims ``names``, each bound to a PersistentVolume (hostPath, no storage class),
    made by a thread as soon as the namespace exists (the stack's first `up` makes it: the
    claims must be there before the scheduler can place the pods). Leaving stops the
    thread, then deletes the claims and the volumes (before the stack's `destroy`). Yields
    the check that they were made and are bound (once the first `up` is done)."""
    if not names:
        yield lambda: None
        return
    core = client.CoreV1Api(api)
    volumes = {name: f"{namespace}-{name}" for name in names}
    failed: list[BaseException] = []
    stop = threading.Event()

    def make() -> None:
        try:
            while not stop.is_set():
                if any(n.metadata.name == namespace for n in core.list_namespace().items):
                    break
                time.sleep(0.2)
            else:
                return
            for name, volume in volumes.items():
                # Bound both ways (claimRef, volumeName): the binder only confirms it.
                core.create_persistent_volume(
                    client.V1PersistentVolume(
                        metadata=client.V1ObjectMeta(name=volume),
                        spec=client.V1PersistentVolumeSpec(
                            capacity={"storage": "1Gi"},
                            access_modes=["ReadOnlyMany"],
                            storage_class_name="",
                            persistent_volume_reclaim_policy="Retain",
                            host_path=client.V1HostPathVolumeSource(path=f"/weights/{name}"),
                            claim_ref=client.V1ObjectReference(
                                kind="PersistentVolumeClaim", namespace=namespace, name=name
                            ),
                        ),
                    )
                )
                core.create_namespaced_persistent_volume_claim(
                    namespace,
                    client.V1PersistentVolumeClaim(
                        metadata=client.V1ObjectMeta(name=name),
                        spec=client.V1PersistentVolumeClaimSpec(
                            access_modes=["ReadOnlyMany"],
                            storage_class_name="",
                            volume_name=volume,
                            resources=client.V1VolumeResourceRequirements(
                                requests={"storage": "1Gi"}
                            ),
                        ),
                    ),
                )
        except BaseException as exc:  # reported by the test, not lost in the thread
            failed.append(exc)

    def made() -> None:
        thread.join(timeout=60)
        assert not failed, failed
        phases = {
            c: core.read_namespaced_persistent_volume_claim(c, namespace).status.phase
            for c in names
        }
        assert set(phases.values()) == {"Bound"}, phases

    thread = threading.Thread(target=make, daemon=True)
    thread.start()
    try:
        yield made
    finally:
        stop.set()
        thread.join(timeout=5)
        for name in names:
            # Gone at once, without the protection finalizer's wait for the pods: the
            # namespace's deletion then waits on none of them (measured: 5.5 s less).
            with contextlib.suppress(client.ApiException):
                patch = {"metadata": {"finalizers": None}}
                core.patch_namespaced_persistent_volume_claim(name, namespace, patch)
                core.delete_namespaced_persistent_volume_claim(name, namespace)
        for volume in volumes.values():
            with contextlib.suppress(client.ApiException):
                core.delete_persistent_volume(volume)


#: Edits that change an HTTPRoute of the matrix's stacks (its fields, the canary weight).
ROUTE_EDITS = re.compile(r"\.(route\.[a-zA-Z.]+|strategy\.weight)$")


def routes_as_built(api: client.ApiClient, text: str) -> list[str]:
    """Where the HTTPRoutes on the server differ from those the builders make of the stack
    file (the backends with their weights, hostnames, Gateway, path): empty when each was
    accepted as built. The local cluster has no Gateway controller: nothing reports on
    them, so their status is not looked at."""
    config = parse_stack(read_stack_text(text))
    custom = client.CustomObjectsApi(api)
    wrong = []
    for dep in config.deployments:
        if dep.route is None:
            continue
        built = routing.http_route(dep, dep.route)
        name = built["metadata"]["name"]
        live = custom.get_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", dep.namespace, "httproutes", name
        )
        seen, want = (_route_view(r["spec"]) for r in (live, built))
        if seen != want:
            wrong.append(f"HTTPRoute {name}: server {seen}, built {want}")
    return wrong


def _route_view(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "parents": [(p["name"], p.get("namespace")) for p in spec["parentRefs"]],
        "hostnames": spec.get("hostnames", []),
        "rules": [
            (
                [m["path"]["value"] for m in rule["matches"]],
                [(b["name"], b["port"], b["weight"]) for b in rule["backendRefs"]],
            )
            for rule in spec["rules"]
        ],
    }


STACKS = sorted({e.stack for e in EDITS})
#: Staging's T4 nodes are full with its 3 replicas: the matrix scales resnet-vision to 3
#: and rolls both models (a surge pod each), so it needs 3 more (and maxNodes to allow them).
NODES = {**STACK_NODES, "staging": {"t4": 6}, "existing": {}}
#: The existing cluster's GPU nodes, stood for by a pool of the local cluster (its node
#: carries the GPU operator's label and taint, then servestack's: a new node).
EXISTING_NODES = [{"name": "h100", "gpu": {"type": "H100", "count": 8}, "minNodes": 1}]


@pytest.fixture(scope="module")
def api(local_cluster: Path) -> Iterator[client.ApiClient]:
    api = api_client(local_cluster)
    assert objects_with_our_labels(api) == [], "the cluster is not clean before the test"
    yield api


@pytest.mark.parametrize("stack", STACKS)
def test_every_matrix_edit_does_on_the_server_what_the_table_says(
    stack: str, api: client.ApiClient, local_cluster: Path, tmp_path: Path
) -> None:
    text = local_stack_text(stack, NODES[stack])
    if stack == "staging":
        text = set_value(text, "nodePools.t4.maxNodes", NODES[stack]["t4"])
    edits = ordered(stack)
    if not edits:
        pytest.skip(f"SERVESTACK_MATRIX_EDITS selects no edit of {stack}")
    if stack == "existing":
        text = set_value(text, "nodePools", EXISTING_NODES)
    s = deploy_stack(tmp_path, local_cluster, stack, text)
    stack_file = s.project / "stacks" / f"Pulumi.{stack}.yaml"
    rows: list[tuple[str, str, str]] = []
    cleanup = contextlib.ExitStack()
    try:
        cleanup.enter_context(priority_classes(api, edits))
        namespace = parse_stack(read_stack_text(text)).namespace
        made = cleanup.enter_context(claims(api, namespace, claim_names(text, edits)))
        s.up()
        made()
        wait_for(f"{stack} settled", lambda: settled(api, namespace), timeout=180)
        assert routes_as_built(api, text) == []
        for edit in edits:
            old_text = text
            before = snapshot(api, in_state(api, s.resources()))
            expected, reached, edited = table_says(text, edit, {b.kind for b in before.values()})
            stack_file.write_text(edited, encoding="utf-8")
            try:
                s.up()
            except auto.CommandError as exc:
                refused = str(exc)
            else:
                refused = ""
            if refused:
                stack_file.write_text(text, encoding="utf-8")  # nothing applied: keep the old
                touched = engine_writes(before, snapshot(api, in_state(api, s.resources())))
                if expected != "forbidden":
                    why = refusal_problems(refused) or [refused[-400:]]
                    seen = "up failed: " + " | ".join(why)
                else:
                    seen = (
                        "forbidden" if not touched else f"refused, yet the engine wrote {touched}"
                    )
            else:
                # An allowance is single-use: the next edit starts from a file without it.
                text = set_value(edited, "allowReplacements", None)
                ns = parse_stack(read_stack_text(text)).namespace
                wait_for(f"{stack} settled", lambda ns=ns: settled(api, ns), timeout=180)
                after = snapshot(api, in_state(api, s.resources()))
                seen = str(observed(before, after, reached))
                # An HTTPRoute edit (the canary weight's too) is on the server as built.
                routes = routes_as_built(api, text)
                if ROUTE_EDITS.search(edit.path) and not routes_as_built(api, old_text):
                    routes.append("the HTTPRoute on the server is still the one before the edit")
                seen += f"; {routes}" if routes else ""
            rows.append((edit.id, expected, seen))
            print(f"{edit.id}: table {expected}, server {seen}")
        wrong = [r for r in rows if r[1] != r[2]]
        assert not wrong, "\n".join(f"{i}: table {e}, server {o}" for i, e, o in wrong)
        if len(edits) == len([e for e in EDITS if e.stack == stack]):
            assert {r[1] for r in rows} >= {"in-place"}, rows
    finally:
        try:
            cleanup.close()
        finally:
            s.destroy()
    wait_until_clean(api)
