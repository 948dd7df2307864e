"""Property-based tests over the config models and builders (hypothesis).

Every valid config renders manifests that pass the Kubernetes schemas; every invalid one
raises the validation error (one line per problem) and nothing else.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes_validate.utils import latest_version

from servestack.config.defaults import effective
from servestack.config.errors import ConfigError
from servestack.config.gpu import GpuType
from servestack.config.machines import MACHINES, Family
from servestack.config.models import StrategyType
from servestack.config.validation import parse_stack
from servestack.manifests import routing, scaling, workload
from servestack.manifests.naming import labels, workload_name

K8S = latest_version()
#: One pool per GPU type, on the largest EC2 machine of the table that carries it (Karpenter
#: picks from EC2 types), so that every generated deployment fits a node; as many nodes as
#: the capacity model may need for every generated deployment's pods at rest and surge.
_LARGEST = {
    t: max((m for m in MACHINES if m.gpu is t and m.family is Family.ec2), key=lambda m: m.gpus)
    for t in GpuType
}
GPU_POOLS = [
    {
        "name": t.value.lower(),
        "gpu": {"type": t.value, "count": m.gpus},
        "machineType": m.name,
        "maxNodes": 1000,
    }
    for t, m in _LARGEST.items()
]

names = st.from_regex(r"[a-z][a-z0-9]{0,8}(-[a-z0-9]{1,6})?", fullmatch=True)
versions = st.from_regex(r"v[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,2}", fullmatch=True)
# Within the smallest of those machines (p3.16xlarge: 64 vCPU, 488 GiB), leaving room for
# what the node reserves.
cpus = st.one_of(st.integers(1, 32), st.integers(1, 32000).map(lambda m: f"{m}m"))
memories = st.one_of(st.integers(1, 256), st.sampled_from(["512Mi", "16Gi", "1500Mi", "2G"]))


@st.composite
def deployment(draw: st.DrawFn, name: str) -> dict[str, Any]:
    gpu = draw(
        st.one_of(
            st.just({"count": 0}),
            st.builds(
                lambda c, t: {"count": c, "type": t.value},
                st.integers(1, 8),
                st.sampled_from(GpuType),
            ),
        )
    )
    dep: dict[str, Any] = {
        "name": name,
        "model": {
            "id": draw(names),
            "version": draw(versions),
            "type": draw(st.sampled_from(["llm", "stt", "tts", "vision", "embedding"])),
            "image": f"registry.example.com/{name}:{draw(st.integers(1, 99))}",
        },
        "resources": {"cpu": draw(cpus), "memory": draw(memories), "gpu": gpu},
        "active": draw(st.booleans()),
        "replicas": draw(st.integers(0, 20)),
        "env": draw(
            st.dictionaries(
                st.from_regex(r"[A-Z][A-Z0-9_]{0,10}", fullmatch=True),
                st.text(max_size=20),
                max_size=3,
            )
        ),
    }
    if draw(st.booleans()):
        lo = draw(st.integers(1, 10))
        dep["autoscaling"] = {
            "minReplicas": lo,
            "maxReplicas": draw(st.integers(lo, 30)),
            "targetCpuUtilization": draw(st.integers(1, 100)),
            "targetGpuUtilization": draw(st.one_of(st.none(), st.integers(1, 100))),
        }
    kind = draw(st.sampled_from(list(StrategyType)))
    if kind is StrategyType.canary:
        dep["strategy"] = {
            "type": "canary",
            "weight": draw(st.integers(1, 99)),
            "canaryVersion": draw(versions),
            "canaryImage": f"registry.example.com/{name}:canary",
        }
    else:
        dep["strategy"] = {"type": kind.value}
    dep["loadBalancer"] = {
        "algorithm": draw(st.sampled_from(["round_robin", "least_connections", "ip_hash"]))
    }
    return dep


@st.composite
def stacks(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 4))
    chosen = draw(st.lists(names, min_size=count, max_size=count, unique=True))
    return {
        "environment": draw(st.sampled_from(["development", "staging", "production"])),
        "namespace": "models",
        "cluster": {"name": "c1", "provider": "karpenter"},
        "nodePools": GPU_POOLS,
        "deployments": [draw(deployment(n)) for n in chosen],
    }


def _core_manifests(raw: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for spec in parse_stack(raw).deployments:
        eff = effective(spec)
        tracks = ["stable"] + (["canary"] if spec.strategy.type is StrategyType.canary else [])
        out += [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                **workload.deployment(spec, eff, track=t),
            }
            for t in tracks
        ]
        out.append({"apiVersion": "v1", "kind": "ServiceAccount", **workload.service_account(spec)})
        out.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                **workload.network_policy(spec),
            }
        )
        out.append(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                **workload.disruption_budget(spec),
            }
        )
        out.append({"apiVersion": "v1", "kind": "Service", **routing.service(spec)})
        if eff.autoscaling:
            target = scaling.ScalerTarget(
                spec.name, workload_name(spec), spec.namespace, eff.autoscaling, labels(spec)
            )
            out.append(
                {
                    "apiVersion": "autoscaling/v2",
                    "kind": "HorizontalPodAutoscaler",
                    **scaling.hpa(target),
                }
            )
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks())
def test_every_valid_config_renders_schema_valid_manifests(raw: dict[str, Any]) -> None:
    for manifest in _core_manifests(raw):
        kubernetes_validate.validate(manifest, K8S, strict=True)


BAD_VALUES = st.sampled_from(
    [
        ("replicas", -1),
        ("replicas", "many"),
        ("active", "sometimes"),
        ("resources.cpu", "fast"),
        ("resources.cpu", 0),
        ("resources.memory", "16GB"),
        ("resources.gpu", {"count": 2}),
        ("resources.gpu", {"count": 0, "type": "T4"}),
        ("resources.gpu", {"count": 1, "type": "TPU"}),
        ("model.type", "gpt"),
        ("model.image", "Bad Image"),
        ("name", "Not_A_Label"),
        ("autoscaling", {"minReplicas": 9, "maxReplicas": 3}),
        ("strategy", {"type": "rolling", "weight": 5}),
        ("loadBalancer", {"healthCheck": {"path": "ready"}}),
        ("unknownKey", 1),
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks(), BAD_VALUES, st.data())
def test_every_invalid_config_raises_the_validation_error_only(
    raw: dict[str, Any], bad: tuple[str, Any], data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(raw["deployments"]) - 1))
    path, value = bad
    node = raw["deployments"][index]
    *parents, last = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    try:
        parse_stack(raw)
    except ConfigError as err:
        lines = str(err).splitlines()
        assert lines and all(": " in line for line in lines), lines
        assert all(line.startswith("deployments.") for line in lines), lines
        return
    raise AssertionError(f"{path}={value!r} was accepted")
