"""Round-trip edits of `Pulumi.<stack>.yaml` files that keep comments, order and style.

Paths use the review tool's form: ``deployments.bert-sentiment.resources.cpu`` (list items
named by their ``name``), ``cluster.name``, ``nodePools.a100.maxNodes``.
"""

from __future__ import annotations

import json
import os
import stat
import uuid
from io import StringIO
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from servestack.config import reader
from servestack.config.validation import NAMESPACE

_DELETE = object()


def _yaml() -> YAML:
    y = YAML()
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    y.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return y


def _step(node: Any, key: str) -> Any:
    if isinstance(node, list):
        for item in node:
            if isinstance(item, dict) and item.get("name") == key:
                return item
        raise KeyError(f"no item named {key!r}")
    return node[key]


#: Stack keys whose value is a list of items named by their ``name``.
_COLLECTIONS = ("deployments", "nodePools")


def set_value(text: str, path: str, value: Any) -> str:
    """Return ``text`` with the value at ``path`` set (``None`` deletes the key; a path
    naming a whole item, ``deployments.<name>``, deletes that item).

    A field of one named item (``deployments.bert.replicas``) is edited in that item's own
    lines: a round trip of the whole file costs seconds at a thousand deployments, and the
    rest of the file stays byte for byte as it was. Anything else, or an item written in a
    style that cannot be cut out on its own (flow style, anchors), goes through a round
    trip of the whole document.
    """
    head, *rest = path.split(".")
    if head in _COLLECTIONS and rest:
        span = _item_span(text, head, rest[0])
        if span is not None and not (span.alone and len(rest) == 1):
            return _set_in_item(text, span, rest[1:], value)
    return _set_in_document(text, path, value)


class _Span(NamedTuple):
    #: Where the item's mapping starts (after its ``- ``) and ends (its last character).
    start: int
    end: int
    #: The column of its keys.
    column: int
    #: Where its line, with the ``- ``, starts.
    line_start: int
    #: The only item of its list (deleting it leaves an empty list, not an empty key).
    alone: bool


def _item_span(text: str, collection: str, name: str) -> _Span | None:
    """Where the item named ``name`` of ``collection`` is in ``text``, when it is a block
    mapping that can be cut out and edited on its own; None otherwise."""
    try:
        root = yaml.compose(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        return None
    config = _mapping_value(root, "config")
    items = _mapping_value(config, f"{NAMESPACE}:{collection}")
    if not isinstance(items, yaml.SequenceNode) or items.flow_style:
        return None
    for item in items.value:
        if not isinstance(item, yaml.MappingNode) or item.flow_style:
            continue
        named = _mapping_value(item, "name")
        if not isinstance(named, yaml.ScalarNode) or named.value != name:
            continue
        start, end = item.start_mark.index, item.end_mark.index
        block = text[start:end].rstrip()
        if any(mark in block for mark in ("&", "*", "<<")):
            return None  # anchors and aliases tie it to the rest of the file
        line_start = text.rfind("\n", 0, start) + 1
        if text[line_start:start].strip() != "-":
            return None  # `- ` not alone before it: not the block layout this edits
        alone = len(items.value) == 1
        return _Span(start, start + len(block), item.start_mark.column, line_start, alone)
    return None


def _mapping_value(node: Any, key: str) -> Any:
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return v
    return None


def _set_in_item(text: str, span: _Span, rest: list[str], value: Any) -> str:
    if not rest:  # the whole item
        if value is not None:
            return _set_in_document_item(text, span, value)
        end = text.find("\n", span.end)
        return text[: span.line_start] + (text[end + 1 :] if end >= 0 else "")
    pad = " " * span.column
    lines = text[span.start : span.end].split("\n")
    own = "\n".join([lines[0], *(line.removeprefix(pad) for line in lines[1:])])
    y = _yaml()
    root = y.load(own)
    _assign(root, rest, value)
    buf = StringIO()
    y.dump(root, buf)
    return text[: span.start] + _indented(buf.getvalue(), pad) + text[span.end :]


def _set_in_document_item(text: str, span: _Span, value: Any) -> str:
    """A whole item replaced by ``value`` (a mapping): its lines written anew."""
    buf = StringIO()
    _yaml().dump(value, buf)
    return text[: span.start] + _indented(buf.getvalue(), " " * span.column) + text[span.end :]


def _indented(dumped: str, pad: str) -> str:
    """A dumped block set back at its item's column (its first line follows the ``- ``)."""
    lines = dumped.rstrip("\n").split("\n")
    return "\n".join([lines[0], *((pad + line) if line else line for line in lines[1:])])


def _assign(node: Any, rest: list[str], value: Any) -> None:
    """Set ``value`` at ``rest`` under ``node`` (``None`` deletes; a missing mapping on the
    way is made; the last part may name an item of a list by its name)."""
    for part in rest[:-1]:
        try:
            node = _step(node, part)
        except KeyError:
            if isinstance(node, dict) and value is not None:
                node[part] = CommentedMap()
                node = node[part]
            else:
                raise
    last = rest[-1]
    if isinstance(node, list):  # an item of a collection, by its name
        found = _step(node, last)
        if value is None:
            node.remove(found)
        else:
            node[node.index(found)] = value
    elif value is None:
        node.pop(last, None)
    else:
        node[last] = value


def _set_in_document(text: str, path: str, value: Any) -> str:
    """:func:`set_value` by a round trip of the whole document."""
    y = _yaml()
    doc = y.load(text)
    config = doc["config"]
    head, *rest = path.split(".")
    full = f"{NAMESPACE}:{head}"
    if not rest:
        if value is None:
            config.pop(full, None)
        else:
            config[full] = value
    else:
        _assign(config[full], rest, value)
    buf = StringIO()
    y.dump(doc, buf)
    return buf.getvalue()


def get_value(text: str, path: str) -> Any:
    """The value at ``path`` (KeyError: not there). A field of a named item is read with the
    bounded C loader (plain values); anything else as round-trip nodes, which keep their
    comments when written back with :func:`set_value`."""
    head, *rest = path.split(".")
    if head in _COLLECTIONS and rest:
        node = (reader.load_yaml(text) or {})["config"][f"{NAMESPACE}:{head}"]
        for part in rest:
            node = _step(node, part)
        return node
    doc = _yaml().load(text)
    node = doc["config"][f"{NAMESPACE}:{head}"]
    for part in rest:
        node = _step(node, part)
    return node


def edit_file(path: Path, edits: dict[str, Any]) -> str:
    """Apply edits to a stack file in place; returns the previous text."""
    before = path.read_text(encoding="utf-8")
    text = before
    for key, value in edits.items():
        text = set_value(text, key, value)
    write_atomic(path, text)
    return before


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` so that a concurrent reader sees the old or the new file.

    A plain `write_text` truncates first: a reader polling an operation record (or `pulumi`
    reading a stack file) could see it empty.
    """
    path = Path(os.path.realpath(path))  # a linked stack file: edit its target, keep the link
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    # 0o666 minus the umask, as a plain open would give a new file (mkstemp would make 0600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())  # the rename must not land before the data does
        if path.exists():
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))  # keep the replaced file's mode
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


#: The stack-file key (under `servestack:`) naming a file the stack program reads its
#: `servestack:*` config from, instead of the engine's environment; see
#: :func:`engine_config_text`.
CONFIG_FILE_KEY = "configFile"


def has_secure(value: Any) -> bool:
    """Whether a stack-file value holds a secret (a `secure:` value) anywhere."""
    if isinstance(value, dict):
        return "secure" in value or any(has_secure(v) for v in value.values())
    if isinstance(value, list):
        return any(has_secure(v) for v in value)
    return False


#: The most Linux lets one environment string (`NAME=value`) be: `MAX_ARG_STRLEN`, 32 pages.
ENV_STRING_LIMIT = 32 * 4096


def plain_config_bytes(text: str) -> int:
    """How long the `PULUMI_CONFIG` environment string is that a plain `pulumi up` of the
    stack file ``text`` hands the program: every config value as a string, objects and
    lists as JSON, in one JSON object (secrets counted as their ciphertext, about as long)."""
    config = (reader.load_yaml(text) or {}).get("config") or {}
    values = {
        str(k): v if isinstance(v, str) else json.dumps(v, separators=(",", ":"), default=str)
        for k, v in config.items()
    }
    return len("PULUMI_CONFIG=" + json.dumps(values, separators=(",", ":")))


def engine_config_text(text: str, program_config: Path) -> str:
    """The stack file ``text`` as servestack hands it to the engine (`--config-file`): its
    `servestack:*` keys without a secret in them replaced by one, `servestack:configFile`,
    naming ``program_config`` (a copy of ``text``) for the program to read them from.

    Pulumi's Python language host hands the program its whole config in one environment
    variable (`PULUMI_CONFIG`), and Linux refuses an environment string over 128 KiB
    (:data:`ENV_STRING_LIMIT`): a stack of a few hundred deployments would not start at
    all. Keys holding secrets stay, for the engine to decrypt them; so do the file's other
    keys (its encryption salt, ...). The engine alone reads this file: no comment is kept.
    """
    doc = dict(reader.load_yaml(text) or {})
    config = {
        key: value
        for key, value in (doc.get("config") or {}).items()
        if not str(key).startswith(f"{NAMESPACE}:") or has_secure(value)
    }
    config[f"{NAMESPACE}:{CONFIG_FILE_KEY}"] = str(program_config)
    doc["config"] = config
    dumped: str = yaml.dump(doc, Dumper=yaml.CSafeDumper, sort_keys=False)
    return dumped
