"""Pulumi projects that use servestack: find the one around a directory, or create one.

A project is a directory with a `Pulumi.yaml`; its stack files live in the directory its
``stackConfigDir`` names (the project directory itself when unset), as Pulumi reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

from servestack.config.errors import ConfigError, Problem

PROJECT_FILE = "Pulumi.yaml"
#: Where servestack keeps per-project state: operation records, locks, last-good configs.
STATE_DIR = ".servestack"
#: The project-local engine state (file backend and private Pulumi home).
ENGINE_STATE_DIR = ".pulumi-state"


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
    from importlib.metadata import PackageNotFoundError, version

    try:
        requirement = f"servestack>={version('servestack')}"
    except PackageNotFoundError:  # running from a source tree that is not installed
        requirement = "servestack"
    return write_project(dest, name=project_name, requirement=requirement, virtualenv=virtualenv)
