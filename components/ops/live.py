"""Live state of a deployment on a `target: cluster` stack, read from the API server.

What `servestack status` shows there: per Deployment (stable, canary) the desired, updated,
ready and available replicas, the image each ReplicaSet runs, the rollout's conditions, the
last events of its pods (including the scheduler's reason for a Pending pod) and the
autoscaler's current and target metrics. Reads use standard kubeconfig resolution
(``KUBECONFIG``, ``~/.kube/config``) and the stack's optional ``cluster.context``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from servestack.config.models import DeploymentSpec, StackConfig, StrategyType
from servestack.contract import labels
from servestack.manifests import naming
from servestack.manifests.scaling import KEDA_API

#: Events shown per Deployment, newest first.
EVENTS = 8


@dataclass
class WorkloadState:
    name: str
    desired: int
    updated: int
    ready: int
    available: int
    #: Pods of every ReplicaSet (old ones included): above ``updated`` while old pods remain.
    total: int = 0
    #: The controller has seen the latest spec (status.observedGeneration >= generation).
    observed: bool = True
    #: (ReplicaSet name, revision, image, replicas, ready) newest first.
    replica_sets: list[tuple[str, str, str, int, int]] = field(default_factory=list)
    conditions: list[tuple[str, str, str]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)

    @classmethod
    def counts(cls, dep: Any) -> WorkloadState:
        """The replica counts of a Deployment read from the API (no ReplicaSets, events)."""
        st = dep.status
        return cls(
            dep.metadata.name,
            desired=dep.spec.replicas or 0,
            updated=st.updated_replicas or 0,
            ready=st.ready_replicas or 0,
            available=st.available_replicas or 0,
            total=st.replicas or 0,
            observed=(st.observed_generation or 0) >= (dep.metadata.generation or 0),
        )

    @property
    def rolled_out(self) -> bool:
        """As `kubectl rollout status` decides: the latest spec observed, every desired
        replica updated, ready and available, and no old replica left."""
        return (
            self.observed
            and self.updated == self.desired == self.ready == self.available == self.total
        )

    def progress(self) -> str:
        """One line saying where the rollout stands."""
        text = (
            f"{self.name}: {self.updated}/{self.desired} updated, {self.ready} ready, "
            f"{self.available} available"
        )
        if self.total > self.updated:
            text += f", {self.total - self.updated} old"
        if self.pending:
            text += f", {len(self.pending)} pending"
        if not self.observed:
            text += ", new spec not yet observed"
        return text


@dataclass
class LiveState:
    namespace: str
    workloads: list[WorkloadState] = field(default_factory=list)
    #: (metric, current, target) of the autoscaler, when there is one.
    autoscaler: list[tuple[str, str, str]] = field(default_factory=list)
    #: The autoscaler's conditions (type, status, message): why a current metric is unknown.
    autoscaler_conditions: list[tuple[str, str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def rolled_out(self) -> bool:
        return not self.missing and all(w.rolled_out for w in self.workloads)

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "rolledOut": self.rolled_out,
            "missing": self.missing,
            "workloads": [
                {
                    "name": w.name,
                    "desired": w.desired,
                    "updated": w.updated,
                    "ready": w.ready,
                    "available": w.available,
                    "total": w.total,
                    "observed": w.observed,
                    "rolledOut": w.rolled_out,
                    "replicaSets": [
                        {"name": n, "revision": r, "image": i, "replicas": c, "ready": rd}
                        for n, r, i, c, rd in w.replica_sets
                    ],
                    "conditions": [
                        {"type": t, "status": s, "message": m} for t, s, m in w.conditions
                    ],
                    "events": w.events,
                    "pending": w.pending,
                }
                for w in self.workloads
            ],
            "autoscaler": [{"metric": m, "current": c, "target": t} for m, c, t in self.autoscaler],
            "autoscalerConditions": [
                {"type": t, "status": s, "message": m} for t, s, m in self.autoscaler_conditions
            ],
        }


def workload_names(spec: DeploymentSpec) -> list[str]:
    names = [naming.workload_name(spec)]
    if spec.strategy.type is StrategyType.canary:
        names.append(naming.deployment_name(spec, naming.CANARY))
    return names


def _api(config: StackConfig) -> Any:
    from kubernetes import client
    from kubernetes import config as kubeconfig

    kubeconfig.load_kube_config(context=config.cluster.context)  # type: ignore[no-untyped-call]
    return client


def read(spec: DeploymentSpec, config: StackConfig) -> LiveState:
    """The deployment's live objects. Raises the client's errors (no cluster, no access)."""
    client = _api(config)
    apps, core = client.AppsV1Api(), client.CoreV1Api()
    ns = config.namespace
    state = LiveState(ns)
    for name in workload_names(spec):
        try:
            dep = apps.read_namespaced_deployment(name, ns)
        except client.ApiException as exc:
            if exc.status == 404:
                state.missing.append(name)
                continue
            raise
        state.workloads.append(_workload(apps, core, dep, ns))
    state.autoscaler, state.autoscaler_conditions = _autoscaler(client, spec, ns)
    return state


def _workload(apps: Any, core: Any, dep: Any, ns: str) -> WorkloadState:
    w = WorkloadState.counts(dep)
    w.conditions = [(c.type, c.status, c.message or "") for c in dep.status.conditions or []]
    selector = ",".join(f"{k}={v}" for k, v in dep.spec.selector.match_labels.items())
    sets = apps.list_namespaced_replica_set(ns, label_selector=selector).items
    owned = [
        rs
        for rs in sets
        if any(o.uid == dep.metadata.uid for o in rs.metadata.owner_references or [])
    ]
    owned.sort(key=lambda rs: int(_revision(rs) or 0), reverse=True)
    w.replica_sets = [
        (
            rs.metadata.name,
            _revision(rs),
            ", ".join(c.image for c in rs.spec.template.spec.containers),
            rs.status.replicas or 0,
            rs.status.ready_replicas or 0,
        )
        for rs in owned
    ]
    pods = core.list_namespaced_pod(ns, label_selector=selector).items
    for pod in pods:
        for cond in pod.status.conditions or []:
            if cond.type == "PodScheduled" and cond.status == "False":
                w.pending.append(f"{pod.metadata.name}: {cond.message or cond.reason}")
    # Events of its pods, its ReplicaSets and the Deployment itself (by kind and name: the
    # Service and the autoscaler share the Deployment's name).
    ours = {("Pod", p.metadata.name) for p in pods}
    ours |= {("ReplicaSet", rs.metadata.name) for rs in owned}
    ours.add(("Deployment", dep.metadata.name))
    events = core.list_namespaced_event(ns).items
    mine = [e for e in events if (e.involved_object.kind, e.involved_object.name) in ours]
    mine.sort(key=lambda e: str(e.last_timestamp or e.event_time or ""), reverse=True)
    w.events = [
        f"{e.involved_object.kind}/{e.involved_object.name} {e.reason}: {e.message}"
        for e in mine[:EVENTS]
    ]
    return w


def _revision(rs: Any) -> str:
    return str((rs.metadata.annotations or {}).get("deployment.kubernetes.io/revision", ""))


Rows = list[tuple[str, str, str]]


def _autoscaler(client: Any, spec: DeploymentSpec, ns: str) -> tuple[Rows, Rows]:
    """The autoscaler's (metric, current, target) rows and its (type, status, message)
    conditions: the HPA's, or for a queue worker its KEDA ScaledObject's (with the current
    figures of the HPA that KEDA keeps for it)."""
    if spec.queue is not None:
        return _scaled_object(client, spec, ns)
    hpa = _read_hpa(client, spec.name, ns)
    if hpa is None:
        return [], []
    rows = [
        (
            "replicas",
            str(hpa.status.current_replicas or 0),
            f"{hpa.spec.min_replicas}..{hpa.spec.max_replicas}",
        )
    ]
    current = {_metric_name(m): m for m in hpa.status.current_metrics or []}
    for m in hpa.spec.metrics or []:
        key = _metric_name(m)
        rows.append((key, _metric_value(current.get(key)), _target(m)))
    conditions = [(c.type, c.status, c.message or "") for c in hpa.status.conditions or []]
    return rows, conditions


def _read_hpa(client: Any, name: str, ns: str) -> Any | None:
    try:
        return client.AutoscalingV2Api().read_namespaced_horizontal_pod_autoscaler(name, ns)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _scaled_object(client: Any, spec: DeploymentSpec, ns: str) -> tuple[Rows, Rows]:
    group, version = KEDA_API.split("/")
    try:
        so = client.CustomObjectsApi().get_namespaced_custom_object(
            group, version, ns, "scaledobjects", spec.name
        )
    except client.ApiException as exc:
        if exc.status == 404:
            return [], []
        raise
    status = so.get("status") or {}
    hpa = _read_hpa(client, status["hpaName"], ns) if status.get("hpaName") else None
    return scaled_object_rows(so, hpa)


def scaled_object_rows(so: dict[str, Any], hpa: Any | None) -> tuple[Rows, Rows]:
    """Rows and conditions of a ScaledObject (a dict, as the API returns it). KEDA names
    the metric of trigger i `s<i>-...` in its HPA; without that HPA (KEDA not running, or
    not yet) the current figures are unknown, and a condition says so."""
    spec, status = so["spec"], so.get("status") or {}
    replicas = str(hpa.status.current_replicas or 0) if hpa is not None else "<unknown>"
    bounds = f"{spec.get('minReplicaCount', 0)}..{spec.get('maxReplicaCount', 100)}"
    rows = [("replicas", replicas, bounds)]
    current = {_metric_name(m): m for m in (hpa.status.current_metrics or [] if hpa else [])}
    for i, trigger in enumerate(spec.get("triggers") or []):
        kind, meta = trigger["type"], trigger.get("metadata") or {}
        if kind in ("cpu", "memory"):
            rows.append((kind, _metric_value(current.get(kind)), f"{meta.get('value')}%"))
            continue
        queue = meta.get("queueName") or meta.get("topic") or meta.get("listName") or ""
        target = meta.get("value") or meta.get("lagThreshold") or meta.get("listLength")
        found = next((m for name, m in current.items() if name.startswith(f"s{i}-")), None)
        rows.append((f"{kind} {queue}".strip(), _metric_value(found), str(target)))
    conditions = [
        (c["type"], c["status"], c.get("message") or c.get("reason") or "")
        for c in status.get("conditions") or []
    ]
    if not status:
        conditions = [
            (
                "Ready",
                "Unknown",
                "no status: KEDA has not reconciled this ScaledObject "
                "(is the KEDA operator running in the cluster?)",
            )
        ]
    return rows, conditions


def _metric_name(m: Any) -> str:
    if m.type == "Resource":
        return f"{m.resource.name}"
    if m.type == "Pods":
        return f"{m.pods.metric.name}"
    if m.type == "External":
        return f"{m.external.metric.name}"
    return str(m.type)


def _metric_value(m: Any) -> str:
    if m is None:
        return "<unknown>"
    cur = getattr(
        m, {"Resource": "resource", "Pods": "pods", "External": "external"}[m.type]
    ).current
    if cur.average_utilization is not None:
        return f"{cur.average_utilization}%"
    return str(cur.average_value or cur.value or "<unknown>")


def _target(m: Any) -> str:
    tgt = m.resource.target if m.type == "Resource" else m.pods.target
    if tgt.average_utilization is not None:
        return f"{tgt.average_utilization}%"
    return str(tgt.average_value or tgt.value)


#: Label selecting every object servestack made (the cluster tier's clean-up check).
MANAGED_SELECTOR = f"{labels.MANAGED_BY}={labels.MANAGER}"
