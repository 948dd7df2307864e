"""`ModelDeployment`: everything that serves one model, from one typed spec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import naming, workload
from components.autoscaler import Autoscaler
from components.config import DeploymentSpec, StrategyType
from components.defaults import effective
from components.errors import ConfigError, Problem
from components.load_balancer import LoadBalancer
from components.scaling import ScalerTarget
from components.validation import deployment_checks, parse_deployment

#: Pod-template label that pins the processing type: changing it replaces the Deployment
#: (the infrastructure form of "create a new deployment"), as the field-effect table says.
PROCESSING_LABEL = "servestack.io/processing"
LOCKED_PATHS = [f'metadata.labels["{PROCESSING_LABEL}"]']


class ModelDeployment(pulumi.ComponentResource):
    """A served model: ServiceAccount, Deployment(s), disruption budget, autoscaler and
    load balancer, all children of this component.

    Args:
        name: the deployment's name (a DNS-1123 label); it is also the Service's name.
        spec: a :class:`DeploymentSpec` or a plain dict in the stack-file YAML shape.
        opts: resource options; pass ``provider=`` for a Kubernetes provider.

    Raises:
        ConfigError: the spec is invalid. Nothing is registered in that case.
    """

    deployment: k8s.apps.v1.Deployment
    endpoint: pulumi.Output[str] | None

    def __init__(
        self,
        name: str,
        spec: DeploymentSpec | dict[str, Any],
        opts: pulumi.ResourceOptions | None = None,
        *,
        secrets: pulumi.Input[Mapping[str, str]] | None = None,
    ) -> None:
        if isinstance(spec, dict):
            spec = parse_deployment({"name": name, **spec})
        elif spec.name != name:
            spec = parse_deployment({**spec.model_dump(by_alias=True), "name": name})
        checks = deployment_checks(spec)
        if checks:
            raise ConfigError(checks)
        if spec.secret_env and secrets is None:
            raise ConfigError(
                [
                    Problem(
                        f"deployments[{name}].secretEnv",
                        f"{', '.join(spec.secret_env)} need values: pass secrets= (a Pulumi secret "
                        "mapping of env name to value)",
                    )
                ]
            )
        super().__init__(naming.MODEL_DEPLOYMENT, name, None, opts)
        eff = effective(spec)
        child = pulumi.ResourceOptions(parent=self, delete_before_replace=True)

        sa = workload.service_account(spec)
        account = k8s.core.v1.ServiceAccount(
            name,
            metadata=sa["metadata"],
            automount_service_account_token=sa["automountServiceAccountToken"],
            opts=child,
        )
        deps: list[pulumi.Resource] = [account]
        if spec.secret_env:
            # Values stay Pulumi secrets: encrypted in state, never in config or output.
            secret = k8s.core.v1.Secret(
                workload.secret_name(spec),
                metadata=workload.metadata(spec, workload.secret_name(spec)),
                type="Opaque",
                string_data=pulumi.Output.secret(secrets),  # type: ignore[arg-type]
                opts=child,
            )
            deps.append(secret)

        self.deployment = self._deployment(spec, workload.deployment(spec, eff), child, deps)
        workloads: list[pulumi.Resource] = [self.deployment]
        if spec.strategy.type is StrategyType.canary:
            workloads.append(
                self._deployment(
                    spec, workload.deployment(spec, eff, track=naming.CANARY), child, deps
                )
            )

        policy = workload.network_policy(spec)
        k8s.networking.v1.NetworkPolicy(
            policy["metadata"]["name"], metadata=policy["metadata"], spec=policy["spec"], opts=child
        )

        if eff.disruption_budget:
            pdb = workload.disruption_budget(spec)
            k8s.policy.v1.PodDisruptionBudget(
                pdb["metadata"]["name"], metadata=pdb["metadata"], spec=pdb["spec"], opts=child
            )

        if eff.autoscaling is not None:
            Autoscaler(
                name,
                ScalerTarget(
                    name=name,
                    deployment=naming.workload_name(spec),
                    namespace=spec.namespace,
                    bounds=eff.autoscaling,
                    labels=naming.labels(spec),
                    queue=spec.queue,
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=workloads),
            )

        self.endpoint = None
        if eff.load_balancer is not None:
            lb = LoadBalancer(
                name,
                spec,
                eff.load_balancer,
                opts=pulumi.ResourceOptions(parent=self, depends_on=workloads),
            )
            self.endpoint = lb.endpoint

        self.spec = spec
        self.register_outputs(
            {
                "deployment": naming.workload_name(spec),
                "endpoint": self.endpoint,
                "active": spec.active,
                "modelVersion": spec.model.version,
            }
        )

    def _deployment(
        self,
        spec: DeploymentSpec,
        manifest: dict[str, Any],
        opts: pulumi.ResourceOptions,
        deps: list[pulumi.Resource],
    ) -> k8s.apps.v1.Deployment:
        manifest["metadata"]["labels"][PROCESSING_LABEL] = spec.processing.value
        return k8s.apps.v1.Deployment(
            manifest["metadata"]["name"],
            metadata=manifest["metadata"],
            spec=manifest["spec"],
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(depends_on=deps, replace_on_changes=LOCKED_PATHS)
            ),
        )
