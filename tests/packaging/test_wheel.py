"""The wheel, as a team installs it: built from this checkout, installed into a new venv
outside the repository, used from a project that `servestack init` created there.

Nothing here imports the checkout: every command runs the installed `servestack` and the
engine is found the way a user's would be, as a `pulumi` on PATH.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests import REPO

pytestmark = [pytest.mark.engine]

PASSPHRASE = "packaging-test-passphrase"


def _run(
    args: list[str], cwd: Path, env: dict[str, str], check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        args, cwd=cwd, env=env, text=True, capture_output=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The wheel built and installed into `<tmp>/venv`, and `servestack init` run."""
    tmp = tmp_path_factory.mktemp("packaging")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), "."],
        REPO,
        env,
    )
    (wheel,) = (tmp / "dist").glob("servestack-*.whl")
    # One venv outside the project (as a team's CI image or a developer's venv would be).
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp, env)
    pip_args = ["-q", "--no-compile", "-c", str(REPO / "tools" / "constraints.txt"), str(wheel)]
    _run([str(venv / "bin" / "pip"), "install", *pip_args], tmp, env)
    work = tmp / "work"
    work.mkdir()
    init = [str(venv / "bin" / "servestack"), "init", "proj", "--virtualenv", str(venv)]
    _run(init, work, env)
    project = work / "proj"
    return {"project": project, "venv": venv, "wheel": wheel, "tmp": tmp}


def _user_env(installed: dict[str, Path]) -> dict[str, str]:
    """A user's shell: their venv and the Pulumi CLI on PATH, a file backend they chose."""
    tmp = installed["tmp"]
    engine = Path(os.environ.get("SERVESTACK_ENGINE_BIN", REPO / ".engine" / "bin"))
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SERVESTACK_ENGINE_BIN", "PULUMI_BACKEND_URL", "VIRTUAL_ENV")
    }
    (tmp / "backend").mkdir(exist_ok=True)
    (tmp / "home").mkdir(exist_ok=True)
    env.update(
        PATH=os.pathsep.join([str(installed["venv"] / "bin"), str(engine), env.get("PATH", "")]),
        PULUMI_BACKEND_URL=f"file://{tmp / 'backend'}",
        PULUMI_HOME=str(tmp / "home"),
        PULUMI_CONFIG_PASSPHRASE=PASSPHRASE,
        PULUMI_SKIP_UPDATE_CHECK="true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
    )
    return env


def test_the_wheel_holds_only_the_package(installed: dict[str, Path]) -> None:
    """Users run servestack; the demo and the development harness stay in the checkout."""
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"servestack"}, sorted(tops)
    harness = [
        n for n in names if n.startswith(("servestack/demo/", "servestack/poll.py", "harness/"))
    ]
    assert harness == []


def test_installed_package_is_not_the_checkout(installed: dict[str, Path]) -> None:
    venv_python = installed["venv"] / "bin" / "python"
    out = _run(
        [str(venv_python), "-c", "import servestack, sys; print(servestack.__file__)"],
        installed["project"],
        {**os.environ, "PYTHONPATH": ""},
    ).stdout.strip()
    assert str(installed["venv"]) in out and str(REPO) not in out
    files = sorted(p.name for p in installed["project"].iterdir())
    assert files == [
        ".gitignore",
        "Pulumi.yaml",
        "__main__.py",
        "requirements.txt",
        "stacks",
    ]
    assert "servestack" in (installed["project"] / "requirements.txt").read_text()


def test_requirements_install_servestack_in_the_project_venv(installed: dict[str, Path]) -> None:
    """`venv/bin/pip install -r requirements.txt`, as `servestack init` says: servestack
    from the wheel it was installed from (servestack is on no index), the Pulumi SDKs at
    the engine's versions (from the index)."""
    project, tmp = installed["project"], installed["tmp"]
    lines = (project / "requirements.txt").read_text().splitlines()
    assert f"servestack @ {installed['wheel'].as_uri()}" in lines
    assert {"pulumi==3.259.0", "pulumi-kubernetes==4.25.0"} <= set(lines)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    venv = tmp / "project-venv"
    _run([sys.executable, "-m", "venv", str(venv)], project, env)
    pip = [str(venv / "bin" / "pip"), "install", "-q", "--no-compile", "-r", "requirements.txt"]
    _run(pip, project, env, timeout=1200)
    versions = _run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "from importlib.metadata import version as v; "
            "print(v('servestack'), v('pulumi'), v('pulumi-kubernetes'))",
        ],
        tmp,
        env,
    ).stdout.split()
    wheel_version = installed["wheel"].name.split("-")[1]
    assert versions == [wheel_version, "3.259.0", "4.25.0"]


def test_init_project_goes_up_and_the_tools_work_there(installed: dict[str, Path]) -> None:
    project, env = installed["project"], _user_env(installed)
    servestack = str(installed["venv"] / "bin" / "servestack")
    _run(["pulumi", "stack", "init", "dev", "--non-interactive"], project, env)
    up = _run(["pulumi", "up", "--yes", "--stack", "dev", "--non-interactive"], project, env)
    assert "created" in up.stdout
    rendered = sorted(p.name for p in (project / "out" / "dev").rglob("*.yaml"))
    assert "apps_v1-deployment-models-sentiment-api.yaml" in rendered, rendered

    # `python -m servestack` is the CLI too.
    python = str(installed["venv"] / "bin" / "python")
    assert _run([python, "-m", "servestack", "--help"], project, env).stdout.count("diff") >= 1

    stack_file = project / "stacks" / "Pulumi.dev.yaml"
    edited = project / "edited.yaml"
    edited.write_text(stack_file.read_text().replace("cpu: 500m", "cpu: '1'"))
    diff = _run([servestack, "diff", str(stack_file), str(edited), "-f", "json"], project, env)
    (change,) = json.loads(diff.stdout)["changes"]
    assert change["path"] == "deployments.sentiment-api.resources.cpu"
    assert change["effect"] == "restart"

    # explain on a real preview of that edit, from a subdirectory (-C finds nothing to do
    # with it: the stack file is named).
    original = stack_file.read_text()
    stack_file.write_text(edited.read_text())
    preview = _run(
        ["pulumi", "preview", "--json", "--diff", "--stack", "dev", "--non-interactive"],
        project,
        env,
    )
    stack_file.write_text(original)
    (project / "preview.json").write_text(preview.stdout)
    explained = _run(
        [servestack, "explain", "preview.json", "--stack-file", str(edited), "-f", "json"],
        project,
        env,
    )
    steps = [s for s in json.loads(explained.stdout)["steps"] if s["kind"] == "Deployment"]
    assert steps and steps[0]["fields"] == ["deployments.sentiment-api.resources.cpu"]

    # status and scale find the project from a subdirectory, and use the user's backend.
    sub = project / "stacks"
    status = _run([servestack, "status", "dev", "sentiment-api"], sub, env)
    assert "sentiment-api" in status.stdout and f"file://{installed['tmp'] / 'backend'}" in (
        status.stdout.replace("\n", "")
    )
    scale = _run(
        [servestack, "-C", str(project), "scale", "dev", "sentiment-api", "--replicas", "3"],
        installed["tmp"],
        env,
    )
    assert "succeeded" in scale.stdout, scale.stdout + scale.stderr
    assert "replicas: 3" in stack_file.read_text()
    rendered_file = "apps_v1-deployment-models-sentiment-api.yaml"
    manifest = next((project / "out" / "dev").rglob(rendered_file)).read_text()
    assert "replicas: 3" in manifest
