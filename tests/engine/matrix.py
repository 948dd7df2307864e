"""The edit matrix: single-field edits spanning the four components and the effect classes
(``no change`` included: an edit nothing deployed reads, where the engine must plan nothing).

Shared by the engine tier (what the real preview does) and the review tier (what `diff`
and `explain` say), so both are checked against the same edits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from servestack.config.models import Environment
from servestack.review.allowances import GATED, shown
from servestack.review.predict import Prediction, predict


@dataclass(frozen=True)
class Edit:
    stack: str
    path: str
    value: Any
    effect: str
    component: str

    @property
    def id(self) -> str:
        return f"{self.stack}:{self.path}={self.value}"

    @property
    def fixture(self) -> str:
        """File name of this edit's saved preview under tests/review/fixtures/."""
        name = self.id.replace("/", "_").replace(":", "__")
        # List values (imagePullSecrets, command): no quotes or brackets in file names.
        return "".join(c for c in name if c not in "'\"[]{},") + ".json"


EDITS: tuple[Edit, ...] = (
    # ModelDeployment
    Edit("prod", "deployments.bert-sentiment.resources.cpu", 8, "restart", "ModelDeployment"),
    Edit("prod", "deployments.bert-sentiment.resources.gpu.count", 2, "restart", "ModelDeployment"),
    Edit("prod", "deployments.bert-sentiment.env.LOG_LEVEL", "debug", "restart", "ModelDeployment"),
    Edit(
        "prod",
        "deployments.bert-sentiment.strategy.canaryVersion",
        "v2.3.0",
        "restart",
        "ModelDeployment",
    ),
    Edit(
        "prod",
        "deployments.bert-sentiment.description",
        "Sentiment API (EU)",
        "in-place",
        "ModelDeployment",
    ),
    Edit(
        "prod",
        "deployments.bert-sentiment.tags.cost-center",
        "ml-42",
        "in-place",
        "ModelDeployment",
    ),
    Edit("prod", "deployments.bert-sentiment.active", False, "in-place", "ModelDeployment"),
    Edit("prod", "deployments.llama-chat.model.version", "v3.1.0", "replace", "ModelDeployment"),
    Edit("prod", "deployments.bert-sentiment.model.type", "stt", "forbidden", "ModelDeployment"),
    Edit("staging", "namespace", "models-eu", "replace", "ModelDeployment"),
    Edit("staging", "cluster.name", "staging-eu-2", "replace", "ModelDeployment"),
    Edit("staging", "deployments.resnet-vision.replicas", 3, "in-place", "ModelDeployment"),
    Edit(
        "staging",
        "deployments.resnet-vision.model.image",
        "registry.example.com/vision/resnet:2024.12",
        "restart",
        "ModelDeployment",
    ),
    # stableSlot on its own (promote --shift flips it with the version, the image and the
    # strategy: tests/engine/test_ops.py). Without a canary the stable track moves to the
    # other Deployment: a new one, then the old one goes. During a canary the two tracks
    # swap Deployments: each one's pods roll to the other track's version.
    Edit("dev", "deployments.bert-sentiment.stableSlot", "canary", "replace", "ModelDeployment"),
    Edit("prod", "deployments.bert-sentiment.stableSlot", "canary", "restart", "ModelDeployment"),
    # No change: replicas of an autoscaled deployment is the autoscaler's (an HPA here)
    Edit("prod", "deployments.bert-sentiment.replicas", 3, "no change", "ModelDeployment"),
    # Autoscaler
    Edit(
        "prod", "deployments.bert-sentiment.autoscaling.maxReplicas", 12, "in-place", "Autoscaler"
    ),
    # An autoscaler given to a fixed deployment (after its replicas: 3 above) and taken from
    # an autoscaled one: the Deployment keeps its live count, then gets replicas back
    # (docs/operations.md, "The autoscaler's replica count").
    Edit(
        "staging",
        "deployments.resnet-vision.autoscaling",
        {"minReplicas": 1, "maxReplicas": 3, "targetCpuUtilization": 70},
        "in-place",
        "Autoscaler",
    ),
    Edit("prod", "deployments.bert-sentiment.autoscaling.enabled", False, "in-place", "Autoscaler"),
    Edit(
        "prod",
        "deployments.llama-chat.autoscaling.targetGpuUtilization",
        80,
        "in-place",
        "Autoscaler",
    ),
    # Autoscaler: an async worker's KEDA ScaledObject
    Edit(
        "dev",
        "deployments.whisper-batch.autoscaling.targetCpuUtilization",
        90,
        "in-place",
        "Autoscaler",
    ),
    Edit("dev", "deployments.whisper-batch.queue.targetDepth", 50, "in-place", "Autoscaler"),
    # ... and a queue worker's with bounds is its KEDA ScaledObject's
    Edit("dev", "deployments.whisper-batch.replicas", 3, "no change", "Autoscaler"),
    Edit(
        "dev",
        "deployments.whisper-batch.queue.name",
        "transcriptions-eu",
        "restart",
        "ModelDeployment",
    ),
    # Pod settings and image pull Secrets (issue 23): all in the pod template
    Edit("dev", "imagePullSecrets", ["regcred", "mirror"], "restart", "ModelDeployment"),
    Edit(
        "prod",
        "deployments.llama-chat.imagePullSecrets",
        ["llm-registry"],
        "restart",
        "ModelDeployment",
    ),
    Edit(
        "prod",
        "deployments.llama-chat.resources.sharedMemory",
        "32Gi",
        "restart",
        "ModelDeployment",
    ),
    Edit(
        "prod",
        "deployments.llama-chat.command",
        ["python", "-m", "vllm.entrypoints.openai.api_server"],
        "restart",
        "ModelDeployment",
    ),
    Edit(
        "prod",
        "deployments.llama-chat.args",
        ["--tensor-parallel-size", "2"],
        "restart",
        "ModelDeployment",
    ),
    Edit(
        "prod", "deployments.llama-chat.priorityClassName", "llm-high", "restart", "ModelDeployment"
    ),
    Edit(
        "prod",
        "deployments.bert-sentiment.topologySpread.node",
        "require",
        "restart",
        "ModelDeployment",
    ),
    Edit(
        "prod", "deployments.llama-chat.topologySpread.zone", "prefer", "restart", "ModelDeployment"
    ),
    Edit(
        "prod",
        "deployments.llama-chat.affinity.nodeRequirements",
        # Keep the model off spot capacity (nodes without the label satisfy NotIn).
        [{"key": "karpenter.sh/capacity-type", "operator": "NotIn", "values": ["spot"]}],
        "restart",
        "ModelDeployment",
    ),
    Edit(
        "prod",
        "deployments.llama-chat.affinity.podAntiAffinity",
        "prefer",
        "restart",
        "ModelDeployment",
    ),
    # Model storage: the init container fetches the weights when a pod starts
    Edit(
        "dev",
        "deployments.bert-sentiment.model.storage.uri",
        "s3://models-dev/nlp/bert-sentiment/v2.1.1",
        "restart",
        "ModelDeployment",
    ),
    Edit(
        "dev", "deployments.bert-sentiment.model.storage.size", "8Gi", "restart", "ModelDeployment"
    ),
    # ... and a claim switched for another: a new volume of the pod template, never a replacement
    Edit(
        "existing",
        "deployments.chat.model.storage.pvc",
        "chat-weights-v2",
        "restart",
        "ModelDeployment",
    ),
    # Queue workers: scale to zero above an activation threshold; the Secret's key
    Edit("dev", "deployments.whisper-batch.autoscaling.minReplicas", 0, "in-place", "Autoscaler"),
    Edit("dev", "deployments.whisper-batch.queue.activationDepth", 10, "in-place", "Autoscaler"),
    Edit(
        "dev",
        "deployments.whisper-batch.queue.connectionSecretKey",
        "amqp-url",
        "restart",
        "ModelDeployment",
    ),
    # LoadBalancer (the weight moves the mesh's routes and the Gateway API HTTPRoute's)
    Edit("prod", "deployments.bert-sentiment.strategy.weight", 25, "in-place", "LoadBalancer"),
    Edit(
        "prod",
        "deployments.bert-sentiment.route.hostnames",
        ["sentiment.example.com", "sentiment.example.eu"],
        "in-place",
        "LoadBalancer",
    ),
    Edit(
        "prod",
        "deployments.bert-sentiment.loadBalancer.algorithm",
        "least_connections",
        "in-place",
        "LoadBalancer",
    ),
    Edit(
        "prod",
        "deployments.bert-sentiment.loadBalancer.healthCheck.path",
        "/healthz",
        "restart",
        "LoadBalancer",
    ),
    # GpuNodePool
    Edit("prod", "nodePools.a100.maxNodes", 6, "in-place", "GpuNodePool"),
    # MIG: repartitioning a pool is new nodes; another slice profile rolls the pods
    Edit("mig", "nodePools.h200-spare.gpu.mig", "all-4g.71gb", "replace", "GpuNodePool"),
    Edit("mig", "deployments.tagger.resources.gpu.mig", "1g.35gb", "restart", "ModelDeployment"),
    Edit("mig", "deployments.tagger.replicas", 3, "in-place", "ModelDeployment"),
    Edit("prod", "nodePools.a100.spot", True, "replace", "GpuNodePool"),
    # The node class reference: the server refuses an in-place change of its group and kind
    Edit("staging", "cluster.nodeClass.name", "gpu-al2023-v2", "replace", "GpuNodePool"),
    # GPU node labels: pods on an existing cluster follow them; pools get new nodes
    Edit(
        "existing",
        "deployments.chat.description",
        "Chat completions (EU)",
        "in-place",
        "ModelDeployment",
    ),
    Edit("existing", "cluster.gpuLabels", "servestack", "restart", "ModelDeployment"),
    Edit("prod", "cluster.gpuLabels", "gpu-operator", "replace", "GpuNodePool"),
    Edit("dev", "cluster.gpuLabels", "gpu-operator", "no change", "ModelDeployment"),
)


#: The reason the matrix gives the production gate for the replacements it previews.
REASON = "edit matrix: the replacement under test"


def as_reviewed(text: str, edit: Edit) -> Prediction:
    """The edit as a reviewer ships it. In production a replacement or deletion needs the
    `allowReplacements` entry `servestack diff` asks for, or the program refuses it before
    the engine plans anything: the entry is added here, naming exactly this edit."""
    found = predict(text, {edit.path: edit.value})
    entries = [
        {"path": c.path, "from": shown(c.before), "to": shown(c.after), "reason": REASON}
        for c in found.diff.changes
        if c.effect in GATED
    ]
    if not entries or Environment.production not in (
        found.before.environment,
        found.after.environment,
    ):
        return found
    return predict(text, {edit.path: edit.value, "allowReplacements": entries})
