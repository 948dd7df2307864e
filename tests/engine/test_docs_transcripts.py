"""The docs' engine transcripts (operations on a dev stack that is up) are real runs:
`tools/transcripts.py --check --engine` regenerates them on the real engine and compares."""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_docs import transcripts


def test_engine_transcripts_are_current(engine_ready: Path) -> None:
    engine = [r.name for r in transcripts.RECIPES if r.engine]
    assert engine
    said: list[str] = []
    argv = ["--check", "--engine"]
    for name in engine:
        argv += ["--only", name]
    code = transcripts.main(argv, report=said.append)
    assert code == 0, "\n".join(said)
