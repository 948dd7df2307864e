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
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, dynamic
from pulumi import automation as auto

from servestack.config.stackfile import set_value
from servestack.config.validation import parse_stack, read_stack_text
from servestack.contract.effects import Effect
from servestack.ops.live import WorkloadState
from servestack.review.predict import predict
from tests.cluster.live import (
    STACK_NODES,
    ClusterStack,
    api_client,
    deploy_stack,
    live_object,
    local_stack_text,
    objects_with_our_labels,
    wait_for,
    wait_until_clean,
)
from tests.engine.matrix import EDITS, Edit

pytestmark = pytest.mark.cluster

#: Fields that are not the object's content: what the server and controllers keep.
NOT_CONTENT = {"status", "metadata"}


@dataclass(frozen=True)
class Live:
    kind: str
    #: The component the object belongs to and its kind: where a new object stands in for
    #: an old one (a blue-green Deployment is keyed by version, so its URN changes too).
    slot: tuple[str, str]
    uid: str
    content: str
    #: What the engine wrote: its field managers' entries (a controller's writes are not).
    ours: str
    #: Deployments: the newest ReplicaSet's pod-template hash, and the pods' names.
    template_hash: str | None = None
    pods: frozenset[str] = frozenset()


def _content(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    kept = {k: v for k, v in obj.items() if k not in NOT_CONTENT}
    kept["labels"] = meta.get("labels") or {}
    kept["annotations"] = meta.get("annotations") or {}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()


def _ours(obj: dict[str, Any]) -> str:
    entries = [
        m
        for m in obj["metadata"].get("managedFields") or []
        if str(m.get("manager", "")).startswith("pulumi")
    ]
    return hashlib.sha256(json.dumps(entries, sort_keys=True, default=str).encode()).hexdigest()


def snapshot(s: ClusterStack, api: client.ApiClient) -> dict[str, Live]:
    """URN -> the live object, for every Kubernetes resource in the stack's state."""
    dyn = dynamic.DynamicClient(api)
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    out = {}
    for r in s.resources():
        obj = live_object(dyn, r["outputs"])
        if obj is None:
            continue
        d = obj.to_dict()
        slot = (r.get("parent", ""), d["kind"])
        live = Live(d["kind"], slot, obj.metadata.uid, _content(d), _ours(d))
        if d["kind"] == "Deployment":
            ns, uid = obj.metadata.namespace, obj.metadata.uid
            sets = [
                rs
                for rs in apps.list_namespaced_replica_set(ns).items
                if any(o.uid == uid for o in rs.metadata.owner_references or [])
            ]
            newest = max(
                sets,
                key=lambda rs: int(rs.metadata.annotations["deployment.kubernetes.io/revision"]),
            )
            hashes = {rs.metadata.labels["pod-template-hash"] for rs in sets}
            pods = frozenset(
                p.metadata.name
                for p in core.list_namespaced_pod(ns).items
                if p.metadata.labels.get("pod-template-hash") in hashes
            )
            live = replace(
                live, template_hash=newest.metadata.labels["pod-template-hash"], pods=pods
            )
        out[r["urn"]] = live
    return out


def settled(api: client.ApiClient, namespace: str) -> bool | None:
    """Every Deployment of the namespace rolled out (``servestack.ops.live``, as `kubectl
    rollout status` decides), and no pod terminating."""
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    deps = apps.list_namespaced_deployment(namespace).items
    if not all(WorkloadState.counts(d).rolled_out for d in deps):
        return None
    pods = core.list_namespaced_pod(namespace).items
    return not any(p.metadata.deletion_timestamp for p in pods) or None


def observed(before: dict[str, Live], after: dict[str, Live], reached: set[str]) -> str:
    """The effect class the live objects show. An object gone or new with nothing standing
    in for it (stop removes the autoscaler) is no replacement, but must be of a kind the
    table says the edit reaches (``reached``)."""
    slots: dict[tuple[str, str], tuple[set[str], set[str]]] = {}
    for side, objs in enumerate((before, after)):
        for live in objs.values():
            slots.setdefault(live.slot, (set(), set()))[side].add(live.uid)
    if any(b - a and a - b for b, a in slots.values()):
        return "replace"
    came_went = {
        live.kind for u, live in [*before.items(), *after.items()] if (u in before) != (u in after)
    }
    if came_went - reached:
        return f"created or deleted {sorted(came_went - reached)}, not of {sorted(reached)}"
    kept = [u for u in before if u in after]
    if any(after[u].template_hash != before[u].template_hash for u in kept):
        return "restart"
    for u in kept:
        a, b = after[u], before[u]
        if not (a.pods <= b.pods or b.pods <= a.pods):
            return f"pods replaced without a new pod template ({u})"
    if came_went or any(after[u].content != before[u].content for u in kept):
        return "in-place"
    return Effect.NONE.value


def table_says(text: str, edit: Edit, kinds: set[str]) -> tuple[str, set[str], str]:
    """The field-effect table's class for the edit (:func:`servestack.review.predict`), the
    kinds it says the edit reaches, and the edited text. `in-place` on a stack holding none
    of those kinds means no object changes: "no change"."""
    found = predict(text, {edit.path: edit.value})
    reached = {r.split("/")[0] for c in found.diff.changes for r in c.resources}
    effect = found.effect
    if effect is Effect.IN_PLACE and not reached & kinds:
        effect = Effect.NONE
    return effect.value, reached, found.text


def ordered(stack: str) -> list[Edit]:
    mine = [e for e in EDITS if e.stack == stack]
    return sorted(mine, key=lambda e: e.path.endswith(".active"))


STACKS = sorted({e.stack for e in EDITS})
#: Staging's T4 nodes are full with its 3 replicas: the matrix scales resnet-vision to 3
#: and rolls both models (a surge pod each), so it needs 3 more (and maxNodes to allow them).
NODES = {**STACK_NODES, "staging": {"t4": 6}}


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
    s = deploy_stack(tmp_path, local_cluster, stack, text)
    stack_file = s.project / "stacks" / f"Pulumi.{stack}.yaml"
    rows: list[tuple[str, str, str]] = []
    try:
        s.up()
        namespace = parse_stack(read_stack_text(text)).namespace
        wait_for(f"{stack} settled", lambda: settled(api, namespace), timeout=180)
        for edit in ordered(stack):
            before = snapshot(s, api)
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
                after = snapshot(s, api)
                touched = sorted(
                    u
                    for u in {*before, *after}
                    if u not in before
                    or u not in after
                    or after[u].ours != before[u].ours
                    or after[u].uid != before[u].uid
                )
                if expected != "forbidden":
                    seen = f"up failed: {refused[-400:]}"
                else:
                    seen = (
                        "forbidden" if not touched else f"refused, yet the engine wrote {touched}"
                    )
            else:
                text = edited
                ns = parse_stack(read_stack_text(text)).namespace
                wait_for(f"{stack} settled", lambda ns=ns: settled(api, ns), timeout=180)
                seen = observed(before, snapshot(s, api), reached)
            rows.append((edit.id, expected, seen))
            print(f"{edit.id}: table {expected}, server {seen}")
        wrong = [r for r in rows if r[1] != r[2]]
        assert not wrong, "\n".join(f"{i}: table {e}, server {o}" for i, e, o in wrong)
        assert {r[1] for r in rows} >= {"in-place"}, rows
    finally:
        s.destroy()
    wait_until_clean(api)
