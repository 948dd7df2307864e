"""Stack-file edits for each operation: pure functions of the stack file's text.

An edit set maps a field path (`deployments.<name>.replicas`) to its new value. Functions
of the text are applied to the file as read under the stack's lock, so an operation that
ran meanwhile is not undone.
"""

from __future__ import annotations

from typing import Any

from servestack.config import paths
from servestack.config.capacity import at_rest_pods
from servestack.config.errors import ConfigError, Problem
from servestack.config.models import Slot, StrategyType
from servestack.config.quantities import format_cpu, format_memory
from servestack.config.stackfile import get_value
from servestack.config.validation import parse_stack, read_stack_text
from servestack.ops.describe import no_such_deployment
from servestack.ops.releases import Release, previous

Edits = dict[str, Any]


class NotedEdits(dict[str, Any]):
    """Edits with what the user should be told about them (e.g. a value they did not give
    but the edit derived): the review prints the notes and the result carries them."""

    def __init__(self, edits: Edits, notes: list[str]) -> None:
        super().__init__(edits)
        self.notes = notes


def notes_of(edits: Edits) -> list[str]:
    return list(edits.notes) if isinstance(edits, NotedEdits) else []


def _get(text: str, path: str) -> Any:
    """The value at ``path``, None when it is not set."""
    try:
        return get_value(text, path)
    except KeyError:
        return None


def resource_edits(
    deployment: str,
    *,
    active: bool | None = None,
    replicas: int | None = None,
    cpu: int | None = None,
    memory: int | None = None,
) -> Edits:
    """Edits for `update_model_deployment`'s arguments (cpu in millicores, memory in MiB)."""
    base = paths.deployment(deployment)
    edits: Edits = {}
    if active is not None:
        edits[f"{base}.active"] = active
    if replicas is not None:
        edits[f"{base}.replicas"] = replicas
    if cpu is not None:
        if cpu <= 0:
            raise ConfigError([Problem(f"{base}.resources.cpu", f"{cpu} millicores must be > 0")])
        # Whole cores stay a YAML number, as users write them; others are "500m".
        edits[f"{base}.resources.cpu"] = cpu // 1000 if cpu % 1000 == 0 else format_cpu(cpu)
    if memory is not None:
        if memory <= 0:
            raise ConfigError([Problem(f"{base}.resources.memory", f"{memory} MiB must be > 0")])
        edits[f"{base}.resources.memory"] = format_memory(memory * 1024 * 1024)
    return edits


def set_model_edits(
    text: str,
    deployment: str,
    *,
    version: str,
    image: str | None,
    strategy: StrategyType,
    weight: int | None = None,
) -> Edits:
    """A new model version, rolled out with ``strategy``.

    Without ``image``, the image is derived only when its tag is exactly the current
    version (`:2.1.0` or `:v2.1.0` for `v2.1.0`): the tag is replaced by the new version and
    the result's notes say so. Any other image (another tag, a digest) is refused: a
    guessed image would deploy something nobody named.
    """
    base = paths.deployment(deployment)
    notes: list[str] = []
    canary = strategy is StrategyType.canary
    if image is None:
        current = str(get_value(text, f"{base}.model.image"))
        image = retag(
            current, str(get_value(text, f"{base}.model.version")), version, f"{base}.model.image"
        )
        field = f"{base}.strategy.canaryImage" if canary else f"{base}.model.image"
        notes.append(
            f"{field}: {image}, the current image with {version} for its tag "
            "(--image names another)"
        )
    if canary:
        edits: Edits = {
            f"{base}.strategy": {
                "type": "canary",
                "weight": weight or 10,
                "canaryVersion": version,
                "canaryImage": image,
            }
        }
    else:
        edits = {
            f"{base}.model.version": version,
            f"{base}.model.image": image,
            f"{base}.strategy": {"type": strategy.value},
        }
        if strategy is StrategyType.blue_green and _get(text, f"{base}.stableSlot") is not None:
            # Blue-green keys the stable Deployment by version: the slot is main's again.
            edits[f"{base}.stableSlot"] = None
    return NotedEdits(edits, notes) if notes else edits


def retag(image: str, current: str, version: str, path: str) -> str:
    """``image`` with ``version`` for its tag, if its tag is ``current`` (with or without
    the leading `v`; the new tag has one if the old one had).

    Raises:
        ConfigError: the image is pinned by digest, has no tag, or its tag is not the
            current version (naming ``path``, the field `--image` sets).
    """
    if "@" in image:
        raise ConfigError([Problem(path, f"{image} is pinned by digest: pass --image")])
    repo, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        raise ConfigError([Problem(path, f"{image} has no tag to set to {version}: pass --image")])
    if tag in (current, current.removeprefix("v")):
        bare = version.removeprefix("v")
        return f"{repo}:{'v' + bare if tag.startswith('v') else bare}"
    raise ConfigError(
        [
            Problem(
                path,
                f"{image}: its tag {tag!r} is not the current version {current!r}, so the "
                f"image for {version} cannot be derived from it: pass --image",
            )
        ]
    )


def _canary(text: str, deployment: str, problem: str) -> dict[str, Any]:
    """The deployment's canary strategy; ``problem`` (at its strategy) when it has none."""
    base = paths.deployment(deployment)
    strategy = _get(text, f"{base}.strategy")
    if isinstance(strategy, dict) and strategy.get("type") == "canary":
        return strategy
    raise ConfigError([Problem(f"{base}.strategy", problem)])


def promote_edits(text: str, deployment: str) -> Edits:
    """The canary becomes the stable version; the canary track goes."""
    base = paths.deployment(deployment)
    strategy = _canary(text, deployment, "no canary to promote")
    return {
        f"{base}.model.version": strategy["canaryVersion"],
        f"{base}.model.image": strategy["canaryImage"],
        f"{base}.strategy": {"type": "rolling"},
    }


def shift_steps(text: str, deployment: str) -> list[Edits]:
    """`promote --shift`: the canary's Deployment becomes the stable track without a
    restart, in two updates (each a valid stack file; see docs/operations.md):

    1. the canary takes all the traffic (``weight: 100``) and grows to the stable track's
       pods at rest (``canaryReplicas``: replicas, or minReplicas under an autoscaler);
    2. the stable track moves to the canary's slot (``stableSlot``) with the canary's
       version and image, the strategy is rolling again: the old stable Deployment and the
       routes go, the canary's pods stay as they are.

    Returns the two edit sets; the second is meant for the text the first produced.

    Raises:
        ConfigError: the deployment runs no canary (one line, at its strategy).
    """
    base = paths.deployment(deployment)
    strategy = _canary(text, deployment, "no canary to promote with --shift")
    spec = next(d for d in parse_stack(read_stack_text(text)).deployments if d.name == deployment)
    pods = max(at_rest_pods(spec), 1)
    first: Edits = {f"{base}.strategy.weight": 100, f"{base}.strategy.canaryReplicas": pods}
    slot = Slot.main if spec.stable_slot is Slot.canary else Slot.canary
    second = NotedEdits(
        {
            f"{base}.model.version": strategy["canaryVersion"],
            f"{base}.model.image": strategy["canaryImage"],
            f"{base}.strategy": {"type": "rolling"},
            # The default (main) is left out of the file.
            f"{base}.stableSlot": slot.value if slot is Slot.canary else None,
        },
        [
            f"{base}: two updates: first the canary takes 100% of the traffic and grows to "
            f"{pods} pod{'s' if pods != 1 else ''}, then the old stable track goes "
            f"(stableSlot {slot.value})"
        ],
    )
    if first == {k: _get(text, k) for k in first}:
        return [second]  # the first update already ran (an interrupted shift, run again)
    return [first, second]


def rollback_edits(text: str, deployment: str) -> Edits:
    """Remove the canary track; the stable version keeps all traffic."""
    base = paths.deployment(deployment)
    strategy = _get(text, f"{base}.strategy")
    kind = strategy.get("type") if isinstance(strategy, dict) else None
    version = _get(text, f"{base}.model.version")
    _canary(
        text,
        deployment,
        f"no canary to roll back: strategy is {kind or 'rolling'}, and {version} takes all "
        f"the traffic; to go back to the previous release: servestack rollback STACK "
        f"{deployment} --to-previous",
    )
    return {f"{base}.strategy": {"type": "rolling"}}


def rollback_to_previous_edits(text: str, deployment: str, releases: list[Release]) -> Edits:
    """Back to the release before the current one (:mod:`servestack.ops.releases`): its
    model version and image. The deployment's strategy rolls it out (rolling, or a
    blue-green switch); a canary in flight goes, as with :func:`rollback_edits`.

    Raises:
        ConfigError: the history has no release other than the current one (naming the
            deployment).
    """
    base = paths.deployment(deployment)
    current = Release(
        str(get_value(text, f"{base}.model.version")), str(get_value(text, f"{base}.model.image"))
    )
    target = previous(releases, current)
    if target is None:
        raise ConfigError(
            [
                Problem(
                    base,
                    f"no previous release to roll back to: no succeeded operation on it ran "
                    f"another model version or image than {current} "
                    "(.servestack/operations)",
                )
            ]
        )
    edits: Edits = {f"{base}.model.version": target.version, f"{base}.model.image": target.image}
    strategy = _get(text, f"{base}.strategy")
    if isinstance(strategy, dict) and strategy.get("type") == "canary":
        edits[f"{base}.strategy"] = {"type": "rolling"}
    return NotedEdits(edits, [f"{base}: back to {target}, the release before {current}"])


def delete_edits(text: str, deployment: str) -> Edits:
    """The deployment's whole entry, removed (its own lines; the rest of the file kept)."""
    names = [str(d.get("name")) for d in read_stack_text(text).get("deployments") or []]
    if deployment not in names:
        raise no_such_deployment(deployment, names)
    return {paths.deployment(deployment): None}
