"""The servestack stack program: `servestack:*` config in, components out.

Root `__main__.py` calls :func:`main`. Validation happens before any resource is
registered; a bad config ends the run with one line per problem and no traceback.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from servestack import testhook
from servestack.config import reader
from servestack.config.defaults import effective
from servestack.config.errors import ConfigError
from servestack.config.models import Environment, StackConfig, Target
from servestack.config.stackfile import CONFIG_FILE_KEY, has_secure
from servestack.config.validation import NAMESPACE, SECRET_NAMES, SECRETS_KEY, parse_stack
from servestack.contract import labels
from servestack.gpu_node_pool import GpuNodePool
from servestack.manifests import model, naming, workload
from servestack.manifests.render import render_stack
from servestack.model_deployment import ModelDeployment
from servestack.program import production
from servestack.program.guards import (
    IDENTITY_OUTPUT,
    forbidden_edits,
    identity,
    refusal_text,
)
from servestack.program.options import amended

RENDER_ROOT = "out"
#: Set by servestack's operations: the deployments this run registers (comma-separated).
#: The others stay as the state has them: the run is targeted at these deployments'
#: components (`--target URN --target-dependents`), so the engine neither reads nor deletes
#: what the program does not register. Unset: every deployment.
SCOPE_ENV = "SERVESTACK_SCOPE"


def scope() -> frozenset[str] | None:
    """The deployments this run registers (None: all); see :data:`SCOPE_ENV`."""
    raw = os.environ.get(SCOPE_ENV)
    if raw is None:
        return None
    return frozenset(name for name in raw.split(",") if name)


def stack_config() -> dict[str, Any]:
    """Every `servestack:*` key of the running stack, prefix removed, secrets decrypted.

    When the engine read the stack file, that file is read through the bounded reader
    first (:func:`check_stack_file`); when servestack handed the config over in a file (its
    own runs), the engine never read the stack file, and that copy is read through the
    bounded reader instead: a stack of a thousand deployments is parsed once, not twice.

    Pulumi hands every value over as a string; objects and lists arrive as JSON, decoded
    within the stack-file reader's limits (:func:`servestack.config.reader.decode_engine_config`).

    Raises:
        ConfigError: the values are larger or more deeply nested than a stack file may be.
    """
    # The runtime's raw reader: secrets are decrypted here (and kept as secrets later).
    from pulumi.runtime.config import CONFIG, get_config, get_config_env

    prefix = f"{NAMESPACE}:"
    values = {
        full_key[len(prefix) :]: get_config(full_key)
        for full_key in sorted({*get_config_env(), *CONFIG.get()})
        if full_key.startswith(prefix)
    }
    handed = values.pop(CONFIG_FILE_KEY, None)
    if handed is None:
        # The engine read the stack file itself: it must pass the bounded reader too.
        check_stack_file(pulumi.get_stack())
    decoded = reader.decode_engine_config(values, source=f"stack {pulumi.get_stack()}")
    if handed is None:
        return decoded
    # servestack's own runs hand the config over in a file (config.stackfile.engine_config_text):
    # the keys the engine still holds are those with secrets, decrypted by it.
    return {**config_file_values(Path(handed)), **decoded}


def config_file_values(path: Path) -> dict[str, Any]:
    """The `servestack:*` keys of the stack file copy at ``path`` (read within the reader's
    limits), prefix removed; keys holding secrets are left to the engine."""
    _, doc = reader.read_document(path)
    config = doc.get("config") if isinstance(doc, dict) else None
    prefix = f"{NAMESPACE}:"
    return {
        key[len(prefix) :]: value
        for key, value in (config or {}).items()
        if isinstance(key, str) and key.startswith(prefix) and not has_secure(value)
    }


def check_stack_file(stack: str) -> None:
    """Read the running stack's file through the bounded reader, as `servestack validate`
    does: the CLI's own YAML parser lets a file expand its aliases to millions of values
    before the program sees them. Nothing to check when the program does not run in a
    servestack project layout (its config values are still bounded by :func:`stack_config`).

    Raises:
        ConfigError: the file is refused (too large, too deep, too many aliases, ...).
    """
    from servestack.engine.project import find_project

    try:
        path = find_project(Path.cwd()).stack_file(stack)
    except ConfigError:
        return
    if path.is_file():
        reader.read_document(path)


def render_directory(stack: str) -> Path:
    """`out/<stack>` under the project, or under ``SERVESTACK_RENDER_ROOT`` when set."""
    return Path(os.environ.get("SERVESTACK_RENDER_ROOT", RENDER_ROOT)) / stack


def kubernetes_provider(config: StackConfig, stack: str) -> k8s.Provider:
    """Render mode writes manifests to `out/<stack>/`; cluster mode uses the kubeconfig.

    The provider is named after the cluster. A new provider alone does not make the engine
    replace anything (equal inputs plan no change); :func:`pin_to_cluster` does.
    """
    name = f"k8s-{config.cluster.name}"
    if config.target is Target.render:
        return k8s.Provider(
            name,
            render_yaml_to_directory=str(render_directory(stack)),
            enable_server_side_apply=True,
        )
    # Standard kubeconfig resolution (KUBECONFIG, ~/.kube/config); `cluster.context` picks a
    # context other than the current one.
    return k8s.Provider(
        name,
        namespace=config.namespace,
        context=config.cluster.context,
        enable_server_side_apply=True,
    )


CLUSTER_ANNOTATION = labels.CLUSTER


def pin_to_cluster(cluster: str, *, applied: bool = False) -> Any:
    """A transformation that stamps every Kubernetes resource with its cluster's name and
    replaces it when that name changes: moving a stack to another cluster recreates its
    resources there (the engine alone would keep them, since a new provider with equal
    inputs plans no change). ``applied`` (a cluster, not render mode): the object also names
    its field manager and the provider's other settings
    (:func:`servestack.contract.labels.applied_annotations`)."""
    path = f'metadata.annotations["{CLUSTER_ANNOTATION}"]'

    def transform(args: pulumi.ResourceTransformationArgs) -> Any:
        meta = args.props.get("metadata")
        if not args.type_.startswith("kubernetes:") or not isinstance(meta, dict):
            return None
        stamps = {CLUSTER_ANNOTATION: cluster}
        if applied:
            stamps.update(labels.applied_annotations(args.type_))
        annotations = {**(meta.get("annotations") or {}), **stamps}
        props = {**args.props, "metadata": {**meta, "annotations": annotations}}
        opts = amended(args.opts, replace_on_changes=[path], delete_before_replace=True)
        return pulumi.ResourceTransformationResult(props, opts)

    return transform


#: On a cluster, how long the provider awaits a Deployment's rollout before the update fails
#: (and servestack's operations roll back to the last good config), per environment. The
#: provider's own default is 10 minutes.
ROLLOUT_TIMEOUT_SECONDS = {
    Environment.development: 60,
    Environment.staging: 180,
    Environment.production: 600,
}
_AWAITED = (labels.DEPLOYMENT_TYPE,)


def rollout_timeouts(config: StackConfig) -> pulumi.CustomTimeouts | None:
    """How long a Deployment's create or update is awaited: the environment's bound on a
    cluster; None in render mode, where nothing is awaited."""
    if config.target is not Target.cluster:
        return None
    seconds = ROLLOUT_TIMEOUT_SECONDS[config.environment]
    return pulumi.CustomTimeouts(create=f"{seconds}s", update=f"{seconds}s")


def bound_rollouts(timeouts: pulumi.CustomTimeouts) -> Any:
    """A transformation giving every Deployment the await bound ``timeouts`` (the resource
    option customTimeouts: nothing on the object changes)."""

    def transform(args: pulumi.ResourceTransformationArgs) -> Any:
        if args.type_ not in _AWAITED:
            return None
        return pulumi.ResourceTransformationResult(
            args.props, amended(args.opts, custom_timeouts=timeouts)
        )

    return transform


def build(config: StackConfig, stack: str) -> dict[str, Any]:
    """Create every resource of a validated stack; returns the stack outputs."""
    pulumi.runtime.register_stack_transformation(
        pin_to_cluster(config.cluster.name, applied=config.target is Target.cluster)
    )
    timeouts = rollout_timeouts(config)
    if timeouts is not None:
        pulumi.runtime.register_stack_transformation(bound_rollouts(timeouts))
    provider = kubernetes_provider(config, stack)
    opts = pulumi.ResourceOptions(provider=provider)
    namespace = k8s.core.v1.Namespace(
        config.namespace,
        metadata=workload.namespace(config.namespace)["metadata"],
        # Production protects its namespace: deleting it deletes every model in it. A
        # replacement or `destroy` then fails until someone runs `pulumi state unprotect`.
        opts=pulumi.ResourceOptions(
            provider=provider,
            delete_before_replace=True,
            protect=config.environment is Environment.production,
        ),
    )
    pools = {p.name: GpuNodePool(p.name, p, config.cluster, opts=opts) for p in config.node_pools}
    only = scope()
    for d in config.deployments:
        if only is None or d.name in only:
            ModelDeployment(
                d.name,
                d,
                secrets=secret_values(d.name) if d.secret_env else None,
                gpu_labels=config.cluster.custom_gpu_labels or config.cluster.gpu_labels,
                opts=pulumi.ResourceOptions(
                    provider=provider, depends_on=[namespace, *pools.values()]
                ),
            )
    return stack_outputs(
        config,
        stack,
        {d.name: e for d in config.deployments if (e := model.endpoint(d)) is not None},
        {n: p.labels for n, p in pools.items()},
    )


def stack_outputs(
    config: StackConfig,
    stack: str,
    endpoints: Mapping[str, Any],
    pool_labels: Mapping[str, dict[str, str]],
) -> dict[str, Any]:
    """The stack's outputs; `models` (the deployments' identities) is what the
    forbidden-edit guard reads back on the next update."""
    outputs: dict[str, Any] = {
        "environment": config.environment.value,
        "namespace": config.namespace,
        "endpoints": dict(endpoints),
        IDENTITY_OUTPUT: identity(config),
        "nodePools": {n: {"labels": labels} for n, labels in pool_labels.items()},
    }
    if config.target is Target.render:
        outputs["renderDirectory"] = str(render_directory(stack))
    return outputs


def previous_outputs(attempts: int = 6) -> dict[str, Any]:
    """Outputs of this stack's last update, read through the engine's builtin provider.

    The file backend rewrites the checkpoint while an update runs, so a read can meet a
    half-written file ("failed to load checkpoint: EOF"); such reads are retried.
    """
    fqn = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    for attempt in range(attempts):
        try:
            result = pulumi.runtime.invoke("pulumi:pulumi:readStackOutputs", {"name": fqn})
            break
        except Exception as exc:  # the SDK raises a bare Exception for invoke errors
            if "checkpoint" not in str(exc) or attempt == attempts - 1:
                raise pulumi.RunError(
                    f"servestack could not read the stack's last outputs to check forbidden "
                    f"edits (nothing was applied): {exc}"
                ) from None
            time.sleep(0.2 * (attempt + 1))
    outputs = (result.value or {}).get("outputs") if result.value else None
    return outputs if isinstance(outputs, dict) else {}


def _secret_names(raw: dict[str, Any]) -> list[str]:
    """Swap the decrypted `servestack:secrets` map for its names before validation.

    Returns problems: values set without `--secret` are refused (they sit in plain text in
    the stack file).
    """
    from pulumi.runtime.config import get_config_secret_keys_env, is_config_secret

    secrets = raw.pop(SECRETS_KEY, None)
    if secrets is None:
        return []
    key = f"{NAMESPACE}:{SECRETS_KEY}"
    if key not in get_config_secret_keys_env() and not is_config_secret(key):
        paths = (
            [
                f"{SECRETS_KEY}.{dep}.{env}"
                for dep, vals in secrets.items()
                for env in (vals if isinstance(vals, dict) else {})
            ]
            if isinstance(secrets, dict)
            else []
        ) or [SECRETS_KEY]
        return [
            f"{p}: is stored in plain text: set it with pulumi config set --secret "
            f"--path '{NAMESPACE}:{p}'"
            for p in paths
        ]
    if isinstance(secrets, dict):
        raw[SECRET_NAMES] = {
            str(dep): sorted(values) for dep, values in secrets.items() if isinstance(values, dict)
        }
    return []


def secret_values(name: str) -> pulumi.Output[dict[str, str]]:
    """A deployment's secret env values, kept secret end to end (state holds ciphertext)."""
    all_secrets = pulumi.Config(NAMESPACE).get_secret_object(SECRETS_KEY)

    def pick(values: Any) -> dict[str, str]:
        mine = values.get(name) if isinstance(values, dict) else None
        return {str(k): str(v) for k, v in (mine or {}).items()}

    return pulumi.Output.secret(all_secrets).apply(pick)


def _created_hook() -> Callable[[], None]:
    """Tests only (``SERVESTACK_TEST_PAUSE=created``): once every resource the program
    registers exists, hold the program before its exports, so that the engine has created
    everything and cannot have written its final checkpoint. A no-op otherwise."""
    if not testhook.wanted("created"):
        return lambda: None
    made: list[pulumi.CustomResource] = []

    def collect(args: pulumi.ResourceTransformationArgs) -> None:
        if isinstance(args.resource, pulumi.CustomResource):
            made.append(args.resource)

    pulumi.runtime.register_stack_transformation(collect)

    def hold() -> None:
        pulumi.Output.all(*(r.id for r in made)).apply(lambda _: testhook.pause("created"))

    return hold


def restarted(last: StackConfig | None, config: StackConfig) -> frozenset[str]:
    """The autoscaler's Deployments of the deployments ``config`` starts (``active: false``
    in the ``last`` deployed config): stopped at 0, their count must be written again."""
    if last is None:
        return frozenset()
    stopped = {d.name for d in last.deployments if not d.active}
    return frozenset(
        naming.workload_name(d)
        for d in config.deployments
        if d.name in stopped and d.active and effective(d).autoscaling is not None
    )


def write_the_floor(deployments: frozenset[str]) -> Any:
    """A transformation: these Deployments write their count (the autoscaler's floor) in
    this update. A stopped Deployment has 0 replicas, and an autoscaler does nothing with a
    Deployment at 0 (the HorizontalPodAutoscaler takes it as autoscaling turned off): the
    live count that ignoreChanges would keep (see
    :data:`~servestack.manifests.workload.AUTOSCALER_OWNS`) would keep it stopped."""

    def transform(args: pulumi.ResourceTransformationArgs) -> Any:
        ignored = list(args.opts.ignore_changes or []) if args.opts else []
        if args.type_ != labels.DEPLOYMENT_TYPE or args.name not in deployments or not ignored:
            return None
        kept = [p for p in ignored if p != workload.AUTOSCALER_OWNS] or None
        return pulumi.ResourceTransformationResult(
            args.props, amended(args.opts, ignore_changes=kept)
        )

    return transform


def main(builder: Callable[[StackConfig, str], dict[str, Any]] = build) -> None:
    """The stack program: validate the config, refuse forbidden edits, build, export.

    ``builder`` makes the resources; the benchmark passes its hand-written one, so both
    programs do the same work around them.
    """
    stack = pulumi.get_stack()
    try:
        raw = stack_config()
    except ConfigError as err:
        raise pulumi.RunError(f"invalid servestack config:\n{err}") from None
    plain = _secret_names(raw)
    if plain:
        raise pulumi.RunError(
            "invalid servestack config:\n" + "\n".join(f"stack {stack}: {p}" for p in plain)
        )
    try:
        config = parse_stack(raw, source=f"stack {stack}")
    except ConfigError as err:
        # RunError is reported by the engine as a plain message: no Python traceback.
        raise pulumi.RunError(f"invalid servestack config:\n{err}") from None
    last = previous_outputs()
    prev = production.previous(last.get(production.SNAPSHOT_OUTPUT))
    verdict = production.check(prev, config)
    refused = forbidden_edits(last.get(IDENTITY_OUTPUT), config) + verdict.problems
    if refused:
        raise pulumi.RunError(refusal_text(refused))
    if prev.unreadable:
        pulumi.log.warn(
            f"servestack could not read the last deployed config ({prev.unreadable}): the "
            "production gate relies on the engine's protection alone for this update"
        )
    if config.environment is Environment.production:
        only = scope()
        rendered = render_stack(config, stack, deployments=set(only) if only else True)
        mine = [key for key, item in rendered.components.items() if item is not None]
        keys = production.protected(rendered, verdict.unprotected)
        pulumi.runtime.register_stack_transformation(production.protect(keys, mine))
    started = restarted(prev.config, config)
    if started:
        pulumi.runtime.register_stack_transformation(write_the_floor(started))
    created = _created_hook()
    outputs = builder(config, stack)
    created()
    outputs[production.SNAPSHOT_OUTPUT] = production.snapshot_output(config, verdict.unprotected)
    testhook.pause("program")  # tests stop here to signal a running update
    for key, value in outputs.items():
        pulumi.export(key, value)
