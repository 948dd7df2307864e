"""Each stack: up -> preview shows no changes -> destroy, on the real engine."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.engine.conftest import deploy


def _kinds(out: Path) -> set[tuple[str, str]]:
    found = set()
    for f in out.rglob("*.yaml"):
        for doc in yaml.safe_load_all(f.read_text()):
            if doc:
                found.add((doc["kind"], doc["metadata"]["name"]))
    return found


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_up_preview_destroy(stack: str, engine_ready: Path, tmp_path: Path) -> None:
    d = deploy(tmp_path, stack)
    rendered = _kinds(d.out / stack)
    assert ("Deployment", "bert-sentiment") in rendered
    assert ("Service", "bert-sentiment") in rendered

    preview = d.engine.preview_json(d.project, stack)
    assert preview["_exitCode"] == 0, preview["_stderr"]
    changed = {op: n for op, n in preview["changeSummary"].items() if op != "same"}
    assert changed == {}, f"preview right after up must show no changes, got {changed}"

    result = d.engine.stack(d.project, stack).destroy(on_output=lambda _: None)
    assert result.summary.result == "succeeded"
    assert result.summary.resource_changes.get("delete", 0) >= len(rendered)
    state = d.engine.stack(d.project, stack).export_stack().deployment
    assert len(state.get("resources", [])) == 0
