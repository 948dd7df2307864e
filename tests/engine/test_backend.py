"""The backend a run uses: a forced `file://` backend is created when missing (the demo on a
fresh clone failed with "unable to open state directory")."""

from __future__ import annotations

from pathlib import Path

from servestack.engine import Engine


def test_a_forced_file_backend_is_created(engine_ready: Path, tmp_path: Path) -> None:
    backend = tmp_path / "state" / "backend"
    engine = Engine(tmp_path / "state", backend_url=f"file://{backend}")
    assert engine.env()["PULUMI_BACKEND_URL"] == f"file://{backend}"
    assert backend.is_dir()
    # And the engine accepts it: a stack can be listed there.
    engine.cli(tmp_path, "stack", "ls", "--all")
