"""Provenance by construction, held to what the builders really do.

Every field of the field-effect table is edited in a sample stack that uses every feature
(:mod:`servestack.manifests.sample`), the stack's manifests are built again, and:

* every changed manifest property is explained by the provenance record (old or new build)
  through a field the edit changed (as `servestack diff` names it): nothing changes that the
  record does not trace to the edit;
* every property the record attributes to the edited field changes under at least one of
  that field's edits (all edits of one field taken together: a field that switches between
  branches, such as ``strategy.type``, needs one edit per branch);
* the effect the table gives the edit is what the manifest changes amount to (pod template
  changed -> restart; identity or immutable property changed, or a resource of one kind
  deleted while another is created -> replace; anything else -> in-place), and a
  ``forbidden`` edit is refused by the program's guard.

Fields that cannot be edited alone get a paired edit, named in ``also`` with the reason.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from servestack.config.models import StackConfig
from servestack.config.paths import FieldPath
from servestack.contract.effects import MAP_FIELDS, TABLE, EditContext, Effect, table_key
from servestack.manifests import lifecycle
from servestack.manifests.provenance import (
    ADD,
    DELETE,
    UPDATE,
    Cause,
    Prop,
    changes,
    prop_text,
)
from servestack.manifests.render import Key, Rendered, render_stack
from servestack.manifests.sample import SAMPLES, parse_config
from servestack.program.guards import forbidden_edits, identity
from servestack.review.diff import diff_configs

MON = "deployments.<name>.monitoring"


class _Remove:
    """Remove the key (a value that cannot be written as YAML null means "leave it out").
    Named in test ids: every xdist worker must collect the same ids (an object()'s repr
    holds its address)."""

    def __repr__(self) -> str:
        return "<removed>"


REMOVE = _Remove()


@dataclass(frozen=True)
class Edit:
    field: str
    path: str
    value: Any
    sample: str = "karpenter"
    #: Edits validation requires with this one (path -> value), and why.
    also: dict[str, Any] = field(default_factory=dict)
    why: str = ""
    #: Tells apart two edits of one path to one value (with other ``also``).
    tag: str = ""
    #: Resources whose marks naming the field may stay as they are: promote --shift keeps
    #: the canary's Deployment, whose name names stableSlot, as the stable track.
    keeps: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.sample}:{self.path}={self.value!r}{self.tag}"


def _pair(path: str, value: Any, why: str, **also: Any) -> dict[str, Any]:
    return {"path": path, "value": value, "why": why, "also": also}


CANARY = {
    "deployments.ranker.strategy.weight": 20,
    "deployments.ranker.strategy.canaryVersion": "v1.5.0",
    "deployments.ranker.strategy.canaryImage": "registry.example.com/search/ranker:1.5.0",
    "deployments.ranker.strategy.maxSurge": REMOVE,
    "deployments.ranker.strategy.maxUnavailable": REMOVE,
}
NOT_ROLLING = {
    "deployments.ranker.strategy.maxSurge": REMOVE,
    "deployments.ranker.strategy.maxUnavailable": REMOVE,
}
ROLLING = {
    "deployments.chat.strategy.weight": REMOVE,
    "deployments.chat.strategy.canaryVersion": REMOVE,
    "deployments.chat.strategy.canaryImage": REMOVE,
    "deployments.chat.strategy.canaryReplicas": REMOVE,
}
#: What ranker needs to become a queue worker: a queue, and no load balancer.
ASYNC_RANKER = {
    "deployments.ranker.queue": {"kind": "kafka", "name": "rank", "connectionSecret": "kafka-conn"},
    "deployments.ranker.loadBalancer": REMOVE,
}

EDITS: tuple[Edit, ...] = (
    # --- stack ------------------------------------------------------------------------------
    Edit("environment", "environment", "production"),
    # vision's fixed count (2) is production's floor: with a floor of its own, it moves.
    Edit(
        "environment",
        "environment",
        "production",
        also={
            "deployments.vision.autoscaling": {
                "minReplicas": 1,
                "maxReplicas": 2,
                "targetCpuUtilization": 70,
            }
        },
        why="vision's fixed count is production's floor (2) unless it sets its own",
        tag=" vision's floor 1",
    ),
    Edit("environment", "environment", "development"),
    Edit("target", "target", "cluster"),
    Edit("imagePullSecrets", "imagePullSecrets", ["regcred", "mirror"]),
    Edit("imagePullSecrets", "imagePullSecrets", REMOVE),
    Edit("namespace", "namespace", "models-eu"),
    Edit("cluster.name", "cluster.name", "sample-2"),
    Edit(
        "cluster.provider",
        "cluster.provider",
        "eks",
        also={"cluster.nodeRoleArn": "arn:aws:iam::1:role/n", "cluster.subnetIds": ["s-1"]},
        why="provider eks needs nodeRoleArn and subnetIds",
    ),
    Edit("cluster.project", "cluster.project", "ml-platform-2", sample="gke"),
    Edit("cluster.project", "cluster.project", "ml-platform-2"),
    Edit("cluster.location", "cluster.location", "us-central1", sample="gke"),
    Edit("cluster.location", "cluster.location", "us-central1"),
    Edit("cluster.nodeRoleArn", "cluster.nodeRoleArn", "arn:aws:iam::1:role/n2", sample="eks"),
    Edit("cluster.nodeRoleArn", "cluster.nodeRoleArn", "arn:aws:iam::1:role/n2"),
    Edit("cluster.subnetIds", "cluster.subnetIds", ["subnet-a", "subnet-c"], sample="eks"),
    Edit("cluster.subnetIds", "cluster.subnetIds", ["subnet-c"]),
    Edit("cluster.nodeClass.name", "cluster.nodeClass.name", "gpu-2"),
    Edit("cluster.nodeClass.group", "cluster.nodeClass.group", "karpenter.kwok.sh"),
    Edit("cluster.nodeClass.kind", "cluster.nodeClass.kind", "KWOKNodeClass"),
    Edit("cluster.nodeClass.name", "cluster.nodeClass.name", "gpu-2", sample="gke"),
    Edit("cluster.context", "cluster.context", "kind-sample"),
    Edit("cluster.gpuLabels", "cluster.gpuLabels", "gpu-operator"),
    Edit("cluster.gpuLabels", "cluster.gpuLabels", "gpu-operator", sample="gke"),
    Edit(
        "cluster.gpuLabels",
        "cluster.gpuLabels",
        "servestack",
        sample="eks",
        also={"cluster.customGpuLabels": REMOVE},
        why="customGpuLabels is read only with gpuLabels custom",
    ),
    Edit("cluster.customGpuLabels.key", "cluster.customGpuLabels.key", "example.com/gpu", "eks"),
    Edit(
        "cluster.customGpuLabels.values",
        "cluster.customGpuLabels.values.L4",
        "l4-24gb",
        "eks",
    ),
    Edit("cluster.customGpuLabels.taint", "cluster.customGpuLabels.taint", "gpu-only", "eks"),
    Edit(
        "allowReplacements",
        "allowReplacements",
        [
            {
                "path": "deployments.vision.model.version",
                "from": "v1",
                "to": "v2",
                "reason": "approved in CHG-1",
            }
        ],
    ),
    # --- node pools ---------------------------------------------------------------------------
    Edit("nodePools.<name>.name", "nodePools.spare.name", "spare-2"),
    Edit("nodePools.<name>.gpu.type", "nodePools.spare.gpu.type", "L40S"),
    Edit(
        "nodePools.<name>.gpu.type",
        "nodePools.a100.gpu.type",
        "H100",
        sample="gke",
        also={"nodePools.a100.gpu.count": 8},
        why="GKE has H100 machines with 8 GPUs only",
    ),
    Edit("nodePools.<name>.gpu.count", "nodePools.spare.gpu.count", 4),
    Edit("nodePools.<name>.gpu.count", "nodePools.a100.gpu.count", 4, sample="gke"),
    Edit("nodePools.<name>.gpu.count", "nodePools.l4.gpu.count", 4, sample="eks"),
    Edit("nodePools.<name>.machineType", "nodePools.spare.machineType", "g5.2xlarge"),
    Edit("nodePools.<name>.gpu.mig", "nodePools.h100-wide.gpu.mig", "all-2g.20gb"),
    Edit("nodePools.<name>.gpu.mig", "nodePools.h100.gpu.mig", "all-1g.10gb", sample="eks"),
    Edit(
        "deployments.<name>.resources.gpu.mig",
        "deployments.embedder.resources.gpu.mig",
        "1g.20gb",
    ),
    Edit(
        "nodePools.<name>.machineType",
        "nodePools.l4.machineType",
        "g2-standard-8",
        sample="gke",
        also={"nodePools.l4.gpu.count": 1},
        why="g2-standard-8 carries one L4",
    ),
    Edit("nodePools.<name>.machineType", "nodePools.l4.machineType", "g6.2xlarge", sample="eks"),
    Edit("nodePools.<name>.minNodes", "nodePools.a100.minNodes", 1, sample="gke"),
    Edit("nodePools.<name>.minNodes", "nodePools.l4.minNodes", 1, sample="eks"),
    Edit("nodePools.<name>.maxNodes", "nodePools.a100.maxNodes", 6),
    Edit("nodePools.<name>.maxNodes", "nodePools.a100.maxNodes", 6, sample="gke"),
    Edit("nodePools.<name>.maxNodes", "nodePools.l4.maxNodes", 6, sample="eks"),
    Edit("nodePools.<name>.spot", "nodePools.a100.spot", True),
    Edit("nodePools.<name>.consolidateAfterSeconds", "nodePools.a100.consolidateAfterSeconds", 30),
    Edit(
        "nodePools.<name>.consolidateAfterSeconds",
        "nodePools.a100.consolidateAfterSeconds",
        30,
        sample="gke",
    ),
    Edit("nodePools.<name>.spot", "nodePools.a100.spot", True, sample="gke"),
    Edit("nodePools.<name>.spot", "nodePools.l4.spot", True, sample="eks"),
    Edit("nodePools.<name>.diskSizeGb", "nodePools.a100.diskSizeGb", 500, sample="gke"),
    Edit("nodePools.<name>.diskSizeGb", "nodePools.l4.diskSizeGb", 500, sample="eks"),
    # --- deployments: identity ----------------------------------------------------------------
    Edit("deployments.<name>.name", "deployments.ranker.name", "ranker-2"),
    Edit("deployments.<name>.description", "deployments.chat.description", "Chat (EU)"),
    Edit("deployments.<name>.description", "deployments.ranker.description", "Re-ranks"),
    Edit("deployments.<name>.model.id", "deployments.ranker.model.id", "model-002"),
    Edit("deployments.<name>.model.version", "deployments.ranker.model.version", "v1.5.0"),
    Edit("deployments.<name>.model.version", "deployments.vision.model.version", "v2.1.0"),
    Edit("deployments.<name>.model.version", "deployments.chat.model.version", "v3.0.1"),
    Edit("deployments.<name>.model.type", "deployments.ranker.model.type", "vision"),
    Edit(
        "deployments.<name>.model.image",
        "deployments.ranker.model.image",
        "registry.example.com/search/ranker:1.4.3",
    ),
    Edit(
        "deployments.<name>.processing",
        "deployments.ranker.processing",
        "async",
        also=ASYNC_RANKER,
        why="processing async needs a queue and no loadBalancer",
    ),
    # A Deployment under an autoscaler is created at its floor: a queue worker's is its own
    # count (the edit above leaves ranker's, 3, as it was).
    Edit(
        "deployments.<name>.processing",
        "deployments.ranker.processing",
        "async",
        also={**ASYNC_RANKER, "deployments.ranker.replicas": 1},
        why="processing async needs a queue and no loadBalancer; another count",
        tag=" at 1",
    ),
    Edit("deployments.<name>.environment", "deployments.chat.environment", "production"),
    Edit("deployments.<name>.environment", "deployments.chat.environment", "development"),
    Edit("deployments.<name>.namespace", "deployments.ranker.namespace", "search"),
    # --- deployments: resources ----------------------------------------------------------------
    Edit("deployments.<name>.resources.cpu", "deployments.ranker.resources.cpu", 3),
    Edit("deployments.<name>.resources.memory", "deployments.ranker.resources.memory", "12Gi"),
    Edit("deployments.<name>.resources.gpu.count", "deployments.chat.resources.gpu.count", 2),
    Edit("deployments.<name>.resources.gpu.type", "deployments.vision.resources.gpu.type", "A100"),
    Edit("deployments.<name>.resources.storage", "deployments.chat.resources.storage", "200Gi"),
    Edit(
        "deployments.<name>.resources.bandwidthMbps",
        "deployments.chat.resources.bandwidthMbps",
        2000,
    ),
    # --- deployments: scaling and lifecycle ----------------------------------------------------
    Edit("deployments.<name>.replicas", "deployments.ranker.replicas", 1),
    Edit("deployments.<name>.replicas", "deployments.embedder.replicas", 1),
    Edit("deployments.<name>.active", "deployments.ranker.active", False),
    Edit("deployments.<name>.active", "deployments.idle.active", True),
    Edit("deployments.<name>.active", "deployments.whisper.active", False),
    Edit("deployments.<name>.autoscaling.enabled", "deployments.chat.autoscaling.enabled", False),
    # chat's floor (2) is the environment's count: with a count of its own, it moves.
    Edit(
        "deployments.<name>.autoscaling.enabled",
        "deployments.chat.autoscaling.enabled",
        False,
        also={"deployments.chat.replicas": 3},
        why="chat's floor is the count the environment gives (2) unless it sets its own",
        tag=" at 3",
    ),
    Edit(
        "deployments.<name>.autoscaling.enabled", "deployments.whisper.autoscaling.enabled", False
    ),
    Edit("deployments.<name>.autoscaling.enabled", "deployments.digest.autoscaling.enabled", True),
    Edit(
        "deployments.<name>.autoscaling.minReplicas", "deployments.chat.autoscaling.minReplicas", 1
    ),
    Edit(
        "deployments.<name>.autoscaling.minReplicas",
        "deployments.whisper.autoscaling.minReplicas",
        1,
    ),
    Edit(
        "deployments.<name>.autoscaling.maxReplicas", "deployments.chat.autoscaling.maxReplicas", 8
    ),
    Edit(
        "deployments.<name>.autoscaling.maxReplicas",
        "deployments.whisper.autoscaling.maxReplicas",
        8,
    ),
    Edit(
        "deployments.<name>.autoscaling.targetCpuUtilization",
        "deployments.chat.autoscaling.targetCpuUtilization",
        75,
    ),
    Edit(
        "deployments.<name>.autoscaling.targetCpuUtilization",
        "deployments.whisper.autoscaling.targetCpuUtilization",
        90,
    ),
    Edit(
        "deployments.<name>.autoscaling.targetMemoryUtilization",
        "deployments.chat.autoscaling.targetMemoryUtilization",
        85,
    ),
    Edit(
        "deployments.<name>.autoscaling.targetGpuUtilization",
        "deployments.chat.autoscaling.targetGpuUtilization",
        70,
    ),
    Edit(
        "deployments.<name>.autoscaling.scaleDownStabilizationSeconds",
        "deployments.chat.autoscaling.scaleDownStabilizationSeconds",
        200,
    ),
    Edit(
        "deployments.<name>.autoscaling.scaleDownStabilizationSeconds",
        "deployments.whisper.autoscaling.scaleDownStabilizationSeconds",
        200,
    ),
    # --- deployments: traffic -------------------------------------------------------------------
    Edit(
        "deployments.<name>.loadBalancer.enabled", "deployments.ranker.loadBalancer.enabled", False
    ),
    Edit(
        "deployments.<name>.loadBalancer.algorithm",
        "deployments.chat.loadBalancer.algorithm",
        "round_robin",
    ),
    Edit(
        "deployments.<name>.loadBalancer.stickySessions",
        "deployments.ranker.loadBalancer.stickySessions",
        False,
    ),
    Edit(
        "deployments.<name>.loadBalancer.healthCheck.path",
        "deployments.chat.loadBalancer.healthCheck.path",
        "/healthz",
    ),
    Edit(
        "deployments.<name>.loadBalancer.healthCheck.intervalSeconds",
        "deployments.chat.loadBalancer.healthCheck.intervalSeconds",
        10,
    ),
    Edit(
        "deployments.<name>.loadBalancer.healthCheck.timeoutSeconds",
        "deployments.chat.loadBalancer.healthCheck.timeoutSeconds",
        5,
    ),
    Edit(
        "deployments.<name>.loadBalancer.healthCheck.failureThreshold",
        "deployments.chat.loadBalancer.healthCheck.failureThreshold",
        6,
    ),
    Edit("deployments.<name>.port", "deployments.ranker.port", 9090),
    Edit("deployments.<name>.route.gateway.name", "deployments.chat.route.gateway.name", "edge"),
    Edit("deployments.<name>.route.gateway.name", "deployments.chat.route", REMOVE),
    Edit(
        "deployments.<name>.route.gateway.name",
        "deployments.ranker.route",
        {"gateway": {"name": "public"}},
    ),
    Edit(
        "deployments.<name>.route.gateway.namespace",
        "deployments.chat.route.gateway.namespace",
        "edge",
    ),
    Edit(
        "deployments.<name>.route.gateway.namespace",
        "deployments.chat.route.gateway.namespace",
        REMOVE,
    ),
    Edit(
        "deployments.<name>.route.hostnames",
        "deployments.chat.route.hostnames",
        ["chat.example.com", "*.chat.example.org"],
    ),
    Edit("deployments.<name>.route.hostnames", "deployments.chat.route.hostnames", REMOVE),
    Edit("deployments.<name>.route.path", "deployments.chat.route.path", "/v2/chat"),
    # --- deployments: rollout strategy --------------------------------------------------------
    Edit(
        "deployments.<name>.strategy.type",
        "deployments.ranker.strategy.type",
        "canary",
        also=CANARY,
        why="canary needs weight, canaryVersion and canaryImage; maxSurge is rolling's",
    ),
    Edit(
        "deployments.<name>.strategy.type",
        "deployments.ranker.strategy.type",
        "blue_green",
        also=NOT_ROLLING,
        why="maxSurge and maxUnavailable are rolling's",
    ),
    Edit(
        "deployments.<name>.strategy.type",
        "deployments.chat.strategy.type",
        "rolling",
        also=ROLLING,
        why="weight and the canary track are canary's",
    ),
    Edit(
        "deployments.<name>.strategy.type",
        "deployments.chat.strategy.type",
        "blue_green",
        also=ROLLING,
        why="weight and the canary track are canary's",
    ),
    Edit("deployments.<name>.strategy.maxSurge", "deployments.ranker.strategy.maxSurge", 3),
    Edit(
        "deployments.<name>.strategy.maxUnavailable",
        "deployments.ranker.strategy.maxUnavailable",
        0,
    ),
    Edit("deployments.<name>.strategy.weight", "deployments.chat.strategy.weight", 25),
    Edit(
        "deployments.<name>.strategy.canaryVersion",
        "deployments.chat.strategy.canaryVersion",
        "v3.2.0",
    ),
    Edit(
        "deployments.<name>.strategy.canaryImage",
        "deployments.chat.strategy.canaryImage",
        "registry.example.com/llm/chat:3.2.0",
    ),
    Edit(
        "deployments.<name>.strategy.canaryReplicas", "deployments.chat.strategy.canaryReplicas", 3
    ),
    # The stable track moved alone: a new Deployment, the old one goes (a replacement) ...
    Edit("deployments.<name>.stableSlot", "deployments.ranker.stableSlot", "canary"),
    # ... or promote --shift's second update: the canary's Deployment serves as stable.
    Edit(
        "deployments.<name>.stableSlot",
        "deployments.chat.stableSlot",
        "canary",
        also={
            **ROLLING,
            "deployments.chat.strategy.type": "rolling",
            "deployments.chat.model.version": "v3.1.0",
            "deployments.chat.model.image": "registry.example.com/llm/chat:3.1.0",
        },
        why="the shift: the canary's version and image become the stable track's",
        tag="(shift)",
        keeps=("chat-canary",),
    ),
    # ... or, during a canary, the two tracks swap Deployments (each one's pods roll).
    Edit(
        "deployments.<name>.stableSlot",
        "deployments.chat.stableSlot",
        "canary",
        tag="(swap)",
    ),
    # ... and the stable track moved to the canary's slot while no canary runs.
    Edit(
        "deployments.<name>.stableSlot",
        "deployments.chat.stableSlot",
        "canary",
        also={**ROLLING, "deployments.chat.strategy.type": "rolling"},
        why="the canary goes, its Deployment takes the stable track's version",
        tag="(no shift)",
    ),
    # --- deployments: async workers and config -----------------------------------------------
    Edit("deployments.<name>.queue.kind", "deployments.whisper.queue.kind", "redis"),
    Edit("deployments.<name>.queue.name", "deployments.whisper.queue.name", "transcripts-eu"),
    Edit("deployments.<name>.queue.targetDepth", "deployments.whisper.queue.targetDepth", 50),
    Edit(
        "deployments.<name>.queue.activationDepth", "deployments.whisper.queue.activationDepth", 10
    ),
    Edit(
        "deployments.<name>.queue.activationDepth",
        "deployments.embedder.queue.activationDepth",
        1,
    ),
    Edit(
        "deployments.<name>.queue.connectionSecretKey",
        "deployments.whisper.queue.connectionSecretKey",
        "uri",
    ),
    Edit(
        "deployments.<name>.queue.connectionSecret",
        "deployments.whisper.queue.connectionSecret",
        "rabbitmq-eu",
    ),
    Edit("deployments.<name>.env", "deployments.ranker.env.BATCH", "16"),
    Edit("deployments.<name>.env", "deployments.ranker.env.AAA_FIRST", "1"),
    Edit("deployments.<name>.env", "deployments.ranker.env.LOG_LEVEL", REMOVE),
    Edit("deployments.<name>.secretEnv", "deployments.chat.secretEnv", ["API_TOKEN", "HF_TOKEN"]),
    Edit("deployments.<name>.secretEnv", "deployments.chat.secretEnv", []),
    Edit("deployments.<name>.imagePullSecrets", "deployments.chat.imagePullSecrets", ["other"]),
    Edit("deployments.<name>.imagePullSecrets", "deployments.ranker.imagePullSecrets", ["own"]),
    Edit(
        "deployments.<name>.resources.sharedMemory",
        "deployments.chat.resources.sharedMemory",
        "16Gi",
    ),
    Edit(
        "deployments.<name>.resources.sharedMemory",
        "deployments.ranker.resources.sharedMemory",
        "1Gi",
    ),
    Edit(
        "deployments.<name>.resources.sharedMemory",
        "deployments.chat.resources.sharedMemory",
        REMOVE,
    ),
    Edit(
        "deployments.<name>.model.storage.pvc",
        "deployments.vision.model.storage.pvc",
        "resnet-weights-2",
    ),
    Edit(
        "deployments.<name>.model.storage.pvc",
        "deployments.chat.model.storage.pvc",
        "chat-weights",
        also={
            "deployments.chat.model.storage.uri": REMOVE,
            "deployments.chat.model.storage.size": REMOVE,
        },
        why="a PVC replaces the fetched copy: uri and size go",
    ),
    Edit(
        "deployments.<name>.model.storage.uri",
        "deployments.chat.model.storage.uri",
        "s3://models/chat/v3.1.0",
    ),
    Edit(
        "deployments.<name>.model.storage.uri",
        "deployments.vision.model.storage.uri",
        "gs://models/resnet/v2",
        also={
            "deployments.vision.model.storage.pvc": REMOVE,
            "deployments.vision.model.storage.size": "20Gi",
        },
        why="a URI replaces the PVC and needs a size",
    ),
    # The whole section goes: its volume, mount and MODEL_PATH with it.
    # The whole section goes (left out, or null): its volume and mount with it.
    *(
        Edit(f"deployments.<name>.model.storage.{key}", f"deployments.{name}.model.storage", gone)
        for key, gone in (("pvc", REMOVE), ("uri", None))
        for name in ("vision", "chat")
    ),
    Edit("deployments.<name>.model.storage.size", "deployments.chat.model.storage.size", "100Gi"),
    Edit(
        "deployments.<name>.model.storage.mountPath",
        "deployments.chat.model.storage.mountPath",
        "/weights",
    ),
    Edit(
        "deployments.<name>.model.storage.mountPath",
        "deployments.vision.model.storage.mountPath",
        "/weights",
    ),
    Edit(
        "deployments.<name>.model.storage.fetchImage",
        "deployments.chat.model.storage.fetchImage",
        "registry.example.com/tools/fetch:1",
    ),
    Edit("deployments.<name>.command", "deployments.chat.command", ["vllm", "serve"]),
    Edit("deployments.<name>.command", "deployments.ranker.command", ["ranker"]),
    Edit("deployments.<name>.args", "deployments.chat.args", ["--tensor-parallel-size", "2"]),
    Edit("deployments.<name>.args", "deployments.chat.args", REMOVE),
    Edit("deployments.<name>.priorityClassName", "deployments.chat.priorityClassName", "llm-low"),
    Edit("deployments.<name>.priorityClassName", "deployments.ranker.priorityClassName", "batch"),
    Edit("deployments.<name>.topologySpread.node", "deployments.chat.topologySpread.node", "off"),
    Edit(
        "deployments.<name>.topologySpread.node", "deployments.ranker.topologySpread.node", "prefer"
    ),
    Edit(
        "deployments.<name>.topologySpread.zone", "deployments.chat.topologySpread.zone", "require"
    ),
    Edit(
        "deployments.<name>.topologySpread.zone", "deployments.ranker.topologySpread.zone", "prefer"
    ),
    Edit(
        "deployments.<name>.affinity.nodeRequirements",
        "deployments.chat.affinity.nodeRequirements",
        [{"key": "example.com/pool", "operator": "Exists"}],
    ),
    Edit(
        "deployments.<name>.affinity.nodeRequirements",
        "deployments.ranker.affinity.nodeRequirements",
        [{"key": "example.com/spot", "operator": "NotIn", "values": ["true"]}],
    ),
    Edit(
        "deployments.<name>.affinity.podAntiAffinity",
        "deployments.chat.affinity.podAntiAffinity",
        "require",
    ),
    Edit(
        "deployments.<name>.affinity.podAntiAffinity",
        "deployments.ranker.affinity.podAntiAffinity",
        "prefer",
    ),
    Edit("deployments.<name>.tags", "deployments.chat.tags.team", "nlp"),
    Edit("deployments.<name>.tags", "deployments.chat.tags.cost-center", "ml-42"),
    # --- deployments: monitoring ----------------------------------------------------------------
    Edit(f"{MON}.enabled", "deployments.chat.monitoring.enabled", False),
    Edit(f"{MON}.enabled", "deployments.whisper.monitoring.enabled", False),
    Edit(f"{MON}.enabled", "deployments.embedder.monitoring.enabled", True),
    Edit(f"{MON}.scrape.path", "deployments.chat.monitoring.scrape.path", "/stats"),
    Edit(f"{MON}.scrape.path", "deployments.whisper.monitoring.scrape.path", "/stats"),
    Edit(f"{MON}.scrape.port", "deployments.chat.monitoring.scrape.port", REMOVE),
    Edit(f"{MON}.scrape.port", "deployments.ranker.monitoring.scrape.port", 9100),
    Edit(f"{MON}.scrape.port", "deployments.whisper.monitoring.scrape.port", 9100),
    Edit(f"{MON}.scrape.intervalSeconds", "deployments.chat.monitoring.scrape.intervalSeconds", 60),
    Edit(
        f"{MON}.scrape.intervalSeconds", "deployments.whisper.monitoring.scrape.intervalSeconds", 60
    ),
    Edit(f"{MON}.slo.latencyP99Ms", "deployments.chat.monitoring.slo.latencyP99Ms", 1000),
    Edit(f"{MON}.slo.errorRatePercent", "deployments.chat.monitoring.slo.errorRatePercent", 2),
    Edit(
        f"{MON}.slo.availabilityPercent",
        "deployments.chat.monitoring.slo.availabilityPercent",
        99.9,
    ),
    *(
        Edit(f"{MON}.alerts.{alert}.{key}", f"deployments.chat.monitoring.alerts.{alert}.{key}", v)
        for alert in ("errorRate", "latency", "replicasUnavailable", "gpuSaturation", "canaryWorse")
        for key, v in (
            ("enabled", False),
            # The sample's gpuSaturation alert is already at info.
            ("severity", "warning" if alert == "gpuSaturation" else "info"),
        )
    ),
    Edit(
        f"{MON}.metrics.requestDuration",
        "deployments.chat.monitoring.metrics.requestDuration",
        "chat_latency_seconds",
    ),
    Edit(f"{MON}.metrics.requests", "deployments.chat.monitoring.metrics.requests", "chat_total"),
    Edit(f"{MON}.metrics.statusLabel", "deployments.chat.monitoring.metrics.statusLabel", "code"),
    Edit(f"{MON}.metrics.routeLabel", "deployments.chat.monitoring.metrics.routeLabel", "path"),
    Edit(f"{MON}.metrics.route", "deployments.chat.monitoring.metrics.route", "/v1/chat"),
    Edit(f"{MON}.namespace", "deployments.chat.monitoring.namespace", "monitoring"),
    Edit(
        f"{MON}.prometheusUrl",
        "deployments.chat.monitoring.prometheusUrl",
        "http://prom.example:9090",
    ),
)


# --- applying an edit ---------------------------------------------------------------------------


def _set(raw: dict[str, Any], path: str, value: Any) -> None:
    parts = FieldPath.parse(path).parts
    node: Any = raw
    i = 0
    while i < len(parts) - 1:
        key = parts[i]
        if key in ("deployments", "nodePools") and i + 1 < len(parts) - 1:
            node = next(item for item in node[key] if item["name"] == parts[i + 1])
            i += 2
            continue
        node = node.setdefault(key, {})
        i += 1
    if value is REMOVE:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = copy.deepcopy(value)


@dataclass
class Outcome:
    edit: Edit
    old: StackConfig
    new: StackConfig
    built_old: Rendered
    built_new: Rendered
    #: Changed config paths (as `servestack diff` names them) -> effect.
    diff: dict[str, Effect]
    #: (resource, property, add | delete | update) of every manifest change.
    changed: list[tuple[Key, Prop, str]]


def apply(edit: Edit) -> Outcome:
    raw = copy.deepcopy(SAMPLES[edit.sample])
    old = parse_config(raw)
    for path, value in {edit.path: edit.value, **edit.also}.items():
        _set(raw, path, value)
    new = parse_config(raw)
    built_old, built_new = render_stack(old), render_stack(new)
    changed: list[tuple[Key, Prop, str]] = []
    for key in built_old.resources.keys() | built_new.resources.keys():
        a, b = built_old.resources.get(key), built_new.resources.get(key)
        if a is None:
            changed.append((key, (), ADD))
        elif b is None:
            changed.append((key, (), DELETE))
        else:
            changed += [(key, p, c) for p, c in changes(a.manifest, b.manifest)]
    diff = {c.path: c.effect for c in diff_configs(old, new).changes}
    return Outcome(edit, old, new, built_old, built_new, diff, changed)


def _related(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def cause(out: Outcome, key: Key, prop: Prop, change: str) -> Cause:
    found = Cause()
    if change != ADD and key in out.built_old.resources:
        found |= out.built_old.resources[key].cause(prop, change)
    if change != DELETE and key in out.built_new.resources:
        found |= out.built_new.resources[key].cause(prop, change)
    return found


def _items(edit: Edit, out: Outcome) -> set[str | None]:
    """The deployment or node pool an edit is about, under its old and new name."""
    item = FieldPath.parse(edit.path).item_name
    renamed = edit.value if edit.field.endswith("<name>.name") else None
    return {item, renamed}


def _names_field(mark_field: str, edit: Edit, items: set[str | None]) -> bool:
    if edit.field in MAP_FIELDS:
        return mark_field == edit.path
    fp = FieldPath.parse(mark_field)
    return table_key(mark_field) == edit.field and fp.item_name in items


def marked(out: Outcome) -> set[tuple[Key, Prop, bool]]:
    """Every (resource, property) whose mark names the edited field, in either build, and
    whether it names it only as the reason the property exists."""
    items = _items(out.edit, out)
    found = set()
    for built in (out.built_old, out.built_new):
        for key, record in built.resources.items():
            for prop, mark in record.marks.items():
                value = any(_names_field(f, out.edit, items) for f in mark.fields | mark.via)
                presence = any(_names_field(f, out.edit, items) for f in mark.when or ())
                if value or presence:
                    found.add((key, prop, not value))
    return found


OUTCOMES = {e.id: e for e in EDITS}


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Outcome]:
    return {e.id: apply(e) for e in EDITS}


# --- the tests ----------------------------------------------------------------------------------


def test_every_rule_of_the_table_is_edited() -> None:
    assert sorted(set(TABLE) - {e.field for e in EDITS}) == []
    assert len({e.id for e in EDITS}) == len(EDITS)


@pytest.mark.parametrize("edit", EDITS, ids=lambda e: e.id)
def test_the_diff_names_the_edit(edit: Edit, outcomes: dict[str, Outcome]) -> None:
    out = outcomes[edit.id]
    if edit.field == "allowReplacements":
        # Review metadata: read from the new file by the gate, never a change itself.
        assert (out.diff, out.changed) == ({}, [])
        return
    assert any(_related(edit.path, p) for p in out.diff), out.diff


@pytest.mark.parametrize("edit", EDITS, ids=lambda e: e.id)
def test_every_change_is_traced_to_the_edit(edit: Edit, outcomes: dict[str, Outcome]) -> None:
    out = outcomes[edit.id]
    untraced = [
        f"{key.type}/{key.name} {prop_text(prop) or '(resource)'} {change}: "
        f"{sorted(cause(out, key, prop, change).all)}"
        for key, prop, change in out.changed
        if not any(_related(d, f) for d in out.diff for f in cause(out, key, prop, change).all)
    ]
    assert untraced == []


def _touched(
    marks: set[tuple[Key, Prop, bool]], changed: set[tuple[Key, Prop]]
) -> set[tuple[Key, Prop, bool]]:
    """Marks a change reaches: a change at, above or (for a value) under the marked path;
    a mark that only says why a property exists needs it to appear or go."""
    by_key: dict[Key, list[Prop]] = defaultdict(list)
    for key, prop in changed:
        by_key[key].append(prop)
    out = set()
    for key, mark, presence in marks:
        for prop in by_key.get(key, ()):
            reach = len(prop) if presence else min(len(prop), len(mark))
            if (len(prop) <= len(mark) or not presence) and prop[:reach] == mark[:reach]:
                out.add((key, mark, presence))
                break
    return out


def _by_field() -> Iterator[tuple[str, list[Edit]]]:
    groups: dict[str, list[Edit]] = defaultdict(list)
    for e in EDITS:
        groups[e.field].append(e)
    yield from sorted(groups.items())


@pytest.mark.parametrize(("table_field", "edits"), list(_by_field()), ids=lambda x: str(x)[:60])
def test_the_record_names_only_what_the_field_changes(
    table_field: str, edits: list[Edit], outcomes: dict[str, Outcome]
) -> None:
    recorded: set[tuple[Key, Prop, bool]] = set()
    changed: set[tuple[Key, Prop]] = set()
    for e in edits:
        out = outcomes[e.id]
        recorded |= marked(out)
        changed |= {(k, p) for k, p, _ in out.changed}
    kept = {name for e in edits for name in e.keeps}
    never = {m for m in recorded - _touched(recorded, changed) if m[0].name not in kept}
    assert sorted(f"{k.type}/{k.name} {prop_text(p) or '(resource)'}" for k, p, _ in never) == []


@pytest.mark.parametrize("edit", EDITS, ids=lambda e: e.id)
def test_the_table_effect_is_what_changes(edit: Edit, outcomes: dict[str, Outcome]) -> None:
    out = outcomes[edit.id]
    rule = TABLE[edit.field]
    items = _items(edit, out)
    old_item = _item(out.old, edit, items)
    new_item = _item(out.new, edit, items)
    expected = rule.resolve(EditContext(old_item, new_item, out.old, out.new)).effect
    if expected is Effect.FORBIDDEN:
        refused = forbidden_edits(identity(out.old), out.new)
        assert [p.path for p in refused] == [edit.path]
        return
    per_resource: dict[Key, list[Prop]] = defaultdict(list)
    ops: dict[Key, str] = {}
    for key, prop, change in out.changed:
        if prop == ():
            ops[key] = "create" if change == ADD else "delete"
        else:
            per_resource[key].append(prop)
            ops.setdefault(key, "update")
    observed = lifecycle.effect_of(
        lifecycle.ResourceChange(k.type, k.name, op, tuple(per_resource[k]))
        for k, op in ops.items()
    )
    assert (observed or Effect.NONE) is expected, f"table: {expected}; manifests: " + "; ".join(
        f"{op} {k.type}/{k.name} {[prop_text(p) for p in per_resource[k]]}" for k, op in ops.items()
    )


def _item(stack: StackConfig, edit: Edit, names: set[str | None]) -> Any:
    collection = FieldPath.parse(edit.path).collection
    if collection is None:
        return None
    items = stack.deployments if collection == "deployments" else stack.node_pools
    return next((i for i in items if i.name in names), None)


def test_untouched_fields_change_nothing() -> None:
    """Rendering the same config twice changes nothing: a changed property always has a cause."""
    built = render_stack(parse_config(SAMPLES["karpenter"]))
    again = render_stack(parse_config(SAMPLES["karpenter"]))
    assert {k: r.manifest for k, r in built.resources.items()} == {
        k: r.manifest for k, r in again.resources.items()
    }


def test_a_change_nothing_records_would_be_untraced() -> None:
    """The soundness check above can fail: a property without marks has no cause."""
    built = render_stack(parse_config(SAMPLES["karpenter"]))
    record = built.resources[Key("kubernetes:apps/v1:Deployment", "ranker")]
    constant = ("spec", "revisionHistoryLimit")
    assert record.exists(constant)
    assert cause_of(record, constant) == Cause()


def cause_of(record: Any, prop: Prop) -> Cause:
    return record.cause(prop, UPDATE)
