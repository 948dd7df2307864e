"""Operations on the real engine (render mode): effect on the rendered manifests, on the
stack file (comments kept) and on the returned dict; stop/start round trip; rollback."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import yaml

from servestack.config.errors import ConfigError
from servestack.engine import Engine, make_project
from servestack.ops import operations as ops
from servestack.review.explain import explain_preview, overall_effect
from servestack.testhook import DIR_ENV, ENV
from tests import REPO
from tests.engine.conftest import PASSPHRASE

STACK = "dev"


@pytest.fixture
def ws(engine_ready: Path, tmp_path: Path) -> ops.Workspace:
    text = (REPO / "stacks" / f"Pulumi.{STACK}.yaml").read_text()
    project = make_project(tmp_path / "project", stacks={STACK: text})
    engine = Engine(
        tmp_path / "state",
        passphrase=PASSPHRASE,
        extra_env={"SERVESTACK_RENDER_ROOT": str(tmp_path / "out")},
    )
    engine.stack(project, STACK).up(on_output=lambda _: None)
    return ops.Workspace(project, engine)


def _out(ws: ops.Workspace) -> Path:
    return Path(ws.engine.extra_env["SERVESTACK_RENDER_ROOT"]) / STACK


def _snapshot(ws: ops.Workspace) -> dict[str, bytes]:
    root = _out(ws)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.yaml"))}


def _manifest(ws: ops.Workspace, kind: str, name: str) -> dict | None:
    for f in _out(ws).rglob("*.yaml"):
        for doc in yaml.safe_load_all(f.read_text()):
            if doc and doc["kind"] == kind and doc["metadata"]["name"] == name:
                return doc
    return None


def _container(ws: ops.Workspace, name: str) -> dict:
    dep = _manifest(ws, "Deployment", name)
    assert dep is not None
    return dep["spec"]["template"]["spec"]["containers"][0]


def test_update_resources_edits_file_manifests_and_returns_fields(ws: ops.Workspace) -> None:
    before = ws.stack_file(STACK).read_text()
    result = ops.update_model_deployment(
        STACK, "bert-sentiment", cpu=4000, memory=8192, workspace=ws
    )
    assert result["status"] == "succeeded"
    assert {
        k: result[k]
        for k in (
            "name",
            "model_id",
            "model_version",
            "model_type",
            "image",
            "environment",
            "active",
            "replicas",
            "cpu",
            "memory",
            "gpu",
        )
    } == {
        "name": "bert-sentiment",
        "model_id": "model-001",
        "model_version": "v2.1.0",
        "model_type": "llm",
        "image": "registry.example.com/nlp/bert-sentiment:2.1.0",
        "environment": "development",
        "active": True,
        "replicas": 1,
        "cpu": 4000,
        "memory": 8192,
        "gpu": {"count": 0, "type": None},
    }
    assert [c["path"] for c in result["changes"]] == [
        "deployments.bert-sentiment.resources.cpu",
        "deployments.bert-sentiment.resources.memory",
    ]
    assert {c["effect"] for c in result["changes"]} == {"restart"}
    assert result["operation_id"] and result["updated_at"]
    after = ws.stack_file(STACK).read_text()
    changed = [
        (a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b
    ]
    assert changed == [
        ("        cpu: 2", "        cpu: 4"),
        ("        memory: 4Gi", "        memory: 8Gi"),
    ]
    assert after.startswith("# Development: CPU only")  # comments kept
    limits = _container(ws, "bert-sentiment")["resources"]["limits"]
    assert (limits["cpu"], limits["memory"]) == ("4", "8Gi")


def test_stop_then_start_restores_manifests_byte_for_byte(ws: ops.Workspace) -> None:
    original = _snapshot(ws)
    stopped = ops.update_model_deployment(STACK, "whisper-batch", active=False, workspace=ws)
    assert stopped["status"] == "succeeded" and stopped["active"] is False
    assert stopped["replicas"] == 0
    assert [c["effect"] for c in stopped["changes"]] == ["in-place"]
    assert _manifest(ws, "Deployment", "whisper-batch")["spec"]["replicas"] == 0
    assert _manifest(ws, "ScaledObject", "whisper-batch") is None
    assert _manifest(ws, "Deployment", "bert-sentiment") is not None
    started = ops.update_model_deployment(STACK, "whisper-batch", active=True, workspace=ws)
    assert started["status"] == "succeeded" and started["active"] is True
    assert _snapshot(ws) == original


def test_an_operation_after_the_provider_moved_updates_the_whole_stack(
    ws: ops.Workspace, tmp_path: Path
) -> None:
    """Rendered to another directory since the last update (the provider's input): the
    engine refuses the scoped update ("a change of providers mixed with --target"), and
    the operation runs a whole one instead of failing and rolling back, scoped, into the
    same refusal."""
    moved = tmp_path / "moved"
    engine = Engine(
        ws.engine.state_dir,
        passphrase=PASSPHRASE,
        extra_env={"SERVESTACK_RENDER_ROOT": str(moved)},
    )
    there = ops.Workspace(ws.project_dir, engine)
    result = ops.update_model_deployment(STACK, "bert-sentiment", replicas=2, workspace=there)
    assert result["status"] == "succeeded", result
    (dep,) = [
        doc
        for f in (moved / STACK).rglob("*.yaml")
        for doc in yaml.safe_load_all(f.read_text())
        if doc and (doc["kind"], doc["metadata"]["name"]) == ("Deployment", "bert-sentiment")
    ]
    assert dep["spec"]["replicas"] == 2


def test_scale_canary_promote_rollback_delete(ws: ops.Workspace) -> None:
    scaled = ops.update_model_deployment(STACK, "bert-sentiment", replicas=3, workspace=ws)
    assert _manifest(ws, "Deployment", "bert-sentiment")["spec"]["replicas"] == 3
    assert scaled["replicas"] == 3

    text = ws.stack_file(STACK).read_text()
    edits = ops.set_model_edits(
        text,
        "bert-sentiment",
        version="v2.2.0",
        image=None,
        strategy=ops.StrategyType.canary,
        weight=10,
    )
    canary = ops.apply(ws, ops.plan(ws, STACK, edits, "bert-sentiment"))
    assert canary["status"] == "succeeded"
    c = _container(ws, "bert-sentiment-canary")
    assert c["image"] == "registry.example.com/nlp/bert-sentiment:2.2.0"
    routes = _manifest(ws, "VirtualService", "bert-sentiment-routes")
    assert [r["weight"] for r in routes["spec"]["http"][0]["route"]] == [90, 10]

    text = ws.stack_file(STACK).read_text()
    promoted = ops.apply(
        ws, ops.plan(ws, STACK, ops.promote_edits(text, "bert-sentiment"), "bert-sentiment")
    )
    assert promoted["model_version"] == "v2.2.0" and promoted["strategy"] == "rolling"
    assert _manifest(ws, "Deployment", "bert-sentiment-canary") is None
    assert _container(ws, "bert-sentiment")["image"].endswith(":2.2.0")

    text = ws.stack_file(STACK).read_text()
    edits = ops.set_model_edits(
        text,
        "bert-sentiment",
        version="v2.3.0",
        image=None,
        strategy=ops.StrategyType.canary,
        weight=5,
    )
    ops.apply(ws, ops.plan(ws, STACK, edits, "bert-sentiment"))
    assert _manifest(ws, "Deployment", "bert-sentiment-canary") is not None
    text = ws.stack_file(STACK).read_text()
    ops.apply(ws, ops.plan(ws, STACK, ops.rollback_edits(text, "bert-sentiment"), "bert-sentiment"))
    assert _manifest(ws, "Deployment", "bert-sentiment-canary") is None
    assert _container(ws, "bert-sentiment")["image"].endswith(":2.2.0")

    text = ws.stack_file(STACK).read_text()
    p = ops.plan(ws, STACK, ops.delete_edits(text, "whisper-batch"))
    assert [(c.path, c.effect.value) for c in p.diff.changes] == [
        ("deployments.whisper-batch", "delete")
    ]
    ops.apply(ws, p)
    assert _manifest(ws, "Deployment", "whisper-batch") is None
    assert "whisper-batch" not in ws.stack_file(STACK).read_text()


def _rollback_to_previous(ws: ops.Workspace, deployment: str) -> dict:
    def edits(text: str) -> ops.Edits:
        # Read under the stack's lock, as the CLI does.
        history = ops.release_history(ws.state, STACK, deployment)
        return ops.rollback_to_previous_edits(text, deployment, history)

    return ops.apply(ws, ops.plan(ws, STACK, edits, deployment))


def test_set_model_twice_then_rollback_to_previous_renders_the_first_version(
    ws: ops.Workspace,
) -> None:
    with pytest.raises(ConfigError, match="no previous release to roll back to"):
        _rollback_to_previous(ws, "bert-sentiment")
    for version, strategy in (("v2.2.0", "rolling"), ("v2.3.0", "blue_green")):
        text = ws.stack_file(STACK).read_text()
        edits = ops.set_model_edits(
            text,
            "bert-sentiment",
            version=version,
            image=None,
            strategy=ops.StrategyType(strategy),
        )
        assert ops.apply(ws, ops.plan(ws, STACK, edits, "bert-sentiment"))["status"] == "succeeded"
    image = "registry.example.com/nlp/bert-sentiment"
    # Blue-green keys the Deployment by version: the rollback is a switch back, too.
    assert _container(ws, "bert-sentiment-v2-3-0")["image"] == f"{image}:2.3.0"

    back = _rollback_to_previous(ws, "bert-sentiment")
    assert back["status"] == "succeeded"
    assert (back["model_version"], back["image"], back["strategy"]) == (
        "v2.2.0",
        f"{image}:2.2.0",
        "blue_green",
    )
    assert _container(ws, "bert-sentiment-v2-2-0")["image"] == f"{image}:2.2.0"
    assert _manifest(ws, "Deployment", "bert-sentiment-v2-3-0") is None
    text = ws.stack_file(STACK).read_text()
    assert f"image: {image}:2.2.0" in text and "version: v2.2.0" in text
    # The rollback is a release of its own: going back again returns to v2.3.0.
    assert [str(r.version) for r in ops.release_history(ws.state, STACK, "bert-sentiment")] == [
        "v2.1.0",
        "v2.2.0",
        "v2.3.0",
        "v2.2.0",
    ]


def test_forbidden_operation_is_refused_and_file_untouched(ws: ops.Workspace) -> None:
    before = ws.stack_file(STACK).read_text()
    with pytest.raises(ops.OperationRefused, match=r"model\.type"):
        ops.plan(ws, STACK, {"deployments.bert-sentiment.model.type": "vision"})
    assert ws.stack_file(STACK).read_text() == before


def test_failed_update_rolls_back_to_last_good_and_keeps_failed_config(ws: ops.Workspace) -> None:
    good = ops.update_model_deployment(STACK, "bert-sentiment", replicas=2, workspace=ws)
    assert good["status"] == "succeeded"
    last_good_text = ws.stack_file(STACK).read_text()
    # Make the provider fail for real on the next change: the Deployment's rendered file is
    # replaced by a directory, so the provider cannot write the changed manifest.
    target = next(
        p
        for p in _out(ws).rglob("*.yaml")
        if "bert-sentiment" in p.name and "deployment" in p.name.lower()
    )
    target.unlink()
    target.mkdir()
    try:
        result = ops.update_model_deployment(STACK, "bert-sentiment", cpu=3000, workspace=ws)
    finally:
        target.rmdir()
    assert result["status"] == "rolled_back", result
    assert result["error"]
    assert result["rollback"]["status"] == "succeeded"
    failed = Path(result["rollback"]["failed_config"])
    assert "cpu: 3" in failed.read_text()
    assert ws.stack_file(STACK).read_text() == last_good_text
    # The stack is in its last good state: the engine plans nothing against it.
    preview = ws.engine.preview_json(ws.project_dir, STACK)
    assert {k: v for k, v in preview["changeSummary"].items() if k != "same"} == {}
    op = ops.get_operation(result["operation_id"], ws)
    assert op["status"] == "rolled_back"


def test_no_wait_returns_operation_id_then_result(ws: ops.Workspace) -> None:
    started = ops.update_model_deployment(
        STACK, "bert-sentiment", replicas=2, wait=False, workspace=ws
    )
    assert started["status"] == "running"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        op = ops.get_operation(started["operation_id"], ws)
        if op["status"] not in ("pending", "running"):
            break
        time.sleep(1)
    assert op["status"] == "succeeded", op
    assert op["changes"][0]["path"] == "deployments.bert-sentiment.replicas"


def _wait_final(ws: ops.Workspace, op_id: str) -> dict:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        op = ops.get_operation(op_id, ws)
        if op["status"] not in ("pending", "running"):
            return op
        time.sleep(0.5)
    raise AssertionError(f"operation {op_id} still {op['status']}")


def test_a_detached_operation_runs_in_its_worker_to_the_end(ws: ops.Workspace) -> None:
    p = ops.plan(ws, STACK, {"deployments.bert-sentiment.replicas": 2}, "bert-sentiment")
    began = time.monotonic()
    started = ops.apply(ws, p, wait=False, detach=True)
    assert time.monotonic() - began < 5, "--no-wait waited"
    op = _wait_final(ws, started["operation_id"])
    assert op["status"] == "succeeded", op
    assert (op["runner"], op["phase"], op["replicas"]) == ("worker", "done", 2)
    assert op["pid"] != os.getpid()
    assert op["duration_seconds"] > 0 and op["result"]
    dep = _manifest(ws, "Deployment", "bert-sentiment")
    assert dep is not None and dep["spec"]["replicas"] == 2
    log = Path(op["log"]).read_text()
    assert f"operation {op['id']}: succeeded" in log
    # Done: the lock is free, the handed-over plan is gone, no journal is left.
    ops.plan(ws, STACK, {"deployments.bert-sentiment.replicas": 3}, "bert-sentiment").release()
    assert not (ws.state / "operations" / f"{op['id']}.plan").exists()
    assert not (ws.state / "inflight" / f"{STACK}.json").exists()


def test_a_killed_worker_is_finished_by_the_next_operation(
    ws: ops.Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pause = tmp_path / "pause"
    monkeypatch.setenv(ENV, "stack-written")
    monkeypatch.setenv(DIR_ENV, str(pause))
    p = ops.plan(ws, STACK, {"deployments.bert-sentiment.replicas": 2}, "bert-sentiment")
    started = ops.apply(ws, p, wait=False, detach=True)
    deadline = time.monotonic() + 120
    while not list(pause.glob("stack-written.*.ready")) and time.monotonic() < deadline:
        time.sleep(0.05)
    (ready,) = pause.glob("stack-written.*.ready")
    os.kill(int(ready.name.split(".")[1]), signal.SIGKILL)
    monkeypatch.delenv(ENV)
    deadline = time.monotonic() + 30
    while ops.get_operation(started["operation_id"], ws)["status"] != "interrupted":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # The next operation finishes the killed one's change first, then applies its own.
    result = ops.update_model_deployment(STACK, "bert-sentiment", cpu=3000, workspace=ws)
    assert result["status"] == "succeeded", result
    old = ops.get_operation(started["operation_id"], ws)
    assert old["status"] == "interrupted"
    assert old["recovered_by"]["status"] == "succeeded", old
    dep = _manifest(ws, "Deployment", "bert-sentiment")
    assert dep is not None and dep["spec"]["replicas"] == 2
    assert _container(ws, "bert-sentiment")["resources"]["limits"]["cpu"] == "3"


def test_a_release_applied_by_servestack_up_is_the_one_rollback_goes_back_from(
    ws: ops.Workspace,
) -> None:
    from servestack.config.stackfile import set_value
    from servestack.ops import stack_up

    path = ws.stack_file(STACK)
    base = "deployments.bert-sentiment"
    image = "registry.example.com/nlp/bert-sentiment"
    text = set_value(path.read_text(), f"{base}.model.version", "v2.2.0")
    path.write_text(set_value(text, f"{base}.model.image", f"{image}:2.2.0"))
    # The whole stack file, applied as `servestack up dev --yes` does.
    assert ops.apply(ws, stack_up.plan_up(ws, STACK, operation="up"))["status"] == "succeeded"
    assert _container(ws, "bert-sentiment")["image"] == f"{image}:2.2.0"

    back = _rollback_to_previous(ws, "bert-sentiment")
    assert back["status"] == "succeeded"
    assert (back["model_version"], back["image"]) == ("v2.1.0", f"{image}:2.1.0")
    assert _container(ws, "bert-sentiment")["image"] == f"{image}:2.1.0"


def _canary(ws: ops.Workspace, version: str) -> None:
    text = ws.stack_file(STACK).read_text()
    edits = ops.set_model_edits(
        text, "bert-sentiment", version=version, image=None, strategy=ops.StrategyType.canary
    )
    assert ops.apply(ws, ops.plan(ws, STACK, edits, "bert-sentiment"))["status"] == "succeeded"


def _shift(text: str) -> ops.Steps:
    return ops.shift_steps(text, "bert-sentiment")


def test_promote_shift_each_update_is_what_the_review_predicts(ws: ops.Workspace) -> None:
    """The two updates of `promote --shift`, previewed by the real engine one after the
    other: each is in place as predicted, the canary's pod template never changes, the old
    stable Deployment goes; a later canary runs in the other slot and shifts back."""
    ops.update_model_deployment(STACK, "bert-sentiment", replicas=3, workspace=ws)
    _canary(ws, "v2.2.0")
    template = _manifest(ws, "Deployment", "bert-sentiment-canary")["spec"]["template"]
    p = ops.plan(ws, STACK, _shift, "bert-sentiment")
    p.release()
    assert [c.effect.value for c in p.diff.changes] == ["in-place"] * len(p.diff.changes)
    assert len(p.stages) == 2 and p.steps == [p.stages[0].text]
    for stage in p.stages:
        ws.stack_file(STACK).write_text(stage.text)
        preview = ws.engine.preview_json(ws.project_dir, STACK)
        assert preview["_exitCode"] == 0, preview["_stderr"]
        steps = explain_preview(preview, stage.after, stage.before)
        observed = overall_effect(steps)
        assert observed is not None and observed.value == stage.effect.value == "in-place", [
            f"{s.op} {s.kind}/{s.name} {s.properties}" for s in steps
        ]
        assert {s.predicted.value for s in steps if s.predicted is not None} <= {"in-place"}
        ws.engine.stack(ws.project_dir, STACK).up(on_output=lambda _: None)
        promoted = _manifest(ws, "Deployment", "bert-sentiment-canary")
        assert promoted is not None and promoted["spec"]["template"] == template
        assert promoted["spec"]["replicas"] == 3
    routes = _manifest(ws, "VirtualService", "bert-sentiment-routes")
    assert routes is None and _manifest(ws, "Deployment", "bert-sentiment") is None
    assert "stableSlot: canary" in ws.stack_file(STACK).read_text()

    # A later canary runs in the main slot; the operation shifts back in its two updates.
    _canary(ws, "v2.3.0")
    assert _container(ws, "bert-sentiment")["image"].endswith(":2.3.0")
    template = _manifest(ws, "Deployment", "bert-sentiment")["spec"]["template"]
    lb = _manifest(ws, "DestinationRule", "bert-sentiment-lb")
    assert [s["labels"]["servestack.io/track"] for s in lb["spec"]["subsets"]] == [
        "canary",
        "stable",
    ]
    result = ops.apply(ws, ops.plan(ws, STACK, _shift, "bert-sentiment"))
    assert result["status"] == "succeeded" and result["model_version"] == "v2.3.0"
    record = ops.get_operation(result["operation_id"], ws)
    assert len(record["stages"]) == 1 and record["result"]
    assert _manifest(ws, "Deployment", "bert-sentiment")["spec"]["template"] == template
    assert _manifest(ws, "Deployment", "bert-sentiment-canary") is None
    assert "stableSlot" not in ws.stack_file(STACK).read_text()
    assert not (ws.state / "inflight" / f"{STACK}.json").exists()


def test_promote_shift_without_a_canary_is_one_line_and_applies_nothing(
    ws: ops.Workspace,
) -> None:
    before = ws.stack_file(STACK).read_text()
    with pytest.raises(ConfigError) as info:
        ops.plan(ws, STACK, _shift, "bert-sentiment")
    assert (
        str(info.value)
        .splitlines()[-1]
        .endswith("deployments.bert-sentiment.strategy: no canary to promote with --shift")
    )
    assert ws.stack_file(STACK).read_text() == before
    assert not list((ws.state / "operations").glob("*.json"))
