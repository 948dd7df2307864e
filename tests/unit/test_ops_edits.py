"""The operations' stack-file edits as plain data: no image is guessed (issue 19 item 6),
and the refusals name the field, the value and what to do instead."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from servestack.cli import app
from servestack.config.errors import ConfigError
from servestack.config.models import StrategyType
from servestack.config.stackfile import set_value
from servestack.engine import make_project
from servestack.ops.edits import (
    NotedEdits,
    delete_edits,
    notes_of,
    rollback_edits,
    rollback_to_previous_edits,
    set_model_edits,
    shift_steps,
)
from servestack.ops.releases import Release, history, previous
from tests import REPO

DEV = (REPO / "stacks" / "Pulumi.dev.yaml").read_text()
BASE = "deployments.bert-sentiment"
REPO_IMAGE = "registry.example.com/nlp/bert-sentiment"


def _dev(image: str, version: str = "v2.3.0") -> str:
    text = set_value(DEV, f"{BASE}.model.image", image)
    return set_value(text, f"{BASE}.model.version", version)


@pytest.mark.parametrize(
    ("image", "version", "new_version", "derived"),
    [
        (f"{REPO_IMAGE}:2.3.0", "v2.3.0", "v2.4.0", f"{REPO_IMAGE}:2.4.0"),
        (f"{REPO_IMAGE}:v2.3.0", "v2.3.0", "v2.4.0", f"{REPO_IMAGE}:v2.4.0"),
        (f"{REPO_IMAGE}:2.3.0", "2.3.0", "2.4.0", f"{REPO_IMAGE}:2.4.0"),
        ("localhost:5000/bert:2.3.0", "v2.3.0", "v2.4.0", "localhost:5000/bert:2.4.0"),
    ],
)
def test_an_image_tagged_with_the_current_version_gets_the_new_one_and_says_so(
    image: str, version: str, new_version: str, derived: str
) -> None:
    edits = set_model_edits(
        _dev(image, version),
        "bert-sentiment",
        version=new_version,
        image=None,
        strategy=StrategyType.rolling,
    )
    assert edits == {
        f"{BASE}.model.version": new_version,
        f"{BASE}.model.image": derived,
        f"{BASE}.strategy": {"type": "rolling"},
    }
    assert isinstance(edits, NotedEdits)
    assert edits.notes == [
        f"{BASE}.model.image: {derived}, the current image with {new_version} for its tag "
        "(--image names another)"
    ]
    canary = set_model_edits(
        _dev(image, version),
        "bert-sentiment",
        version=new_version,
        image=None,
        strategy=StrategyType.canary,
    )
    assert canary[f"{BASE}.strategy"]["canaryImage"] == derived
    assert isinstance(canary, NotedEdits)
    assert canary.notes == [
        f"{BASE}.strategy.canaryImage: {derived}, the current image with {new_version} for its "
        "tag (--image names another)"
    ]


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        (
            f"{REPO_IMAGE}:2.3.0-cu121",
            f"{REPO_IMAGE}:2.3.0-cu121: its tag '2.3.0-cu121' is not the current version "
            "'v2.3.0', so the image for v2.4.0 cannot be derived from it: pass --image",
        ),
        (
            f"{REPO_IMAGE}:latest",
            f"{REPO_IMAGE}:latest: its tag 'latest' is not the current version 'v2.3.0', so "
            "the image for v2.4.0 cannot be derived from it: pass --image",
        ),
        (REPO_IMAGE, f"{REPO_IMAGE} has no tag to set to v2.4.0: pass --image"),
        (
            f"{REPO_IMAGE}:2.3.0@sha256:{'a' * 64}",
            f"{REPO_IMAGE}:2.3.0@sha256:{'a' * 64} is pinned by digest: pass --image",
        ),
    ],
)
@pytest.mark.parametrize("strategy", [StrategyType.rolling, StrategyType.canary])
def test_no_image_is_guessed(image: str, problem: str, strategy: StrategyType) -> None:
    with pytest.raises(ConfigError) as err:
        set_model_edits(
            _dev(image), "bert-sentiment", version="v2.4.0", image=None, strategy=strategy
        )
    assert err.value.render() == f"{BASE}.model.image: {problem}"


def test_an_image_given_is_taken_as_it_is_without_a_note() -> None:
    image = f"{REPO_IMAGE}:2.4.0-cu124"
    edits = set_model_edits(
        _dev(f"{REPO_IMAGE}:2.3.0-cu121"),
        "bert-sentiment",
        version="v2.4.0",
        image=image,
        strategy=StrategyType.canary,
        weight=5,
    )
    assert edits == {
        f"{BASE}.strategy": {
            "type": "canary",
            "weight": 5,
            "canaryVersion": "v2.4.0",
            "canaryImage": image,
        }
    }
    assert not isinstance(edits, NotedEdits)


def test_rollback_without_a_canary_says_so_and_what_to_use() -> None:
    with pytest.raises(ConfigError) as err:
        rollback_edits(DEV, "bert-sentiment")
    assert err.value.render() == (
        f"{BASE}.strategy: no canary to roll back: strategy is rolling, and v2.1.0 takes all "
        "the traffic; to go back to the previous release: servestack rollback STACK "
        "bert-sentiment --to-previous"
    )


def test_delete_of_an_unknown_deployment_names_those_there_are() -> None:
    with pytest.raises(ConfigError) as err:
        delete_edits(DEV, "nope")
    assert err.value.render() == (
        "deployments.nope: no such deployment; have: bert-sentiment, whisper-batch"
    )


def test_set_model_says_in_the_review_which_image_it_derived(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(make_project(tmp_path / "project", stacks={"dev": DEV}))
    # blue_green replaces: without a terminal to ask on, refused after the review.
    res = CliRunner().invoke(
        app,
        ["set-model", "dev", "bert-sentiment", "--version", "v2.2.0", "--strategy", "blue_green"],
    )
    assert res.exit_code == 2, res.output
    assert (
        f"note: {BASE}.model.image: {REPO_IMAGE}:2.2.0, the current image with v2.2.0 for its "
        "tag (--image names another)\n"
    ) in res.output


V1 = Release("v2.1.0", f"{REPO_IMAGE}:2.1.0")
V2 = Release("v2.2.0", f"{REPO_IMAGE}:2.2.0")
V3 = Release("v2.3.0", f"{REPO_IMAGE}:2.3.0")


@pytest.mark.parametrize(
    ("releases", "current", "expected"),
    [
        ([V1, V2, V3], V3, V2),
        ([V1, V2, V3, V2], V2, V3),  # going back twice returns, as `rollout undo` does
        ([V1, V2], V3, V2),  # the stack file edited past the history: the last applied
        (
            [V1, Release("v2.1.0", f"{REPO_IMAGE}:2.1.0-cu121")],
            V1,
            Release("v2.1.0", f"{REPO_IMAGE}:2.1.0-cu121"),
        ),  # an image alone is a release too
        ([V3], V3, None),
        ([], V1, None),
    ],
)
def test_the_previous_release_is_the_latest_other_one(
    releases: list[Release], current: Release, expected: Release | None
) -> None:
    assert previous(releases, current) == expected


@pytest.mark.parametrize("strategy", ["rolling", "blue_green"])
def test_rollback_to_previous_sets_version_and_image_and_keeps_the_strategy(
    strategy: str,
) -> None:
    text = set_value(_dev(V3.image, V3.version), f"{BASE}.strategy", {"type": strategy})
    edits = rollback_to_previous_edits(text, "bert-sentiment", [V1, V2, V3])
    assert edits == {f"{BASE}.model.version": "v2.2.0", f"{BASE}.model.image": V2.image}
    assert isinstance(edits, NotedEdits)
    assert edits.notes == [f"{BASE}: back to {V2}, the release before {V3}"]


def test_rollback_to_previous_during_a_canary_removes_the_canary() -> None:
    text = set_value(
        _dev(V2.image, V2.version),
        f"{BASE}.strategy",
        {"type": "canary", "weight": 10, "canaryVersion": "v2.3.0", "canaryImage": V3.image},
    )
    edits = rollback_to_previous_edits(text, "bert-sentiment", [V1, V2])
    assert edits == {
        f"{BASE}.model.version": "v2.1.0",
        f"{BASE}.model.image": V1.image,
        f"{BASE}.strategy": {"type": "rolling"},
    }


@pytest.mark.parametrize("releases", [[], [V1]])
def test_rollback_to_previous_without_one_names_the_deployment(releases: list[Release]) -> None:
    with pytest.raises(ConfigError) as err:
        rollback_to_previous_edits(DEV, "bert-sentiment", releases)
    assert err.value.render() == (
        f"{BASE}: no previous release to roll back to: no succeeded operation on it ran another "
        f"model version or image than v2.1.0 ({REPO_IMAGE}:2.1.0) (.servestack/operations)"
    )


def _record(state: Path, op_id: str, finished: str, status: str, **kw: object) -> None:
    import json

    (state / "operations").mkdir(parents=True, exist_ok=True)
    data = {
        "id": op_id,
        "stack": "dev",
        "deployment": "bert-sentiment",
        "status": status,
        "started_at": finished,
        "finished_at": finished,
        **kw,
    }
    (state / "operations" / f"{op_id}.json").write_text(json.dumps(data))


def _set(release: Release, before: Release | None) -> dict[str, object]:
    changes = (
        [
            {"path": f"{BASE}.model.version", "before": before.version, "after": release.version},
            {"path": f"{BASE}.model.image", "before": before.image, "after": release.image},
        ]
        if before
        else [{"path": f"{BASE}.replicas", "before": 1, "after": 2}]
    )
    return {
        "changes": changes,
        "fields": {"model_version": release.version, "image": release.image},
    }


def test_history_reads_the_succeeded_operations_in_order(tmp_path: Path) -> None:
    # Named against their order: the history is ordered by when they finished.
    _record(tmp_path, "c", "2026-01-01T00:00:03+00:00", "succeeded", **_set(V3, V2))
    _record(tmp_path, "a", "2026-01-01T00:00:01+00:00", "succeeded", **_set(V1, None))
    _record(tmp_path, "b", "2026-01-01T00:00:02+00:00", "succeeded", **_set(V2, V1))
    # Neither a failed one, nor another deployment's, nor another stack's is a release.
    _record(tmp_path, "d", "2026-01-01T00:00:04+00:00", "rolled_back", **_set(V1, V3))
    _record(
        tmp_path,
        "e",
        "2026-01-01T00:00:05+00:00",
        "succeeded",
        **{**_set(V1, V3), "deployment": "whisper-batch"},
    )
    _record(
        tmp_path, "f", "2026-01-01T00:00:06+00:00", "succeeded", **{**_set(V1, V3), "stack": "prod"}
    )
    (tmp_path / "operations" / "g.json").write_text("{not json")
    assert history(tmp_path, "dev", "bert-sentiment") == [V1, V2, V3]


def test_a_whole_stack_up_that_changed_the_release_is_in_the_history(tmp_path: Path) -> None:
    _record(tmp_path, "a", "2026-01-01T00:00:01+00:00", "succeeded", **_set(V2, V1))
    # `servestack up` of the stack: no deployment of its own; its releases name those it moved.
    whole = {"deployment": None, "changes": _set(V3, V2)["changes"]}
    _record(
        tmp_path,
        "b",
        "2026-01-01T00:00:02+00:00",
        "succeeded",
        **whole,
        releases={"bert-sentiment": {"model_version": V3.version, "image": V3.image}},
    )
    # One that did not change this deployment's release is not in its history.
    _record(
        tmp_path,
        "c",
        "2026-01-01T00:00:03+00:00",
        "succeeded",
        **{**whole, "changes": []},
        releases={"whisper-batch": {"model_version": V1.version, "image": V1.image}},
    )
    assert history(tmp_path, "dev", "bert-sentiment") == [V1, V2, V3]


def test_the_release_before_the_first_operation_is_in_the_history(tmp_path: Path) -> None:
    _record(tmp_path, "a", "2026-01-01T00:00:01+00:00", "succeeded", **_set(V2, V1))
    assert history(tmp_path, "dev", "bert-sentiment") == [V1, V2]


def test_rollback_to_previous_reads_the_projects_history_and_shows_the_review(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = set_value(_dev(V3.image, V3.version), f"{BASE}.strategy", {"type": "blue_green"})
    project = make_project(tmp_path / "project", stacks={"dev": text})
    _record(project / ".servestack", "a", "2026-01-01T00:00:01+00:00", "succeeded", **_set(V3, V2))
    monkeypatch.chdir(project)
    # Blue-green back to v2.2.0 replaces: without a terminal to ask on, refused after the
    # review, which shows the edit the history gave.
    res = CliRunner().invoke(app, ["rollback", "dev", "bert-sentiment", "--to-previous"])
    assert res.exit_code == 2, res.output
    assert f"note: {BASE}: back to {V2}, the release before {V3}\n" in res.output
    assert "v2.3.0 -> v2.2.0" in res.output.replace("\u2192", "->")
    assert (project / "stacks" / "Pulumi.dev.yaml").read_text() == text


def _with_canary(text: str = DEV, replicas: int = 3) -> str:
    text = set_value(text, f"{BASE}.replicas", replicas)
    return set_value(
        text,
        f"{BASE}.strategy",
        {
            "type": "canary",
            "weight": 10,
            "canaryVersion": "v2.2.0",
            "canaryImage": f"{REPO_IMAGE}:2.2.0",
        },
    )


def test_shift_grows_the_canary_then_moves_the_stable_track_to_its_slot() -> None:
    first, second = shift_steps(_with_canary(), "bert-sentiment")
    assert first == {f"{BASE}.strategy.weight": 100, f"{BASE}.strategy.canaryReplicas": 3}
    assert dict(second) == {
        f"{BASE}.model.version": "v2.2.0",
        f"{BASE}.model.image": f"{REPO_IMAGE}:2.2.0",
        f"{BASE}.strategy": {"type": "rolling"},
        f"{BASE}.stableSlot": "canary",
    }
    assert "two updates" in notes_of(second)[0]


def test_shift_back_to_the_main_slot_leaves_the_default_out() -> None:
    text = set_value(_with_canary(), f"{BASE}.stableSlot", "canary")
    *_, second = shift_steps(text, "bert-sentiment")
    assert second[f"{BASE}.stableSlot"] is None


def test_a_shift_whose_first_update_ran_has_one_step_left() -> None:
    text = set_value(_with_canary(), f"{BASE}.strategy.weight", 100)
    text = set_value(text, f"{BASE}.strategy.canaryReplicas", 3)
    steps = shift_steps(text, "bert-sentiment")
    assert len(steps) == 1 and f"{BASE}.stableSlot" in steps[0]


def test_shift_without_a_canary_names_the_strategy() -> None:
    with pytest.raises(ConfigError) as info:
        shift_steps(DEV, "bert-sentiment")
    assert [str(p) for p in info.value.problems] == [
        f"{BASE}.strategy: no canary to promote with --shift"
    ]


def test_blue_green_from_the_canary_slot_puts_the_stable_track_back_in_main() -> None:
    text = set_value(DEV, f"{BASE}.stableSlot", "canary")
    edits = set_model_edits(
        text, "bert-sentiment", version="v2.3.0", image=None, strategy=StrategyType.blue_green
    )
    assert edits[f"{BASE}.stableSlot"] is None
