"""The production gate inside the stack program: `pulumi preview` and `pulumi up` refuse
every replacement or deletion that no `allowReplacements` entry covers.

Three layers:

* Before registering anything, the program compares the config it last deployed (kept in a
  stack output, :data:`SNAPSHOT_OUTPUT`; no secret values) with the new one through the
  review's diff, the same field-effect table `servestack diff` uses, and refuses uncovered
  replacements and deletions with one line each (field path, step, the entry to write).
* A rollout that cannot finish in its pool (the review's capacity verdict) is refused the
  same way, naming the pool, its room, the peak and the remedies.
* The engine is the backstop: in production the resources each deployment and node pool
  always has are registered ``protect=True``, so a replacement or deletion the table did not
  predict is refused by the engine itself. The items a covering (or still pending) entry
  names are registered unprotected in that run: the engine allows unprotecting and
  replacing in one update, but not deleting what the program no longer registers, so a
  deletion needs one run with the entry and the item still in the file first (the
  `servestack delete` operation does that run itself).

Resources that an in-place edit may add or remove (a disruption budget, an autoscaler, a
canary Deployment, monitoring) are never protected: stop/start, scaling and promotion must
not become refused deletions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pydantic import ValidationError

from servestack.config.errors import Problem
from servestack.config.models import Environment, StackConfig
from servestack.config.paths import FieldPath
from servestack.contract.effects import Effect, rule_for
from servestack.manifests.render import Key, Rendered, render_stack
from servestack.program.options import amended
from servestack.review import allowances
from servestack.review.diff import diff_configs

#: Stack output: the config the last update deployed, and the items it left unprotected.
SNAPSHOT_OUTPUT = "deployedConfig"
#: Owner of a stack-level entry (``namespace``, ``cluster.name``): every item.
EVERY_ITEM = "*"


@dataclass
class Previous:
    """What the last update deployed, as far as the gate needs it."""

    config: StackConfig | None = None
    unprotected: frozenset[str] = frozenset()
    #: Why the last config could not be read (the engine's protection still holds).
    unreadable: str | None = None


@dataclass
class Verdict:
    problems: list[Problem] = field(default_factory=list)
    #: Items (``deployments.x``, ``nodePools.y``, or ``*``) registered unprotected this run.
    unprotected: set[str] = field(default_factory=set)


def gated(config: StackConfig, previous: StackConfig | None) -> bool:
    """The gate holds when either side is production (leaving production is itself gated)."""
    envs = {config.environment} | ({previous.environment} if previous else set())
    return Environment.production in envs


def snapshot(config: StackConfig, unprotected: Iterable[str]) -> dict[str, Any]:
    """The stack output the next update compares against. Secret values are never part of
    a config model (only their names are), and the entries themselves are not kept."""
    dumped = config.model_dump(by_alias=True, mode="json", exclude={"allow_replacements"})
    return {"config": dumped, "unprotected": sorted(unprotected)}


def snapshot_output(config: StackConfig, unprotected: Iterable[str]) -> str:
    """:func:`snapshot` as the stack exports it: one compact JSON string, not a map.

    The output is the whole stack's config, so a map of it is large for the SDK and the
    engine: every update serializes it property by property, logs it twice in protobuf text
    (about 24 MB at 1,000 deployments) and the next update deserializes it again. As a
    string, each of those is one value (bench/fleet.py measures an operation at that size).
    """
    return json.dumps(snapshot(config, unprotected), separators=(",", ":"), sort_keys=True)


def read_output(output: Any) -> dict[str, Any] | None:
    """The :data:`SNAPSHOT_OUTPUT` value as :func:`snapshot` made it: decoded from
    :func:`snapshot_output`'s JSON, or the map an older servestack exported; None when it
    is neither."""
    if isinstance(output, str):
        try:
            output = json.loads(output)
        except ValueError:
            return None
    return output if isinstance(output, dict) else None


def previous(output: Any) -> Previous:
    """What the last update deployed, from its :data:`SNAPSHOT_OUTPUT` (see :func:`read_output`)."""
    output = read_output(output)
    if output is None or not isinstance(output.get("config"), dict):
        return Previous()
    try:
        config = StackConfig.model_validate(output["config"])
    except ValidationError as exc:
        return Previous(unreadable=f"{exc.error_count()} problem(s) validating it")
    names = output.get("unprotected")
    lifted = frozenset(str(n) for n in names) if isinstance(names, list) else frozenset()
    return Previous(config, lifted)


def check(prev: Previous, config: StackConfig) -> Verdict:
    """Uncovered replacements and deletions between the last deployed config and
    ``config``, and the items left unprotected this run."""
    verdict = Verdict()
    old = prev.config
    if old is None or not gated(config, old):
        return verdict
    diff = diff_configs(old, config)
    for ch in diff.changes:
        if ch.effect not in allowances.GATED:
            continue
        if ch.allowance is None:
            verdict.problems.append(
                Problem(
                    ch.path,
                    f"{ch.effect.value} ({_step(ch.effect, ch.resources)}) in production needs "
                    f"an allowReplacements entry naming this edit: {allowances.entry_text(ch)}",
                )
            )
        else:
            verdict.unprotected.add(allowances.owner(ch.path) or EVERY_ITEM)
    if config.environment is Environment.production:
        # A rollout that cannot finish: its new pods would stay Pending for ever.
        verdict.problems += [
            Problem(v.path, f"production refuses a rollout that {v.text}; " + _remedies(v.remedies))
            for v in diff.cannot_finish
        ]
    for entry in config.allow_replacements:
        if allowances.pending(entry, old, config):
            verdict.unprotected.add(allowances.owner(entry.path) or EVERY_ITEM)
    if not verdict.problems:
        verdict.problems += _still_protected(prev, old, config, verdict.unprotected)
    return verdict


def _remedies(remedies: tuple[str, ...]) -> str:
    return "remedies: " + "; ".join(remedies) if remedies else "raise the pool's maxNodes"


def _step(effect: Effect, resources: tuple[str, ...]) -> str:
    what = ", ".join(resources) if resources else "its resources"
    return f"{'deleted' if effect is Effect.DELETE else 'deleted and created'}: {what}"


def _still_protected(
    prev: Previous, old: StackConfig, new: StackConfig, unprotected: set[str]
) -> list[Problem]:
    """Covered edits that delete resources the last update protected: the engine would
    refuse the deletion half-way, so refuse before anything is applied.

    Only the items lifted this run can be reported, so only they are rendered (with the
    node pools and the stack's own resources, which are cheap): a scoped operation on one
    model of a thousand renders that model, not the thousand."""
    if old.environment is not Environment.production or not unprotected:
        return []  # nothing was protected, or nothing is lifted
    names: bool | set[str] = EVERY_ITEM in unprotected or {
        owner.item_name
        for owner in map(FieldPath.parse, unprotected)
        if owner.collection == "deployments" and owner.item_name is not None
    }
    before = render_stack(old, deployments=names)
    after = set(render_stack(new, deployments=names).resources)
    locked = protected(before, prev.unprotected)
    gone: dict[str, list[Key]] = {}
    for key in sorted(locked - after):
        gone.setdefault(before.components[key] or EVERY_ITEM, []).append(key)
    return [
        Problem(
            item,
            f"the allowed edit deletes {', '.join(_kind(k) for k in keys)}, which the last "
            "update protected: run `pulumi up` once with the allowReplacements entry and "
            "without the edit (that run lifts the protection), then apply the edit; "
            "`servestack delete` and the other operations do this themselves",
        )
        for item, keys in gone.items()
        if item in unprotected or EVERY_ITEM in unprotected
    ]


def _kind(key: Key) -> str:
    return f"{key.type.rsplit(':', 1)[-1]}/{key.name}"


def _always_there(field_path: str, item: str) -> bool:
    """Only a replacement, a refused edit or the item's own deletion makes ``field_path``
    remove a resource that depends on it."""
    if field_path == f"{item}.name":
        return True
    try:
        rule = rule_for(field_path)
    except KeyError:
        return False
    return rule.effect in (Effect.REPLACE, Effect.FORBIDDEN) and rule.override is None


def protected(rendered: Rendered, unprotected: Iterable[str] = ()) -> set[Key]:
    """The resources of the stack's deployments and node pools that production protects:
    those whose existence no in-place, restart or no-change edit can end, except the items
    in ``unprotected``."""
    lifted = set(unprotected)
    if EVERY_ITEM in lifted:
        return set()
    out = set()
    for key, record in rendered.resources.items():
        item = rendered.components.get(key)
        if item is None or item in lifted:
            continue
        mark = record.marks.get(())
        when = mark.when if mark is not None and mark.when is not None else frozenset()
        if all(_always_there(f, item) for f in when):
            out.add(key)
    return out


def protect(keys: set[Key], components: Iterable[Key]) -> Any:
    """A transformation: ``protect=True`` on ``keys``, ``protect=False`` on the other
    resources of the deployments and node pools (explicit, so no parent's flag is
    inherited), nothing for the rest."""
    mine = set(components)

    def transform(args: pulumi.ResourceTransformationArgs) -> Any:
        key = Key(args.type_, args.name)
        if key not in mine:
            return None
        return pulumi.ResourceTransformationResult(
            args.props, amended(args.opts, protect=key in keys)
        )

    return transform
