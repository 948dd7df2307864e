"""The one reader of stack files: bounded in size, nesting and alias expansion.

Stack files arrive in pull requests, so `servestack validate`/`diff` read text that nobody
has trusted yet. Every command that reads a stack file (validate, diff, explain, the
operations and the stack program) comes through here, and a hostile file is refused with
one line, within a second and a few MB of memory, before anything builds on it:

* files larger than :attr:`Limits.max_bytes` (default 8 MiB, about 40,000 deployments;
  ``SERVESTACK_MAX_STACK_FILE_BYTES`` or ``servestack --max-file-bytes`` change it) are
  refused before they are read, and a stream is never read past the limit;
* text that is not UTF-8 (UTF-16, binary data, NUL bytes, control characters);
* nesting deeper than :attr:`Limits.max_depth` collections (a stack file needs about 6);
* more than :attr:`Limits.max_aliases` aliases, or aliases that would add more than
  :attr:`Limits.max_alias_nodes` values to the document (a "billion laughs" file is 400
  bytes and expands to 10^9 values);
* more than :attr:`Limits.max_items` entries in one mapping or list;
* recursive aliases, duplicate keys, non-scalar keys, several documents, and any tag
  beyond YAML's plain types (``!!python/object`` ...).

The document is built from libyaml's event stream (PyYAML's C parser) by a loop that
checks each limit on the event that would break it, so refusal never waits for the
document to be built. libyaml's own composer is not used: it recurses once per nesting
level and crashes the interpreter on a deeply nested file. Building from events is also
what makes 20,000 deployments read in about a second, where ruamel's pure-Python loader
took 15 (figures in tests/security/RESULTS.md).
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from servestack.config.errors import ConfigError, Problem

#: Environment variable that sets :attr:`Limits.max_bytes`.
MAX_BYTES_ENV = "SERVESTACK_MAX_STACK_FILE_BYTES"
DEFAULT_MAX_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_DEPTH = 64
DEFAULT_MAX_ALIASES = 1_000
DEFAULT_MAX_ALIAS_NODES = 100_000
DEFAULT_MAX_ITEMS = 50_000


@dataclass(frozen=True)
class Limits:
    """What a stack file may cost to read.

    Attributes:
        max_bytes: largest file, in bytes.
        max_depth: deepest nesting of mappings and sequences.
        max_aliases: most alias uses (``*name``) in one file.
        max_alias_nodes: most values that aliases may add to the document in total, each
            alias counting every value under the node it repeats.
        max_items: most entries in one mapping or list (the deployments of an 8 MiB file
            are fewer than 40,000); more would only make validation list each bad one.
    """

    max_bytes: int = DEFAULT_MAX_BYTES
    max_depth: int = DEFAULT_MAX_DEPTH
    max_aliases: int = DEFAULT_MAX_ALIASES
    max_alias_nodes: int = DEFAULT_MAX_ALIAS_NODES
    max_items: int = DEFAULT_MAX_ITEMS

    @classmethod
    def from_env(cls) -> Limits:
        """The defaults, with ``SERVESTACK_MAX_STACK_FILE_BYTES`` applied when set.

        Raises:
            ConfigError: the variable is not a positive whole number of bytes.
        """
        raw = os.environ.get(MAX_BYTES_ENV, "").strip()
        if not raw:
            return cls()
        try:
            value = int(raw.replace("_", ""))
        except ValueError:
            value = 0
        if value <= 0:
            raise ConfigError(
                [Problem(MAX_BYTES_ENV, f"{raw!r} must be a positive number of bytes")]
            )
        return cls(max_bytes=value)


def _refuse(message: str, source: str | None) -> ConfigError:
    return ConfigError([Problem("", message)], source)


# --- bytes and text ---------------------------------------------------------------------------


def read_bytes(path: str | Path, limits: Limits | None = None) -> bytes:
    """A file's bytes, never reading past ``limits.max_bytes`` (a FIFO or /dev/zero too).

    Raises:
        ConfigError: the file cannot be read, or is larger than the limit.
    """
    limits = limits or Limits.from_env()
    source = str(path)
    try:
        with open(path, "rb") as fh:
            info = os.fstat(fh.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size > limits.max_bytes:
                raise _too_large(f"{info.st_size:,} bytes", limits, source)
            data = fh.read(limits.max_bytes + 1)
    except OSError as exc:
        raise _refuse(f"cannot read: {exc.strerror or exc}", source) from None
    if len(data) > limits.max_bytes:
        raise _too_large(f"more than {limits.max_bytes:,} bytes", limits, source)
    return data


def _too_large(size: str, limits: Limits, source: str | None) -> ConfigError:
    return _refuse(
        f"{size} is over the {limits.max_bytes:,}-byte limit for stack files "
        f"(raise it with {MAX_BYTES_ENV} or servestack --max-file-bytes)",
        source,
    )


_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


def decode(data: bytes, source: str | None = None) -> str:
    """UTF-8 text of a stack file; a UTF-8 byte order mark is dropped.

    Raises:
        ConfigError: UTF-16/32 (Pulumi and servestack's edits write UTF-8 only), NUL bytes,
            or bytes that are not UTF-8.
    """
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise _refuse(
                f"is {name} text (byte order mark {bom.hex(' ').upper()}): save it as UTF-8",
                source,
            )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _refuse("not a UTF-8 text file", source) from None
    nul = data.find(b"\x00")
    if nul >= 0:
        raise _refuse(f"byte {nul + 1} is NUL: binary data, not a stack file", source)
    return text[1:] if text.startswith("\ufeff") else text


#: Characters YAML does not allow in a document (YAML 1.1 "printable" set, as PyYAML).
_NON_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


def check_text(text: str, limits: Limits, source: str | None = None) -> None:
    """Refuse text over the byte limit or holding characters YAML does not allow."""
    if len(text) > limits.max_bytes or (
        len(text) * 4 > limits.max_bytes and len(text.encode("utf-8")) > limits.max_bytes
    ):
        raise _too_large("the text", limits, source)
    bad = _NON_PRINTABLE.search(text)
    if bad:
        where = bad.start()
        raise _refuse(
            f"character {where + 1}: not valid YAML (unacceptable character "
            f"#x{ord(bad.group()):04x}: special characters are not allowed)",
            source,
        )


# --- YAML, from libyaml's events --------------------------------------------------------------

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_MAP_TAGS = (None, "!", "tag:yaml.org,2002:map")
_SEQ_TAGS = (None, "!", "tag:yaml.org,2002:seq")
_Constructor = Callable[[Any, yaml.ScalarNode], Any]
_SCALARS: dict[str, _Constructor] = {
    tag: fn
    for tag, fn in SafeConstructor.yaml_constructors.items()
    if tag
    in (
        "tag:yaml.org,2002:null",
        "tag:yaml.org,2002:bool",
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:float",
        "tag:yaml.org,2002:binary",
        "tag:yaml.org,2002:timestamp",
    )
}


class _Merge:
    """The ``<<`` key of a mapping: its value's mappings are merged into the mapping."""


_MERGE_KEY = _Merge()


class _Frame:
    """A mapping or sequence whose end event has not come yet."""

    __slots__ = ("anchor", "key", "line", "merges", "size", "value")

    def __init__(self, value: dict[Any, Any] | list[Any], anchor: str | None, line: int) -> None:
        self.value = value
        self.anchor = anchor
        self.line = line
        self.size = 1  # values in this node, aliases expanded
        self.key: Any = _NO_KEY
        self.merges: list[dict[Any, Any]] | None = None


_NO_KEY = object()


class _YamlRefused(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def load_yaml(text: str, limits: Limits | None = None, source: str | None = None) -> Any:
    """One YAML document (``None`` when the text holds none), within ``limits``.

    Plain YAML 1.1 types as PyYAML's safe loader gives them (strings, numbers, booleans,
    null, timestamps, binary), merge keys included.

    Raises:
        ConfigError: one line, naming the line of the file where it went wrong.
    """
    limits = limits or Limits.from_env()
    check_text(text, limits, source)
    loader = yaml.CSafeLoader(text)
    try:
        return _build(loader, limits)
    except _YamlRefused as exc:
        raise _refuse(f"line {exc.line}: {exc}", source) from None
    except yaml.YAMLError as exc:
        raise _refuse(_yaml_error(exc), source) from None
    finally:
        loader.dispose()


def _yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"line {mark.line + 1}: " if mark is not None else ""
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    detail = " ".join(f"{problem or exc}".split())
    if context and problem:
        detail = " ".join(f"{context}: {problem}".split())
    return f"{where}not valid YAML ({detail})"


def _build(loader: yaml.CSafeLoader, limits: Limits) -> Any:
    stack: list[_Frame] = []
    anchors: dict[str, tuple[Any, int]] = {}
    open_anchors: set[str] = set()
    aliases = 0
    alias_nodes = 0
    documents = 0
    result: list[Any] = []
    resolve: Callable[..., str] = loader.resolve

    def add(value: Any, size: int, line: int) -> None:
        top = stack[-1] if stack else None
        misplaced = top is None or type(top.value) is list or top.key is not _NO_KEY
        if value is _MERGE_KEY and misplaced:
            raise _unknown_tag(_MERGE, line)  # `<<` outside a key's place, as PyYAML says
        if top is None:
            result.append(value)
            return
        top.size += size
        if len(top.value) >= limits.max_items:
            kind = "list" if type(top.value) is list else "mapping"
            raise _YamlRefused(
                line, f"more than {limits.max_items:,} entries in one {kind}: refused"
            )
        if type(top.value) is list:
            top.value.append(value)
            return
        if top.key is _NO_KEY:
            if isinstance(value, dict | list):
                raise _YamlRefused(line, "a mapping key must be a plain value, not a collection")
            if value is _MERGE_KEY:
                top.key = _MERGE_KEY
            elif value in top.value:
                raise _YamlRefused(line, f"duplicate key {value!r} in one mapping")
            else:
                top.key = value
            return
        if top.key is _MERGE_KEY:
            maps = value if isinstance(value, list) else [value]
            if not all(isinstance(m, dict) for m in maps):
                raise _YamlRefused(line, "<< merges a mapping or a list of mappings only")
            top.merges = (top.merges or []) + maps
        else:
            top.value[top.key] = value
        top.key = _NO_KEY

    while True:
        # Typed as Any: the stubs give the base Event, and each branch reads its subclass's
        # fields after checking the class.
        event: Any = loader.get_event()
        kind = type(event)
        line = event.start_mark.line + 1
        if kind is yaml.ScalarEvent:
            tag = event.tag
            if tag is None or tag == "!":
                tag = resolve(yaml.ScalarNode, event.value, event.implicit)
            if tag == _STR:
                value: Any = event.value
            elif tag == _MERGE:
                value = _MERGE_KEY
            else:
                construct = _SCALARS.get(tag)
                if construct is None:
                    raise _unknown_tag(tag, line)
                node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark)
                value = construct(loader, node)
            if event.anchor is not None:
                _define(anchors, open_anchors, event.anchor, line)
                anchors[event.anchor] = (value, 1)
            add(value, 1, line)
        elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            is_map = kind is yaml.MappingStartEvent
            if event.tag not in (_MAP_TAGS if is_map else _SEQ_TAGS):
                raise _unknown_tag(event.tag, line)
            if len(stack) >= limits.max_depth:
                raise _YamlRefused(
                    line,
                    f"nested deeper than {limits.max_depth} levels "
                    "(a stack file needs about 6): refused",
                )
            if event.anchor is not None:
                _define(anchors, open_anchors, event.anchor, line)
                open_anchors.add(event.anchor)
            stack.append(_Frame({} if is_map else [], event.anchor, line))
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            frame = stack.pop()
            value = frame.value
            if frame.merges:
                merged: dict[Any, Any] = {}
                for m in reversed(frame.merges):
                    merged.update(m)
                merged.update(value)
                value = merged
            if frame.anchor is not None:
                open_anchors.discard(frame.anchor)
                anchors[frame.anchor] = (value, frame.size)
            add(value, frame.size, line)
        elif kind is yaml.AliasEvent:
            name = event.anchor
            if name in open_anchors:
                raise _YamlRefused(line, f"alias *{name} repeats a node that contains it")
            if name not in anchors:
                raise _YamlRefused(line, f"alias *{name} names no anchor (&{name}) before it")
            aliases += 1
            if aliases > limits.max_aliases:
                raise _YamlRefused(
                    line, f"more than {limits.max_aliases:,} aliases (*name): refused"
                )
            value, size = anchors[name]
            alias_nodes += size
            if alias_nodes > limits.max_alias_nodes:
                raise _YamlRefused(
                    line,
                    f"aliases expand to more than {limits.max_alias_nodes:,} values "
                    "(an alias bomb?): refused",
                )
            add(value, size, line)
        elif kind is yaml.DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise _YamlRefused(line, "a stack file holds one YAML document, found a second")
        elif kind is yaml.StreamEndEvent:
            return result[0] if result else None


def _define(anchors: dict[str, Any], open_anchors: set[str], name: str, line: int) -> None:
    if name in anchors or name in open_anchors:
        raise _YamlRefused(line, f"anchor &{name} is defined twice")


def _unknown_tag(tag: str | None, line: int) -> _YamlRefused:
    return _YamlRefused(
        line, f"not valid YAML (could not determine a constructor for the tag '{tag}')"
    )


# --- stack files ------------------------------------------------------------------------------


def read_text(path: str | Path, limits: Limits | None = None) -> str:
    """A stack file's text, read within the byte limit and checked to be UTF-8 YAML text.

    Raises:
        ConfigError: see :func:`read_bytes` and :func:`decode`.
    """
    limits = limits or Limits.from_env()
    text = decode(read_bytes(path, limits), str(path))
    check_text(text, limits, str(path))
    return text


def read_document(path: str | Path, limits: Limits | None = None) -> tuple[str, Any]:
    """A stack file's text and its YAML document, both bounded by ``limits``."""
    limits = limits or Limits.from_env()
    text = read_text(path, limits)
    return text, load_yaml(text, limits, str(path))


# --- config as the engine hands it to the program -------------------------------------------


def decode_engine_config(
    values: Mapping[str, str | None], limits: Limits | None = None, source: str | None = None
) -> dict[str, Any]:
    """Config values as the Pulumi engine passes them (strings; objects and lists as JSON),
    decoded within the same limits.

    The CLI has parsed the stack file with its own YAML library (aliases expanded) before
    the program runs: the JSON it hands over is checked for size and depth here.

    Raises:
        ConfigError: the values are larger or deeper than the limits allow.
    """
    limits = limits or Limits.from_env()
    total = sum(len(v) for v in values.values() if v is not None)
    # JSON of an expanded document is larger than its YAML: allow twice the file limit.
    if total > 2 * limits.max_bytes:
        raise _too_large(f"config of {total:,} characters", limits, source)
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is not None and value.lstrip()[:1] in ("{", "["):
            try:
                decoded = json.loads(value)
            except json.JSONDecodeError:
                pass
            except RecursionError:
                raise _too_deep(key, limits, source) from None
            else:
                if _depth(decoded, limits.max_depth) > limits.max_depth:
                    raise _too_deep(key, limits, source)
                out[key] = decoded
                continue
        out[key] = value
    return out


def _too_deep(key: str, limits: Limits, source: str | None) -> ConfigError:
    return ConfigError(
        [Problem(key, f"nested deeper than {limits.max_depth} levels: refused")], source
    )


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of decoded JSON, without recursion; stops counting past ``limit``."""
    deepest = 0
    todo: list[tuple[Any, int]] = [(value, 1)]
    while todo:
        node, depth = todo.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            children = node.values() if isinstance(node, dict) else node
            todo.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return deepest
