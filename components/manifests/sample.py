"""Sample stacks that use every feature, and what the builders' provenance says about them.

They serve three readers: the provenance test edits every field of the table in them;
:func:`renders` lists, per field of the table, the manifest properties it produced here
(the table itself, in :mod:`servestack.contract`, does not import the builders); and
`servestack explain` without a stack file traces a step through :func:`generic_cause` (by
kind and property, since it has no config to build).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from servestack.config.gpu import MIG_RESOURCE_PREFIX
from servestack.config.models import StackConfig
from servestack.config.validation import SECRET_NAMES, parse_stack
from servestack.contract import labels
from servestack.contract.effects import table_key
from servestack.manifests.lifecycle import kind
from servestack.manifests.provenance import ADD, DELETE, Cause, Prop, prop_text
from servestack.manifests.render import render_stack

MODEL = {"id": "model-001", "type": "llm"}


def _model(version: str, image: str, **extra: Any) -> dict[str, Any]:
    return {**MODEL, "version": version, "image": image, **extra}


#: Every strategy, sync and async (each queue kind), GPUs, an inactive deployment, the
#: defaults and explicit settings, on Karpenter. Staging: its defaults differ from both
#: development and production, so environment edits show.
KARPENTER: dict[str, Any] = {
    "environment": "staging",
    "target": "render",
    "namespace": "models",
    "imagePullSecrets": ["regcred"],
    "cluster": {"name": "sample", "provider": "karpenter", "nodeClass": {"name": "gpu"}},
    "nodePools": [
        {
            "name": "a100",
            "gpu": {"type": "A100", "count": 8},
            "machineType": "p4d.24xlarge",
            "minNodes": 0,
            "maxNodes": 4,
        },
        {"name": "l4", "gpu": {"type": "L4", "count": 1}, "maxNodes": 2, "spot": True},
        {"name": "spare", "gpu": {"type": "A10G", "count": 1}},
        # MIG: every H100 of a node cut into 7 slices (the embedder's).
        {"name": "h100", "gpu": {"type": "H100", "count": 8, "mig": "all-1g.10gb"}},
        {"name": "h100-wide", "gpu": {"type": "H100", "count": 8, "mig": "all-1g.20gb"}},
    ],
    "deployments": [
        {
            "name": "chat",
            "description": "Chat completions",
            "model": _model(
                "v3.0.0",
                "registry.example.com/llm/chat:3.0.0",
                storage={"uri": "s3://models/chat/v3.0.0", "size": "80Gi"},
            ),
            "resources": {
                "cpu": 8,
                "memory": "64Gi",
                "gpu": {"count": 1, "type": "A100"},
                "storage": "100Gi",
                "bandwidthMbps": 1000,
                "sharedMemory": "8Gi",
            },
            "imagePullSecrets": ["chat-registry"],
            "command": ["python", "-m", "chat.serve"],
            "args": ["--tensor-parallel-size", "1"],
            "priorityClassName": "llm-high",
            "topologySpread": {"node": "require", "zone": "prefer"},
            "affinity": {
                "nodeRequirements": [
                    {"key": "topology.kubernetes.io/zone", "values": ["eu-west-1a", "eu-west-1b"]}
                ],
                "podAntiAffinity": "prefer",
            },
            "autoscaling": {
                "minReplicas": 2,
                "maxReplicas": 6,
                "targetCpuUtilization": 70,
                "targetMemoryUtilization": 80,
                "targetGpuUtilization": 60,
                "scaleDownStabilizationSeconds": 120,
            },
            "loadBalancer": {
                "algorithm": "least_connections",
                "healthCheck": {
                    "path": "/ready",
                    "intervalSeconds": 5,
                    "timeoutSeconds": 3,
                    "failureThreshold": 4,
                },
            },
            "strategy": {
                "type": "canary",
                "weight": 10,
                "canaryVersion": "v3.1.0",
                "canaryImage": "registry.example.com/llm/chat:3.1.0",
                "canaryReplicas": 2,
            },
            "port": 9000,
            "route": {
                "gateway": {"name": "public", "namespace": "gateways"},
                "hostnames": ["chat.example.com"],
                "path": "/v1",
            },
            "env": {"LOG_LEVEL": "info"},
            "secretEnv": ["API_TOKEN"],
            "tags": {"team": "llm"},
            "monitoring": {
                "scrape": {"path": "/metrics", "port": 9100, "intervalSeconds": 15},
                "slo": {"latencyP99Ms": 2000, "errorRatePercent": 0.5, "availabilityPercent": 99},
                "alerts": {"gpuSaturation": {"severity": "info"}},
                "namespace": "observability",
                "prometheusUrl": "http://prometheus.observability.svc:9090",
            },
        },
        {
            "name": "ranker",
            "model": _model("v1.4.2", "registry.example.com/search/ranker:1.4.2"),
            "resources": {"cpu": 2, "memory": "8Gi"},
            "replicas": 3,
            "loadBalancer": {"stickySessions": True},
            "strategy": {"type": "rolling", "maxSurge": 2, "maxUnavailable": 1},
            "env": {"BATCH": "8", "LOG_LEVEL": "warn"},
            "monitoring": {"slo": {"latencyP99Ms": 200}},
        },
        {
            "name": "vision",
            "model": _model(
                "v2.0.0",
                "registry.example.com/vision/resnet:2.0.0",
                storage={"pvc": "resnet-weights"},
            ),
            "resources": {"cpu": 3, "memory": "12Gi", "gpu": {"count": 1, "type": "L4"}},
            "replicas": 2,
            "loadBalancer": {"algorithm": "ip_hash"},
            "strategy": {"type": "blue_green"},
            "monitoring": {},
        },
        {
            "name": "whisper",
            "model": _model("v1.3.0", "registry.example.com/speech/whisper:1.3.0"),
            "processing": "async",
            "resources": {"cpu": "1500m", "memory": "6Gi"},
            "queue": {
                "kind": "rabbitmq",
                "name": "transcriptions",
                "targetDepth": 20,
                "activationDepth": 5,
                "connectionSecret": "rabbitmq-conn",
                "connectionSecretKey": "amqp-url",
            },
            "monitoring": {"enabled": True},
            "autoscaling": {
                "minReplicas": 3,
                "maxReplicas": 5,
                "targetCpuUtilization": 80,
                "scaleDownStabilizationSeconds": 120,
            },
        },
        {
            "name": "embedder",
            "model": _model("v5.0.0", "registry.example.com/nlp/embedder:5.0.0"),
            "processing": "async",
            "resources": {
                "cpu": 1,
                "memory": "2Gi",
                "gpu": {"count": 1, "type": "H100", "mig": "1g.10gb"},
            },
            "replicas": 2,
            "queue": {"kind": "kafka", "name": "documents", "connectionSecret": "kafka-conn"},
        },
        {
            "name": "digest",
            "model": _model("v0.9.0", "registry.example.com/nlp/digest:0.9.0"),
            "processing": "async",
            "resources": {"cpu": 1, "memory": "2Gi"},
            "queue": {"kind": "redis", "name": "digests", "connectionSecret": "redis-conn"},
            "autoscaling": {"enabled": False, "minReplicas": 1, "maxReplicas": 2},
        },
        {
            "name": "idle",
            "model": _model("v1.0.0", "registry.example.com/nlp/idle:1.0.0"),
            "resources": {"cpu": 1, "memory": "1Gi"},
            "active": False,
        },
    ],
}

#: The cloud node pool backends, whose pools are arguments of cloud resources.
GKE: dict[str, Any] = {
    "environment": "production",
    "cluster": {
        "name": "sample",
        "provider": "gke",
        "project": "ml-platform",
        "location": "europe-west4",
    },
    "nodePools": [
        {"name": "a100", "gpu": {"type": "A100", "count": 2}, "maxNodes": 4, "diskSizeGb": 300},
        {"name": "l4", "gpu": {"type": "L4", "count": 2}, "machineType": "g2-standard-24"},
    ],
}
EKS: dict[str, Any] = {
    "environment": "production",
    "cluster": {
        "name": "sample",
        "provider": "eks",
        "nodeRoleArn": "arn:aws:iam::123456789012:role/nodes",
        "subnetIds": ["subnet-a", "subnet-b"],
        # A cluster whose GPU nodes carry a label and taint of its own.
        "gpuLabels": "custom",
        "customGpuLabels": {
            "key": "example.com/accelerator",
            "values": {"L4": "nvidia-l4", "H100": "nvidia-h100"},
            "taint": "example.com/gpu",
        },
    },
    "nodePools": [
        {"name": "l4", "gpu": {"type": "L4", "count": 1}, "maxNodes": 3, "diskSizeGb": 200},
        {"name": "h100", "gpu": {"type": "H100", "count": 8}, "machineType": "p5.48xlarge"},
    ],
}
SAMPLES: Mapping[str, dict[str, Any]] = {"karpenter": KARPENTER, "gke": GKE, "eks": EKS}


def sample_stack(name: str) -> StackConfig:
    return parse_config(SAMPLES[name], source=f"sample {name}")


def parse_config(raw: dict[str, Any], source: str | None = None) -> StackConfig:
    """Validate a sample (or an edit of one); its secret values exist by assumption."""
    secrets = {
        d["name"]: list(d.get("secretEnv", ()))
        for d in raw.get("deployments", ())
        if isinstance(d, dict) and "name" in d
    }
    return parse_stack({**raw, SECRET_NAMES: secrets}, source=source)


# --- what the samples say, by kind and property ----------------------------------------------

#: A list index of any item.
ANY_INDEX = -1


@dataclass(frozen=True)
class GenericMark:
    fields: frozenset[str]
    via: frozenset[str]
    when: frozenset[str] | None


#: A user tag's label key, whatever the tag (the key is data, the samples have a few).
ANY_TAG = f"{labels.TAG_PREFIX}*"


#: A MIG slice resource, whatever the profile (the samples ask for one or two).
ANY_SLICE = f"{MIG_RESOURCE_PREFIX}*"


def _generic(prop: Prop) -> Prop:
    return tuple(
        ANY_INDEX
        if isinstance(s, int)
        else ANY_TAG
        if s.startswith(labels.TAG_PREFIX)
        else ANY_SLICE
        if s.startswith(MIG_RESOURCE_PREFIX)
        else s
        for s in prop
    )


def _text(prop: Prop) -> str:
    return prop_text(prop).replace(f"[{ANY_INDEX}]", "[*]")


def _table(fields: frozenset[str]) -> frozenset[str]:
    return frozenset(table_key(f) for f in fields)


@functools.cache
def generic_index() -> dict[tuple[str, Prop], GenericMark]:
    """(Pulumi type, property with any list index) -> the table fields the samples mark it
    with, merged over every resource of that type."""
    index: dict[tuple[str, Prop], GenericMark] = {}
    for name in SAMPLES:
        for key, record in render_stack(sample_stack(name)).resources.items():
            for prop, mark in record.marks.items():
                at = (key.type, _generic(prop))
                found = index.get(at)
                when = _table(mark.when) if mark.when is not None else None
                if found is None:
                    index[at] = GenericMark(_table(mark.fields), _table(mark.via), when)
                else:
                    merged_when = (
                        None
                        if found.when is None and when is None
                        else (found.when or frozenset()) | (when or frozenset())
                    )
                    index[at] = GenericMark(
                        found.fields | _table(mark.fields),
                        found.via | _table(mark.via),
                        merged_when,
                    )
    return index


@functools.lru_cache(maxsize=4096)
def generic_cause(type_token: str, prop: Prop, change: str) -> Cause:
    """Table fields that explain a change of ``prop`` in any resource of this type."""
    index = generic_index()
    gp = _generic(prop)
    if change in (ADD, DELETE):
        own = index.get((type_token, gp))
        if own is not None and own.when is not None:
            return Cause(own.when, own.via)
        gp = gp[:-1]
    found = Cause()
    for i in range(len(gp), -1, -1):
        mark = index.get((type_token, gp[:i]))
        if mark is not None:
            found = Cause(mark.fields, mark.via)
            break
    # Inside a list item that exists because of a field (an `env` entry), the samples'
    # marks at that position are other items': the item's own reasons are candidates too.
    for i in range(len(gp), 0, -1):
        if gp[i - 1] == ANY_INDEX:
            item = index.get((type_token, gp[:i]))
            if item is not None and item.when:
                found |= Cause(item.when, frozenset())
    return found


@functools.cache
def _renders() -> dict[str, tuple[str, ...]]:
    found: dict[str, set[str]] = {}
    for (type_token, prop), mark in generic_index().items():
        where = f"{kind(type_token)}:{_text(prop)}" if prop else f"{kind(type_token)}"
        for f in mark.fields | mark.via | (mark.when or frozenset()):
            found.setdefault(f, set()).add(where)
    return {f: tuple(sorted(v)) for f, v in found.items()}


def renders(table_path: str) -> tuple[str, ...]:
    """Where a field of the table shows in the samples' manifests (``Kind:property``, or
    ``Kind`` alone where it decides that the resource exists)."""
    return _renders().get(table_path, ())
