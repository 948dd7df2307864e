"""Allowances name one edit and cover exactly it; the program's production comparison refuses
what no entry covers and says which resources it protects."""

from __future__ import annotations

from typing import Any

import pytest

from servestack.config.models import Allowance, StackConfig
from servestack.config.stackfile import set_value
from servestack.config.validation import parse_stack, read_stack_text
from servestack.manifests.render import Key, render_stack
from servestack.ops.operations import delete_edits
from servestack.program import production
from servestack.review import allowances
from servestack.review.diff import diff_configs
from servestack.review.predict import apply_edits
from tests import REPO

PROD = (REPO / "stacks" / "Pulumi.prod.yaml").read_text(encoding="utf-8")
#: A replacement in production (p4d -> p4de was one until p4de became the A100 80 GB).
SPOT = "nodePools.a100.spot"
REASON = "approved in CHG-2001"


def _stack(text: str) -> StackConfig:
    return parse_stack(read_stack_text(text))


def _edit(text: str, **edits: Any) -> str:
    for path, value in edits.items():
        text = set_value(text, path.replace("__", "."), value)
    return text


def _entry(path: str, before: Any, after: Any) -> dict[str, Any]:
    return {"path": path, "from": before, "to": after, "reason": REASON}


def _without(text: str, deployment: str) -> str:
    return apply_edits(text, delete_edits(text, deployment))


OLD = _stack(PROD)
NEW_SPOT = set_value(PROD, SPOT, True)


@pytest.mark.parametrize(
    ("entry", "covered"),
    [
        (_entry(SPOT, False, True), True),
        (_entry(SPOT, False, False), False),  # another target
        (_entry(SPOT, True, True), False),  # another start
        (_entry("nodePools.a100.machineType", "p5.48xlarge", "p4d.24xlarge"), False),  # field
    ],
)
def test_an_entry_covers_exactly_its_edit(entry: dict[str, Any], covered: bool) -> None:
    new = _stack(set_value(NEW_SPOT, "allowReplacements", [entry]))
    result = diff_configs(OLD, new)
    (change,) = result.changes
    assert (change.allowance == REASON) is covered
    assert (result.blocking(fail_on_replace=False) == []) is covered
    assert [e.path for e in result.stale] == ([] if covered else [entry["path"]])


def test_once_applied_the_entry_is_stale_and_allows_nothing() -> None:
    entry = _entry(SPOT, False, True)
    applied = _stack(set_value(NEW_SPOT, "allowReplacements", [entry]))
    back = _stack(set_value(set_value(PROD, "allowReplacements", [entry]), SPOT, False))
    assert [e.path for e in diff_configs(applied, applied).stale] == [SPOT]
    result = diff_configs(applied, back)
    assert [c.path for c in result.blocking(False)] == [SPOT]


def test_a_pending_entry_is_not_stale() -> None:
    """The entry is in the file and the edit is still to come (the update that lifts the
    protection before a deletion)."""
    entry = _entry(SPOT, False, True)
    armed = _stack(set_value(PROD, "allowReplacements", [entry]))
    assert diff_configs(OLD, armed).stale == []
    assert allowances.pending(armed.allow_replacements[0], OLD, armed)


def test_a_deletion_is_named_by_the_item_fingerprint() -> None:
    value = allowances.value_at(OLD, "deployments.llama-chat")
    print_ = allowances.fingerprint(value)
    assert print_.startswith("sha256:") and len(print_) == len("sha256:") + 16
    gone = _without(PROD, "llama-chat")
    new = _stack(
        set_value(gone, "allowReplacements", [_entry("deployments.llama-chat", print_, None)])
    )
    result = diff_configs(OLD, new)
    assert [(c.path, c.allowance) for c in result.changes] == [("deployments.llama-chat", REASON)]
    # The entry the gate asks for is that one.
    plain = diff_configs(OLD, _stack(gone))
    assert allowances.entry_text(plain.changes[0]) == (
        f'{{path: deployments.llama-chat, from: "{print_}", to: null, '
        'reason: "<why, at least 10 characters>"}'
    )


def test_the_fingerprint_ignores_settings_the_engine_may_spell_differently() -> None:
    value = allowances.value_at(OLD, "deployments.llama-chat")
    tweaked = {**value, "autoscaling": {**value["autoscaling"], "targetCpuUtilization": 70}}
    assert allowances.fingerprint(tweaked) == allowances.fingerprint(value)
    other = {**value, "model": {**value["model"], "version": "v9"}}
    assert allowances.fingerprint(other) != allowances.fingerprint(value)


@pytest.mark.parametrize(
    ("named", "actual", "same"),
    [
        ("p4d.24xlarge", "p4d.24xlarge", True),
        (8, "8", True),
        ("8", 8, True),
        (None, None, True),
        (None, "x", False),
        ("x", None, False),
        ("v1", "v2", False),
    ],
)
def test_values_match_as_the_stack_file_writes_them(named: Any, actual: Any, same: bool) -> None:
    assert allowances.same(named, actual) is same


def test_operations_remove_the_entries_they_used() -> None:
    used = _entry(SPOT, False, True)
    other = _entry("nodePools.a100.maxNodes", 4, 6)
    text = set_value(NEW_SPOT, "allowReplacements", [used, other])
    left = allowances.without(text, [Allowance.model_validate(used)])
    assert _stack(left).allow_replacements == (Allowance.model_validate(other),)
    assert "allowReplacements" not in allowances.without(left, [Allowance.model_validate(other)])


# --- the program's comparison ------------------------------------------------------------------


def _previous(config: StackConfig, unprotected: tuple[str, ...] = ()) -> production.Previous:
    """What the program reads back from the stack output it wrote."""
    return production.previous(production.snapshot(config, unprotected))


def test_the_snapshot_round_trips_without_the_entries() -> None:
    config = _stack(set_value(PROD, "allowReplacements", [_entry(SPOT, "a", "b")]))
    prev = _previous(config)
    assert prev.config == config.model_copy(update={"allow_replacements": ()})
    assert "allowReplacements" not in production.snapshot(config, ())["config"]


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        (
            NEW_SPOT,
            [
                f"{SPOT}: replace (deleted and created: NodePool/a100) in production needs an "
                "allowReplacements entry naming this edit: {path: nodePools.a100.spot, "
                'from: false, to: true, reason: "<why, at least 10 '
                'characters>"}'
            ],
        ),
        (
            _without(PROD, "bert-sentiment"),
            [
                "deployments.bert-sentiment: delete (deleted: deployments.bert-sentiment) in "
                "production needs an allowReplacements entry naming this edit: "
                "{path: deployments.bert-sentiment, from: "
                f'"{allowances.fingerprint(allowances.value_at(OLD, "deployments.bert-sentiment"))}'
                '", to: null, reason: "<why, at least 10 characters>"}'
            ],
        ),
        # Stop/start, scaling across the disruption budget, promotion: never refused.
        (_edit(PROD, **{"deployments.bert-sentiment.active": False}), []),
        (_edit(PROD, **{"deployments.bert-sentiment.autoscaling.minReplicas": 1}), []),
        (set_value(PROD, "deployments.bert-sentiment.strategy", {"type": "rolling"}), []),
        (PROD, []),
    ],
)
def test_production_refuses_what_no_entry_covers(text: str, lines: list[str]) -> None:
    verdict = production.check(_previous(OLD), _stack(text))
    assert [str(p) for p in verdict.problems] == lines


def test_leaving_production_is_gated_too() -> None:
    text = set_value(NEW_SPOT, "environment", "staging")
    verdict = production.check(_previous(OLD), _stack(text))
    assert [p.path for p in verdict.problems] == [SPOT]
    staging = _stack(set_value(PROD, "environment", "staging"))
    both = production.check(_previous(staging), _stack(_edit(NEW_SPOT, environment="staging")))
    assert both.problems == []


def test_a_covered_edit_unprotects_only_its_item() -> None:
    text = set_value(NEW_SPOT, "allowReplacements", [_entry(SPOT, False, True)])
    verdict = production.check(_previous(OLD), _stack(text))
    assert verdict.problems == []
    assert verdict.unprotected == {"nodePools.a100"}
    keys = production.protected(render_stack(_stack(text)), verdict.unprotected)
    assert Key("kubernetes:karpenter.sh/v1:NodePool", "a100") not in keys
    assert Key("kubernetes:core/v1:Service", "llama-chat") in keys


def test_a_covered_delete_of_protected_resources_needs_the_protection_lifted_first() -> None:
    fp = allowances.fingerprint(allowances.value_at(OLD, "deployments.llama-chat"))
    entry = _entry("deployments.llama-chat", fp, None)
    text = set_value(_without(PROD, "llama-chat"), "allowReplacements", [entry])
    verdict = production.check(_previous(OLD), _stack(text))
    assert [p.path for p in verdict.problems] == ["deployments.llama-chat"]
    assert "which the last update protected" in str(verdict.problems[0])
    assert "ServiceAccount/llama-chat" in str(verdict.problems[0])
    # The update with the entry and the deployment still in the file lifts it ...
    armed = _stack(set_value(PROD, "allowReplacements", [entry]))
    arming = production.check(_previous(OLD), armed)
    assert (arming.problems, arming.unprotected) == ([], {"deployments.llama-chat"})
    # ... and then the deletion goes through.
    after = production.check(_previous(armed, ("deployments.llama-chat",)), _stack(text))
    assert after.problems == []


def test_protection_spares_what_an_in_place_edit_removes() -> None:
    keys = {(k.type.rsplit(":", 1)[-1], k.name) for k in production.protected(render_stack(OLD))}
    assert keys == {
        ("NodePool", "a100"),
        ("ServiceAccount", "bert-sentiment"),
        ("ServiceAccount", "llama-chat"),
        ("Service", "bert-sentiment"),
        ("Service", "llama-chat"),
        ("NetworkPolicy", "bert-sentiment-ingress"),
        ("NetworkPolicy", "llama-chat-ingress"),
    }


def test_nothing_is_checked_outside_production_or_without_a_last_config() -> None:
    dev = _stack((REPO / "stacks" / "Pulumi.dev.yaml").read_text(encoding="utf-8"))
    assert production.check(_previous(dev), dev).problems == []
    assert production.check(production.Previous(), _stack(NEW_SPOT)).problems == []
    unreadable = production.previous({"config": {"cluster": "not a mapping"}})
    assert unreadable.config is None and unreadable.unreadable
