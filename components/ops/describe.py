"""A deployment's fields as the platform client sees them (millicores, MiB)."""

from __future__ import annotations

from typing import Any

from servestack.config import paths
from servestack.config.defaults import effective
from servestack.config.errors import ConfigError, Problem
from servestack.config.models import DeploymentSpec, StackConfig, StrategyType


def no_such_deployment(name: str, have: list[str]) -> ConfigError:
    """`deployments.<name>: no such deployment; have: a, b`."""
    return ConfigError(
        [Problem(paths.deployment(name), f"no such deployment; have: {', '.join(have)}")]
    )


def find_deployment(config: StackConfig, name: str) -> DeploymentSpec:
    for dep in config.deployments:
        if dep.name == name:
            return dep
    raise no_such_deployment(name, [d.name for d in config.deployments])


def describe(spec: DeploymentSpec, config: StackConfig) -> dict[str, Any]:
    """A deployment's fields, in the platform client's units (millicores, MiB)."""
    eff = effective(spec)
    gpu = spec.resources.gpu
    out: dict[str, Any] = {
        "name": spec.name,
        "description": spec.description,
        "model_id": spec.model.id,
        "model_version": spec.model.version,
        "model_type": spec.model.type.value,
        "image": spec.model.image,
        "environment": config.environment.value,
        "namespace": config.namespace,
        "processing": spec.processing.value,
        "active": spec.active,
        "replicas": eff.replicas,
        "autoscaling": (
            {
                "min_replicas": eff.autoscaling.min_replicas,
                "max_replicas": eff.autoscaling.max_replicas,
            }
            if eff.autoscaling
            else None
        ),
        "cpu": spec.resources.cpu_millicores,
        "memory": spec.resources.memory_mib,
        "gpu": {"count": gpu.count, "type": gpu.type.value if gpu.type else None},
        "strategy": spec.strategy.type.value,
    }
    if spec.strategy.type is StrategyType.canary:
        out["canary"] = {
            "version": spec.strategy.canary_version,
            "image": spec.strategy.canary_image,
            "weight": spec.strategy.weight,
        }
    return out
