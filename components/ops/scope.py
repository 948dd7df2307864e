"""Which deployments an update has to touch: the engine runs only their part of the stack.

A stack of a thousand models is a thousand components; a `pulumi up` of all of them to
change one costs as much as the thousand. When the config the stack last deployed (its
``deployedConfig`` output) and the config being applied differ only inside some
deployments, servestack runs the program with :data:`~servestack.program.stack.SCOPE_ENV`
naming them (the program registers those deployments, the namespace and the node pools)
and targets the engine at their components (``--target URN --target-dependents``): their
resources are created, updated and deleted as a full run would, and everything else stays
in the state as it is, untouched and unread.

Anything else is a full run: a change outside the deployments (namespace, cluster, node
pools, environment, ...), an `allowReplacements` entry or an unprotected item that is not a
deployment's, a stack whose deployed config is unknown (its first update, or an update by
a servestack that did not keep it), or nothing to change at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from servestack.config import paths
from servestack.config.models import StackConfig
from servestack.manifests import naming
from servestack.program import production


def scope(deployed: Any, target: StackConfig) -> frozenset[str] | None:
    """The deployments whose components an update from ``deployed`` (the stack output
    :data:`~servestack.program.production.SNAPSHOT_OUTPUT`, as exported or decoded) to
    ``target`` touches, or None when it has to be a full run (see the module docstring)."""
    deployed = production.read_output(deployed)
    if deployed is None:
        return None
    # Read through the model, so that a field a newer servestack added (with its default)
    # is not a difference in every deployment: the first update after an upgrade stays
    # scoped.
    last = production.previous(deployed).config
    if last is None:
        return None
    old = production.snapshot(last, ())["config"]
    new = production.snapshot(target, ())["config"]
    old_items = _by_name(old.pop("deployments", None))
    new_items = _by_name(new.pop("deployments", None))
    if old_items is None or new_items is None or old != new:
        return None
    names = {n for n in old_items.keys() | new_items.keys() if old_items.get(n) != new_items.get(n)}
    # What the production gate lifts protection from must be registered, to be lifted (or
    # put back): the items of the new entries and those the last update left unprotected.
    marked = [e.path for e in target.allow_replacements]
    unprotected = deployed.get("unprotected") or []
    if not isinstance(unprotected, list):
        return None
    for text in [*marked, *map(str, unprotected)]:
        owner = paths.FieldPath.parse(text)
        if owner.collection != "deployments" or owner.item_name is None:
            return None
        names.add(owner.item_name)
    return frozenset(names) or None


def targets(stack: str, project: str, names: frozenset[str]) -> list[str]:
    """The URNs of the deployments' components (their children follow as dependents)."""
    return [f"urn:pulumi:{stack}::{project}::{naming.MODEL_DEPLOYMENT}::{n}" for n in sorted(names)]


def _by_name(items: Any) -> dict[str, Any] | None:
    if not isinstance(items, list):
        return None
    out: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            return None
        out[item["name"]] = item
    return out
