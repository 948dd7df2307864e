"""`examples/own-stack`: a separate project composing the components goes up and comes
down on the real engine, and `explain` traces a preview of its edit to the component
field, without any servestack stack file."""

from __future__ import annotations

from pathlib import Path

from servestack.engine import Engine
from servestack.review.explain import explain_preview, overall_effect
from tests import REPO, copy_program
from tests.engine.conftest import PASSPHRASE


def test_own_stack_up_edit_explain_destroy(engine_ready: Path, tmp_path: Path) -> None:
    project = copy_program(REPO / "examples" / "own-stack", tmp_path / "own-stack")
    engine = Engine(tmp_path / "state", passphrase=PASSPHRASE)
    stack = engine.stack(project, "test")
    stack.set_config("renderDirectory", _cfg(str(tmp_path / "out")))
    up = stack.up(on_output=lambda _: None)
    assert up.summary.result == "succeeded"
    assert (tmp_path / "out").exists()
    assert up.outputs["nodeLabels"].value == {
        "servestack.io/gpu": "l4",
        "servestack.io/node-pool": "l4",
    }

    same = engine.preview_json(project, "test")
    assert {k: v for k, v in same["changeSummary"].items() if k != "same"} == {}

    program = project / "__main__.py"
    program.write_text(program.read_text().replace('"cpu": 2,', '"cpu": 3,'))
    preview = engine.preview_json(project, "test")
    steps = explain_preview(preview)
    assert overall_effect(steps) is not None and overall_effect(steps).value == "restart"
    traced = {f for s in steps for f in s.fields}
    assert "deployments.search-ranker.resources.cpu" in traced, traced
    assert not any(s.unexpected for s in steps)

    down = stack.destroy(on_output=lambda _: None)
    assert down.summary.result == "succeeded"


def _cfg(value: str):
    from pulumi import automation as auto

    return auto.ConfigValue(value=value)
