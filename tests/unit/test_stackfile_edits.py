"""`set_value` edits a field of one named item in that item's own lines (fast at a thousand
deployments); it must say exactly what a round trip of the whole document says, and leave
every other line as it was."""

from __future__ import annotations

import difflib
from typing import Any

import pytest

from servestack.config import reader
from servestack.config.stackfile import _set_in_document, set_value
from servestack.config.validation import read_stack_text
from tests import REPO

STACKS = {p.stem.split(".")[1]: p.read_text() for p in sorted((REPO / "stacks").glob("*.yaml"))}


def _edits(text: str) -> list[tuple[str, Any]]:
    raw = read_stack_text(text)
    out: list[tuple[str, Any]] = []
    for dep in raw.get("deployments") or []:
        base = f"deployments.{dep['name']}"
        out += [
            (f"{base}.replicas", 7),
            (f"{base}.autoscaling.maxReplicas", 9),
            (f"{base}.resources.cpu", "3"),
            (f"{base}.model.version", "v9.9.9"),
            (f"{base}.strategy", {"type": "canary", "weight": 10}),
            (f"{base}.tags", None),
            (f"{base}.newKey.deeper", 1),
            (base, None),
        ]
    for pool in raw.get("nodePools") or []:
        base = f"nodePools.{pool['name']}"
        out += [(f"{base}.maxNodes", 11), (f"{base}.gpu.count", 2), (base, None)]
    return out


CASES = [(stack, path, value) for stack, text in STACKS.items() for path, value in _edits(text)]


@pytest.mark.parametrize(("stack", "path", "value"), CASES, ids=lambda x: str(x)[:60])
def test_an_item_edit_says_what_the_whole_round_trip_says(
    stack: str, path: str, value: Any
) -> None:
    text = STACKS[stack]
    fast = set_value(text, path, value)
    whole = _set_in_document(text, path, value)
    assert reader.load_yaml(fast) == reader.load_yaml(whole)
    # Every comment survives the edit.
    comments = [line.strip() for line in text.splitlines() if line.strip().startswith("#")]
    kept = [line.strip() for line in fast.splitlines() if line.strip().startswith("#")]
    if value is not None or path.count(".") > 1:
        assert comments == kept


def test_lines_outside_the_item_stay_byte_for_byte() -> None:
    text = STACKS["prod"]
    first = read_stack_text(text)["deployments"][0]["name"]
    fast = set_value(text, f"deployments.{first}.replicas", 7)
    changed = [
        line for line in difflib.ndiff(text.splitlines(), fast.splitlines()) if line[:1] in "+-"
    ]
    assert changed == ["+ " + "      replicas: 7"], changed  # one line added, nothing else


def test_an_unknown_item_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        set_value(STACKS["dev"], "deployments.nope.replicas", 1)
