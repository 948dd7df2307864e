"""Config errors a user can act on: one line per problem, naming path, value and what is allowed.

Pydantic reports positions as tuples such as ``("deployments", 0, "autoscaling")``; users
think in names, so list positions of named items become ``deployments.bert-sentiment``: the
one path dialect of :mod:`servestack.config.paths`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

#: Problems listed per error: a file of 300,000 bad keys gets a screenful, not 300,000 lines.
MAX_PROBLEMS = 100


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(Exception):
    """Invalid servestack config. ``str(err)`` is one line per problem."""

    def __init__(self, problems: Sequence[Problem], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(self.render())

    def render(self) -> str:
        prefix = f"{self.source}: " if self.source else ""
        return "\n".join(f"{prefix}{p}" for p in self.problems)


def _named_path(loc: Iterable[int | str], raw: Any) -> str:
    """Render a pydantic location against the raw input, naming list items by their name."""
    parts: list[str] = []
    node = raw
    for item in loc:
        if isinstance(item, int):
            label = str(item)
            if isinstance(node, list) and 0 <= item < len(node):
                node = node[item]
                name = node.get("name") if isinstance(node, dict) else None
                if isinstance(name, str) and name:
                    label = name
            else:
                node = None
            parts.append(label)
            continue
        if item in ("function-after[_dns_label(), str]",) or item.startswith("function-"):
            continue
        parts.append(item)
        node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts)


def _fields_of(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """Allowed keys at the model reached by ``loc`` (for "did you mean")."""
    current: Any = model
    for item in loc:
        if isinstance(item, int) or current is None:
            continue
        field = current.model_fields.get(_attr_for(current, item)) if _is_model(current) else None
        current = _inner_model(field.annotation) if field is not None else None
    if not _is_model(current):
        return []
    return [f.alias or name for name, f in current.model_fields.items()]


def _is_model(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseModel)


def _attr_for(model: type[BaseModel], key: str) -> str:
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return name
    return key


def _inner_model(annotation: Any) -> Any:
    if _is_model(annotation):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _describe(value: Any) -> str:
    if isinstance(value, Mapping | list):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."
    if isinstance(value, str) and len(value) > 200:  # a hostile file's 7 MB value
        return f"{value[:57]!r}... ({len(value):,} characters)"
    return repr(value)


def _message(err: ErrorDetails, model: type[BaseModel]) -> tuple[tuple[int | str, ...], str]:
    loc = tuple(err["loc"])
    kind = err["type"]
    value = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = _fields_of(model, loc[:-1])
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return loc[:-1], f"unknown key {key!r}{hint} (allowed: {', '.join(allowed)})"
    if kind == "missing":
        return loc, "required but missing"
    if kind == "enum":
        return loc, f"{_describe(value)} is not allowed; allowed: {ctx.get('expected', '')}"
    if kind == "servestack":
        return loc, err["msg"]
    if kind == "value_error":
        return loc, f"{_describe(value)} {ctx.get('error', err['msg'])!s}"
    return loc, f"{_describe(value)} is not allowed: {err['msg'][0].lower()}{err['msg'][1:]}"


def from_validation_error(
    exc: ValidationError, raw: Any, model: type[BaseModel], *, root: str = ""
) -> ConfigError:
    problems = []
    errors = exc.errors(include_url=False)
    for err in errors[:MAX_PROBLEMS]:
        loc, message = _message(err, model)
        path = _named_path(loc, raw)
        if root:
            path = f"{root}.{path}" if path else root
        problems.append(Problem(path, message))
    if len(errors) > MAX_PROBLEMS:
        more = len(errors) - MAX_PROBLEMS
        problems.append(Problem(root, f"... and {more:,} more problems (not listed)"))
    return ConfigError(_dedupe(problems))


def _dedupe(problems: Iterable[Problem]) -> list[Problem]:
    seen: dict[tuple[str, str], Problem] = {}
    for p in problems:
        seen.setdefault((p.path, p.message), p)
    return list(seen.values())
