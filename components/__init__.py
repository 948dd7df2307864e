"""servestack: Pulumi components that serve ML models on Kubernetes from one typed config."""

from components.autoscaler import Autoscaler
from components.config import (
    Algorithm,
    Allowance,
    Autoscaling,
    CloudProvider,
    ClusterSpec,
    DeploymentSpec,
    Environment,
    GpuSpec,
    HealthCheck,
    LoadBalancerSpec,
    ModelRef,
    ModelType,
    NodePoolSpec,
    Processing,
    Queue,
    QueueKind,
    Resources,
    StackConfig,
    Strategy,
    StrategyType,
    Target,
)
from components.errors import ConfigError, Problem
from components.gpu import GPU_TABLE, GpuType
from components.gpu_node_pool import GpuNodePool
from components.load_balancer import LoadBalancer
from components.model_deployment import ModelDeployment
from components.scaling import ScalerTarget
from components.validation import load_stack_config, parse_stack

__all__ = [
    "GPU_TABLE",
    "Algorithm",
    "Allowance",
    "Autoscaler",
    "Autoscaling",
    "CloudProvider",
    "ClusterSpec",
    "ConfigError",
    "DeploymentSpec",
    "Environment",
    "GpuNodePool",
    "GpuSpec",
    "GpuType",
    "HealthCheck",
    "LoadBalancer",
    "LoadBalancerSpec",
    "ModelDeployment",
    "ModelRef",
    "ModelType",
    "NodePoolSpec",
    "Problem",
    "Processing",
    "Queue",
    "QueueKind",
    "Resources",
    "ScalerTarget",
    "StackConfig",
    "Strategy",
    "StrategyType",
    "Target",
    "load_stack_config",
    "parse_stack",
]
