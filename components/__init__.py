"""servestack: Pulumi components that serve ML models on Kubernetes from one typed config.

The top level is lazy (PEP 562): ``import servestack`` loads nothing heavy, and a name is
imported from its subpackage on first use. The review tool (`servestack validate`,
`servestack diff`) therefore never imports pulumi or pulumi_kubernetes.

Subpackages, one concern each:
    config      the typed stack config: models, errors, quantities, GPUs, defaults, files
    contract    the field-effect table, field paths, label and annotation keys
    manifests   pure builders: validated config in, complete Kubernetes manifests out
    program     the stack program that `pulumi up` runs
    review      offline diff, preview explanation, PR reports
    ops         operations on a deployment as reviewed stack-file edits
    engine      running the Pulumi engine; finding and creating projects
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Public name -> module that defines it.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(
        (
            "Algorithm",
            "Allowance",
            "Autoscaling",
            "CloudProvider",
            "ClusterSpec",
            "CustomGpuLabels",
            "DeploymentSpec",
            "Environment",
            "GpuLabels",
            "GpuSpec",
            "HealthCheck",
            "LoadBalancerSpec",
            "ModelRef",
            "ModelType",
            "NodePoolSpec",
            "Processing",
            "Queue",
            "QueueKind",
            "Resources",
            "StackConfig",
            "Strategy",
            "StrategyType",
            "Target",
        ),
        "servestack.config.models",
    ),
    "ConfigError": "servestack.config.errors",
    "Problem": "servestack.config.errors",
    "GPU_TABLE": "servestack.config.gpu",
    "GpuType": "servestack.config.gpu",
    "load_stack_config": "servestack.config.validation",
    "parse_stack": "servestack.config.validation",
    "ScalerTarget": "servestack.manifests.scaling",
    "Autoscaler": "servestack.autoscaler",
    "GpuNodePool": "servestack.gpu_node_pool",
    "LoadBalancer": "servestack.load_balancer",
    "ModelDeployment": "servestack.model_deployment",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'servestack' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:
    from servestack.autoscaler import (
        Autoscaler as Autoscaler,
    )
    from servestack.config.errors import (
        ConfigError as ConfigError,
    )
    from servestack.config.errors import (
        Problem as Problem,
    )
    from servestack.config.gpu import (
        GPU_TABLE as GPU_TABLE,
    )
    from servestack.config.gpu import (
        GpuType as GpuType,
    )
    from servestack.config.models import (
        Algorithm as Algorithm,
    )
    from servestack.config.models import (
        Allowance as Allowance,
    )
    from servestack.config.models import (
        Autoscaling as Autoscaling,
    )
    from servestack.config.models import (
        CloudProvider as CloudProvider,
    )
    from servestack.config.models import (
        ClusterSpec as ClusterSpec,
    )
    from servestack.config.models import (
        CustomGpuLabels as CustomGpuLabels,
    )
    from servestack.config.models import (
        DeploymentSpec as DeploymentSpec,
    )
    from servestack.config.models import (
        Environment as Environment,
    )
    from servestack.config.models import (
        GpuLabels as GpuLabels,
    )
    from servestack.config.models import (
        GpuSpec as GpuSpec,
    )
    from servestack.config.models import (
        HealthCheck as HealthCheck,
    )
    from servestack.config.models import (
        LoadBalancerSpec as LoadBalancerSpec,
    )
    from servestack.config.models import (
        ModelRef as ModelRef,
    )
    from servestack.config.models import (
        ModelType as ModelType,
    )
    from servestack.config.models import (
        NodePoolSpec as NodePoolSpec,
    )
    from servestack.config.models import (
        Processing as Processing,
    )
    from servestack.config.models import (
        Queue as Queue,
    )
    from servestack.config.models import (
        QueueKind as QueueKind,
    )
    from servestack.config.models import (
        Resources as Resources,
    )
    from servestack.config.models import (
        StackConfig as StackConfig,
    )
    from servestack.config.models import (
        Strategy as Strategy,
    )
    from servestack.config.models import (
        StrategyType as StrategyType,
    )
    from servestack.config.models import (
        Target as Target,
    )
    from servestack.config.validation import (
        load_stack_config as load_stack_config,
    )
    from servestack.config.validation import (
        parse_stack as parse_stack,
    )
    from servestack.gpu_node_pool import (
        GpuNodePool as GpuNodePool,
    )
    from servestack.load_balancer import (
        LoadBalancer as LoadBalancer,
    )
    from servestack.manifests.scaling import (
        ScalerTarget as ScalerTarget,
    )
    from servestack.model_deployment import (
        ModelDeployment as ModelDeployment,
    )
