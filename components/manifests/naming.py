"""The one place child names come from.

A child's Pulumi name and its Kubernetes ``metadata.name`` are the same string, derived
here. Names are contract: renaming a child (or a type token) without an ``alias`` replaces
live resources, so treat any change in this module as breaking.
"""

from __future__ import annotations

import hashlib
import re

from servestack.config.models import DeploymentSpec, Slot, StrategyType
from servestack.contract import labels as keys
from servestack.manifests.provenance import opt, src

TYPE_PREFIX = "servestack:index"

MODEL_DEPLOYMENT = f"{TYPE_PREFIX}:ModelDeployment"
AUTOSCALER = f"{TYPE_PREFIX}:Autoscaler"
LOAD_BALANCER = f"{TYPE_PREFIX}:LoadBalancer"
GPU_NODE_POOL = f"{TYPE_PREFIX}:GpuNodePool"

#: Suffixes of children; a child named with no suffix carries the parent's name.
CANARY = "canary"
STABLE = "stable"
TRACK_LABEL = keys.TRACK
VERSION_LABEL = keys.MODEL_VERSION
GATEWAY_RULE = "lb"
ROUTES = "routes"
#: The Gateway API HTTPRoute (external traffic).
HTTP_ROUTE = "route"
BUDGET = "pdb"
INGRESS_POLICY = "ingress"
SECRET_ENV = "env"
DASHBOARD = "dashboard"
METRICS_POLICY = "metrics"
#: The namespace a Python-API ModelDeployment creates when asked (``create_namespace``).
NAMESPACE = "namespace"


#: Every suffix a child of a model may carry (None: the model's own name).
SUFFIXES = (
    None,
    CANARY,
    STABLE,
    HTTP_ROUTE,
    GATEWAY_RULE,
    ROUTES,
    BUDGET,
    INGRESS_POLICY,
    SECRET_ENV,
    DASHBOARD,
    METRICS_POLICY,
    NAMESPACE,
)


def child_name(parent: str, suffix: str | None = None) -> str:
    """Pulumi name and Kubernetes name of a child resource."""
    return f"{parent}-{suffix}" if suffix else parent


def version_slug(version: str) -> str:
    """A model version as a DNS-label fragment: ``v2.1.0`` -> ``v2-1-0``.

    Versions made of dot-separated lower-case words of at most 20 characters map one to one
    (their slugs never contain ``--``). Any other version gets a short hash of the exact
    string after ``--``, so two distinct versions never share a blue-green Deployment.
    """
    if re.fullmatch(r"[a-z0-9]+(\.[a-z0-9]+)*", version) and len(version) <= 20:
        return version.replace(".", "-")
    slug = re.sub(r"[^a-z0-9]+", "-", version.lower()).strip("-")[:12].strip("-") or "v"
    digest = hashlib.sha256(version.encode()).hexdigest()[:6]
    return f"{slug}--{digest}"


def slot(spec: DeploymentSpec, track: str) -> str:
    """The slot that runs ``track`` (:data:`STABLE` or :data:`CANARY`): the value of its
    pods' track label, which its Deployment's selector holds. The stable track runs in
    slot ``stableSlot`` (``main`` is :data:`STABLE`), a canary in the other one.

    A Deployment's slot label never changes (it is in its name): ``stableSlot`` decides
    which Deployment a track is, and is recorded in the names (:func:`workload_fields`)."""
    swapped = spec.stable_slot is Slot.canary
    if track == STABLE:
        return CANARY if swapped else STABLE
    return STABLE if swapped else CANARY


def deployment_name(spec: DeploymentSpec, track: str) -> str:
    """Name of the Deployment of ``track``: ``<name>`` for slot stable (by version under
    blue-green), ``<name>-canary`` for slot canary, whichever track runs there.

    Blue-green keys the Deployment by model version, so a new version is a new Deployment
    created next to the old one: traffic switches when it is ready, then the old one goes.
    """
    if slot(spec, track) == CANARY:
        return child_name(spec.name, CANARY)
    if spec.strategy.type is StrategyType.blue_green:
        return child_name(spec.name, version_slug(spec.model.version))
    return spec.name


def workload_name(spec: DeploymentSpec) -> str:
    """Name of the stable Deployment."""
    return deployment_name(spec, STABLE)


def child_names(spec: DeploymentSpec) -> set[str]:
    """Every name a child of this model can have (a superset of those it has)."""
    return {child_name(spec.name, s) for s in SUFFIXES} | {workload_name(spec)}


def labels(spec: DeploymentSpec) -> dict[str, str]:
    """Labels on every child of a deployment (selectors use :func:`selector` only)."""
    return {
        keys.NAME: src(spec.name, "name"),
        keys.MANAGED_BY: keys.MANAGER,
        keys.MODEL_TYPE: src(spec.model.type.value, "model.type"),
        keys.ENVIRONMENT: src(spec.environment.value, "environment"),
        **{keys.tag(k): opt(v, f"tags.{k}") for k, v in spec.tags.items()},
    }


def selector(spec: DeploymentSpec, track: str | None = None) -> dict[str, str]:
    """Pod selector. With a track it is a Deployment's (immutable) selector: the track's
    slot (:func:`slot`).

    Only fields whose edit already means a new Deployment go in: the name, the track and,
    for blue-green (whose Deployment is keyed by version), the version. Anything else here
    would turn an ordinary edit into a replacement.
    """
    sel = {keys.NAME: src(spec.name, "name")}
    if track is not None:
        sel[TRACK_LABEL] = slot(spec, track)
    if spec.strategy.type is StrategyType.blue_green and track != CANARY:
        sel[VERSION_LABEL] = src(
            version_slug(spec.model.version), "model.version", when=["strategy.type"]
        )
    return sel


def workload_fields(spec: DeploymentSpec) -> tuple[str, ...]:
    """The fields the stable Deployment's name (its identity) is derived from.

    Switching to or from blue-green renames it, so ``strategy.type`` is always among them.
    """
    if spec.strategy.type is StrategyType.blue_green:
        return ("name", "strategy.type", "model.version")
    return ("name", "strategy.type", "stableSlot")
