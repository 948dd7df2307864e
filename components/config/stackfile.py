"""Round-trip edits of `Pulumi.<stack>.yaml` files that keep comments, order and style.

Paths use the review tool's form: ``deployments.bert-sentiment.resources.cpu`` (list items
named by their ``name``), ``cluster.name``, ``nodePools.a100.maxNodes``.
"""

from __future__ import annotations

import os
import stat
import uuid
from io import StringIO
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

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


def set_value(text: str, path: str, value: Any) -> str:
    """Return ``text`` with the value at ``path`` set (``None`` deletes the key)."""
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
        node = config[full]
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
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    buf = StringIO()
    y.dump(doc, buf)
    return buf.getvalue()


def get_value(text: str, path: str) -> Any:
    doc = _yaml().load(text)
    head, *rest = path.split(".")
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


def engine_config_text(text: str, program_config: Path) -> str:
    """The stack file ``text`` as servestack hands it to the engine (`--config-file`): its
    `servestack:*` keys without a secret in them replaced by one, `servestack:configFile`,
    naming ``program_config`` (a copy of ``text``) for the program to read them from.

    Pulumi's Python language host hands the program its whole config in one environment
    variable (`PULUMI_CONFIG`), and Linux refuses an environment string over 128 KiB
    (`MAX_ARG_STRLEN`): a stack of several hundred deployments would not start at all.
    Keys holding secrets stay, for the engine to decrypt them.
    """
    y = _yaml()
    doc = y.load(text)
    config = doc["config"]
    for key in [k for k in config if str(k).startswith(f"{NAMESPACE}:")]:
        if not has_secure(config[key]):
            del config[key]
    config[f"{NAMESPACE}:{CONFIG_FILE_KEY}"] = str(program_config)
    buf = StringIO()
    y.dump(doc, buf)
    return buf.getvalue()
