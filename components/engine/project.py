"""Pulumi projects that use servestack: find the one around a directory, or create one.

A project is a directory with a `Pulumi.yaml`; its stack files live in the directory its
``stackConfigDir`` names (the project directory itself when unset), as Pulumi reads them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from servestack.config.errors import ConfigError, Problem

PROJECT_FILE = "Pulumi.yaml"
#: Where servestack keeps per-project state: operation records, locks, last-good configs.
STATE_DIR = ".servestack"
#: The project-local engine state (file backend and private Pulumi home).
ENGINE_STATE_DIR = ".pulumi-state"
#: The Pulumi SDKs at the versions of the engine servestack is built and tested with (CLI
#: v3.259.0, Kubernetes provider 4.25.0); a unit test checks them against the checkout's
#: pins. `servestack init` pins a new project to them.
ENGINE_SDKS = {"pulumi": "3.259.0", "pulumi-kubernetes": "4.25.0"}


@dataclass(frozen=True)
class Project:
    root: Path
    name: str
    stack_config_dir: Path

    @property
    def state(self) -> Path:
        return self.root / STATE_DIR

    @property
    def engine_state(self) -> Path:
        return self.root / ENGINE_STATE_DIR

    def stack_file(self, stack: str) -> Path:
        return self.stack_config_dir / f"Pulumi.{stack}.yaml"

    def stacks(self) -> list[str]:
        return sorted(
            p.name[len("Pulumi.") : -len(".yaml")]
            for p in self.stack_config_dir.glob("Pulumi.*.yaml")
        )


def load_project(root: Path) -> Project:
    """The project whose `Pulumi.yaml` is in ``root``.

    Raises:
        ConfigError: the file is missing or not a Pulumi project file.
    """
    path = root / PROJECT_FILE
    try:
        doc = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([Problem("", f"cannot read: {exc.strerror}")], str(path)) from None
    except Exception as exc:  # ruamel's YAMLError and decoding errors alike
        detail = " ".join(str(exc).split())[:200]
        raise ConfigError([Problem("", f"not valid YAML ({detail})")], str(path)) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("name"), str):
        raise ConfigError([Problem("name", "a Pulumi project needs a name")], str(path))
    config_dir = doc.get("stackConfigDir") or "."
    if not isinstance(config_dir, str):
        raise ConfigError(
            [Problem("stackConfigDir", f"{config_dir!r} must be a directory path")], str(path)
        )
    return Project(root.resolve(), doc["name"], (root / config_dir).resolve())


def find_project(start: Path | None = None) -> Project:
    """The project around ``start`` (default: the current directory), looking upward.

    Raises:
        ConfigError: no `Pulumi.yaml` in ``start`` or above it.
    """
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / PROJECT_FILE).is_file():
            return load_project(candidate)
    raise ConfigError(
        [
            Problem(
                "",
                f"no {PROJECT_FILE} in {here} or above it: run servestack in a Pulumi "
                "project, pass -C DIR, or create one with `servestack init DIR`",
            )
        ]
    )


PROGRAM = '''"""Pulumi program: the servestack components, built from `servestack:*` stack config.

Every deployment and node pool is declared in stacks/Pulumi.<stack>.yaml; `servestack
diff`, `explain` and the operations (`servestack scale ...`) work on those files. To add
resources of your own, call `servestack.program.main(builder)` with a builder that calls
`servestack.program.build(config, stack)` and registers more.
"""

from servestack.program import main
from servestack.program.process import tune_gc

tune_gc()  # this process only runs the program: see servestack.program.process
main()
'''

DEV_STACK = """# servestack config of the dev stack: `servestack validate` checks it,
# `pulumi up --stack dev` renders it to out/dev/ (target: render, no cluster needed).
config:
  servestack:environment: development
  servestack:target: render
  servestack:namespace: models
  servestack:cluster:
    name: dev
    provider: existing
  servestack:deployments:
    - name: sentiment-api
      description: Sentiment analysis API
      model:
        id: sentiment
        version: v1.0.0
        type: tabular
        image: registry.example.com/models/sentiment:1.0.0
      resources:
        cpu: 500m
        memory: 1Gi
"""

GITIGNORE = """venv/
__pycache__/
out/
.pulumi-state/
.servestack/
"""


def write_project(
    dest: Path,
    *,
    name: str,
    virtualenv: Path | str = "venv",
    stacks: dict[str, str] | None = None,
    requirement: str | None = None,
) -> Project:
    """Write the files of a servestack project (what `servestack init` creates)."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "stacks").mkdir(exist_ok=True)
    (dest / PROJECT_FILE).write_text(
        f"name: {name}\n"
        "description: ML models served with servestack\n"
        "runtime:\n  name: python\n  options:\n    toolchain: pip\n"
        f"    virtualenv: {virtualenv}\n"
        "stackConfigDir: stacks\n",
        encoding="utf-8",
    )
    (dest / "__main__.py").write_text(PROGRAM, encoding="utf-8")
    for stack, text in (stacks if stacks is not None else {"dev": DEV_STACK}).items():
        (dest / "stacks" / f"Pulumi.{stack}.yaml").write_text(text, encoding="utf-8")
    if requirement is not None:
        (dest / "requirements.txt").write_text(requirement + "\n", encoding="utf-8")
        (dest / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    return load_project(dest)


def init_project(dest: Path, *, name: str | None = None, virtualenv: str = "venv") -> Project:
    """`servestack init DIR`: a project that `pulumi up` runs as it is.

    Raises:
        ConfigError: ``dest`` exists and is not empty (nothing is overwritten).
    """
    if dest.exists() and any(dest.iterdir()):
        raise ConfigError(
            [Problem("", "is not empty: servestack init writes a new project")], str(dest)
        )
    project_name = name or dest.resolve().name
    return write_project(dest, name=project_name, requirement=requirements(), virtualenv=virtualenv)


def requirements(dist: Any = None) -> str:
    """A new project's requirements.txt: servestack from where it was installed, and the
    Pulumi SDKs pinned to the engine's versions.

    ``dist`` is servestack's ``importlib.metadata.Distribution`` (found when None). Its
    ``direct_url.json`` (PEP 610) says whether it came from a wheel file, a directory or a
    repository: the project venv installs from the same place, since servestack is not on
    a public index. Without it (an index install), the line is a version range.
    """
    from importlib.metadata import PackageNotFoundError, distribution

    if dist is None:
        try:
            dist = distribution("servestack")
        except PackageNotFoundError:  # running from a source tree that is not installed
            dist = None
    lines = [_servestack_requirement(dist)]
    lines += [
        "# The Pulumi SDKs at the versions of the engine servestack is tested with.",
        *(f"{name}=={version}" for name, version in ENGINE_SDKS.items()),
    ]
    return "\n".join(lines)


def _servestack_requirement(dist: Any) -> str:
    if dist is None:
        return "# servestack is not installed: give its wheel's path here\nservestack"
    version = dist.version
    try:
        origin = json.loads(dist.read_text("direct_url.json") or "null")
    except json.JSONDecodeError:
        origin = None
    url = origin.get("url") if isinstance(origin, dict) else None
    if isinstance(url, str) and url:
        vcs = origin.get("vcs_info")
        if isinstance(vcs, dict) and vcs.get("vcs") and vcs.get("commit_id"):
            url = f"{vcs['vcs']}+{url}@{vcs['commit_id']}"
        kind = "a directory" if "dir_info" in origin else "this source"
        if "archive_info" in origin:
            kind = "this wheel" if url.endswith(".whl") else "this archive"
        return f"# servestack {version}, installed from {kind}\nservestack @ {url}"
    # Compatible releases: same minor while 0.x, same major after.
    parts = [int(p) if p.isdigit() else 0 for p in version.split(".")[:2]] + [0]
    upper = f"0.{parts[1] + 1}" if parts[0] == 0 else str(parts[0] + 1)
    return (
        f"# servestack {version}, installed from a package index; if yours is not this "
        "machine's pip index, replace the line with the wheel's path\n"
        f"servestack>={version},<{upper}"
    )
