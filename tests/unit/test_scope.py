"""Which deployments an update touches (servestack.ops.scope): a scoped run only when the
deployed config and the new one differ inside deployments alone, and nothing is left out."""

from __future__ import annotations

from typing import Any

import pytest

from servestack.config.models import StackConfig
from servestack.config.stackfile import set_value
from servestack.config.validation import parse_stack, read_stack_text
from servestack.ops.edits import delete_edits
from servestack.ops.scope import scope, targets
from servestack.program import production
from servestack.review.predict import apply_edits
from tests import REPO

PROD = (REPO / "stacks" / "Pulumi.prod.yaml").read_text(encoding="utf-8")
DEV = (REPO / "stacks" / "Pulumi.dev.yaml").read_text(encoding="utf-8")


def _stack(text: str) -> StackConfig:
    return parse_stack(read_stack_text(text))


def _deployed(text: str, unprotected: tuple[str, ...] = ()) -> dict[str, Any]:
    """The stack output the last update left."""
    return production.snapshot(_stack(text), unprotected)


def _names(text: str) -> list[str]:
    return [d.name for d in _stack(text).deployments]


def test_no_deployed_config_is_a_full_run() -> None:
    assert scope(None, _stack(DEV)) is None
    assert scope({"config": "garbage"}, _stack(DEV)) is None
    assert scope({}, _stack(DEV)) is None


def test_nothing_changed_is_a_full_run_never_an_empty_scope() -> None:
    # An empty scope would register no deployment: the engine would delete them all.
    assert scope(_deployed(DEV), _stack(DEV)) is None


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("deployments.bert-sentiment.replicas", 3),
        ("deployments.bert-sentiment.model.version", "v9.9.9"),
        ("deployments.bert-sentiment.active", False),
    ],
)
def test_a_change_inside_one_deployment_scopes_to_it(path: str, value: Any) -> None:
    new = _stack(set_value(DEV, path, value))
    assert scope(_deployed(DEV), new) == {"bert-sentiment"}


def test_a_field_an_older_servestack_did_not_know_is_no_difference() -> None:
    # The output an older servestack left: no `stableSlot`, whose default is `main`.
    old = _deployed(DEV)
    for item in old["config"]["deployments"]:
        del item["stableSlot"]
    new = _stack(set_value(DEV, "deployments.bert-sentiment.replicas", 3))
    assert scope(old, new) == {"bert-sentiment"}


def test_a_removed_deployment_is_in_scope() -> None:
    # Its components are targeted: the engine deletes what the program no longer registers.
    gone = apply_edits(DEV, delete_edits(DEV, "whisper-batch"))
    assert scope(_deployed(DEV), _stack(gone)) == {"whisper-batch"}


def test_an_added_deployment_is_in_scope() -> None:
    gone = apply_edits(DEV, delete_edits(DEV, "whisper-batch"))
    assert scope(_deployed(gone), _stack(DEV)) == {"whisper-batch"}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("namespace", "elsewhere"),
        ("cluster.name", "other"),
        ("environment", "staging"),
    ],
)
def test_a_change_outside_the_deployments_is_a_full_run(path: str, value: Any) -> None:
    assert scope(_deployed(DEV), _stack(set_value(DEV, path, value))) is None


def test_a_node_pool_change_is_a_full_run() -> None:
    pool = _stack(PROD).node_pools[0].name
    new = set_value(PROD, f"nodePools.{pool}.maxNodes", 99)
    assert scope(_deployed(PROD), _stack(new)) is None


def test_allowance_and_unprotected_items_join_the_scope() -> None:
    names = _names(PROD)
    entry = {
        "path": f"deployments.{names[0]}",
        "from": "x",
        "to": None,
        "reason": "approved in CHG-2001",
    }
    armed = _stack(set_value(PROD, "allowReplacements", [entry]))
    # Only the entry differs: its item is registered, to be unprotected.
    assert scope(_deployed(PROD), armed) == {names[0]}
    # The item the last update left unprotected is registered again, to be protected.
    left = _deployed(PROD, (f"deployments.{names[1]}",))
    assert scope(left, _stack(PROD)) == {names[1]}
    # An item that is not a deployment (a pool, every item) makes it a full run.
    assert scope(_deployed(PROD, ("*",)), _stack(PROD)) is None
    pool = _stack(PROD).node_pools[0].name
    assert scope(_deployed(PROD, (f"nodePools.{pool}",)), _stack(PROD)) is None


def test_targets_are_the_components_urns() -> None:
    assert targets("prod", "serving", frozenset({"b", "a"})) == [
        "urn:pulumi:prod::serving::servestack:index:ModelDeployment::a",
        "urn:pulumi:prod::serving::servestack:index:ModelDeployment::b",
    ]


def test_the_exported_output_is_one_json_string_read_like_the_map_it_replaced() -> None:
    # The program exports the snapshot as a string (cheap for the SDK and the engine at
    # 1,000 deployments); a stack an older servestack updated still holds the map.
    exported = production.snapshot_output(_stack(DEV), ("deployments.whisper-batch",))
    assert isinstance(exported, str)
    mapped = _deployed(DEV, ("deployments.whisper-batch",))
    assert production.read_output(exported) == mapped
    new = _stack(set_value(DEV, "deployments.bert-sentiment.replicas", 3))
    assert scope(exported, new) == scope(mapped, new) == {"bert-sentiment", "whisper-batch"}
    assert production.previous(exported) == production.previous(mapped)
    assert production.previous(exported).config is not None


@pytest.mark.parametrize("output", ["not json", "[1, 2]", "", 3])
def test_an_unreadable_exported_output_is_a_full_run(output: Any) -> None:
    assert production.read_output(output) is None
    assert scope(output, _stack(DEV)) is None
    assert production.previous(output).config is None
