"""The hostile-config corpus: every invalid config, through `servestack diff` and through
the stack program, gives a message naming the path and what is allowed, a non-zero exit,
no traceback and no registered resource."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from typer.testing import CliRunner

from servestack.cli import app
from servestack.config.stackfile import set_value
from servestack.program.stack import main
from tests.mocks import run_program

REPO = Path(__file__).resolve().parents[2]
CASES: list[dict[str, Any]] = yaml.safe_load((Path(__file__).parent / "corpus.yaml").read_text())


def edited_text(case: dict[str, Any]) -> str:
    text = (REPO / "stacks" / f"Pulumi.{case['stack']}.yaml").read_text()
    for path, value in (case.get("set") or {}).items():
        text = set_value(text, path, value)
    doc = yaml.safe_load(text)
    for key, value in (case.get("raw") or {}).items():
        doc["config"][f"servestack:{key}"] = value
    return yaml.safe_dump(doc, sort_keys=False) if case.get("raw") else text


def expected_line(case: dict[str, Any], prefix: str, lines: list[str]) -> None:
    head = f"{prefix}{case['path']}: " if case["path"] else prefix
    hits = [ln for ln in lines if ln.startswith(head) and case["says"] in ln]
    assert hits, f"no line starting {head!r} containing {case['says']!r} in:\n" + "\n".join(lines)


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len({c["id"] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["id"])
def test_diff_refuses_with_a_clear_line(case: dict[str, Any], tmp_path: Path) -> None:
    old = REPO / "stacks" / f"Pulumi.{case['stack']}.yaml"
    new = tmp_path / f"Pulumi.{case['stack']}.yaml"
    new.write_text(edited_text(case))
    res = CliRunner().invoke(app, ["diff", str(old), str(new)])
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    expected_line(case, f"{new}: ", res.stderr.splitlines())


def _engine_config(text: str) -> tuple[dict[str, str], list[str]]:
    """Config as the engine hands it to the program: strings, objects as JSON. Values under
    `{secure: ...}` would arrive decrypted and listed as secret keys; plain ones do not."""
    config = yaml.safe_load(text)["config"]
    out = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    return out, []


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["id"])
def test_program_refuses_before_registering_anything(
    case: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, secret_keys = _engine_config(edited_text(case))
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(config))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(secret_keys))
    caught: list[BaseException] = []

    def program() -> None:
        try:
            main()
        except pulumi.RunError as err:
            caught.append(err)

    rec = run_program(program, stack=case["stack"])
    assert rec.resources == [], "a resource was registered before validation failed"
    assert len(caught) == 1, "the program must fail with a RunError"
    lines = str(caught[0]).splitlines()
    assert lines[0] == "invalid servestack config:"
    expected_line(case, f"stack {case['stack']}: ", lines[1:])
