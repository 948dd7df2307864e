"""An update without an event log reads its resource changes from the stack's history, and
only from its own entry (servestack.engine.runner.Engine.changes_of)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from servestack.engine import runner


def _engine(monkeypatch: pytest.MonkeyPatch, stdout: str, code: int = 0) -> runner.Engine:
    engine = runner.Engine(Path("/nonexistent"))
    asked: list[tuple[str, ...]] = []

    def cli(_project: Path, *args: str, check: bool = True, **_: Any) -> Any:
        assert not check  # a history it cannot read does not fail an update that succeeded
        asked.append(args)
        return subprocess.CompletedProcess(["pulumi", *args], code, stdout, "")

    monkeypatch.setattr(engine, "cli", cli)
    monkeypatch.setattr(engine, "asked", asked, raising=False)
    return engine


def _history(message: str, changes: Any) -> str:
    return json.dumps([{"kind": "update", "message": message, "resourceChanges": changes}])


def test_the_last_entry_with_the_updates_message_gives_its_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = _engine(monkeypatch, _history("servestack update 1", {"update": 1, "same": 9}))
    assert engine.changes_of(Path("."), "prod", "servestack update 1") == {"update": 1, "same": 9}
    (args,) = engine.asked  # type: ignore[attr-defined]
    assert args[:2] == ("stack", "history") and "--page-size" in args and "prod" in args


@pytest.mark.parametrize(
    ("stdout", "code"),
    [
        (_history("servestack update 2", {"update": 1}), 0),  # another update came in between
        (_history("servestack update 1", "garbage"), 0),
        ("[]", 0),
        ("not json", 0),
        ("", 255),
    ],
)
def test_anything_else_is_no_changes_known(
    monkeypatch: pytest.MonkeyPatch, stdout: str, code: int
) -> None:
    engine = _engine(monkeypatch, stdout, code)
    assert engine.changes_of(Path("."), "prod", "servestack update 1") == {}
