"""`servestack explain` on real previews: the engine tier saved them (with the stack files
they were made from) as fixtures; regenerate with

    SERVESTACK_SAVE_REVIEW_FIXTURES=1 .venv/bin/pytest tests/engine/test_edit_matrix.py

Each fixture is one edit of the engine edit matrix. With the stack file and the base,
`explain` must name exactly the edited field for every planned step, with the effect the
table gives it, and the preview as a whole must have that effect.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from servestack.cli import app
from servestack.config.models import StackConfig
from servestack.config.validation import parse_stack, read_stack_text
from servestack.contract.effects import Effect
from servestack.review import report
from servestack.review.explain import explain_preview, overall_effect
from tests.engine.matrix import EDITS

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@dataclass(frozen=True)
class Saved:
    name: str
    path: str
    effect: str
    base: str
    edited: str
    preview: dict[str, Any]

    @property
    def old(self) -> StackConfig:
        return parse_stack(read_stack_text(self.base))

    @property
    def new(self) -> StackConfig:
        return parse_stack(read_stack_text(self.edited))


def _load(path: Path) -> Saved:
    data = json.loads(path.read_text(encoding="utf-8"))
    return Saved(
        path.name,
        data["edit"]["path"],
        data["effect"],
        data["base"],
        data["edited"],
        data["preview"],
    )


SAVED = [_load(p) for p in sorted(FIXTURES.glob("*.json"))]
APPLIED = [s for s in SAVED if s.effect not in ("forbidden", "no change")]
#: Edits nothing deployed reads: the real engine planned no step.
UNREAD = [s for s in SAVED if s.effect == "no change"]


def test_every_matrix_edit_has_a_saved_preview() -> None:
    assert sorted(e.fixture for e in EDITS) == [s.name for s in SAVED]


@pytest.mark.parametrize("saved", APPLIED, ids=lambda s: s.name)
def test_explain_names_exactly_the_edited_field(saved: Saved) -> None:
    steps = explain_preview(saved.preview, saved.new, saved.old)
    assert steps
    traced = [(s.kind, s.name, s.fields) for s in steps if s.kind != "Stack"]
    assert traced == [(k, n, [saved.path]) for k, n, _ in traced]
    assert {s.predicted for s in steps if s.predicted} == {Effect(saved.effect)}
    assert [s.to_json() for s in steps if s.unexpected] == []
    assert overall_effect(steps) is Effect(saved.effect)


def _related(path: str, cause: str) -> bool:
    """The cause is the edited field, a block around it, or a field of the block it sets."""
    return path == cause or path.startswith(cause + ".") or cause.startswith(path + ".")


@pytest.mark.parametrize("saved", APPLIED, ids=lambda s: s.name)
def test_without_the_base_the_edited_field_is_among_the_causes(saved: Saved) -> None:
    steps = explain_preview(saved.preview, saved.new)
    traced = {f for s in steps for f in s.fields}
    assert any(_related(saved.path, f) for f in traced), traced
    assert overall_effect(steps) is Effect(saved.effect)


@pytest.mark.parametrize("saved", APPLIED, ids=lambda s: s.name)
def test_without_any_stack_file_the_samples_trace_the_field(saved: Saved) -> None:
    """No config at all: the sample stacks' record names candidates, the edit among them
    (renames and moves are exempt: their cause is the new name, not a property)."""
    steps = explain_preview(saved.preview)
    traced = {f for s in steps for f in s.fields}
    assert any(_related(saved.path, f) for f in traced), traced


@pytest.mark.parametrize("saved", UNREAD, ids=lambda s: s.name)
def test_an_unread_edit_plans_nothing_to_explain(saved: Saved) -> None:
    assert [s.to_json() for s in explain_preview(saved.preview, saved.new, saved.old)] == []
    assert [s.to_json() for s in explain_preview(saved.preview)] == []


def test_the_matrix_has_unread_edits() -> None:
    assert len(UNREAD) >= 2


def test_a_refused_edit_plans_nothing_to_explain() -> None:
    (refused,) = [s for s in SAVED if s.effect == "forbidden"]
    assert explain_preview(refused.preview, refused.new, refused.old) == []


WHISPER = "deployments.whisper-batch.autoscaling.targetCpuUtilization"


@pytest.mark.parametrize("with_base", [True, False])
def test_a_queue_workers_cpu_target_is_one_in_place_scaler_update(with_base: bool) -> None:
    (saved,) = [s for s in SAVED if s.path == WHISPER]
    steps = explain_preview(saved.preview, saved.new, saved.old if with_base else None)
    assert [(s.op, s.kind, s.name, s.fields, s.observed, s.predicted) for s in steps] == [
        ("update", "ScaledObject", "whisper-batch", [WHISPER], Effect.IN_PLACE, Effect.IN_PLACE)
    ]


def test_cli_json_contract_on_a_real_preview(tmp_path: Path) -> None:
    (saved,) = [s for s in SAVED if s.path == WHISPER]
    files = {}
    for name, text in (("base.yaml", saved.base), ("edited.yaml", saved.edited)):
        files[name] = tmp_path / name
        files[name].write_text(text, encoding="utf-8")
    preview = tmp_path / "preview.json"
    preview.write_text(json.dumps(saved.preview), encoding="utf-8")
    result = CliRunner().invoke(
        app,
        [
            "explain",
            str(preview),
            "--stack-file",
            str(files["edited.yaml"]),
            "--base-stack-file",
            str(files["base.yaml"]),
            "-f",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    (step,) = data["steps"]
    assert sorted(step) == sorted(
        [
            "urn",
            "op",
            "kind",
            "name",
            "component",
            "effect",
            "fields",
            "predicted",
            "unexpected",
            "replaceReasons",
            "properties",
            "candidates",
        ]
    )
    assert (step["effect"], step["predicted"], step["fields"]) == (
        "in-place",
        "in-place",
        [WHISPER],
    )
    assert step["component"] == "deployments.whisper-batch"
    assert step["properties"] == ["spec.triggers[1].metadata.value"]
    assert data["summary"] == {
        "no change": 0,
        "in-place": 1,
        "restart": 0,
        "replace": 0,
        "forbidden": 0,
        "create": 0,
        "delete": 0,
        "unexpected": 0,
    }


ENV_EDIT = "deployments.bert-sentiment.env.LOG_LEVEL"


def test_without_a_stack_file_candidates_are_one_of_and_never_a_forbidden_cause() -> None:
    """A forbidden edit never reaches the engine: it is not what the table says of a step
    the engine planned; the candidates are shown as one of them."""
    (saved,) = [s for s in SAVED if s.path == ENV_EDIT]
    steps = explain_preview(saved.preview)
    assert steps and all(s.candidates for s in steps)
    assert {s.says for s in steps} == {"restart or replace"}
    text = report.explain_text(steps, color=False) + report.explain_markdown(steps)
    assert "forbidden" not in text
    assert "| one of 10 fields of deployments.bert-sentiment: env, model.id, " in text


@pytest.mark.parametrize("saved", APPLIED, ids=lambda s: s.name)
@pytest.mark.parametrize("with_stack", [True, False])
def test_the_summary_line_counts_what_the_table_shows(saved: Saved, with_stack: bool) -> None:
    steps = explain_preview(saved.preview, saved.new if with_stack else None)
    ops = Counter(s.op for s in steps)
    says = Counter(s.says for s in steps)
    line = report.explain_summary_line(steps)
    engine, table, unexpected = line.split(" · ")

    def counts(part: str, label: str) -> dict[str, int]:
        assert part.startswith(label)
        pairs = (p.rsplit(" ", 1) for p in part[len(label) :].split(", "))
        return {k: int(v) for k, v in pairs}

    assert counts(engine, "engine: ") == dict(ops)
    assert counts(table, "table says: ") == dict(says)
    assert unexpected == f"unexpected {sum(s.unexpected for s in steps)}"
    markdown = report.explain_markdown(steps)
    assert f"**{line}**" in markdown
    for s in steps:
        assert f"| {s.op} | `{s.kind}/{s.name}` |" in markdown and f"| {s.says} |" in markdown
