"""Builders of raw (YAML-shaped) configs and typed specs for the unit tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from servestack import ConfigError, DeploymentSpec, StackConfig, load_stack_config, parse_stack
from servestack.config.defaults import Effective, effective
from servestack.program.stack import build
from tests.mocks import Recorder, run_program

MODEL = {
    "id": "model-001",
    "version": "v2.1.0",
    "type": "llm",
    "image": "registry.example.com/nlp/bert:2.1.0",
}


def deployment_raw(**overrides: Any) -> dict[str, Any]:
    """A minimal valid sync deployment named ``bert`` in the YAML shape."""
    raw: dict[str, Any] = {
        "name": "bert",
        "model": copy.deepcopy(MODEL),
        "resources": {"cpu": 4, "memory": "16Gi"},
    }
    raw.update(copy.deepcopy(overrides))
    return raw


def deployment(**overrides: Any) -> DeploymentSpec:
    """A validated DeploymentSpec (no stack: no cross-checks, environment as given)."""
    return DeploymentSpec.model_validate(deployment_raw(**overrides))


def with_effective(**overrides: Any) -> tuple[DeploymentSpec, Effective]:
    spec = deployment(**overrides)
    return spec, effective(spec)


def stack_raw(
    *deployments: dict[str, Any],
    environment: str = "production",
    cluster: dict[str, Any] | None = None,
    node_pools: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A stack mapping (keys without the ``servestack:`` prefix)."""
    raw: dict[str, Any] = {
        "environment": environment,
        "cluster": cluster if cluster is not None else {"name": "prod-eu-1"},
        "deployments": list(deployments) if deployments else [deployment_raw()],
    }
    if node_pools is not None:
        raw["nodePools"] = node_pools
    raw.update(extra)
    return raw


def problems(raw: Any) -> list[str]:
    """The lines of the ConfigError that ``parse_stack(raw)`` must raise."""
    with pytest.raises(ConfigError) as info:
        parse_stack(raw)
    lines = str(info.value).splitlines()
    assert lines == [str(p) for p in info.value.problems]
    return lines


STACKS = Path(__file__).resolve().parents[2] / "stacks"
STACK_NAMES = ("dev", "staging", "prod")


def stack_config(stack: str) -> StackConfig:
    return load_stack_config(STACKS / f"Pulumi.{stack}.yaml")


def run_stack(stack: str) -> Recorder:
    """Build a stack file's resources under Pulumi mocks."""
    config = stack_config(stack)
    return run_program(lambda: build(config, stack), stack=stack)
