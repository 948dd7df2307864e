"""Run the real Pulumi engine hermetically: our binaries, a local file backend, no cluster.

Used by `make demo`, the engine test tier and the operations API. The engine binaries come
from `make engine` (`.engine/bin/`), or from another directory given as
``SERVESTACK_ENGINE_BIN`` (for example an installed Pulumi: its directory must hold
`pulumi`, `pulumi-language-python` and `pulumi-resource-kubernetes`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi import automation as auto

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PASSPHRASE_ENV = "PULUMI_CONFIG_PASSPHRASE"


class EngineMissing(RuntimeError):
    """The engine binaries are not there; the message says how to build them."""


def engine_bin() -> Path:
    configured = os.environ.get("SERVESTACK_ENGINE_BIN")
    path = Path(configured) if configured else REPO / ".engine" / "bin"
    if not (path / "pulumi").exists():
        raise EngineMissing(
            f"no Pulumi engine in {path}: run `make engine` first "
            "(or set SERVESTACK_ENGINE_BIN to a directory with pulumi, "
            "pulumi-language-python and pulumi-resource-kubernetes)"
        )
    return path


@dataclass
class Engine:
    """A hermetic engine environment rooted at ``state_dir``."""

    state_dir: Path
    passphrase: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    #: Use the backend the user is logged in to (PULUMI_BACKEND_URL) when one is set.
    use_login: bool = False

    @property
    def bin_dir(self) -> Path:
        return engine_bin()

    def env(self) -> dict[str, str]:
        home = self.state_dir / "home"
        backend = self.state_dir / "backend"
        home.mkdir(parents=True, exist_ok=True)
        backend.mkdir(parents=True, exist_ok=True)
        venv_bin = str(Path(sys.executable).parent)
        env = {
            "PATH": os.pathsep.join([str(self.bin_dir), venv_bin, os.environ.get("PATH", "")]),
            "PULUMI_HOME": str(home),
            "PULUMI_BACKEND_URL": (os.environ.get("PULUMI_BACKEND_URL") if self.use_login else None)
            or f"file://{backend}",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
            "PULUMI_SKIP_CONFIRMATIONS": "true",
            # Render mode must never read a cluster's credentials (and the provider refuses a
            # kubeconfig next to renderYamlToDirectory): an empty value hides the user's.
            "KUBECONFIG": "",
        }
        passphrase = self.passphrase or os.environ.get(DEFAULT_PASSPHRASE_ENV)
        if passphrase is not None:
            env[DEFAULT_PASSPHRASE_ENV] = passphrase
        env.update(self.extra_env)
        return env

    def command(self) -> auto.PulumiCommand:
        return auto.PulumiCommand(root=str(self.bin_dir.parent), skip_version_check=True)

    def stack(self, project_dir: Path, stack: str) -> auto.Stack:
        """Create or select a stack of the project in ``project_dir``."""
        opts = auto.LocalWorkspaceOptions(
            work_dir=str(project_dir),
            pulumi_command=self.command(),
            env_vars=self.env(),
            pulumi_home=str(self.state_dir / "home"),
            secrets_provider="passphrase",
        )
        return auto.create_or_select_stack(stack_name=stack, work_dir=str(project_dir), opts=opts)

    def cli(
        self, project_dir: Path, *args: str, check: bool = True, timeout: float = 900
    ) -> subprocess.CompletedProcess[str]:
        """Run the `pulumi` CLI itself (for output the Automation API does not expose)."""
        env = {**os.environ, **self.env()}
        return subprocess.run(
            [str(self.bin_dir / "pulumi"), *args, "--non-interactive"],
            cwd=project_dir,
            env=env,
            text=True,
            capture_output=True,
            check=check,
            timeout=timeout,
        )

    def preview_json(self, project_dir: Path, stack: str) -> dict[str, Any]:
        """`pulumi preview --json`: every step with its detailedDiff and replaceReasons."""
        proc = self.cli(project_dir, "preview", "--json", "--diff", "--stack", stack, check=False)
        try:
            data: dict[str, Any] = json.loads(proc.stdout)
        except json.JSONDecodeError:
            raise RuntimeError(f"pulumi preview failed:\n{proc.stdout}\n{proc.stderr}") from None
        data["_exitCode"] = proc.returncode
        data["_stderr"] = proc.stderr
        return data

    def version(self) -> str:
        return self.cli(REPO, "version").stdout.strip()


def make_project(
    dest: Path, *, stacks: dict[str, str], program_dir: Path = REPO, name: str = "servestack"
) -> Path:
    """A scratch copy of a Pulumi project that uses this repository's virtualenv.

    The engine writes stack state and encryption salts into its stack files; working on
    a copy keeps the repository's stack files untouched.
    """
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "stacks").mkdir(exist_ok=True)
    venv = Path(sys.prefix)
    (dest / "Pulumi.yaml").write_text(
        f"name: {name}\n"
        "runtime:\n  name: python\n  options:\n    toolchain: pip\n"
        f"    virtualenv: {venv}\n"
        "stackConfigDir: stacks\n",
        encoding="utf-8",
    )
    shutil.copy(program_dir / "__main__.py", dest / "__main__.py")
    for stack, text in stacks.items():
        (dest / "stacks" / f"Pulumi.{stack}.yaml").write_text(text, encoding="utf-8")
    return dest
