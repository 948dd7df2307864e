"""The backend a run uses: a forced `file://` backend is created when missing (the demo on a
fresh clone failed with "unable to open state directory")."""

from __future__ import annotations

from pathlib import Path

import pytest

from servestack.engine import Engine


def test_a_forced_file_backend_is_created(engine_ready: Path, tmp_path: Path) -> None:
    backend = tmp_path / "state" / "backend"
    engine = Engine(tmp_path / "state", backend_url=f"file://{backend}")
    assert engine.env()["PULUMI_BACKEND_URL"] == f"file://{backend}"
    assert backend.is_dir()
    # And the engine accepts it: a stack can be listed there.
    engine.cli(tmp_path, "stack", "ls", "--all")


def test_a_file_backend_named_by_the_environment_runs_hermetically(
    engine_ready: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PULUMI_BACKEND_URL=file://... (how the demo hands its backend to `servestack`): the
    directory is created, and our own engine build keeps its private home, where its
    plugins are, instead of the user's ~/.pulumi."""
    backend = tmp_path / "named" / "backend"
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{backend}")
    engine = Engine(tmp_path / "state")
    env = engine.env()
    assert backend.is_dir()
    assert engine.location.hermetic, "the engine tier runs our own build"
    assert env["PULUMI_HOME"] == str(tmp_path / "state" / "home")
    assert env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] == "true"
    engine.cli(tmp_path, "stack", "ls", "--all")
