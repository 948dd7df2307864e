"""Every edit of the matrix, previewed by the real engine against deployed state: the
engine's plan must agree with the field-effect table, and `explain` must trace the plan
back to the edited field. Where they disagree the components (or the table) are wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from servestack.config.stackfile import set_value
from servestack.config.validation import parse_stack, read_stack_text
from servestack.review.diff import diff_configs
from servestack.review.explain import explain_preview, overall_effect

from tests.engine.conftest import Deployed
from tests.engine.matrix import EDITS, Edit

#: Previews are kept for the review tier and the issue note (explain runs on real output).
PREVIEWS = Path(__file__).resolve().parents[2] / ".servestack" / "previews"


def _preview(d: Deployed, edit: Edit) -> tuple[dict, str]:
    edited = set_value(d.base, edit.path, edit.value)
    d.stack_file.write_text(edited, encoding="utf-8")
    try:
        return d.engine.preview_json(d.project, d.stack), edited
    finally:
        d.stack_file.write_text(d.base, encoding="utf-8")


@pytest.mark.parametrize("edit", EDITS, ids=lambda e: e.id)
def test_engine_agrees_with_table(edit: Edit, request: pytest.FixtureRequest) -> None:
    d: Deployed = request.getfixturevalue(edit.stack)
    preview, edited = _preview(d, edit)
    PREVIEWS.mkdir(parents=True, exist_ok=True)
    (PREVIEWS / f"{edit.id.replace('/', '_')}.json").write_text(json.dumps(preview))

    old = parse_stack(read_stack_text(d.base))
    new_raw = read_stack_text(edited)
    if edit.effect == "forbidden":
        # The program refuses before registering anything: the engine reports our message.
        assert preview["_exitCode"] != 0
        messages = " ".join(x.get("message", "") for x in preview.get("diagnostics", []))
        assert "refused" in messages and edit.path.split(".", 2)[-1] in messages, messages
        assert all(s["op"] == "same" for s in preview.get("steps", [])), "nothing may change"
        return
    new = parse_stack(new_raw)
    changes = diff_configs(old, new).changes
    assert [(c.path, c.effect.value) for c in changes] == [(edit.path, edit.effect)]

    assert preview["_exitCode"] == 0, preview["_stderr"]
    steps = explain_preview(preview, new, old)
    observed = overall_effect(steps)
    assert observed is not None and observed.value == edit.effect, (
        f"table says {edit.effect}, engine plans "
        + "; ".join(f"{s.op} {s.kind}/{s.name} {s.properties}" for s in steps)
    )
    traced = {f for s in steps for f in s.fields}
    assert edit.path in traced or any(edit.path.startswith(f + ".") for f in traced), (
        f"explain did not trace the plan to {edit.path}: {traced}"
    )
    assert not [s for s in steps if s.unexpected], [s.to_json() for s in steps if s.unexpected]
    # explain (on the real preview) names the same field with the same effect as diff.
    named = {
        s.predicted.value
        for s in steps
        if s.predicted is not None
        and any(edit.path == f or edit.path.startswith(f + ".") for f in s.fields)
    }
    assert named == {edit.effect}, named
