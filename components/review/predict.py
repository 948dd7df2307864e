"""What the field-effect table predicts for an edit of a stack file: the one place that
applies edits to a stack file's text, validates both sides and classifies the change.

The operations plan with it, the demo shows it, and the engine and cluster tiers hold the
real engine and the live server to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from servestack.config.errors import ConfigError, Problem
from servestack.config.models import StackConfig
from servestack.config.stackfile import set_value
from servestack.config.validation import parse_stack, read_stack_text
from servestack.contract.effects import Effect
from servestack.review.diff import DiffResult, FieldChange, diff_configs

Edits = Mapping[str, Any] | Iterable[tuple[str, Any]]


@dataclass(frozen=True)
class Prediction:
    """A stack file before and after edits, both validated, and the classified diff."""

    before_text: str
    text: str
    before: StackConfig
    after: StackConfig
    diff: DiffResult

    @property
    def effect(self) -> Effect:
        """The most severe effect; ``no change`` when nothing deployed changes."""
        return self.diff.worst or Effect.NONE

    @property
    def unread(self) -> list[FieldChange]:
        """Edited fields that nothing deployed reads: the edit changes nothing there."""
        return [c for c in self.diff.changes if c.effect is Effect.NONE]


def parse_text(text: str, source: str) -> StackConfig:
    # Bounded parse first: ruamel's round-trip editing never sees a hostile file.
    return parse_stack(read_stack_text(text, source=source), source=source)


def apply_edits(text: str, edits: Edits, source: str = "stack file") -> str:
    """``text`` with each ``path: value`` set (comments and order kept).

    Raises:
        ConfigError: a path that cannot be edited, named with why.
    """
    items = edits.items() if isinstance(edits, Mapping) else edits
    for path, value in items:
        try:
            text = set_value(text, path, value)
        except KeyError as exc:
            raise ConfigError([Problem(path, f"cannot edit: {exc.args[0]}")], source) from None
    return text


def predict(
    text: str,
    edits: Edits,
    *,
    source: str = "stack file",
    before: StackConfig | None = None,
) -> Prediction:
    """What the field-effect table says ``edits`` of the stack file ``text`` do.

    ``before`` is ``text`` already parsed, when the caller has it.

    Raises:
        ConfigError: the stack file or the edited one is invalid, or a path cannot be
            edited (one line per problem).
    """
    old = before if before is not None else parse_text(text, source)
    after_text = apply_edits(text, edits, source)
    new = parse_text(after_text, source)
    return Prediction(text, after_text, old, new, diff_configs(old, new))
