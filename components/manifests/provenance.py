"""Provenance: which config field produced each property of each manifest, recorded as built.

Builders mark the values they place with :func:`src` (and :func:`opt` for optional keys or
list items). Outside :func:`recording` both return the value untouched, so the components
register exactly the manifests they always did. Inside, they return :class:`From` markers;
:func:`strip` removes them and notes, at the property path where each sat, which fields it
names. Nothing is written down twice: the path comes from where the builder put the value.

A marker says three things about its node (and, unless a deeper marker says otherwise,
about everything under it):

* ``fields``: the value is computed from these fields (``resources.cpu``);
* ``via``: these fields choose how it is computed (``autoscaling.enabled`` switches a queue
  worker between its own bounds and fixed ones). They explain a change only when the
  review knows they changed (a base config), never by themselves;
* ``when``: the key or list item exists because of these fields (``resources.storage``
  adds ``ephemeral-storage``). Unmarked keys exist because their container does.

An item's position in a list depends on the items before it, so an added or removed item
also explains every later one that moved.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

T = TypeVar("T")
#: A property path: ``("spec", "triggers", 1, "metadata", "value")``.
Prop = tuple[str | int, ...]
#: Top-level config keys that are never fields of a deployment or a node pool: a builder
#: names them as they are, wherever it runs.
STACK_KEYS = frozenset({"cluster", "target", "allowReplacements"})

_RECORDING: ContextVar[bool] = ContextVar("servestack_provenance", default=False)


@dataclass(frozen=True, slots=True)
class From:
    """A value and the config fields behind it (only ever seen inside :func:`recording`)."""

    value: Any
    fields: tuple[str, ...]
    via: tuple[str, ...]
    when: tuple[str, ...] | None


def src(value: T, *fields: str, via: Iterable[str] = (), when: Iterable[str] | None = None) -> T:
    """``value``, produced by ``fields`` (paths relative to the item being built)."""
    if not _RECORDING.get():
        return value
    return cast(T, From(value, fields, tuple(via), None if when is None else tuple(when)))


def opt(value: T, *fields: str, via: Iterable[str] = ()) -> T:
    """An optional key or list item: present because of ``fields``, and made from them."""
    return src(value, *fields, via=via, when=fields)


def plain(value: Any) -> Any:
    """``value`` under any markers (to read a name while recording)."""
    while isinstance(value, From):
        value = value.value
    return value


def is_recording() -> bool:
    return _RECORDING.get()


@contextmanager
def recording() -> Iterator[None]:
    """Builders called in this block return markers for :func:`strip` to record."""
    token = _RECORDING.set(True)
    try:
        yield
    finally:
        _RECORDING.reset(token)


@dataclass(frozen=True, slots=True)
class Mark:
    fields: frozenset[str]
    via: frozenset[str]
    when: frozenset[str] | None


@dataclass(frozen=True)
class Scope:
    """Resolves a builder's relative field names to user paths (``deployments.bert.port``).

    ``aliases`` name the stack key a field inherits from (a deployment's ``namespace`` is the
    stack's ``namespace`` unless the deployment sets its own).
    """

    prefix: str = ""
    aliases: Mapping[str, str] = field(default_factory=dict)

    def resolve(self, names: Iterable[str]) -> frozenset[str]:
        out: set[str] = set()
        for name in names:
            if not self.prefix or name.split(".", 1)[0] in STACK_KEYS:
                out.add(name)
                continue
            out.add(f"{self.prefix}.{name}")
            alias = self.aliases.get(name)
            if alias is not None:
                out.add(alias)
        return frozenset(out)


def strip(value: Any, scope: Scope, marks: dict[Prop, Mark], at: Prop = ()) -> Any:
    """``value`` without markers; each marker's fields are noted in ``marks`` at its path."""
    if isinstance(value, From):
        mark = Mark(
            scope.resolve(value.fields),
            scope.resolve(value.via),
            None if value.when is None else scope.resolve(value.when),
        )
        inner = marks.get(at)  # src(opt(...)): one node, both marks
        if inner is not None:
            when = (
                None
                if mark.when is None and inner.when is None
                else ((mark.when or frozenset()) | (inner.when or frozenset()))
            )
            mark = Mark(mark.fields | inner.fields, mark.via | inner.via, when)
        marks[at] = mark
        return strip(value.value, scope, marks, at)
    if isinstance(value, dict):
        return {k: strip(v, scope, marks, (*at, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [strip(v, scope, marks, (*at, i)) for i, v in enumerate(value)]
    return value


# --- reading a record ------------------------------------------------------------------------

ADD, DELETE, UPDATE = "add", "delete", "update"


@dataclass(frozen=True)
class Cause:
    """Fields behind one change: ``direct`` alone explains it; ``via`` only if it changed."""

    direct: frozenset[str] = frozenset()
    via: frozenset[str] = frozenset()

    def __or__(self, other: Cause) -> Cause:
        return Cause(self.direct | other.direct, self.via | other.via)

    @property
    def all(self) -> frozenset[str]:
        return self.direct | self.via


@dataclass
class Record:
    """The provenance of one resource: its manifest and the marks stripped from it."""

    manifest: dict[str, Any]
    marks: dict[Prop, Mark]
    _inner: set[Prop] | None = None

    def exists(self, prop: Prop) -> bool:
        node: Any = self.manifest
        for seg in prop:
            if isinstance(seg, int):
                if not isinstance(node, list) or seg >= len(node):
                    return False
            elif not isinstance(node, dict) or seg not in node:
                return False
            node = node[seg]
        return True

    def _nearest(self, prop: Prop) -> Mark | None:
        for i in range(len(prop), -1, -1):
            mark = self.marks.get(prop[:i])
            if mark is not None:
                return mark
        return None

    def _value(self, prop: Prop) -> Cause:
        mark = self._nearest(prop)
        return Cause(mark.fields, mark.via) if mark else Cause()

    def _presence(self, prop: Prop) -> Cause:
        mark = self.marks.get(prop)
        if mark is not None and mark.when is not None:
            return Cause(mark.when, mark.via)
        return self._value(prop[:-1]) if prop else Cause()

    def _moved(self, prop: Prop) -> Cause:
        """Fields whose items before ``prop`` decide its position. They explain a change
        only when known to have changed (a base build), so they come back as ``via``: a
        worker's QUEUE_NAME sits after env items that exist because of ``processing``, yet
        a queue-name edit is not a processing edit."""
        out = Cause()
        for i, seg in enumerate(prop):
            if isinstance(seg, int):
                for j in range(seg):
                    out |= self._presence((*prop[:i], j))
        return Cause(frozenset(), out.all)

    def _below(self, prop: Prop) -> Cause:
        if self._inner is None:
            self._inner = {p[:i] for p in self.marks for i in range(len(p))}
        if prop not in self._inner:
            return Cause()
        out = Cause()
        n = len(prop)
        for p, mark in self.marks.items():
            if len(p) > n and p[:n] == prop:
                out |= Cause(mark.fields | (mark.when or frozenset()), mark.via)
        return out

    def cause(self, prop: Prop, change: str) -> Cause:
        """Fields that explain ``change`` (add, delete or update) of ``prop`` in this build."""
        if change != UPDATE:
            return self._presence(prop) | self._moved(prop)
        return self._value(prop) | self._below(prop) | self._moved(prop)

    def naming(self, wanted: str) -> list[Prop]:
        """Paths of the marks that name a field (as fields, via or when)."""
        return sorted(
            (
                p
                for p, m in self.marks.items()
                if wanted in m.fields or wanted in m.via or (m.when and wanted in m.when)
            ),
            key=prop_text,
        )


# --- property paths --------------------------------------------------------------------------

_SEGMENT = re.compile(r'\.?([^.\[\]"]+)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]')
_PLAIN_KEY = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")


@functools.lru_cache(maxsize=4096)
def parse_prop(text: str) -> Prop:
    """A Pulumi property path (``spec.containers[0].resources.limits["nvidia.com/gpu"]``)."""
    out: list[str | int] = []
    pos = 0
    while pos < len(text):
        m = _SEGMENT.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"not a property path: {text!r}")
        name, index, quoted = m.groups()
        if index is not None:
            out.append(int(index))
        elif quoted is not None:
            out.append(quoted.replace('\\"', '"'))
        else:
            out.append(name)
        pos = m.end()
    return tuple(out)


@functools.lru_cache(maxsize=4096)
def prop_text(prop: Prop) -> str:
    """The Pulumi spelling of a property path (the inverse of :func:`parse_prop`)."""
    out = ""
    for seg in prop:
        if isinstance(seg, int):
            out += f"[{seg}]"
        elif _PLAIN_KEY.match(seg):
            out += f".{seg}" if out else seg
        else:
            out += '["' + seg.replace('"', '\\"') + '"]'
    return out


def changes(old: Any, new: Any, at: Prop = ()) -> list[tuple[Prop, str]]:
    """Every changed leaf between two manifests, as the engine's detailed diff reports them:
    (path, add | delete | update); an added or removed key or item is one change."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[tuple[Prop, str]] = []
        for key in old:
            out += changes(old[key], new[key], (*at, key)) if key in new else [((*at, key), DELETE)]
        out += [((*at, key), ADD) for key in new if key not in old]
        return out
    if isinstance(old, list) and isinstance(new, list):
        out = []
        for i in range(max(len(old), len(new))):
            if i >= len(new):
                out.append(((*at, i), DELETE))
            elif i >= len(old):
                out.append(((*at, i), ADD))
            else:
                out += changes(old[i], new[i], (*at, i))
        return out
    return [] if old == new else [(at, UPDATE)]
