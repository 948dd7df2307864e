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
from servestack.ops.edits import NotedEdits, delete_edits, rollback_edits, set_model_edits
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
        "the traffic; to go back to an earlier version: servestack set-model STACK "
        "bert-sentiment --version VERSION"
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
