"""`servestack diff`: offline classification of config edits, gate and exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from servestack.cli import app
from servestack.config.stackfile import set_value
from servestack.config.validation import parse_stack, read_stack_text
from servestack.contract.effects import Effect
from servestack.review.diff import diff_configs
from servestack.review.report import diff_markdown, summary_line
from tests import stack_text
from tests.engine.matrix import EDITS, Edit

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _text(stack: str) -> str:
    return stack_text(stack)


def _diff_json(tmp: Path, old: str, new: str) -> Result:
    old_file, new_file = _write(tmp, "a.yaml", old), _write(tmp, "b.yaml", new)
    return runner.invoke(app, ["diff", str(old_file), str(new_file), "--format", "json"])


def _write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("edit", EDITS, ids=lambda e: e.id)
def test_matrix_edit_is_one_classified_change(edit: Edit) -> None:
    base = _text(edit.stack)
    old = parse_stack(read_stack_text(base))
    new = parse_stack(read_stack_text(set_value(base, edit.path, edit.value)))
    result = diff_configs(old, new)
    # A block the edit sets is a row, and so is each of its fields not at its default.
    rows = [(c.path, c.effect.value) for c in result.changes]
    assert rows[0] == (edit.path, edit.effect)
    assert all(p.startswith(edit.path + ".") and e == edit.effect for p, e in rows[1:]), rows
    assert result.summary[edit.effect] == len(rows) == sum(result.summary.values())


EXTRA = [
    # (stack, edits, expected [(path, effect)])
    (
        "dev",
        {"deployments.bert-sentiment.resources.memory": "8Gi"},
        [("deployments.bert-sentiment.resources.memory", "restart")],
    ),
    ("dev", {"deployments.bert-sentiment.resources.cpu": "2000m"}, []),  # same quantity
    (
        "dev",
        {
            "deployments.bert-sentiment.autoscaling": {
                "minReplicas": 1,
                "maxReplicas": 4,
                "targetCpuUtilization": 70,
            }
        },
        # The block's defaults are one row; the values that are not defaults are their own.
        [
            ("deployments.bert-sentiment.autoscaling", "in-place"),
            ("deployments.bert-sentiment.autoscaling.maxReplicas", "in-place"),
            ("deployments.bert-sentiment.autoscaling.targetCpuUtilization", "in-place"),
        ],
    ),
    ("staging", {"cluster.name": "staging-eu-2"}, [("cluster.name", "replace")]),
    (
        "staging",
        {
            "deployments.resnet-vision.strategy.type": "canary",
            "deployments.resnet-vision.strategy.weight": 5,
            "deployments.resnet-vision.strategy.canaryVersion": "2024.12",
            "deployments.resnet-vision.strategy.canaryImage": "r.example.com/resnet:2024.12",
        },
        [
            ("deployments.resnet-vision.strategy.type", "in-place"),
            ("deployments.resnet-vision.strategy.weight", "in-place"),
            ("deployments.resnet-vision.strategy.canaryVersion", "restart"),
            ("deployments.resnet-vision.strategy.canaryImage", "restart"),
        ],
    ),
    (
        "prod",
        {"deployments.llama-chat.strategy.type": "rolling"},
        [("deployments.llama-chat.strategy.type", "replace")],
    ),
    (
        "prod",
        {"deployments.llama-chat.model.image": "registry.example.com/llm/llama:3.0.2"},
        [("deployments.llama-chat.model.image", "restart")],
    ),
]


@pytest.mark.parametrize(("stack", "edits", "expected"), EXTRA)
def test_more_edits(stack: str, edits: dict, expected: list) -> None:
    base = _text(stack)
    text = base
    for path, value in edits.items():
        text = set_value(text, path, value)
    result = diff_configs(parse_stack(read_stack_text(base)), parse_stack(read_stack_text(text)))
    assert [(c.path, c.effect.value) for c in result.changes] == expected


def test_added_and_removed_deployments_are_one_change_each() -> None:
    base = _text("staging")
    raw = read_stack_text(base)
    new_raw = dict(raw)
    new_raw["deployments"] = [
        raw["deployments"][0],
        {**raw["deployments"][1], "name": "resnet-v2"},
    ]
    result = diff_configs(parse_stack(raw), parse_stack(new_raw))
    assert [(c.path, c.effect.value) for c in result.changes] == [
        ("deployments.resnet-vision", "delete"),
        ("deployments.resnet-v2", "create"),
    ]
    assert result.summary == {
        "no change": 0,
        "in-place": 0,
        "restart": 0,
        "replace": 0,
        "forbidden": 0,
        "create": 1,
        "delete": 1,
    }


def test_cli_json_contract(tmp_path: Path) -> None:
    base = _text("dev")
    new = set_value(base, "deployments.bert-sentiment.resources.cpu", 4)
    res = _diff_json(tmp_path, base, new)
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["changes"] == [
        {
            "path": "deployments.bert-sentiment.resources.cpu",
            "before": "2",
            "after": "4",
            "effect": "restart",
            "reason": "container requests/limits are in the pod template",
            "resources": ["Deployment/bert-sentiment"],
            "impact": "rolls 1 pod; surge needs 1 extra pod",
        }
    ]
    assert data["summary"] == {
        "no change": 0,
        "in-place": 0,
        "restart": 1,
        "replace": 0,
        "forbidden": 0,
        "create": 0,
        "delete": 0,
    }


@pytest.mark.parametrize(
    ("stack", "path", "value", "flags", "code"),
    [
        ("dev", "deployments.bert-sentiment.strategy.type", "blue_green", [], 0),
        (
            "dev",
            "deployments.bert-sentiment.strategy.type",
            "blue_green",
            ["--fail-on", "replace"],
            2,
        ),
        ("prod", "deployments.llama-chat.model.version", "v3.1.0", [], 2),  # production gate
        ("prod", "nodePools.a100.maxNodes", 6, [], 0),
        ("dev", "deployments.bert-sentiment.model.type", "vision", [], 2),  # forbidden
    ],
)
def test_exit_codes(
    tmp_path: Path, stack: str, path: str, value: object, flags: list[str], code: int
) -> None:
    base = _text(stack)
    res = runner.invoke(
        app,
        [
            "diff",
            str(_write(tmp_path, "a.yaml", base)),
            str(_write(tmp_path, "b.yaml", set_value(base, path, value))),
            *flags,
        ],
    )
    assert res.exit_code == code, res.output


def test_production_allowance_lets_a_reasoned_replacement_through(tmp_path: Path) -> None:
    base = _text("prod")
    new = set_value(base, "deployments.llama-chat.model.version", "v3.1.0")
    new = set_value(
        new,
        "allowReplacements",
        [
            {
                "path": "deployments.llama-chat.model.version",
                "from": "v3.0.1",
                "to": "v3.1.0",
                "reason": "blue-green rollout approved in CHG-1234",
            }
        ],
    )
    res = _diff_json(tmp_path, base, new)
    assert res.exit_code == 0, res.output
    change = json.loads(res.stdout)["changes"][0]
    assert change["allowance"] == "blue-green rollout approved in CHG-1234"
    assert json.loads(res.stdout)["blocking"] == []
    # Applied, the entry allows nothing more: the next diff calls it stale, and the edit
    # back is blocked although the entry is still in the file.
    back = set_value(new, "deployments.llama-chat.model.version", "v3.0.2")
    res = _diff_json(tmp_path, new, back)
    assert res.exit_code == 2, res.output
    out = json.loads(res.stdout)
    assert out["blocking"] == ["deployments.llama-chat.model.version"]
    assert [e["path"] for e in out["stale"]] == ["deployments.llama-chat.model.version"]


def test_invalid_new_file_exits_1_naming_file_and_field(tmp_path: Path) -> None:
    base = _text("prod")
    bad = set_value(base, "deployments.bert-sentiment.autoscaling.minReplicas", 50)
    b = _write(tmp_path, "b.yaml", bad)
    res = runner.invoke(app, ["diff", str(_write(tmp_path, "a.yaml", base)), str(b)])
    assert res.exit_code == 1
    assert res.stderr.strip() == (
        f"{b}: deployments.bert-sentiment.autoscaling: minReplicas (50) must be <= maxReplicas (10)"
    )
    assert "Traceback" not in res.output


def test_markdown_puts_replacements_first_and_keeps_summary_when_trimmed() -> None:
    base = _text("prod")
    text = set_value(base, "deployments.llama-chat.model.version", "v3.1.0")
    for i in range(40):
        text = set_value(text, f"deployments.bert-sentiment.env.VAR_{i:02d}", "x" * 50)
    result = diff_configs(parse_stack(read_stack_text(base)), parse_stack(read_stack_text(text)))
    md = diff_markdown(result, result.blocking(False), stack="prod")
    assert md.index("deployments.llama-chat.model.version") < md.index("VAR_00")
    assert "<details><summary>Pod restarts (40)</summary>" in md
    short = diff_markdown(result, result.blocking(False), stack="prod", limit=2000)
    assert len(short) <= 2300
    assert f"**{summary_line(result.summary)}**" in short
    assert "output trimmed" in short
    assert short.count("<details>") == short.count("</details>")


def _rows(stack: str, edits: dict[str, Any]) -> list[tuple[str, Any, Any, str]]:
    text = base = _text(stack)
    for path, value in edits.items():
        text = set_value(text, path, value)
    result = diff_configs(parse_stack(read_stack_text(base)), parse_stack(read_stack_text(text)))
    return [(c.path, c.before, c.after, c.effect.value) for c in result.changes]


@pytest.mark.parametrize(
    ("stack", "edits", "expected"),
    [
        # A block that takes no effect is one row, not one per default it carries.
        (
            "dev",
            {"deployments.bert-sentiment.autoscaling": {"enabled": False}},
            [("deployments.bert-sentiment.autoscaling", None, "disabled", "no change")],
        ),
        # A block added with its defaults is one row (it was one per default: ~26).
        (
            "dev",
            {"deployments.bert-sentiment.monitoring": {"enabled": True}},
            [("deployments.bert-sentiment.monitoring", None, "defaults", "in-place")],
        ),
        # Turning production's autoscaler off is a real change: still one row, its effect kept.
        (
            "prod",
            {"deployments.llama-chat.autoscaling": {"enabled": False}},
            [("deployments.llama-chat.autoscaling", "enabled", "disabled", "in-place")],
        ),
    ],
    ids=["disabled-block", "default-block", "disabled-in-production"],
)
def test_blocks_of_defaults_are_one_row(stack: str, edits: dict, expected: list) -> None:
    assert _rows(stack, edits) == expected


def test_a_default_that_changes_with_the_environment_is_a_row() -> None:
    """dev against prod: monitoring is on by default in production, off in development."""
    result = diff_configs(
        parse_stack(read_stack_text(_text("dev"))), parse_stack(read_stack_text(_text("prod")))
    )
    rows = {c.path: c for c in result.changes}
    monitoring = rows["deployments.bert-sentiment.monitoring"]
    assert (monitoring.before, monitoring.after) == ("disabled", "enabled")
    assert monitoring.reason.startswith("the environment's default (development -> production)")
    assert monitoring.effect is not Effect.NONE
