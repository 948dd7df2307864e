"""The package as users see it: one path dialect, lazy imports, project and engine discovery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from servestack.config.errors import ConfigError
from servestack.config.paths import FieldPath, deployment, node_pool
from servestack.engine import discovery, runner
from servestack.engine import project as proj
from tests import REPO


@pytest.mark.parametrize(
    ("text", "generic", "item", "rest"),
    [
        (
            "deployments.bert.resources.cpu",
            "deployments.<name>.resources.cpu",
            "bert",
            "resources.cpu",
        ),
        ("nodePools.a100.gpu.type", "nodePools.<name>.gpu.type", "a100", "gpu.type"),
        ("cluster.name", "cluster.name", None, "cluster.name"),
        ("deployments.<name>.replicas", "deployments.<name>.replicas", None, "replicas"),
    ],
)
def test_field_path_forms(text: str, generic: str, item: str | None, rest: str) -> None:
    path = FieldPath.parse(text)
    assert str(path) == text
    assert str(path.generic()) == generic
    assert path.item_name == item
    assert path.rest == rest


def test_message_helpers_use_the_dialect() -> None:
    assert (
        deployment("bert", "autoscaling.minReplicas") == "deployments.bert.autoscaling.minReplicas"
    )
    assert node_pool("a100") == "nodePools.a100"
    assert str(FieldPath.parse("deployments.<name>.env").named("x")) == "deployments.x.env"


def test_review_commands_never_import_pulumi() -> None:
    code = (
        "import sys\n"
        "from servestack.cli import app, main\n"
        "import servestack.review.diff, servestack.config.validation, servestack.ops.live\n"
        "roots = ('pulumi', 'pulumi_kubernetes')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in roots))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out.replace("'", '"')) == []


def test_find_project_looks_upward_and_reads_stack_config_dir(tmp_path: Path) -> None:
    root = tmp_path / "team"
    (root / "config").mkdir(parents=True)
    (root / "Pulumi.yaml").write_text("name: team\nruntime: python\nstackConfigDir: config\n")
    deep = root / "a" / "b"
    deep.mkdir(parents=True)
    found = proj.find_project(deep)
    assert found.root == root.resolve()
    assert found.stack_file("dev") == (root / "config" / "Pulumi.dev.yaml").resolve()


def test_no_project_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no Pulumi.yaml in .* `servestack init DIR`"):
        proj.find_project(tmp_path)


def test_init_writes_a_valid_project_and_refuses_a_non_empty_dir(tmp_path: Path) -> None:
    from servestack.config.validation import load_stack_config

    created = proj.init_project(tmp_path / "svc")
    files = sorted(p.name for p in created.root.rglob("*") if p.is_file())
    assert files == [
        ".gitignore",
        "Pulumi.dev.yaml",
        "Pulumi.yaml",
        "__main__.py",
        "requirements.txt",
    ]
    assert "servestack" in (created.root / "requirements.txt").read_text()
    config = load_stack_config(created.stack_file("dev"))
    assert [d.name for d in config.deployments] == ["sentiment-api"]
    with pytest.raises(ConfigError, match="is not empty"):
        proj.init_project(tmp_path / "svc")


def _bin(dir_: Path, *names: str) -> Path:
    dir_.mkdir(parents=True, exist_ok=True)
    for name in names:
        exe = dir_ / name
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    return dir_


def test_engine_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configured = _bin(tmp_path / "configured", *discovery.ENGINE_BINARIES)
    on_path = _bin(tmp_path / "user-bin", "pulumi")
    monkeypatch.setenv("SERVESTACK_ENGINE_BIN", str(configured))
    monkeypatch.setenv("PATH", str(on_path))
    first = discovery.find_engine()
    assert (first.bin_dir, first.source, first.hermetic) == (
        configured,
        "SERVESTACK_ENGINE_BIN",
        True,
    )
    monkeypatch.delenv("SERVESTACK_ENGINE_BIN")
    second = discovery.find_engine()
    assert (second.bin_dir, second.source, second.hermetic) == (on_path, "PATH", False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(discovery.EngineMissing, match="no Pulumi engine found"):
        discovery.find_engine()


def test_incomplete_engine_dir_names_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVESTACK_ENGINE_BIN", str(_bin(tmp_path / "b", "pulumi")))
    with pytest.raises(discovery.EngineMissing, match="lacks pulumi-language-python"):
        discovery.find_engine()


def test_backend_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path / "home"))
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "Pulumi.yaml").write_text("name: p\nruntime: python\n")
    engine = runner.Engine(tmp_path / "state", project_dir=tmp_path / "p")
    assert engine.backend == f"file://{tmp_path / 'state' / 'backend'} (project-local)"
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "credentials.json").write_text(json.dumps({"current": "https://x.test"}))
    assert engine.backend == "https://x.test (pulumi login)"
    (tmp_path / "p" / "Pulumi.yaml").write_text(
        "name: p\nruntime: python\nbackend:\n  url: s3://bucket\n"
    )
    assert engine.backend == "s3://bucket (Pulumi.yaml backend.url)"
    monkeypatch.setenv("PULUMI_BACKEND_URL", "file:///srv/state")
    assert engine.backend == "file:///srv/state (PULUMI_BACKEND_URL)"


def test_the_package_does_not_know_the_checkout() -> None:
    """The engine and the local cluster are handed over (SERVESTACK_ENGINE_BIN, the harness):
    nothing in the package looks for the repository's build scripts or tools."""
    assert os.path.samefile(Path(discovery.__file__).parents[1], REPO / "components")
    for source in sorted((REPO / "components").rglob("*.py")):
        text = source.read_text(encoding="utf-8")
        for needle in ("build-engine.sh", "tools/cluster.py", '".engine"', "harness"):
            assert needle not in text, f"{source.relative_to(REPO)} names {needle}"
