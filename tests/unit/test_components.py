"""Component tier: the program and components under Pulumi mocks, recording every resource."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from servestack import ConfigError, GpuNodePool, ModelDeployment, parse_stack
from servestack.config.validation import read_stack_file
from servestack.program.stack import build, main, stack_config
from tests.mocks import Recorder, RecordingMonitor, run_program
from tests.unit.specs import (
    STACKS,
    deployment,
    deployment_raw,
    run_stack,
    stack_raw,
)
from tests.unit.specs import stack_config as stack_file_config

PROVIDER = "pulumi:providers:kubernetes"
NS = "kubernetes:core/v1:Namespace"
MD = "servestack:index:ModelDeployment"
AS = "servestack:index:Autoscaler"
LB = "servestack:index:LoadBalancer"
GNP = "servestack:index:GpuNodePool"
SA = "kubernetes:core/v1:ServiceAccount"
DEP = "kubernetes:apps/v1:Deployment"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
SVC = "kubernetes:core/v1:Service"
DR = "kubernetes:networking.istio.io/v1:DestinationRule"
VS = "kubernetes:networking.istio.io/v1:VirtualService"
SO = "kubernetes:keda.sh/v1alpha1:ScaledObject"
NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
NP = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
SM = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
PM = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
PR = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
CM = "kubernetes:core/v1:ConfigMap"
HTTP_ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"

Tree = set[tuple[str, str, str | None]]


def of(typ: str, name: str) -> str:
    return f"{typ}::{name}"


def tree(rec: Recorder) -> Tree:
    return {(r.type, r.name, r.parent) for r in rec.resources}


def model(
    name: str,
    *,
    pdb: bool = False,
    autoscaler: str | None = None,
    lb: bool = True,
    workloads: tuple[str, ...] | None = None,
    routes: bool = False,
    monitoring: bool = False,
    gateway: bool = False,
) -> Tree:
    """The resources of one ModelDeployment, each with its parent."""
    md = of(MD, name)
    out: Tree = {(MD, name, None), (SA, name, md), (NP, f"{name}-ingress", md)}
    out |= {(DEP, w, md) for w in (workloads or (name,))}
    if pdb:
        out.add((PDB, f"{name}-pdb", md))
    if autoscaler:
        out |= {(AS, name, md), (autoscaler, name, of(AS, name))}
    if lb:
        out |= {(LB, name, md), (SVC, name, of(LB, name)), (DR, f"{name}-lb", of(LB, name))}
    if routes:
        out.add((VS, f"{name}-routes", of(LB, name)))
    if gateway:
        lb_of = of(LB, name)
        out |= {(HTTP_ROUTE, f"{name}-route", lb_of), (SVC, f"{name}-stable", lb_of)}
        if routes:
            out.add((SVC, f"{name}-canary", lb_of))
    if monitoring:
        out |= {
            (SM if lb else PM, name, md),
            (PR, name, md),
            (CM, f"{name}-dashboard", md),
            (NP, f"{name}-metrics", md),
        }
    return out


EXPECTED: dict[str, Tree] = {
    "dev": {
        (PROVIDER, "k8s-dev-local", None),
        (NS, "models-dev", None),
        *model("bert-sentiment"),
        *model("whisper-batch", autoscaler=SO, lb=False),
    },
    "staging": {
        (PROVIDER, "k8s-staging-eu-1", None),
        (NS, "models-staging", None),
        (GNP, "t4", None),
        (NODEPOOL, "t4", of(GNP, "t4")),
        *model("bert-sentiment", pdb=True),
        *model("resnet-vision"),
    },
    "prod": {
        (PROVIDER, "k8s-prod-eu-1", None),
        (NS, "models", None),
        (GNP, "a100", None),
        (NODEPOOL, "a100", of(GNP, "a100")),
        *model(
            "bert-sentiment",
            pdb=True,
            autoscaler=HPA,
            routes=True,
            workloads=("bert-sentiment", "bert-sentiment-canary"),
            monitoring=True,
            gateway=True,
        ),
        *model(
            "llama-chat",
            pdb=True,
            autoscaler=HPA,
            workloads=("llama-chat-v3-0-1",),
            monitoring=True,
        ),
    },
}

# (stack, Deployment name) -> (replicas or None when the HPA/KEDA owns it, image)
WORKLOADS = {
    "dev": {
        "bert-sentiment": (1, "registry.example.com/nlp/bert-sentiment:2.1.0"),
        # Under an autoscaler: its floor, written when the Deployment is created (and never
        # again: test_the_autoscalers_deployment_ignores_its_count).
        "whisper-batch": (1, "registry.example.com/speech/whisper-worker:1.3.0"),
    },
    "staging": {
        "bert-sentiment": (2, "registry.example.com/nlp/bert-sentiment:2.1.0"),
        "resnet-vision": (1, "registry.example.com/vision/resnet:2024.11"),
    },
    "prod": {
        "bert-sentiment": (
            2,
            "registry.example.com/nlp/bert-sentiment:2.1.0@sha256:6fedc3015693be31c4bf8b5277f824c3a3140ed95e918fc4f4a4a95caa8c193c",
        ),
        "bert-sentiment-canary": (
            1,
            "registry.example.com/nlp/bert-sentiment:2.2.0@sha256:fd8c855a052ae88b15d74223f79ba807d8c10c7aaa5e4174f8874bb2a97a6f1c",
        ),
        "llama-chat-v3-0-1": (
            2,
            "registry.example.com/llm/llama-chat:3.0.1@sha256:14ba8079e1b86c81c20c3b76c5e38954d88b71288e3caa76cdc098b3d8a173ff",
        ),
    },
}


@pytest.fixture(scope="module")
def recorded() -> dict[str, Recorder]:
    with pytest.MonkeyPatch.context() as env:
        env.delenv("SERVESTACK_RENDER_ROOT", raising=False)  # render under the default out/
        env.delenv("PULUMI_CONFIG", raising=False)
        return {stack: run_stack(stack) for stack in EXPECTED}


@pytest.mark.parametrize("stack", EXPECTED)
def test_stack_registers_exactly_these_resources(recorded: dict[str, Recorder], stack: str) -> None:
    rec = recorded[stack]
    assert tree(rec) == EXPECTED[stack]
    assert len(rec.resources) == len(EXPECTED[stack])


@pytest.mark.parametrize("stack", EXPECTED)
def test_deployment_replicas_and_images(recorded: dict[str, Recorder], stack: str) -> None:
    found = {}
    for r in recorded[stack].of_type(DEP):
        (container,) = r.inputs["spec"]["template"]["spec"]["containers"]
        found[r.name] = (r.inputs["spec"].get("replicas"), container["image"])
    assert found == WORKLOADS[stack]


@pytest.mark.parametrize("stack", EXPECTED)
def test_the_autoscalers_deployment_ignores_its_count(stack: str) -> None:
    """Exactly the Deployment each autoscaler scales is registered with `spec.replicas`
    under ignoreChanges: the canary's and fixed ones apply their count on every update."""
    config = stack_file_config(stack)
    rec = run_program(lambda: build(config, stack), stack=stack, monitor=RecordingMonitor)
    assert isinstance(rec.monitor, RecordingMonitor)
    ignoring = {
        urn.rsplit("::", 1)[1]: list(req.ignoreChanges)
        for urn, req in rec.monitor.requests
        if req.type == DEP
    }
    scaled = {r.inputs["spec"]["scaleTargetRef"]["name"] for r in recorded_scalers(rec)}
    assert bool(scaled) == (stack != "staging"), scaled  # staging runs fixed counts only
    assert ignoring == {n: ["spec.replicas"] if n in scaled else [] for n in ignoring}


def recorded_scalers(rec: Recorder) -> list[Any]:
    """The HPAs and KEDA ScaledObjects a run registered."""
    return [
        r
        for r in rec.resources
        if r.type
        in (
            "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
            "kubernetes:keda.sh/v1alpha1:ScaledObject",
        )
    ]


CLUSTERS = {"dev": "dev-local", "staging": "staging-eu-1", "prod": "prod-eu-1"}


@pytest.mark.parametrize(
    ("stack", "namespace", "directory"),
    [
        ("dev", "models-dev", "out/dev"),
        ("staging", "models-staging", "out/staging"),
        ("prod", "models", "out/prod"),
    ],
)
def test_namespace_and_render_provider(
    recorded: dict[str, Recorder], stack: str, namespace: str, directory: str
) -> None:
    rec = recorded[stack]
    assert rec.one(NS, namespace).inputs["metadata"] == {
        "name": namespace,
        "labels": {
            "app.kubernetes.io/managed-by": "servestack",
            "pod-security.kubernetes.io/enforce": "restricted",
        },
        "annotations": {"servestack.io/cluster": CLUSTERS[stack]},
    }
    # Every Kubernetes resource of the stack is pinned to its cluster (replace on change).
    pinned = {
        r.inputs["metadata"].get("annotations", {}).get("servestack.io/cluster")
        for r in rec.resources
        if r.type.startswith("kubernetes:") and "metadata" in r.inputs
    }
    assert pinned == {CLUSTERS[stack]}
    (provider,) = rec.of_type(PROVIDER)
    assert provider.inputs["renderYamlToDirectory"] == directory
    assert {
        r.inputs["metadata"]["namespace"]
        for r in rec.resources
        if r.type.startswith("kubernetes:") and r.type not in (NS, NODEPOOL)
    } == {namespace}


def test_prod_key_inputs(recorded: dict[str, Recorder]) -> None:
    rec = recorded["prod"]
    bert_hpa = rec.one(HPA, "bert-sentiment").inputs["spec"]
    llama_hpa = rec.one(HPA, "llama-chat").inputs["spec"]
    assert (
        bert_hpa["scaleTargetRef"]["name"],
        bert_hpa["minReplicas"],
        bert_hpa["maxReplicas"],
        len(bert_hpa["metrics"]),
    ) == ("bert-sentiment", 2, 10, 3)
    assert (
        llama_hpa["scaleTargetRef"]["name"],
        llama_hpa["minReplicas"],
        llama_hpa["maxReplicas"],
    ) == ("llama-chat-v3-0-1", 2, 6)
    routes = rec.one(VS, "bert-sentiment-routes").inputs["spec"]["http"][0]["route"]
    assert [r["weight"] for r in routes] == [90, 10]
    # The Gateway API route is weighted as the mesh's, over one Service per track.
    http = rec.one(HTTP_ROUTE, "bert-sentiment-route").inputs
    assert http["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert http["spec"]["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": "public",
            "namespace": "gateways",
        }
    ]
    assert http["spec"]["hostnames"] == ["sentiment.example.com"]
    (rule,) = http["spec"]["rules"]
    assert [(b["name"], b["weight"]) for b in rule["backendRefs"]] == [
        ("bert-sentiment-stable", 90),
        ("bert-sentiment-canary", 10),
    ]
    assert rec.one(SVC, "bert-sentiment-canary").inputs["spec"]["selector"] == {
        "app.kubernetes.io/name": "bert-sentiment",
        "servestack.io/track": "canary",
    }
    assert rec.one(SVC, "llama-chat").inputs["spec"]["selector"] == {
        "app.kubernetes.io/name": "llama-chat",
        "servestack.io/model-version": "v3-0-1",
    }
    limits = rec.one(NODEPOOL, "a100").inputs["spec"]["limits"]
    assert limits == {"nodes": "4", "nvidia.com/gpu": "32"}
    # The processing label pins the Deployment (a change replaces it, per the effect table).
    assert (
        rec.one(DEP, "bert-sentiment").inputs["metadata"]["labels"]["servestack.io/processing"]
        == "sync"
    )


def test_dev_queue_worker_is_scaled_by_keda(recorded: dict[str, Recorder]) -> None:
    so = recorded["dev"].one(SO, "whisper-batch").inputs
    assert (so["apiVersion"], so["kind"]) == ("keda.sh/v1alpha1", "ScaledObject")
    assert (
        so["spec"]["minReplicaCount"],
        so["spec"]["maxReplicaCount"],
        so["spec"]["triggers"][0]["type"],
    ) == (1, 3, "rabbitmq")


# --- stopping ---------------------------------------------------------------------------------


def test_stopped_deployment_keeps_its_service_and_nothing_else_runs() -> None:
    config = parse_stack(stack_raw(deployment_raw(active=False), environment="production"))
    rec = run_program(lambda: build(config, "test"))
    assert tree(rec) == {
        (PROVIDER, "k8s-prod-eu-1", None),
        (NS, "models", None),
        *model("bert", monitoring=True),
    }
    assert rec.one(DEP, "bert").inputs["spec"]["replicas"] == 0


def test_stopped_canary_keeps_both_tracks_at_zero() -> None:
    strategy = {"type": "canary", "weight": 10, "canaryVersion": "v3", "canaryImage": "r.io/m:3"}
    rec = run_program(
        lambda: ModelDeployment(
            "bert", deployment(active=False, strategy=strategy, environment="production")
        )
    )
    assert tree(rec) == model(
        "bert", routes=True, workloads=("bert", "bert-canary"), monitoring=True
    )
    assert [rec.one(DEP, n).inputs["spec"]["replicas"] for n in ("bert", "bert-canary")] == [0, 0]


# --- ModelDeployment on its own -----------------------------------------------------------------


def test_model_deployment_accepts_a_plain_dict() -> None:
    raw = deployment_raw(loadBalancer={"enabled": False})
    del raw["name"]
    rec = run_program(lambda: ModelDeployment("bert", raw))
    assert tree(rec) == {
        (MD, "bert", None),
        (SA, "bert", of(MD, "bert")),
        (DEP, "bert", of(MD, "bert")),
        (NP, "bert-ingress", of(MD, "bert")),
        (LB, "bert", of(MD, "bert")),
        (SVC, "bert", of(LB, "bert")),
    }
    meta = rec.one(DEP, "bert").inputs["metadata"]
    assert (meta["namespace"], meta["labels"]["servestack.io/environment"]) == (
        "models",
        "development",
    )


def test_model_deployment_creates_its_restricted_namespace_when_asked() -> None:
    raw = deployment_raw(loadBalancer={"enabled": False})
    del raw["name"]
    rec = run_program(lambda: ModelDeployment("bert", raw, create_namespace=True))
    assert (NS, "bert-namespace", of(MD, "bert")) in tree(rec)
    assert rec.one(NS, "bert-namespace").inputs["metadata"] == {
        "name": "models",
        "labels": {
            "app.kubernetes.io/managed-by": "servestack",
            "pod-security.kubernetes.io/enforce": "restricted",
        },
    }
    without = run_program(lambda: ModelDeployment("bert", raw))
    assert NS not in {r.type for r in without.resources}


def registers_nothing(build_it: Callable[[], Any]) -> tuple[Recorder, BaseException]:
    """Run ``build_it`` under mocks; it must raise. Returns the recorder and the error."""
    caught: list[BaseException] = []

    def program() -> None:
        try:
            build_it()
        except Exception as err:  # the assertion below checks what it was
            caught.append(err)

    rec = run_program(program)
    assert len(caught) == 1, "expected an error"
    return rec, caught[0]


def test_invalid_dict_raises_and_registers_nothing() -> None:
    raw = {
        "model": deployment_raw()["model"],
        "resources": {"cpu": "lots", "memory": 1},
        "autoscaling": {"minReplicas": 4, "maxReplicas": 2},
    }
    rec, err = registers_nothing(lambda: ModelDeployment("bert", raw))
    assert isinstance(err, ConfigError)
    assert str(err).splitlines() == [
        "deployments.bert.resources.cpu: 'lots' must be a number of cores (e.g. 4, 0.5) or "
        "millicores (e.g. '500m')",
        "deployments.bert.autoscaling: minReplicas (4) must be <= maxReplicas (2)",
    ]
    assert rec.resources == []


def test_invalid_name_for_a_typed_spec_registers_nothing() -> None:
    rec, err = registers_nothing(lambda: ModelDeployment("Not_A_DNS_Label", deployment()))
    assert isinstance(err, ConfigError)
    assert str(err) == (
        "deployments.Not_A_DNS_Label.name: 'Not_A_DNS_Label' is not a DNS-1123 label of at "
        "most 40 characters (lower-case letters, digits and '-', starting and ending with a "
        "letter or digit)"
    )
    assert rec.resources == []


def test_typed_spec_is_renamed_to_the_component_name() -> None:
    spec = deployment(strategy={"type": "blue_green"}, environment="production")
    rec = run_program(lambda: ModelDeployment("gpt", spec))
    assert (DEP, "gpt-v2-1-0") in rec.names()
    assert (DEP, "bert") not in rec.names()
    meta = rec.one(DEP, "gpt-v2-1-0").inputs["metadata"]
    assert (meta["labels"]["app.kubernetes.io/name"], meta["namespace"]) == ("gpt", "models")


@pytest.mark.parametrize(
    "typed",
    [
        False,
        True,
    ],
    ids=["dict", "typed"],
)
def test_standalone_deployment_refuses_max_surge_zero_with_default_max_unavailable_zero(
    typed: bool,
) -> None:
    raw = deployment_raw(environment="production", strategy={"maxSurge": 0})
    spec = deployment(**raw) if typed else raw
    rec, err = registers_nothing(lambda: ModelDeployment("bert", spec))
    assert str(err) == (
        "deployments.bert.strategy: maxSurge 0 with maxUnavailable 0 (production default): "
        "a rollout could never make progress"
    )
    assert rec.resources == []


# --- GpuNodePool backends ---------------------------------------------------------------------


def test_gke_node_pool() -> None:
    cluster = {"name": "gke-1", "provider": "gke", "location": "europe-west4", "project": "p"}
    spec = {"name": "l4", "gpu": {"type": "L4", "count": 2}, "maxNodes": 3}
    rec = run_program(lambda: GpuNodePool("l4", spec, cluster))
    typ = "gcp:container/nodePool:NodePool"
    assert tree(rec) == {(GNP, "l4", None), (typ, "l4", of(GNP, "l4"))}
    inputs = rec.one(typ, "l4").inputs
    assert (inputs["cluster"], inputs["location"], inputs["project"]) == (
        "gke-1",
        "europe-west4",
        "p",
    )
    assert inputs["nodeConfig"]["guestAccelerators"] == [
        {
            "type": "nvidia-l4",
            "count": 2,
            "gpuDriverInstallationConfig": {"gpuDriverVersion": "LATEST"},
        }
    ]
    assert inputs["nodeConfig"]["machineType"] == "g2-standard-24"
    assert inputs["autoscaling"] == {"minNodeCount": 0, "maxNodeCount": 3}
    # initialNodeCount forces a new pool on change; autoscaling bounds alone size it.
    assert "initialNodeCount" not in inputs


def test_eks_node_group() -> None:
    cluster = {
        "name": "eks-1",
        "provider": "eks",
        "nodeRoleArn": "arn:aws:iam::1:role/n",
        "subnetIds": ["subnet-a"],
    }
    spec = {"name": "a10g", "gpu": {"type": "A10G", "count": 1}, "spot": True}
    typ = "aws:eks/nodeGroup:NodeGroup"
    ignored: dict[str, list[str] | None] = {}

    def program() -> None:
        def capture(args: pulumi.ResourceTransformationArgs) -> None:
            ignored[args.type_] = args.opts.ignore_changes

        pulumi.runtime.register_stack_transformation(capture)
        GpuNodePool("a10g", spec, cluster)

    rec = run_program(program)
    assert tree(rec) == {(GNP, "a10g", None), (typ, "a10g", of(GNP, "a10g"))}
    # The cluster autoscaler owns desiredSize once the group exists.
    assert ignored[typ] == ["scalingConfig.desiredSize"]
    inputs = rec.one(typ, "a10g").inputs
    assert (
        inputs["amiType"],
        inputs["instanceTypes"],
        inputs["capacityType"],
        inputs["clusterName"],
        inputs["subnetIds"],
    ) == ("AL2023_x86_64_NVIDIA", ["g5.xlarge"], "SPOT", "eks-1", ["subnet-a"])
    assert inputs["labels"] == {"servestack.io/gpu": "a10g", "servestack.io/node-pool": "a10g"}
    assert inputs["scalingConfig"] == {"minSize": 0, "maxSize": 1, "desiredSize": 0}


@pytest.mark.parametrize(
    ("cluster", "expected"),
    [
        (
            {"name": "gke-1", "provider": "gke", "location": "europe-west4"},
            "nodePools.h100.machineType: required: no default gke machine carries 1 H100; "
            "defaults exist for GPUs per node: 8 (a3-highgpu-8g)",
        ),
        (
            {"name": "c", "provider": "karpenter"},
            "nodePools.h100.machineType: required: no default karpenter machine carries 1 "
            "H100; defaults exist for GPUs per node: 8 (p5.48xlarge)",
        ),
    ],
)
def test_pool_without_a_default_machine_registers_nothing(
    cluster: dict[str, Any], expected: str
) -> None:
    spec = {"name": "h100", "gpu": {"type": "H100", "count": 1}}
    rec, err = registers_nothing(lambda: GpuNodePool("h100", spec, cluster))
    assert isinstance(err, ConfigError)
    assert str(err) == expected
    assert rec.resources == []


def test_existing_cluster_pool_registers_only_the_component() -> None:
    spec = {"name": "t4", "gpu": {"type": "T4", "count": 1}}
    rec = run_program(lambda: GpuNodePool("t4", spec, {"name": "c"}))
    assert tree(rec) == {(GNP, "t4", None)}


def test_invalid_node_pool_raises_and_registers_nothing() -> None:
    spec = {"name": "t4", "gpu": {"type": "T4", "count": 1}, "minNodes": 1}
    rec, err = registers_nothing(
        lambda: GpuNodePool("t4", spec, {"name": "c", "provider": "karpenter"})
    )
    assert str(err) == (
        "nodePools.t4.minNodes: 1 is not allowed with provider karpenter: it "
        "launches nodes on demand; use 0"
    )
    assert rec.resources == []


# --- the stack program ------------------------------------------------------------------------


@pytest.fixture
def clean_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    yield monkeypatch
    pulumi.runtime.set_all_config({})


def engine_config(raw: dict[str, Any]) -> dict[str, str]:
    """Config as the engine passes it: strings as they are, other values as JSON."""
    return {f"servestack:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}


def test_program_with_an_invalid_config_fails_cleanly(clean_config: pytest.MonkeyPatch) -> None:
    raw = {
        "cluster": {"name": "c"},
        "deployments": [
            deployment_raw(autoscaling={"minReplicas": 5, "maxReplicas": 3}),
            deployment_raw(name="gpt", resources={"cpu": 1, "memory": "1GB"}),
        ],
    }
    clean_config.setenv("PULUMI_CONFIG", json.dumps(engine_config(raw)))
    rec, err = registers_nothing(main)
    assert isinstance(err, pulumi.RunError)
    assert str(err) == (
        "invalid servestack config:\n"
        "stack test: deployments.bert.autoscaling: minReplicas (5) must be <= maxReplicas (3)\n"
        "stack test: deployments.gpt.resources.memory: '1GB' must be a Kubernetes quantity "
        "such as 512Mi or 16Gi, or a number of GiB"
    )
    assert rec.resources == []


def test_program_runs_a_stack_file_as_the_engine_passes_it(
    clean_config: pytest.MonkeyPatch,
) -> None:
    raw = read_stack_file(STACKS / "Pulumi.dev.yaml")
    clean_config.setenv("PULUMI_CONFIG", json.dumps(engine_config(raw)))
    before = gc.get_threshold()
    rec = run_program(main, stack="dev")
    assert tree(rec) == EXPECTED["dev"]
    # Only the entry point (__main__.py) tunes the collector: a process that imports and
    # runs the program (tests, inline Automation API programs) keeps its settings.
    assert gc.get_threshold() == before


def test_stack_config_parses_json_objects_and_keeps_plain_strings(
    clean_config: pytest.MonkeyPatch,
) -> None:
    clean_config.setenv(
        "PULUMI_CONFIG", json.dumps({"servestack:environment": "staging", "other:key": "x"})
    )
    pulumi.runtime.set_all_config(
        {
            "servestack:cluster": '{"name": "c"}',
            "servestack:deployments": "[]",
            "servestack:namespace": "[not json",
        }
    )
    assert stack_config() == {
        "cluster": {"name": "c"},
        "deployments": [],
        "environment": "staging",
        "namespace": "[not json",
    }


def test_program_reads_config_set_by_the_runtime(clean_config: pytest.MonkeyPatch) -> None:
    raw = {"cluster": {"name": "c"}, "deployments": [deployment_raw()]}

    def program() -> None:
        pulumi.runtime.set_all_config(engine_config(raw))
        main()

    rec = run_program(program)
    assert (DEP, "bert") in rec.names()


def test_each_mocks_run_starts_from_a_fresh_stack() -> None:
    """Stack transformations registered by one run do not run again in the next."""
    calls: list[str] = []

    def program() -> None:
        pulumi.runtime.register_stack_transformation(lambda a: calls.append(a.name))
        k8s.core.v1.ConfigMap("one", metadata={"name": "one"})

    run_program(program)
    run_program(program)
    assert calls == ["one", "one"]
