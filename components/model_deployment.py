"""`ModelDeployment`: everything that serves one model, from one typed spec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from servestack.autoscaler import Autoscaler
from servestack.config import paths
from servestack.config.errors import ConfigError, Problem
from servestack.config.models import CustomGpuLabels, DeploymentSpec, GpuLabels
from servestack.config.validation import (
    custom_label_checks,
    deployment_checks,
    parse_deployment,
)
from servestack.contract import labels
from servestack.load_balancer import LoadBalancer
from servestack.manifests import model, naming, workload
from servestack.manifests.lifecycle import LOCKED_PATHS

#: Label that pins the processing type: changing it replaces the Deployment (the
#: infrastructure form of "create a new deployment"), as the field-effect table says.
PROCESSING_LABEL = labels.PROCESSING


class ModelDeployment(pulumi.ComponentResource):
    """A served model: ServiceAccount, Deployment(s), disruption budget, autoscaler and
    load balancer, all children of this component.

    Args:
        name: the deployment's name (a DNS-1123 label); it is also the Service's name.
        spec: a :class:`DeploymentSpec` or a plain dict in the stack-file YAML shape.
        opts: resource options; pass ``provider=`` for a Kubernetes provider.
        secrets: values of ``secretEnv`` (a Pulumi secret mapping of env name to value).
        create_namespace: also create the spec's namespace (default ``models``, as in a
            stack file), labelled to enforce the restricted Pod Security profile. Leave it
            off when the namespace exists or another component creates it.
        gpu_labels: how the cluster marks its GPU nodes (the stack file's
            ``cluster.gpuLabels``): a :class:`GpuLabels` mode, or the
            :class:`CustomGpuLabels` themselves.

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
        create_namespace: bool = False,
        gpu_labels: GpuLabels | CustomGpuLabels = GpuLabels.servestack,
    ) -> None:
        if isinstance(spec, dict):
            spec = parse_deployment({"name": name, **spec})
        elif spec.name != name:
            spec = parse_deployment({**spec.model_dump(by_alias=True), "name": name})
        checks = deployment_checks(spec) + custom_label_checks(gpu_labels, [spec])
        if checks:
            raise ConfigError(checks)
        if spec.secret_env and secrets is None:
            raise ConfigError(
                [
                    Problem(
                        paths.deployment(name, "secretEnv"),
                        f"{', '.join(spec.secret_env)} need values: pass secrets= (a Pulumi secret "
                        "mapping of env name to value)",
                    )
                ]
            )
        super().__init__(naming.MODEL_DEPLOYMENT, name, None, opts)
        p = model.plan(spec, gpu_labels)
        child = pulumi.ResourceOptions(parent=self, delete_before_replace=True)
        if create_namespace:
            ns = k8s.core.v1.Namespace(
                naming.child_name(name, naming.NAMESPACE),
                metadata=workload.namespace(spec.namespace)["metadata"],
                opts=child,
            )
            child = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[ns]))

        account = k8s.core.v1.ServiceAccount(
            name,
            metadata=p.service_account["metadata"],
            automount_service_account_token=p.service_account["automountServiceAccountToken"],
            opts=child,
        )
        deps: list[pulumi.Resource] = [account]
        if p.secret is not None:
            # Values stay Pulumi secrets: encrypted in state, never in config or output.
            secret = k8s.core.v1.Secret(
                p.secret["metadata"]["name"],
                metadata=p.secret["metadata"],
                type=p.secret["type"],
                string_data=pulumi.Output.secret(secrets),  # type: ignore[arg-type]
                opts=child,
            )
            deps.append(secret)

        scaled = p.scaler.deployment if p.scaler is not None else None
        workloads = [
            self._deployment(m, child, deps, scaled=m["metadata"]["name"] == scaled)
            for m in p.workloads
        ]
        self.deployment = workloads[0]

        policy = p.network_policy
        k8s.networking.v1.NetworkPolicy(
            policy["metadata"]["name"], metadata=policy["metadata"], spec=policy["spec"], opts=child
        )

        if p.disruption_budget is not None:
            pdb = p.disruption_budget
            k8s.policy.v1.PodDisruptionBudget(
                pdb["metadata"]["name"], metadata=pdb["metadata"], spec=pdb["spec"], opts=child
            )

        after = pulumi.ResourceOptions(parent=self, depends_on=list(workloads))
        if p.scaler is not None:
            Autoscaler(name, p.scaler, opts=after)

        self.endpoint = None
        if p.load_balancer is not None:
            self.endpoint = LoadBalancer(name, spec, p.load_balancer, opts=after).endpoint

        for m in p.monitoring:
            _monitoring_child(m, child)

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
        manifest: dict[str, Any],
        opts: pulumi.ResourceOptions,
        deps: list[pulumi.Resource],
        *,
        scaled: bool,
    ) -> k8s.apps.v1.Deployment:
        """``scaled``: the autoscaler's Deployment, whose replica count is the autoscaler's
        (see :data:`~servestack.manifests.workload.AUTOSCALER_OWNS`)."""
        return k8s.apps.v1.Deployment(
            manifest["metadata"]["name"],
            metadata=manifest["metadata"],
            spec=manifest["spec"],
            opts=pulumi.ResourceOptions.merge(
                opts,
                pulumi.ResourceOptions(
                    depends_on=deps,
                    replace_on_changes=LOCKED_PATHS,
                    ignore_changes=[workload.AUTOSCALER_OWNS] if scaled else None,
                ),
            ),
        )


def _monitoring_child(m: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    """A monitoring resource: prometheus-operator CRDs, the dashboard, the scrape policy."""
    name = m["metadata"]["name"]
    if m["kind"] == "ConfigMap":
        return k8s.core.v1.ConfigMap(name, metadata=m["metadata"], data=m["data"], opts=opts)
    if m["kind"] == "NetworkPolicy":
        return k8s.networking.v1.NetworkPolicy(
            name, metadata=m["metadata"], spec=m["spec"], opts=opts
        )
    return k8s.apiextensions.CustomResource(
        name,
        api_version=m["apiVersion"],
        kind=m["kind"],
        metadata=m["metadata"],
        spec=m["spec"],
        opts=opts,
    )
