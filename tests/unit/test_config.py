"""Config validation: every rule, with the exact line a user reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servestack import (
    GPU_TABLE,
    CloudProvider,
    ConfigError,
    Environment,
    Problem,
    Resources,
    load_stack_config,
    parse_stack,
)
from servestack.config.gpu import GpuType
from servestack.config.machines import Family, defaults
from servestack.config.models import StackConfig
from servestack.config.quantities import cpu_millicores, format_cpu, format_memory, memory_bytes
from servestack.config.validation import parse_deployment
from tests.unit.specs import MODEL, STACKS, deployment_raw, problems, stack_raw

DNS = (
    "is not a DNS-1123 label of at most 40 characters (lower-case letters, digits and '-', "
    "starting and ending with a letter or digit)"
)
CANARY = {"type": "canary", "weight": 10, "canaryVersion": "v2", "canaryImage": "reg.io/b:2"}
QUEUE = {"kind": "kafka", "name": "jobs", "connectionSecret": "kafka-conn"}
ROUTE = {"gateway": {"name": "public"}, "hostnames": ["api.example.com"]}
A100_POOL = {"name": "a100", "gpu": {"type": "A100", "count": 8}}
KARPENTER = {"name": "prod-eu-1", "provider": "karpenter"}
GKE = {"name": "c", "provider": "gke", "location": "l"}
EKS = {
    "name": "eks-1",
    "provider": "eks",
    "nodeRoleArn": "arn:aws:iam::1:role/n",
    "subnetIds": ["s"],
}


def dep(**overrides: Any) -> dict[str, Any]:
    """A production stack with one deployment ``bert`` carrying ``overrides``."""
    return stack_raw(deployment_raw(**overrides))


def res(**gpu: Any) -> dict[str, Any]:
    return {"cpu": 1, "memory": 1, "gpu": gpu}


def pool_stack(cluster: dict[str, Any], **pool: Any) -> dict[str, Any]:
    return stack_raw(deployment_raw(), cluster=cluster, node_pools=[{**A100_POOL, **pool}])


# (id, raw stack, exact lines of the error)
RULES: list[tuple[str, Any, list[str]]] = [
    # --- external traffic: the Gateway API route (issue 23) ---------------------------------
    (
        "route-without-hostname-in-production",
        dep(route={"gateway": {"name": "public"}}),
        [
            "deployments.bert.route.hostnames: none given: production needs at least one "
            "hostname (e.g. api.example.com), or the route takes every host the Gateway serves"
        ],
    ),
    (
        "route-hostname-ip",
        dep(route={**ROUTE, "hostnames": ["10.0.0.1"]}),
        [
            "deployments.bert.route.hostnames.0: '10.0.0.1' is an address, not a hostname: an "
            "HTTPRoute matches the Host header by DNS name (e.g. api.example.com or "
            "*.example.com)"
        ],
    ),
    (
        "route-hostname-url",
        dep(route={**ROUTE, "hostnames": ["https://api.example.com:443"]}),
        [
            "deployments.bert.route.hostnames.0: 'https://api.example.com:443' is not a "
            "hostname: lower-case DNS labels of letters, digits and '-' joined by '.', at most "
            "253 characters, optionally starting with '*.' (e.g. api.example.com or "
            "*.example.com); no scheme, port or path"
        ],
    ),
    (
        "route-hostname-wildcard-inside",
        dep(route={**ROUTE, "hostnames": ["api.*.example.com"]}),
        [
            "deployments.bert.route.hostnames.0: 'api.*.example.com' is not a hostname: "
            "lower-case DNS labels of letters, digits and '-' joined by '.', at most 253 "
            "characters, optionally starting with '*.' (e.g. api.example.com or "
            "*.example.com); no scheme, port or path"
        ],
    ),
    (
        "route-hostnames-not-a-list",
        dep(route={**ROUTE, "hostnames": "api.example.com"}),
        [
            "deployments.bert.route.hostnames: 'api.example.com' is one hostname: write a list "
            "([api.example.com])"
        ],
    ),
    (
        "route-hostname-twice",
        dep(route={**ROUTE, "hostnames": ["a.example.com", "a.example.com"]}),
        ["deployments.bert.route.hostnames: a.example.com listed more than once"],
    ),
    (
        "route-path-relative",
        dep(route={**ROUTE, "path": "v1"}),
        [
            "deployments.bert.route.path: 'v1' is not a path prefix: it must start with '/' "
            "(e.g. /v1/chat)"
        ],
    ),
    (
        "route-path-dot-segment",
        dep(route={**ROUTE, "path": "/v1/../admin"}),
        [
            "deployments.bert.route.path: '/v1/../admin' is not a path prefix: it must contain "
            "no '/./' or '/../' and not end in '/.' or '/..' (e.g. /v1/chat)"
        ],
    ),
    (
        "route-path-query",
        dep(route={**ROUTE, "path": "/v1?stream=true"}),
        [
            "deployments.bert.route.path: '/v1?stream=true' is not a path prefix: it must use "
            "only letters, digits, %-escapes and -/._~!$&'()*+,;=:@ (no spaces, quotes, '?' or "
            "braces) (e.g. /v1/chat)"
        ],
    ),
    (
        "route-gateway-as-a-string",
        dep(route={**ROUTE, "gateway": "public"}),
        [
            "deployments.bert.route.gateway: 'public' is not allowed: write {name: public}, with "
            "namespace: when the Gateway is in another namespace than the deployment"
        ],
    ),
    (
        "route-gateway-namespace",
        dep(route={**ROUTE, "gateway": {"name": "public", "namespace": "Edge"}}),
        [
            "deployments.bert.route.gateway.namespace: 'Edge' is not a namespace name (a "
            "DNS-1123 label: at most 63 lower-case letters, digits and '-', starting and "
            "ending with a letter or digit)"
        ],
    ),
    (
        "route-on-a-queue-worker",
        dep(processing="async", queue=QUEUE, route=ROUTE),
        [
            "deployments.bert: route is only for processing sync: async workers take work from "
            "their queue, not from a Gateway"
        ],
    ),
    # --- pod settings, image pull Secrets and queue workers (issue 23) ----------------------
    (
        "pull-secret-content-inline",
        dep(imagePullSecrets=[{"name": "regcred", "data": {".dockerconfigjson": "eyJhdXRocyI6"}}]),
        [
            "deployments.bert.imagePullSecrets.regcred: a mapping (data, name) is not a Secret "
            "name: list only the names of existing Secrets of type "
            "kubernetes.io/dockerconfigjson; their content never goes in a stack file (create "
            "the Secret with kubectl or your secret manager)"
        ],
    ),
    (
        "pull-secret-value-inline",
        {**stack_raw(deployment_raw()), "imagePullSecrets": ['{"auths":{"r.io":{"auth":"dTpw"}}}']},
        [
            "imagePullSecrets.0: is not a Secret name (a DNS-1123 subdomain; the value is not "
            "shown, it may be a credential): list only the names of existing Secrets; a "
            "registry credential never goes in a stack file"
        ],
    ),
    (
        "model-storage-pvc-and-uri",
        dep(model={**MODEL, "storage": {"pvc": "w", "uri": "s3://b/m", "size": "10Gi"}}),
        [
            "deployments.bert.model.storage: pvc and uri are both set: the weights come from one "
            "source, an existing PersistentVolumeClaim (pvc) or an object-store location (uri)"
        ],
    ),
    (
        "model-storage-uri-without-size",
        dep(model={**MODEL, "storage": {"uri": "gs://models/bert"}}),
        [
            "deployments.bert.model.storage: uri needs size: the emptyDir the weights are "
            "fetched into"
        ],
    ),
    (
        "model-storage-presigned-uri",
        dep(
            model={**MODEL, "storage": {"uri": "https://s.example/m?X-Amz-Signature=ab", "size": 1}}
        ),
        [
            "deployments.bert.model.storage: uri carries credentials (user@host, or a query string "
            "such as a presigned URL's signature; not shown): give the fetcher its credentials "
            "through its identity, never in the stack file"
        ],
    ),
    (
        "model-storage-size-with-pvc",
        dep(model={**MODEL, "storage": {"pvc": "weights", "size": "10Gi"}}),
        ["deployments.bert.model.storage: size only with uri (a pvc is mounted as it is)"],
    ),
    (
        "shared-memory-above-limit",
        dep(resources={"cpu": 1, "memory": "4Gi", "sharedMemory": "8Gi"}),
        [
            "deployments.bert.resources: sharedMemory 8Gi is larger than memory 4Gi: /dev/shm is "
            "counted in the memory limit; raise memory or lower sharedMemory"
        ],
    ),
    (
        "hpa-min-zero",
        dep(autoscaling={"minReplicas": 0, "maxReplicas": 3, "targetCpuUtilization": 70}),
        [
            "deployments.bert.autoscaling.minReplicas: 0 is only for processing async (KEDA "
            "scales queue workers to zero); an HPA keeps at least 1 replica"
        ],
    ),
    (
        "keda-min-zero-without-activation",
        dep(
            processing="async",
            queue=QUEUE,
            loadBalancer=None,
            autoscaling={"minReplicas": 0, "maxReplicas": 3},
        ),
        [
            "deployments.bert.autoscaling.minReplicas: 0 needs queue.activationDepth: the queue "
            "depth above which KEDA starts a worker from zero"
        ],
    ),
    (
        "hpa-without-target",
        dep(autoscaling={"minReplicas": 1, "maxReplicas": 3}),
        [
            "deployments.bert.autoscaling: names no target: set targetCpuUtilization, "
            "targetMemoryUtilization or targetGpuUtilization (none is implied; the former "
            "default was targetCpuUtilization: 70)"
        ],
    ),
    (
        "node-requirement-without-values",
        dep(affinity={"nodeRequirements": [{"key": "example.com/pool", "operator": "In"}]}),
        ["deployments.bert.affinity.nodeRequirements.0: operator In needs values"],
    ),
    (
        "priority-class-not-a-name",
        dep(priorityClassName="High Prio"),
        [
            "deployments.bert.priorityClassName: 'High Prio' is not a Kubernetes object name (a "
            "DNS-1123 subdomain: lower-case letters, digits, '-' and '.', at most 253 characters)"
        ],
    ),
    # --- replicas and autoscaling ---------------------------------------------------------
    (
        "min-gt-max",
        dep(autoscaling={"minReplicas": 5, "maxReplicas": 3}),
        ["deployments.bert.autoscaling: minReplicas (5) must be <= maxReplicas (3)"],
    ),
    (
        "replicas-negative",
        dep(replicas=-1),
        [
            "deployments.bert.replicas: -1 is not allowed: input should be greater than or equal "
            "to 0"
        ],
    ),
    # --- GPUs -------------------------------------------------------------------------------
    (
        "gpu-count-without-type",
        dep(resources=res(count=1)),
        [
            "deployments.bert.resources.gpu: count is 1 but type is missing: name one of "
            "T4, V100, A10G, A100, A100-80GB, L4, L40S, H100, H200, B200"
        ],
    ),
    (
        "gpu-type-without-count",
        dep(resources=res(type="T4")),
        [
            "deployments.bert.resources.gpu: type T4 given but count is 0: set count >= 1 or drop "
            "type"
        ],
    ),
    (
        "gpu-unknown-type",
        dep(resources=res(type="K80", count=1)),
        [
            "deployments.bert.resources.gpu.type: 'K80' is not allowed; allowed: 'T4', 'V100', "
            "'A10G', 'A100', 'A100-80GB', 'L4', 'L40S', 'H100', 'H200' or 'B200'"
        ],
    ),
    (
        "gpu-offered-by-no-pool",
        stack_raw(
            deployment_raw(resources=res(type="T4", count=1)),
            cluster=KARPENTER,
            node_pools=[A100_POOL, {"name": "l4", "gpu": {"type": "L4", "count": 1}}],
        ),
        [
            "deployments.bert.resources.gpu.type: T4 is offered by no node pool; declared pools "
            "offer: A100, L4"
        ],
    ),
    (
        "gpu-more-than-a-node-has",
        stack_raw(
            deployment_raw(resources=res(type="A100", count=9)),
            cluster=KARPENTER,
            node_pools=[A100_POOL],
        ),
        [
            "deployments.bert.resources.gpu.count: 9 GPUs per replica, but the largest A100 node "
            "has 8"
        ],
    ),
    (
        "pool-without-gpus",
        pool_stack(KARPENTER, gpu={"count": 0}),
        ["nodePools.a100: gpu.count must be >= 1: a GPU node pool needs GPUs"],
    ),
    (
        "pool-min-gt-max",
        pool_stack(EKS, minNodes=3, maxNodes=2),
        ["nodePools.a100: minNodes (3) must be <= maxNodes (2)"],
    ),
    # --- names --------------------------------------------------------------------------------
    (
        "duplicate-deployment",
        stack_raw(deployment_raw(), deployment_raw()),
        ["deployments.bert.name: 'bert' is used 2 times; names must be unique"],
    ),
    (
        "duplicate-pool",
        stack_raw(deployment_raw(), cluster=KARPENTER, node_pools=[A100_POOL, A100_POOL]),
        ["nodePools.a100.name: 'a100' is used 2 times; names must be unique"],
    ),
    ("name-not-dns", dep(name="Bert_API"), [f"deployments.Bert_API.name: 'Bert_API' {DNS}"]),
    ("name-too-long", dep(name="a" * 41), [f"deployments.{'a' * 41}.name: '{'a' * 41}' {DNS}"]),
    (
        "pool-name-not-dns",
        pool_stack(KARPENTER, name="A100"),
        [f"nodePools.A100.name: 'A100' {DNS}"],
    ),
    (
        "cluster-name-not-dns",
        stack_raw(cluster={"name": "prod.eu"}),
        [f"cluster.name: 'prod.eu' {DNS}"],
    ),
    (
        "queue-secret-not-dns",
        dep(processing="async", queue={**QUEUE, "connectionSecret": "Kafka"}),
        [f"deployments.bert.queue.connectionSecret: 'Kafka' {DNS}"],
    ),
    # --- unknown keys ---------------------------------------------------------------------------
    (
        "unknown-top-level",
        {**stack_raw(), "deploymets": []},
        [
            "unknown key 'deploymets'; did you mean 'deployments'? (allowed: environment, target, "
            "namespace, imagePullSecrets, cluster, nodePools, deployments, allowReplacements)"
        ],
    ),
    (
        "unknown-deployment-key",
        dep(resoures={}),
        [
            "deployments.bert: unknown key 'resoures'; did you mean 'resources'? (allowed: name, "
            "description, model, processing, resources, replicas, active, autoscaling, "
            "loadBalancer, strategy, stableSlot, queue, port, monitoring, env, secretEnv, tags, "
            "imagePullSecrets, command, args, priorityClassName, topologySpread, affinity, route, "
            "environment, namespace)"
        ],
    ),
    (
        "unknown-nested-key",
        dep(autoscaling={"minReplica": 1}),
        [
            "deployments.bert.autoscaling: unknown key 'minReplica'; did you mean 'minReplicas'? "
            "(allowed: enabled, minReplicas, maxReplicas, targetCpuUtilization, "
            "targetMemoryUtilization, targetGpuUtilization, scaleDownStabilizationSeconds)"
        ],
    ),
    (
        "unknown-key-no-close-match",
        dep(model={**deployment_raw()["model"], "zzz": 1}),
        ["deployments.bert.model: unknown key 'zzz' (allowed: id, version, type, image, storage)"],
    ),
    (
        "lower-case-key",
        stack_raw(cluster={"name": "c", "nodeclass": "x"}),
        [
            "cluster: unknown key 'nodeclass'; did you mean 'nodeClass'? (allowed: name, provider, "
            "project, location, nodeRoleArn, subnetIds, nodeClass, context, gpuLabels, "
            "customGpuLabels)"
        ],
    ),
    # --- quantities ------------------------------------------------------------------------------
    (
        "cpu-words",
        dep(resources={"cpu": "4 cores", "memory": 1}),
        [
            "deployments.bert.resources.cpu: '4 cores' must be a number of cores (e.g. 4, 0.5) or "
            "millicores (e.g. '500m')"
        ],
    ),
    (
        "cpu-bool",
        dep(resources={"cpu": True, "memory": 1}),
        [
            "deployments.bert.resources.cpu: True must be a number of cores (e.g. 4, 0.5) or "
            "millicores (e.g. '500m')"
        ],
    ),
    (
        "cpu-zero",
        dep(resources={"cpu": 0, "memory": 1}),
        ["deployments.bert.resources.cpu: 0 must be more than 0"],
    ),
    (
        "cpu-below-millicore",
        dep(resources={"cpu": 0.0001, "memory": 1}),
        ["deployments.bert.resources.cpu: 0.0001 is finer than one millicore"],
    ),
    (
        "memory-gb-suffix",
        dep(resources={"cpu": 1, "memory": "16GB"}),
        [
            "deployments.bert.resources.memory: '16GB' must be a Kubernetes quantity such as "
            "512Mi or 16Gi, or a number of GiB"
        ],
    ),
    (
        "memory-zero",
        dep(resources={"cpu": 1, "memory": 0}),
        ["deployments.bert.resources.memory: 0 must be more than 0"],
    ),
    (
        "storage-bad",
        dep(resources={"cpu": 1, "memory": 1, "storage": "lots"}),
        [
            "deployments.bert.resources.storage: 'lots' must be a Kubernetes quantity such as "
            "512Mi or 16Gi, or a number of GiB"
        ],
    ),
    # --- health checks ---------------------------------------------------------------------------
    (
        "health-path-no-slash",
        dep(loadBalancer={"healthCheck": {"path": "ready"}}),
        [
            "deployments.bert.loadBalancer.healthCheck: path 'ready' must start with '/' and "
            "contain no spaces"
        ],
    ),
    (
        "health-path-space",
        dep(loadBalancer={"healthCheck": {"path": "/re ady"}}),
        [
            "deployments.bert.loadBalancer.healthCheck: path '/re ady' must start with '/' and "
            "contain no spaces"
        ],
    ),
    (
        "health-interval-zero",
        dep(loadBalancer={"healthCheck": {"intervalSeconds": 0}}),
        [
            "deployments.bert.loadBalancer.healthCheck.intervalSeconds: 0 is not allowed: input "
            "should be greater than or equal to 1"
        ],
    ),
    (
        "health-timeout-negative",
        dep(loadBalancer={"healthCheck": {"timeoutSeconds": -1}}),
        [
            "deployments.bert.loadBalancer.healthCheck.timeoutSeconds: -1 is not allowed: input "
            "should be greater than or equal to 1"
        ],
    ),
    (
        "health-threshold-zero",
        dep(loadBalancer={"healthCheck": {"failureThreshold": 0}}),
        [
            "deployments.bert.loadBalancer.healthCheck.failureThreshold: 0 is not allowed: input "
            "should be greater than or equal to 1"
        ],
    ),
    (
        "stabilization-negative",
        dep(autoscaling={"scaleDownStabilizationSeconds": -5}),
        [
            "deployments.bert.autoscaling.scaleDownStabilizationSeconds: -5 is not allowed: input "
            "should be greater than or equal to 0"
        ],
    ),
    # --- strategies ------------------------------------------------------------------------------
    (
        "canary-weight-0",
        dep(strategy={**CANARY, "weight": 0}),
        [
            "deployments.bert.strategy.weight: 0 is not allowed: input should be greater than or "
            "equal to 1"
        ],
    ),
    (
        "canary-weight-101",
        dep(strategy={**CANARY, "weight": 101}),
        [
            "deployments.bert.strategy.weight: 101 is not allowed: input should be less than or "
            "equal to 100"
        ],
    ),
    (
        "stable-slot-canary-with-blue-green",
        dep(stableSlot="canary", strategy={"type": "blue_green"}),
        [
            "deployments.bert: stableSlot canary is only for strategy rolling or canary: "
            "blue-green keys the stable Deployment by version (stableSlot main)"
        ],
    ),
    (
        "stable-slot-unknown",
        dep(stableSlot="blue"),
        ["deployments.bert.stableSlot: 'blue' is not allowed; allowed: 'main' or 'canary'"],
    ),
    (
        "weight-on-rolling",
        dep(strategy={"type": "rolling", "weight": 10}),
        ["deployments.bert.strategy: weight is only allowed with type canary (type is rolling)"],
    ),
    (
        "canary-image-on-blue-green",
        dep(strategy={"type": "blue_green", "canaryImage": "r/i:2"}),
        [
            "deployments.bert.strategy: canaryImage is only allowed with type canary (type is "
            "blue_green)"
        ],
    ),
    (
        "max-surge-on-canary",
        dep(strategy={**CANARY, "maxSurge": 1}),
        ["deployments.bert.strategy: maxSurge is only allowed with type rolling (type is canary)"],
    ),
    (
        "max-unavailable-on-blue-green",
        dep(strategy={"type": "blue_green", "maxUnavailable": 1}),
        [
            "deployments.bert.strategy: maxUnavailable is only allowed with type rolling (type is "
            "blue_green)"
        ],
    ),
    (
        "canary-missing-all",
        dep(strategy={"type": "canary"}),
        ["deployments.bert.strategy: type canary needs weight, canaryVersion, canaryImage"],
    ),
    (
        "canary-missing-image",
        dep(strategy={"type": "canary", "weight": 5, "canaryVersion": "v2"}),
        ["deployments.bert.strategy: type canary needs canaryImage"],
    ),
    (
        "max-surge-not-percent",
        dep(strategy={"maxSurge": "25"}),
        ["deployments.bert.strategy: maxSurge '25' must be a count or a percentage such as '25%'"],
    ),
    (
        "max-unavailable-negative",
        dep(strategy={"maxUnavailable": -1}),
        ["deployments.bert.strategy: maxUnavailable (-1) must be >= 0"],
    ),
    (
        "surge-and-unavailable-zero",
        dep(strategy={"maxSurge": 0, "maxUnavailable": "0%"}),
        [
            "deployments.bert.strategy: maxSurge 0 with maxUnavailable '0%': a rollout could "
            "never make progress"
        ],
    ),
    (
        "max-unavailable-above-100-percent",
        dep(strategy={"maxUnavailable": "150%"}),
        ["deployments.bert.strategy: maxUnavailable '150%' must be at most '100%'"],
    ),
    (
        "max-unavailable-101-percent",
        dep(strategy={"maxUnavailable": "101%"}),
        ["deployments.bert.strategy: maxUnavailable '101%' must be at most '100%'"],
    ),
    (
        "canary-version-bad",
        dep(strategy={**CANARY, "canaryVersion": "bad version"}),
        [
            "deployments.bert.strategy: canaryVersion 'bad version' is not allowed: letters, "
            "digits, '.', '_', '-', at most 63 characters"
        ],
    ),
    (
        "canary-without-load-balancer",
        dep(strategy=CANARY, loadBalancer={"enabled": False}),
        [
            "deployments.bert: strategy canary needs loadBalancer.enabled: the canary weight is "
            "applied by the mesh's routes"
        ],
    ),
    (
        "strategy-unknown-type",
        dep(strategy={"type": "recreate"}),
        [
            "deployments.bert.strategy.type: 'recreate' is not allowed; allowed: 'rolling', "
            "'blue_green' or 'canary'"
        ],
    ),
    # --- load balancing -----------------------------------------------------------------------
    (
        "sticky-with-ip-hash",
        dep(loadBalancer={"algorithm": "ip_hash", "stickySessions": True}),
        [
            "deployments.bert.loadBalancer: stickySessions needs algorithm round_robin (got "
            "ip_hash): ip_hash is already sticky per client address and least_connections "
            "cannot be combined with cookie affinity"
        ],
    ),
    (
        "sticky-with-least-connections",
        dep(loadBalancer={"algorithm": "least_connections", "stickySessions": True}),
        [
            "deployments.bert.loadBalancer: stickySessions needs algorithm round_robin (got "
            "least_connections): ip_hash is already sticky per client address and "
            "least_connections cannot be combined with cookie affinity"
        ],
    ),
    (
        "algorithm-unknown",
        dep(loadBalancer={"algorithm": "random"}),
        [
            "deployments.bert.loadBalancer.algorithm: 'random' is not allowed; allowed: "
            "'round_robin', 'least_connections' or 'ip_hash'"
        ],
    ),
    # --- processing ---------------------------------------------------------------------------
    (
        "async-without-queue",
        dep(processing="async"),
        ["deployments.bert: processing async needs queue (kind, name, connectionSecret)"],
    ),
    ("queue-on-sync", dep(queue=QUEUE), ["deployments.bert: queue is only for processing async"]),
    (
        "load-balancer-on-async",
        dep(processing="async", queue=QUEUE, loadBalancer={}),
        [
            "deployments.bert: loadBalancer is only for processing sync: async workers take work "
            "from their queue, not from a Service"
        ],
    ),
    (
        "blue-green-on-async",
        dep(processing="async", queue=QUEUE, strategy={"type": "blue_green"}),
        [
            "deployments.bert: strategy blue_green needs processing sync (it splits or switches "
            "request traffic)"
        ],
    ),
    (
        "gpu-target-on-async",
        dep(processing="async", queue=QUEUE, autoscaling={"targetGpuUtilization": 60}),
        [
            "deployments.bert: autoscaling.targetGpuUtilization is not supported for processing "
            "async: KEDA scales workers on queue depth, CPU and memory"
        ],
    ),
    (
        "queue-kind-unknown",
        dep(processing="async", queue={**QUEUE, "kind": "sqs"}),
        [
            "deployments.bert.queue.kind: 'sqs' is not allowed; allowed: 'rabbitmq', 'kafka' or "
            "'redis'"
        ],
    ),
    (
        "processing-unknown",
        dep(processing="batch"),
        ["deployments.bert.processing: 'batch' is not allowed; allowed: 'sync' or 'async'"],
    ),
    # --- node pool backends -------------------------------------------------------------------
    (
        "karpenter-min-nodes",
        pool_stack(KARPENTER, minNodes=1, maxNodes=2),
        [
            "nodePools.a100.minNodes: 1 is not allowed with provider karpenter: it launches nodes "
            "on demand; use 0"
        ],
    ),
    (
        "karpenter-disk-size",
        pool_stack(KARPENTER, diskSizeGb=100),
        [
            "nodePools.a100.diskSizeGb: 100 is not read with provider karpenter: only gke and eks "
            "create disks"
        ],
    ),
    (
        "existing-disk-size",
        pool_stack({"name": "c"}, diskSizeGb=100),
        [
            "nodePools.a100.diskSizeGb: 100 is not read with provider existing: only gke and eks "
            "create disks"
        ],
    ),
    (
        "eks-without-role-and-subnets",
        stack_raw(cluster={"name": "c", "provider": "eks"}),
        ["cluster: provider eks needs nodeRoleArn and subnetIds"],
    ),
    (
        "eks-without-subnets",
        stack_raw(cluster={"name": "c", "provider": "eks", "nodeRoleArn": "a"}),
        ["cluster: provider eks needs nodeRoleArn and subnetIds"],
    ),
    (
        "gke-without-location",
        stack_raw(cluster={"name": "c", "provider": "gke"}),
        ["cluster: provider gke needs location (e.g. europe-west4)"],
    ),
    (
        "gke-gpu-not-offered",
        pool_stack(
            {"name": "c", "provider": "gke", "location": "l"},
            name="a10g",
            gpu={"type": "A10G", "count": 1},
        ),
        [
            "nodePools.a10g.gpu.type: A10G is not offered on GKE",
            "nodePools.a10g.machineType: required: no default gke machine carries 1 A10G; "
            "defaults exist for GPUs per node: none",
        ],
    ),
    (
        "gke-no-machine-for-count",
        pool_stack(GKE, gpu={"type": "H100", "count": 4}),
        [
            "nodePools.a100.machineType: required: no default gke machine carries 4 H100; "
            "defaults exist for GPUs per node: 8 (a3-highgpu-8g)"
        ],
    ),
    (
        "eks-no-machine-for-count",
        pool_stack(EKS, gpu={"type": "A100", "count": 1}),
        [
            "nodePools.a100.machineType: required: no default eks machine carries 1 A100; "
            "defaults exist for GPUs per node: 8 (p4d.24xlarge)"
        ],
    ),
    (
        "karpenter-no-machine-for-count",
        pool_stack(KARPENTER, gpu={"type": "T4", "count": 2}),
        [
            "nodePools.a100.machineType: required: no default karpenter machine carries 2 T4; "
            "defaults exist for GPUs per node: 1 (g4dn.xlarge), 4 (g4dn.12xlarge), 8 (g4dn.metal)"
        ],
    ),
    (
        "provider-unknown",
        stack_raw(cluster={"name": "c", "provider": "aks"}),
        [
            "cluster.provider: 'aks' is not allowed; allowed: 'existing', 'gke', 'eks', "
            "'karpenter' or 'local'"
        ],
    ),
    # --- model references ---------------------------------------------------------------------
    (
        "version-with-space",
        dep(model={**deployment_raw()["model"], "version": "v 1"}),
        [
            "deployments.bert.model: version 'v 1' is not allowed: letters, digits, '.', '_', "
            "'-', at most 63 characters"
        ],
    ),
    (
        "version-too-long",
        dep(model={**deployment_raw()["model"], "version": "v" * 64}),
        [
            f"deployments.bert.model: version '{'v' * 64}' is not allowed: letters, digits, '.', "
            "'_', '-', at most 63 characters"
        ],
    ),
    (
        "image-upper-case",
        dep(model={**deployment_raw()["model"], "image": "Reg.io/Bert:1"}),
        [
            "deployments.bert.model: image 'Reg.io/Bert:1' is not a valid image reference "
            "(registry/name:tag or registry/name@sha256:<digest>)"
        ],
    ),
    (
        "image-short-digest",
        dep(model={**deployment_raw()["model"], "image": "r/b@sha256:abc"}),
        [
            "deployments.bert.model: image 'r/b@sha256:abc' is not a valid image reference "
            "(registry/name:tag or registry/name@sha256:<digest>)"
        ],
    ),
    (
        "model-type-unknown",
        dep(model={**deployment_raw()["model"], "type": "gpt"}),
        [
            "deployments.bert.model.type: 'gpt' is not allowed; allowed: 'llm', 'stt', 'tts', "
            "'vision', 'embedding' or 'tabular'"
        ],
    ),
    (
        "model-image-missing",
        dep(model={"id": "m", "version": "v1", "type": "llm"}),
        ["deployments.bert.model.image: required but missing"],
    ),
    (
        "canary-image-bad",
        dep(strategy={**CANARY, "canaryImage": "BAD IMAGE"}),
        [
            "deployments.bert.strategy: canaryImage 'BAD IMAGE' is not a valid image reference "
            "(registry/name:tag or registry/name@sha256:<digest>)"
        ],
    ),
    # --- env and tags -------------------------------------------------------------------------
    (
        "env-key-digit",
        dep(env={"1BAD": "x"}),
        [
            "deployments.bert.env: env key '1BAD' is not allowed: must match "
            "^[A-Za-z_][A-Za-z0-9_]*$"
        ],
    ),
    (
        "env-key-dash",
        dep(env={"LOG-LEVEL": "x"}),
        [
            "deployments.bert.env: env key 'LOG-LEVEL' is not allowed: must match "
            "^[A-Za-z_][A-Za-z0-9_]*$"
        ],
    ),
    (
        "tag-key-upper",
        dep(tags={"Team": "x"}),
        ["deployments.bert.tags: tag key 'Team' is not allowed: must be a DNS-1123 label"],
    ),
    (
        "tag-value-space",
        dep(tags={"team": "a b"}),
        [
            "deployments.bert.tags: tag team='a b' is not allowed: values are Kubernetes label "
            "values (at most 63 of letters, digits, '-', '_', '.')"
        ],
    ),
    (
        "tag-value-too-long",
        dep(tags={"team": "a" * 64}),
        [
            f"deployments.bert.tags: tag team='{'a' * 64}' is not allowed: values are Kubernetes "
            "label values (at most 63 of letters, digits, '-', '_', '.')"
        ],
    ),
    # --- stack shape --------------------------------------------------------------------------
    ("cluster-missing", {"deployments": []}, ["cluster: required but missing"]),
    (
        "port-privileged",
        dep(port=80),
        ["deployments.bert.port: 80 is not allowed: input should be greater than or equal to 1024"],
    ),
    (
        "allowance-reason-short",
        stack_raw(
            allowReplacements=[
                {"path": "deployments.bert.name", "from": "bert", "to": "bert2", "reason": "short"}
            ]
        ),
        [
            "allowReplacements.0.reason: 'short' is not allowed: string should have at least 10 "
            "characters"
        ],
    ),
    (
        "allowance-old-form",
        stack_raw(allowReplacements=[{"path": "deployments.bert", "reason": "approved CHG-1"}]),
        [
            "allowReplacements.0: {path, reason} without from and to is no longer accepted: an "
            "entry allows one edit; write {path: deployments.bert, from: <value before>, to: "
            "<value after, null for a deletion>, reason: ...} (servestack diff prints the entry)"
        ],
    ),
    (
        "allowance-whole-item-edit",
        stack_raw(
            allowReplacements=[
                {"path": "deployments.bert", "from": "a", "to": "b", "reason": "approved CHG-1"}
            ]
        ),
        [
            "allowReplacements.0: path 'deployments.bert' names a whole deployment: it allows "
            "only its deletion (to: null); to allow an edit, name its field "
            "(deployments.bert.<field>)"
        ],
    ),
    (
        "allowance-prefix",
        stack_raw(
            allowReplacements=[
                {"path": "deployments.bert.model", "from": "a", "to": "b", "reason": "CHG-1 okay"}
            ]
        ),
        [
            "allowReplacements.0: path 'deployments.bert.model' is not allowed: an entry names "
            "one field of the stack config (such as nodePools.<name>.machineType), never a "
            "prefix of several"
        ],
    ),
    ("not-a-mapping", ["x"], ["expected a mapping of servestack keys, got ['x']"]),
]


@pytest.mark.parametrize(("raw", "expected"), [pytest.param(r, e, id=i) for i, r, e in RULES])
def test_rule_reports_exact_lines(raw: Any, expected: list[str]) -> None:
    assert problems(raw) == expected


def test_every_problem_of_one_config_is_reported_once_per_line() -> None:
    raw = stack_raw(
        deployment_raw(resources={"cpu": "x", "memory": "16GB"}),
        deployment_raw(name="b", autoscaling={"minReplicas": 5, "maxReplicas": 3}),
    )
    assert problems(raw) == [
        "deployments.bert.resources.cpu: 'x' must be a number of cores (e.g. 4, 0.5) or "
        "millicores (e.g. '500m')",
        "deployments.bert.resources.memory: '16GB' must be a Kubernetes quantity such as 512Mi "
        "or 16Gi, or a number of GiB",
        "deployments.b.autoscaling: minReplicas (5) must be <= maxReplicas (3)",
    ]


def test_problem_objects_carry_path_and_message() -> None:
    with pytest.raises(ConfigError) as info:
        parse_stack(dep(autoscaling={"minReplicas": 5, "maxReplicas": 3}), source="stack prod")
    assert info.value.problems == [
        Problem("deployments.bert.autoscaling", "minReplicas (5) must be <= maxReplicas (3)")
    ]
    assert info.value.source == "stack prod"
    assert str(info.value) == (
        "stack prod: deployments.bert.autoscaling: minReplicas (5) must be <= maxReplicas (3)"
    )


@pytest.mark.parametrize("gpu_type", [pytest.param(t, id=t.value) for t in GPU_TABLE])
def test_every_gpu_type_offered_by_its_pool_is_accepted(gpu_type: str) -> None:
    count = min(defaults(Family.ec2, GpuType(gpu_type)))  # Karpenter launches EC2 types
    stack = parse_stack(
        stack_raw(
            deployment_raw(resources=res(type=gpu_type, count=1)),
            cluster=KARPENTER,
            node_pools=[{"name": "pool", "gpu": {"type": gpu_type, "count": count}, "maxNodes": 2}],
        )
    )
    assert stack.deployments[0].resources.gpu.type == gpu_type


def test_gpu_deployment_without_pools_is_accepted_on_an_existing_cluster() -> None:
    stack = parse_stack(stack_raw(deployment_raw(resources=res(type="T4", count=1))))
    assert stack.node_pools == ()


def test_deployments_inherit_stack_environment_and_namespace_unless_set() -> None:
    stack = parse_stack(
        stack_raw(
            deployment_raw(),
            deployment_raw(name="own", environment="staging", namespace="other"),
            environment="production",
            namespace="models",
        )
    )
    assert [(d.environment, d.namespace) for d in stack.deployments] == [
        (Environment.production, "models"),
        (Environment.staging, "other"),
    ]


# --- rules added with the fixes --------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        {"machineType": "p4d.24xlarge", "gpu": {"type": "A100", "count": 8}},
        {"gpu": {"type": "A100", "count": 8}},
    ],
    ids=["machine-type-given", "default-exists"],
)
def test_pool_with_a_machine_for_its_count_is_accepted(extra: dict[str, Any]) -> None:
    stack = parse_stack(pool_stack(EKS, **{"gpu": {"type": "A100", "count": 1}, **extra}))
    assert [p.name for p in stack.node_pools] == ["a100"]


def test_a_machine_type_with_another_gpu_count_is_refused() -> None:
    raw = pool_stack(EKS, gpu={"type": "A100", "count": 1}, machineType="p4d.24xlarge")
    with pytest.raises(ConfigError) as info:
        parse_stack(raw)
    assert str(info.value) == (
        "nodePools.a100.machineType: p4d.24xlarge (96 vCPU, 1152 GiB, 8 x A100) carries 8 "
        "GPUs, but gpu.count is 1"
    )


@pytest.mark.parametrize(
    ("strategy", "lb"),
    [(CANARY, {"enabled": True}), (CANARY, None), ({"type": "rolling"}, {"enabled": False})],
    ids=["canary-enabled", "canary-default", "rolling-disabled"],
)
def test_load_balancer_rule_only_concerns_a_disabled_one_under_canary(
    strategy: dict[str, Any], lb: dict[str, Any] | None
) -> None:
    overrides: dict[str, Any] = {"strategy": strategy}
    if lb is not None:
        overrides["loadBalancer"] = lb
    assert parse_stack(dep(**overrides)).deployments[0].strategy.type.value == strategy["type"]


def test_async_autoscaling_on_cpu_and_memory_is_accepted() -> None:
    bounds = {"targetCpuUtilization": 80, "targetMemoryUtilization": 90}
    stack = parse_stack(dep(processing="async", queue=QUEUE, autoscaling=bounds))
    assert stack.deployments[0].autoscaling is not None


ENV_PROBLEM = (
    "environment: 'prod' is not allowed; allowed: 'development', 'staging' or 'production'"
)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"environment": "prod"}, [ENV_PROBLEM]),
        ({"namespace": "Models"}, [f"namespace: 'Models' {DNS}"]),
        (
            {"environment": "prod", "namespace": "Models"},
            [ENV_PROBLEM, f"namespace: 'Models' {DNS}"],
        ),
    ],
    ids=["environment", "namespace", "both"],
)
def test_invalid_stack_setting_is_one_problem(extra: dict[str, str], expected: list[str]) -> None:
    raw = stack_raw(deployment_raw(), deployment_raw(name="b"), **extra)
    assert problems(raw) == expected


def test_too_long_stack_namespace_is_one_problem() -> None:
    raw = stack_raw(deployment_raw(), deployment_raw(name="b"), namespace="a" * 41)
    assert problems(raw) == [f"namespace: '{'a' * 41}' {DNS}"]


@pytest.mark.parametrize("environment", [["production"], {"name": "production"}])
def test_non_string_stack_environment_is_one_problem(environment: Any) -> None:
    assert problems(stack_raw(deployment_raw(), environment=environment)) == [
        f"environment: {environment!r} is not allowed; allowed: 'development', 'staging' or "
        "'production'"
    ]


@pytest.mark.parametrize(
    ("environment", "surge"),
    [("staging", 0), ("staging", "0%"), ("production", 0), ("production", "0%")],
)
def test_max_surge_zero_with_default_max_unavailable_zero_is_refused(
    environment: str, surge: int | str
) -> None:
    raw = stack_raw(deployment_raw(strategy={"maxSurge": surge}), environment=environment)
    assert problems(raw) == [
        f"deployments.bert.strategy: maxSurge {surge!r} with maxUnavailable 0 "
        f"({environment} default): a rollout could never make progress"
    ]


@pytest.mark.parametrize(
    ("environment", "strategy"),
    [
        ("development", {"maxSurge": 0}),
        ("development", {"maxUnavailable": 0}),
        ("staging", {"maxSurge": 0, "maxUnavailable": 1}),
        ("production", {"maxUnavailable": "100%"}),
        ("production", {"maxSurge": "150%"}),
    ],
)
def test_rollouts_that_can_progress_are_accepted(
    environment: str, strategy: dict[str, Any]
) -> None:
    stack = parse_stack(stack_raw(deployment_raw(strategy=strategy), environment=environment))
    assert stack.deployments[0].strategy.type.value == "rolling"


# --- quantities -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "canonical", "millicores"),
    [
        (4, "4", 4000),
        (0.5, "500m", 500),
        ("500m", "500m", 500),
        ("4", "4", 4000),
        ("1.5", "1500m", 1500),
        ("2000m", "2", 2000),
        (0.001, "1m", 1),
        (" 250m ", "250m", 250),
    ],
)
def test_cpu_quantities(value: object, canonical: str, millicores: int) -> None:
    resources = Resources(cpu=value, memory=1)  # type: ignore[arg-type]
    assert (resources.cpu, resources.cpu_millicores) == (canonical, millicores)


@pytest.mark.parametrize(
    ("value", "canonical", "mib"),
    [
        (16, "16Gi", 16384),
        ("512Mi", "512Mi", 512),
        ("16Gi", "16Gi", 16384),
        (0.5, "512Mi", 512),
        ("1024Mi", "1Gi", 1024),
        ("1.5Gi", "1536Mi", 1536),
        ("2048Ki", "2Mi", 2),
        ("1Ti", "1Ti", 1048576),
        ("1G", "1G", 953),
        ("1000K", "1M", 0),
        ("1.5K", "2Ki", 0),  # no exact suffix: rounded up to whole KiB, never a bare number
        ("4", "4Gi", 4096),
    ],
)
def test_memory_quantities(value: object, canonical: str, mib: int) -> None:
    resources = Resources(cpu=1, memory=value)  # type: ignore[arg-type]
    assert (resources.memory, resources.memory_mib) == (canonical, mib)


@given(st.integers(min_value=1, max_value=2**20).map(lambda mib: mib * 2**20))
def test_memory_format_round_trips_for_whole_mebibytes(n_bytes: int) -> None:
    assert memory_bytes(format_memory(n_bytes)) == n_bytes


@given(st.integers(min_value=1, max_value=10**7))
def test_cpu_format_round_trips(millicores: int) -> None:
    assert cpu_millicores(format_cpu(millicores)) == millicores


@given(st.integers(min_value=1, max_value=2**50))
def test_memory_format_has_a_suffix_and_rounds_up_below_one_kib(n_bytes: int) -> None:
    text = format_memory(n_bytes)
    assert not text.isdigit()
    read = memory_bytes(text)
    if n_bytes % 1000 == 0 or n_bytes % 1024 == 0:
        assert read == n_bytes
    else:
        # Rounded up to whole KiB, then written as that amount's canonical quantity.
        assert read == -(-n_bytes // 1024) * 1024
        assert text == format_memory(read)
    assert format_memory(read) == text  # the rounded amount itself is exact and canonical


def test_memory_rounded_up_is_already_canonical() -> None:
    first = Resources(cpu=1, memory="1047.553K")
    assert first.memory == "1Mi"  # 1047553 bytes round up to 1024Ki, written 1Mi
    assert Resources(cpu=1, memory=first.memory).memory == first.memory


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("2G", "2G"),
        ("1T", "1T"),
        ("16G", "16G"),
        ("1024K", "1000Ki"),  # as short as 1024K: a tie prefers the binary suffix
        ("1000Ki", "1000Ki"),
        ("1048576K", "1000Mi"),
    ],
)
def test_memory_format_is_the_shortest_exact_quantity(value: str, canonical: str) -> None:
    assert format_memory(memory_bytes(value)) == canonical


# --- stack files ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stack", "environment", "provider", "deployments", "pools"),
    [
        ("dev", "development", "existing", ["bert-sentiment", "whisper-batch"], []),
        ("staging", "staging", "karpenter", ["bert-sentiment", "resnet-vision"], ["t4"]),
        ("prod", "production", "karpenter", ["bert-sentiment", "llama-chat"], ["a100"]),
    ],
)
def test_stack_files_load(
    stack: str, environment: str, provider: str, deployments: list[str], pools: list[str]
) -> None:
    config = load_stack_config(STACKS / f"Pulumi.{stack}.yaml")
    assert config.environment == Environment(environment)
    assert config.cluster.provider == CloudProvider(provider)
    assert [d.name for d in config.deployments] == deployments
    assert [p.name for p in config.node_pools] == pools
    assert {d.environment for d in config.deployments} == {Environment(environment)}
    assert {d.namespace for d in config.deployments} == {config.namespace}


def test_broken_edit_of_a_stack_file_lists_one_line_per_problem(tmp_path: Path) -> None:
    text = (STACKS / "Pulumi.dev.yaml").read_text()
    edits = {
        "cpu: 2\n": "cpu: two\n",
        "type: stt\n": "type: speech\n",
        "maxReplicas: 3": "maxReplicas: 0",
        "path: /ready": "path: ready",
    }
    for old, new in edits.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_stack_config(path)
    assert str(info.value).splitlines() == [
        f"{path}: deployments.bert-sentiment.resources.cpu: 'two' must be a number of cores "
        "(e.g. 4, 0.5) or millicores (e.g. '500m')",
        f"{path}: deployments.bert-sentiment.loadBalancer.healthCheck: path 'ready' must start "
        "with '/' and contain no spaces",
        f"{path}: deployments.whisper-batch.model.type: 'speech' is not allowed; allowed: "
        "'llm', 'stt', 'tts', 'vision', 'embedding' or 'tabular'",
        f"{path}: deployments.whisper-batch.autoscaling.maxReplicas: 0 is not allowed: input "
        "should be greater than or equal to 1",
    ]


def test_stack_file_keys_of_other_namespaces_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text(
        "config:\n  kubernetes:context: kind\n  servestack:cluster: {name: c}\n"
        "  servestack:environment: staging\n"
    )
    config = load_stack_config(path)
    assert (config.cluster.name, config.environment) == ("c", Environment.staging)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(None, "cannot read: No such file or directory", id="missing"),
        pytest.param(
            "config:\n  servestack:cluster: {name: x\n",
            "line 3: not valid YAML (while parsing a flow mapping: did not find expected ',' "
            "or '}')",
            id="unclosed-flow-mapping",
        ),
        pytest.param("config: [1, 2]\n", "config: must be a mapping of keys", id="config-list"),
        pytest.param("just a sentence\n", "config: must be a mapping of keys", id="plain-text"),
        pytest.param("", "cluster: required but missing", id="empty"),
        pytest.param(
            "config:\n  servestack:cluster: !!python/object:os.system {}\n",
            "line 2: not valid YAML (could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/object:os.system')",
            id="python-tag",
        ),
    ],
)
def test_unreadable_stack_files_give_a_clean_error(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_stack_config(path)
    assert str(info.value) == f"{path}: {expected}"


def test_directory_instead_of_a_file_gives_a_clean_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_stack_config(tmp_path)
    assert str(info.value) == f"{tmp_path}: cannot read: Is a directory"


def test_binary_file_gives_a_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    with pytest.raises(ConfigError) as info:
        load_stack_config(path)
    assert str(info.value) == f"{path}: not a UTF-8 text file"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            'config:\n  servestack:namespace: "\x01"\n',
            "character 34: not valid YAML (unacceptable character #x0001: special characters "
            "are not allowed)",
        ),
        (
            "config:\n  servestack:namespace: \x7f\n",
            "character 33: not valid YAML (unacceptable character #x007f: special characters "
            "are not allowed)",
        ),
    ],
    ids=["control-character-quoted", "delete-character"],
)
def test_yaml_reader_error_is_one_line(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_stack_config(path)
    assert str(info.value) == f"{path}: {expected}"


def test_scale_to_zero_is_for_keda_workers_with_an_activation_threshold() -> None:
    queue = {**QUEUE, "activationDepth": 1}
    stack = parse_stack(
        dep(
            processing="async",
            queue=queue,
            loadBalancer=None,
            autoscaling={"minReplicas": 0, "maxReplicas": 3},
        )
    )
    scaling = stack.deployments[0].autoscaling
    assert scaling is not None and scaling.min_replicas == 0
    assert stack.deployments[0].queue is not None
    assert stack.deployments[0].queue.connection_secret_key == "url"


def test_deployments_inherit_the_stacks_pull_secrets_unless_they_list_their_own() -> None:
    raw = stack_raw(deployment_raw(), deployment_raw(name="own", imagePullSecrets=["mine"]))
    stack = parse_stack({**raw, "imagePullSecrets": ["regcred"]})
    assert [(d.name, d.image_pull_secrets) for d in stack.deployments] == [
        ("bert", ("regcred",)),
        ("own", ("mine",)),
    ]


def test_the_python_api_defaults_to_the_stack_files_namespace() -> None:
    assert (
        parse_deployment(deployment_raw()).namespace
        == StackConfig.model_fields["namespace"].default
        == "models"
    )
