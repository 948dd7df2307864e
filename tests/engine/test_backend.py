"""The backend a run uses: a forced `file://` backend is created when missing (the demo on a
fresh clone failed with "unable to open state directory"); and the suite's runs never use the
backend or the Pulumi home of the machine they run on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from servestack.engine import Engine, make_project
from servestack.engine.project import DEV_STACK
from tests import REPO
from tests.engine.conftest import deploy


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


def test_an_engine_run_of_the_suite_uses_the_projects_own_backend(
    engine_ready: Path, tmp_path: Path
) -> None:
    """A stack up and destroyed the way the engine tier does it (tests/engine/conftest
    `deploy`): its state is in the project-local backend under tmp_path, nowhere else."""
    d = deploy(tmp_path, "dev", DEV_STACK)
    try:
        local = tmp_path / "state" / "backend"
        assert d.engine.backend == f"file://{local} (project-local)"
        assert (local / ".pulumi" / "stacks" / "servestack" / "dev.json").is_file()
    finally:
        d.engine.stack(d.project, d.stack).destroy(on_output=lambda _: None)


def test_the_suite_leaves_the_machines_pulumi_login_alone(
    engine_ready: Path, tmp_path: Path
) -> None:
    """A machine logged in to a backend of its own (`pulumi login file://...`): an engine
    run of the suite, in a pytest process of its own started the way `make test` starts it,
    writes nothing there and leaves the login as it was.

    The login is in a throw-away HOME, which that pytest gets, with PULUMI_HOME naming the
    same `.pulumi` (our CLI build finds its home in /etc/passwd, not $HOME: without it, a
    regression would have the CLI write into the real ~/.pulumi instead of the trap)."""
    home = tmp_path / "home"
    logged_in = tmp_path / "logged-in-backend"
    logged_in.mkdir()
    credentials = home / ".pulumi" / "credentials.json"
    credentials.parent.mkdir(parents=True)
    url = f"file://{logged_in}"
    credentials.write_text(
        json.dumps({"current": url, "accessTokens": {url: ""}, "accounts": {}}, indent=4)
    )
    before = credentials.read_bytes()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env |= {"HOME": str(home), "PULUMI_HOME": str(home / ".pulumi")}

    # The login is real: servestack run by a user on this machine honours it ...
    seen = subprocess.run(
        [
            sys.executable,
            "-c",
            "from pathlib import Path; from servestack.engine import Engine;"
            "print(Engine(Path('unused')).backend)",
        ],
        env={**env, "PULUMI_HOME": ""},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert seen.stdout.strip() == f"{url} (pulumi login)"  # from $HOME/.pulumi
    # ... and so does the CLI.
    whoami = subprocess.run(
        [str(engine_ready / "pulumi"), "whoami", "--verbose", "--non-interactive"],
        env={**env, "PULUMI_SKIP_UPDATE_CHECK": "true"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert whoami.returncode == 0 and f"Backend URL: {url}" in whoami.stdout, whoami
    listing = sorted(p.relative_to(home).as_posix() for p in home.rglob("*"))
    # (the CLI's login wrote the backend's own metadata: no stack, no project)
    backend = sorted(p.relative_to(logged_in).as_posix() for p in logged_in.rglob("*"))
    assert not [p for p in backend if "stacks" in p or "servestack" in p], backend

    # The suite on that machine.
    test = "tests/engine/test_backend.py::" + (
        "test_an_engine_run_of_the_suite_uses_the_projects_own_backend"
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test]
        + [f"--basetemp={tmp_path / 'suite'}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout + run.stderr
    assert sorted(p.relative_to(logged_in).as_posix() for p in logged_in.rglob("*")) == backend
    assert credentials.read_bytes() == before
    assert sorted(p.relative_to(home).as_posix() for p in home.rglob("*")) == listing


def test_an_engine_with_a_home_of_its_own_writes_nothing_in_the_users(
    engine_ready: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make demo`'s engine (a forced file backend, our build: a private PULUMI_HOME) leaves
    the user's Pulumi home alone: the Automation API's `pulumi version` probe included,
    which upstream runs in this process's environment (and the CLI logs every run)."""
    users = tmp_path / "users-pulumi-home"
    users.mkdir()
    monkeypatch.setenv("PULUMI_HOME", str(users))
    backend = f"file://{tmp_path / 'backend'}"
    engine = Engine(tmp_path / "state", passphrase="x", backend_url=backend)
    project = make_project(tmp_path / "project", stacks={"dev": DEV_STACK})
    stack = engine.stack(project, "dev")
    assert stack.workspace.pulumi_version == engine.version().removeprefix("v")
    assert sorted(users.rglob("*")) == []
    assert list((tmp_path / "state" / "home").iterdir())  # the CLI's own home was used
