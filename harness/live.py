"""What the server shows, in one place for the demo and the cluster tier: a snapshot of live
objects, the effect class two snapshots show, and what "refused: the engine wrote nothing"
means.

Objects are compared by content (labels, annotations and every field but `status`), never by
resourceVersion: controllers write status, and may write more, all the time. A refused edit
is one after which no object is new or gone and no field manager's entry of the engine
changed; a CI run under load saw a controller write during a refused `pulumi up`.

A snapshot is taken of a list of objects, listed one of two ways: the Kubernetes resources
in a stack's state (keyed by URN, :func:`in_state`) or the engine's objects of a namespace
that carry a label (keyed by ``Kind/name``, :func:`labelled`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple

from servestack.contract import labels
from servestack.contract.effects import Effect
from servestack.ops.live import WorkloadState

#: Fields that are not the object's content: what the server and controllers keep.
NOT_CONTENT = {"status", "metadata"}
#: The engine's field managers (the Kubernetes provider's): what it wrote, not a controller.
#: servestack names its own (`pulumi.com/patchFieldManager`); the provider's own names
#: (`pulumi-kubernetes-<random>`) are those of objects created without it.
ENGINE_MANAGERS = (labels.FIELD_MANAGER, "pulumi")
if TYPE_CHECKING:
    # The client is imported where it is used: the demo's render part never loads it.
    from kubernetes.client import ApiClient

    from servestack.review.predict import Prediction

REVISION = "deployment.kubernetes.io/revision"
TEMPLATE_HASH = "pod-template-hash"


@dataclass(frozen=True)
class Live:
    """One live object, as far as an edit's effect is concerned."""

    kind: str
    name: str
    #: The component the object belongs to and its kind: where a new object stands in for
    #: an old one (a blue-green Deployment is keyed by version, so its name changes too).
    slot: tuple[str, str]
    uid: str
    content: str
    #: What the engine wrote: its field managers' entries (a controller's writes are not).
    ours: str
    #: Deployments: the newest ReplicaSet's pod-template hash, the pods' names, the images.
    template_hash: str | None = None
    pods: frozenset[str] = frozenset()
    images: tuple[str, ...] = ()


#: Key (URN, or ``Kind/name``) -> the live object.
Snapshot = dict[str, Live]


class Found(NamedTuple):
    """A live object listed for a snapshot: its key, its component, the object itself."""

    key: str
    component: str
    obj: dict[str, Any]


def _dyn(api: ApiClient) -> Any:
    from kubernetes import dynamic

    return dynamic.DynamicClient(api)  # type: ignore[no-untyped-call]


def live_object(dyn: Any, outputs: dict[str, Any]) -> Any | None:
    """The live object a Pulumi Kubernetes resource's outputs describe (a dynamic client's
    ``ResourceInstance``), or None (404)."""
    from kubernetes.client.exceptions import ApiException

    meta = outputs["metadata"]
    res = dyn.resources.get(api_version=outputs["apiVersion"], kind=outputs["kind"])
    try:
        if res.namespaced:
            return res.get(name=meta["name"], namespace=meta["namespace"])
        return res.get(name=meta["name"])
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def in_state(api: ApiClient, resources: Iterable[dict[str, Any]]) -> list[Found]:
    """The live objects of a stack's Kubernetes resources (`pulumi stack export`'s
    ``resources``), keyed by URN, each in the slot of its parent component; a resource whose
    object is gone is left out."""
    dyn = _dyn(api)
    return [
        Found(r["urn"], r.get("parent", ""), obj.to_dict())
        for r in resources
        if (obj := live_object(dyn, r["outputs"])) is not None
    ]


def labelled(api: ApiClient, namespace: str, selector: str) -> list[Found]:
    """The engine's objects of ``namespace`` that match the label ``selector``, of every
    kind the server lists, keyed by ``Kind/name``, each in the slot of its
    ``app.kubernetes.io/name``. Objects the engine has no field manager's entry in (pods,
    ReplicaSets, endpoints: a controller's) are left out."""
    from kubernetes.client.exceptions import ApiException
    from kubernetes.dynamic.resource import ResourceList

    dyn = _dyn(api)
    out = []
    for res in dyn.resources.search():
        if (
            isinstance(res, ResourceList)
            or not (res.namespaced and res.preferred)
            or "list" not in (res.verbs or [])
        ):
            continue
        try:
            items = res.get(namespace=namespace, label_selector=selector).to_dict()["items"]
        except ApiException as e:
            if e.status in (403, 404, 405):
                continue
            raise
        for item in items:
            # A list's items of the built-in kinds come without their kind and apiVersion.
            obj = {"kind": res.kind, "apiVersion": res.group_version, **item}
            meta = obj["metadata"]
            if not _engine_entries(obj):
                continue
            component = (meta.get("labels") or {}).get(labels.NAME, "")
            out.append(Found(f"{obj['kind']}/{meta['name']}", component, obj))
    return out


def _engine_entries(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        m
        for m in obj["metadata"].get("managedFields") or []
        if str(m.get("manager", "")).startswith(ENGINE_MANAGERS)
    ]


def _hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _content(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    kept = {k: v for k, v in obj.items() if k not in NOT_CONTENT}
    kept["labels"] = meta.get("labels") or {}
    kept["annotations"] = meta.get("annotations") or {}
    return _hash(kept)


def snapshot(api: ApiClient, found: Iterable[Found]) -> Snapshot:
    """Key -> the live object, for every object listed (:func:`in_state`, :func:`labelled`)."""
    dyn = _dyn(api)
    out: Snapshot = {}
    for f in found:
        meta, kind = f.obj["metadata"], f.obj["kind"]
        live = Live(
            kind=kind,
            name=meta["name"],
            slot=(f.component, kind),
            uid=meta["uid"],
            content=_content(f.obj),
            ours=_hash(_engine_entries(f.obj)),
        )
        if kind == "Deployment":
            live = _with_pods(dyn, live, f.obj)
        out[f.key] = live
    return out


def _with_pods(dyn: Any, live: Live, obj: dict[str, Any]) -> Live:
    """A Deployment with its newest ReplicaSet's pod-template hash, its pods (those of any of
    its ReplicaSets) and its pod template's images."""
    ns = obj["metadata"]["namespace"]
    replica_sets = dyn.resources.get(api_version="apps/v1", kind="ReplicaSet")
    pods = dyn.resources.get(api_version="v1", kind="Pod")
    sets = [
        rs
        for rs in replica_sets.get(namespace=ns).to_dict()["items"]
        if any(o["uid"] == live.uid for o in rs["metadata"].get("ownerReferences") or [])
    ]
    newest = max(sets, key=lambda rs: int(rs["metadata"]["annotations"][REVISION]), default=None)
    hashes = {rs["metadata"]["labels"][TEMPLATE_HASH] for rs in sets}
    containers = obj["spec"]["template"]["spec"]["containers"]
    return replace(
        live,
        template_hash=newest["metadata"]["labels"][TEMPLATE_HASH] if newest else None,
        pods=frozenset(
            p["metadata"]["name"]
            for p in pods.get(namespace=ns).to_dict()["items"]
            if (p["metadata"].get("labels") or {}).get(TEMPLATE_HASH) in hashes
        ),
        images=tuple(c["image"] for c in containers),
    )


def kinds_reached(found: Prediction) -> set[str]:
    """The kinds of object the field-effect table says the predicted edit reaches."""
    return {r.split("/")[0] for c in found.diff.changes for r in c.resources}


def observed(before: Snapshot, after: Snapshot, reached: Collection[str]) -> Effect | str:
    """The effect class the live objects show, or why they fit none:

    - replace: an object stands in for another of the same slot (a new UID under the same
      key, or a blue-green Deployment keyed by the new version);
    - restart: no replacement, and a Deployment has a new pod template (its newest
      ReplicaSet's pod-template hash changed);
    - in-place: no replacement, no new pod template, no pod replaced (the pods after are a
      subset or a superset of those before), and some object changed in content;
    - no change: no object is new, gone, replaced or changed in content.

    An object gone or new with nothing standing in for it (stop removes the autoscaler) is
    no replacement, but must be of a kind the table says the edit reaches (``reached``).
    """
    slots: dict[tuple[str, str], tuple[set[str], set[str]]] = {}
    for side, objs in enumerate((before, after)):
        for live in objs.values():
            slots.setdefault(live.slot, (set(), set()))[side].add(live.uid)
    if any(b - a and a - b for b, a in slots.values()):
        return Effect.REPLACE
    came_went = {
        live.kind for k, live in [*before.items(), *after.items()] if (k in before) != (k in after)
    }
    if came_went - set(reached):
        return f"created or deleted {sorted(came_went - set(reached))}, not of {sorted(reached)}"
    kept = [k for k in before if k in after]
    if any(after[k].template_hash != before[k].template_hash for k in kept):
        return Effect.RESTART
    for k in kept:
        a, b = after[k], before[k]
        if not (a.pods <= b.pods or b.pods <= a.pods):
            return f"pods replaced without a new pod template ({k})"
    if came_went or any(after[k].content != before[k].content for k in kept):
        return Effect.IN_PLACE
    return Effect.NONE


def engine_writes(before: Snapshot, after: Snapshot) -> list[str]:
    """The objects the engine wrote between two snapshots: new, gone, replaced (a new UID),
    or with a field manager's entry of the engine changed. Controllers' writes do not
    count."""
    return sorted(
        k
        for k in {*before, *after}
        if k not in before
        or k not in after
        or after[k].ours != before[k].ours
        or after[k].uid != before[k].uid
    )


def engine_wrote_nothing(before: Snapshot, after: Snapshot) -> bool:
    """What a refused edit must leave: see :func:`engine_writes`."""
    return not engine_writes(before, after)


def settled(api: ApiClient, namespace: str, selector: str = "") -> bool | None:
    """Every Deployment of the namespace (matching ``selector``) rolled out
    (``servestack.ops.live``, as `kubectl rollout status` decides) and none being deleted,
    and no pod terminating; None (for :func:`harness.poll.wait_for`) until then."""
    from kubernetes import client

    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    deps: list[Any] = apps.list_namespaced_deployment(namespace, label_selector=selector).items
    if any(d.metadata.deletion_timestamp for d in deps):
        return None
    if not all(WorkloadState.counts(d).rolled_out for d in deps):
        return None
    if not _autoscalers_settled(api, namespace, deps):
        return None
    pods: list[Any] = core.list_namespaced_pod(namespace, label_selector=selector).items
    return not any(p.metadata.deletion_timestamp for p in pods) or None


def _autoscalers_settled(api: ApiClient, namespace: str, deps: list[Any]) -> bool:
    """No HorizontalPodAutoscaler has a rescale to make without metrics: its Deployment's
    replicas are within its bounds (or 0: the HPA is off). An edit that hands a Deployment
    to an HPA (stableSlot during a canary) leaves it at its old count until the HPA's next
    sync; the next edit's observation must not see that sync."""
    from kubernetes import client

    hpas = client.AutoscalingV2Api(api).list_namespaced_horizontal_pod_autoscaler(namespace)
    replicas = {d.metadata.name: d.spec.replicas for d in deps}
    for hpa in hpas.items:
        ref = hpa.spec.scale_target_ref
        n = replicas.get(ref.name) if ref.kind == "Deployment" else None
        if n and not (hpa.spec.min_replicas or 1) <= n <= hpa.spec.max_replicas:
            return False
    return True
