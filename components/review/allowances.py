"""Production allowances: each `allowReplacements` entry names one edit and covers only it.

An entry is ``{path, from, to, reason}``: the field, its value before and after (``to: null``
for a deletion). A whole deployment or node pool is named by its fingerprint, which
``servestack diff`` prints in the entry it asks for. Matching is exact, so an entry stops
allowing anything once its edit is applied: the next diff reports it as stale, and the
operations remove the entries they used.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import TYPE_CHECKING, Any

from servestack.config.models import Allowance, StackConfig
from servestack.config.paths import COLLECTIONS, FieldPath
from servestack.contract.effects import Effect

if TYPE_CHECKING:
    from servestack.review.diff import DiffResult, FieldChange

#: Effects an entry exists for.
GATED = (Effect.REPLACE, Effect.DELETE)
FINGERPRINT_PREFIX = "sha256:"


#: What names a whole deployment or node pool in its fingerprint: the rest of its settings
#: may be spelled differently by the file and by the engine's config (an explicit null).
IDENTITY_KEYS = ("name", "model", "gpu", "machineType")


def fingerprint(value: Any) -> str:
    """A short stable name of a value; a deployment or node pool (too long to quote) by its
    name, model or GPU and machine."""
    if isinstance(value, dict) and "name" in value:
        value = {k: value[k] for k in IDENTITY_KEYS if k in value}
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return FINGERPRINT_PREFIX + hashlib.sha256(canonical.encode()).hexdigest()[:16]


def same(named: Any, actual: Any) -> bool:
    """Whether an entry's ``from``/``to`` names ``actual`` (None: absent)."""
    if named is None or actual is None:
        return named is None and actual is None
    if named == actual or (isinstance(named, str) and named == fingerprint(actual)):
        return True
    # `cpu: 8` in an entry names the same value as "8" in the diff, and the reverse.
    scalars = (str, int, float)
    return isinstance(named, scalars) and isinstance(actual, scalars) and str(named) == str(actual)


def covers(entry: Allowance, change: FieldChange) -> bool:
    return (
        entry.path == change.path
        and same(entry.before, change.before)
        and same(entry.after, change.after)
    )


def shown(value: Any) -> Any:
    """How an entry writes a value: mappings and lists by their fingerprint."""
    return fingerprint(value) if isinstance(value, dict | list) else value


def entry_text(change: FieldChange) -> str:
    """The entry that would allow ``change``, in the stack file's YAML flow style."""

    def one(value: Any) -> str:
        return json.dumps(shown(value))

    return (
        f"{{path: {change.path}, from: {one(change.before)}, to: {one(change.after)}, "
        'reason: "<why, at least 10 characters>"}'
    )


def value_at(stack: StackConfig, path: str) -> Any:
    """The value of ``path`` in ``stack`` as the diff shows it (None: absent)."""
    from servestack.review.diff import _dump, _inherited

    fp = FieldPath.parse(path)
    if fp.collection is not None:
        items = stack.deployments if fp.collection == "deployments" else stack.node_pools
        item = next((i for i in items if i.name == fp.item_name), None)
        if item is None:
            return None
        top = _inherited(stack) if fp.collection == "deployments" else None
        node: Any = _dump(item, top)
        rest = fp.parts[2:]
    else:
        node = _dump(stack)
        rest = fp.parts
    for part in rest:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def pending(entry: Allowance, old: StackConfig, new: StackConfig) -> bool:
    """The entry's edit is still to come: both configs hold its ``from`` value."""
    if same(entry.before, entry.after):
        return False
    return same(entry.before, value_at(old, entry.path)) and same(
        entry.before, value_at(new, entry.path)
    )


def apply(result: DiffResult, old: StackConfig, new: StackConfig) -> list[Allowance]:
    """Mark each gated change the NEW file's entries cover; return the stale entries (those
    that cover nothing here and whose edit is not still to come)."""
    used: set[int] = set()
    for i, ch in enumerate(result.changes):
        if ch.effect not in GATED:
            continue
        for n, entry in enumerate(new.allow_replacements):
            if covers(entry, ch):
                result.changes[i] = dataclasses.replace(ch, allowance=entry.reason)
                used.add(n)
                break
    return [
        entry
        for n, entry in enumerate(new.allow_replacements)
        if n not in used and not pending(entry, old, new)
    ]


def used(result: DiffResult, new: StackConfig) -> list[Allowance]:
    """The entries of ``new`` that cover a change of ``result``."""
    return [
        entry
        for entry in new.allow_replacements
        if any(covers(entry, ch) for ch in result.changes if ch.effect in GATED)
    ]


def owner(path: str) -> str | None:
    """The deployment or node pool a path belongs to (``deployments.x``); None: the stack."""
    fp = FieldPath.parse(path)
    if fp.collection in COLLECTIONS and fp.item_name is not None:
        return f"{fp.collection}.{fp.item_name}"
    return None


def stale_text(entry: Allowance) -> str:
    return (
        f"STALE allowReplacements {entry.path} ({json.dumps(entry.before)} -> "
        f"{json.dumps(entry.after)}): matches no change; remove it"
    )


def without(text: str, entries: list[Allowance]) -> str:
    """Stack file ``text`` with ``entries`` removed from `servestack:allowReplacements`
    (the key goes when it is empty)."""
    from servestack.config.stackfile import get_value, set_value

    if not entries:
        return text
    try:
        current = get_value(text, "allowReplacements")
    except KeyError:
        return text
    kept = [
        item
        for item in current
        if not any(
            isinstance(item, dict)
            and item.get("path") == e.path
            and "from" in item
            and "to" in item
            and same(e.before, item["from"])
            and same(e.after, item["to"])
            for e in entries
        )
    ]
    return set_value(text, "allowReplacements", kept or None)
