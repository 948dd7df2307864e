"""Each stack: up -> preview shows no changes -> destroy, on the real engine."""

from __future__ import annotations

import json
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

    if stack == "prod":
        # Production protects its namespace: destroy is refused until it is unprotected.
        refused = d.engine.cli(d.project, "destroy", "--yes", "--stack", stack, check=False)
        assert refused.returncode != 0
        assert "protect" in refused.stdout + refused.stderr
        d.engine.cli(d.project, "state", "unprotect", "--all", "--yes", "--stack", stack)
    result = d.engine.stack(d.project, stack).destroy(on_output=lambda _: None)
    assert result.summary.result == "succeeded"
    assert result.summary.resource_changes.get("delete", 0) >= len(rendered)
    state = d.engine.stack(d.project, stack).export_stack().deployment
    assert len(state.get("resources", [])) == 0


def test_broken_stack_is_refused_by_the_engine_with_nothing_registered(
    engine_ready: Path, tmp_path: Path
) -> None:
    from servestack.config.stackfile import set_value
    from servestack.engine import Engine, make_project
    from tests import REPO
    from tests.engine.conftest import PASSPHRASE

    text = (REPO / "stacks" / "Pulumi.prod.yaml").read_text()
    text = set_value(text, "deployments.bert-sentiment.autoscaling.minReplicas", 50)
    text = set_value(text, "deployments.llama-chat.resources.memory", "64GB")
    project = make_project(tmp_path / "project", stacks={"prod": text})
    engine = Engine(
        tmp_path / "state",
        passphrase=PASSPHRASE,
        extra_env={"SERVESTACK_RENDER_ROOT": str(tmp_path / "out")},
    )
    engine.stack(project, "prod")
    proc = engine.cli(project, "up", "--yes", "--stack", "prod", check=False)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert (
        "deployments.bert-sentiment.autoscaling: minReplicas (50) must be <= "
        "maxReplicas (10)" in output
    )
    assert "deployments.llama-chat.resources.memory: '64GB' must be a Kubernetes quantity" in output
    assert "Traceback" not in output
    state = engine.stack(project, "prod").export_stack().deployment
    types = {r["type"] for r in state.get("resources", [])}
    assert types <= {"pulumi:pulumi:Stack"}, types
    assert not (tmp_path / "out").exists()


def test_production_guardrails_on_the_engine(engine_ready: Path, tmp_path: Path) -> None:
    """Prod: a namespace move is refused by the program's gate; ops refuse ungated
    replacements and consume the entry that allowed one."""
    from servestack.config.stackfile import set_value
    from servestack.ops import operations as ops

    d = deploy(tmp_path, "prod")
    d.stack_file.write_text(set_value(d.base, "namespace", "models-eu"))
    preview = d.engine.preview_json(d.project, "prod")
    d.stack_file.write_text(d.base)
    assert preview["_exitCode"] != 0
    said = json.dumps(preview.get("diagnostics", [])) + preview["_stderr"]
    assert "namespace: replace" in said and "allowReplacements" in said, said

    ws = ops.Workspace(d.project, d.engine)
    edits = {"deployments.llama-chat.model.version": "v3.1.0"}
    with pytest.raises(ops.OperationRefused, match="allowReplacements"):
        ops.apply(ws, ops.plan(ws, "prod", edits, "llama-chat"))
    assert d.stack_file.read_text() == d.base
    allowed = {
        **edits,
        "allowReplacements": [
            {
                "path": "deployments.llama-chat.model.version",
                "from": "v3.0.1",
                "to": "v3.1.0",
                "reason": "approved in CHG-1234",
            }
        ],
    }
    result = ops.apply(ws, ops.plan(ws, "prod", allowed, "llama-chat"))
    assert result["status"] == "succeeded" and result["model_version"] == "v3.1.0"
    # The operation used the entry: it is gone from the stack file.
    assert "allowReplacements" not in d.stack_file.read_text()
