"""Every edit of the matrix, previewed by the real engine against deployed state: the
engine's plan must agree with the field-effect table, and `explain` must trace the plan
back to the edited field, and only to it. Where they disagree the components (or the
table) are wrong.

``SERVESTACK_SAVE_REVIEW_FIXTURES=1 pytest tests/engine/test_edit_matrix.py`` also writes
each preview, with the stack files it was made from, to ``tests/review/fixtures/``: the
review tier tests `explain` on these real previews without an engine.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from servestack.config.validation import parse_stack, read_stack_text
from servestack.contract.effects import Effect
from servestack.review.explain import explain_preview, overall_effect
from tests import REPO
from tests.engine.conftest import Deployed
from tests.engine.matrix import EDITS, Edit, as_reviewed

#: Previews are kept for the issue note (explain runs on real output).
PREVIEWS = REPO / ".servestack" / "previews"
FIXTURES = REPO / "tests" / "review" / "fixtures"
SAVE_FIXTURES = os.environ.get("SERVESTACK_SAVE_REVIEW_FIXTURES") == "1"
ASYNC = [e for e in EDITS if "whisper-batch" in e.path]


def _preview(d: Deployed, edit: Edit) -> tuple[dict, str]:
    edited = as_reviewed(d.base, edit).text
    d.stack_file.write_text(edited, encoding="utf-8")
    try:
        return d.engine.preview_json(d.project, d.stack), edited
    finally:
        d.stack_file.write_text(d.base, encoding="utf-8")


def _of(edit: Edit, path: str) -> str:
    """``path``, or the edit's own when it is a field of the block the edit sets."""
    return edit.path if path.startswith(edit.path + ".") else path


def _trimmed(preview: dict[str, Any]) -> dict[str, Any]:
    """The preview without resource outputs (render mode repeats the inputs there)."""
    steps = []
    for step in preview.get("steps", []):
        step = dict(step)
        for side in ("oldState", "newState"):
            if isinstance(step.get(side), dict):
                step[side] = {k: v for k, v in step[side].items() if k != "outputs"}
        steps.append(step)
    return {**{k: v for k, v in preview.items() if k != "_stderr"}, "steps": steps}


def _save(edit: Edit, base: str, edited: str, preview: dict[str, Any]) -> None:
    PREVIEWS.mkdir(parents=True, exist_ok=True)
    (PREVIEWS / f"{edit.id.replace('/', '_')}.json").write_text(json.dumps(preview))
    if SAVE_FIXTURES:
        FIXTURES.mkdir(parents=True, exist_ok=True)
        record = {
            "edit": {"stack": edit.stack, "path": edit.path, "value": edit.value},
            "effect": edit.effect,
            "base": base,
            "edited": edited,
            "preview": _trimmed(preview),
        }
        text = json.dumps(record, indent=1, sort_keys=True) + "\n"
        (FIXTURES / edit.fixture).write_text(text, encoding="utf-8")


@pytest.mark.parametrize("edit", EDITS, ids=lambda e: e.id)
def test_engine_agrees_with_table(edit: Edit, request: pytest.FixtureRequest) -> None:
    d: Deployed = request.getfixturevalue(edit.stack)
    preview, edited = _preview(d, edit)
    _save(edit, d.base, edited, preview)

    old = parse_stack(read_stack_text(d.base))
    if edit.effect == "forbidden":
        # The program refuses before registering anything: the engine reports our message.
        assert preview["_exitCode"] != 0
        messages = " ".join(x.get("message", "") for x in preview.get("diagnostics", []))
        assert "refused" in messages and edit.path.split(".", 2)[-1] in messages, messages
        assert all(s["op"] == "same" for s in preview.get("steps", [])), "nothing may change"
        return
    found = as_reviewed(d.base, edit)
    assert found.text == edited
    new = found.after
    changes = found.diff.changes
    # A block (an autoscaler given to a deployment) is a row, and so is each of its fields
    # that is not at its default: all of the edit, all with its effect.
    assert {(_of(edit, c.path), c.effect.value) for c in changes} == {(edit.path, edit.effect)}

    assert preview["_exitCode"] == 0, preview["_stderr"]
    steps = explain_preview(preview, new, old)
    if edit.effect == Effect.NONE.value:
        # Nothing deployed reads the field: the engine plans no step at all.
        assert [(s.op, s.kind, s.name) for s in steps if s.kind != "Stack"] == []
        return
    observed = overall_effect(steps)
    assert observed is not None and observed.value == edit.effect, (
        f"table says {edit.effect}, engine plans "
        + "; ".join(f"{s.op} {s.kind}/{s.name} {s.properties}" for s in steps)
    )
    # With the base, every planned step is traced to the edited field and nothing else.
    traced = [
        (s.kind, s.name, sorted({_of(edit, f) for f in s.fields}))
        for s in steps
        if s.kind != "Stack"
    ]
    assert traced == [(k, n, [edit.path]) for k, n, _ in traced]
    assert not [s for s in steps if s.unexpected], [s.to_json() for s in steps if s.unexpected]
    # explain (on the real preview) gives the field the effect diff gives it.
    assert {s.predicted.value for s in steps if s.predicted is not None} == {edit.effect}
    if edit in ASYNC:
        # A queue worker's edit needs no base: the builders' record names one field.
        alone = explain_preview(preview, new)
        assert [(s.kind, s.fields) for s in alone] == [(s.kind, [edit.path]) for s in alone]
        assert {s.predicted.value for s in alone if s.predicted} == {edit.effect}


def test_the_matrix_has_async_edits() -> None:
    assert len(ASYNC) >= 3
