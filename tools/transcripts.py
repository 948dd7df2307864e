#!/usr/bin/env python3
"""Regenerate the terminal transcripts in docs/ from real runs, or check that they are current.

A transcript is a marked block in a Markdown file under docs/ (or the README):

    <!-- transcript: diff-prod-replace -->
    ```console
    $ servestack diff stacks/Pulumi.prod.yaml edited/Pulumi.prod.yaml
    ...output...
    ```
    <!-- /transcript -->

Everything between the markers is produced by the recipe of that name (RECIPES below): its
commands run for real, in a scratch copy of the repository's `Pulumi.yaml` and `stacks/`,
after the edits the recipe lists (shown in the block as `# edit:` lines). Nothing in a block
is written by hand. The output is normalised so it does not change from run to run: the
scratch directory is shown as `~/serving`, operation ids as `000000000001`, ..., times of day
as `2025-01-01T12:00:00+00:00` and durations as `N.Ns`.

    python tools/transcripts.py              regenerate the offline transcripts (and the
                                             config reference in docs/reference.md)
    python tools/transcripts.py --engine     also the engine ones (needs .engine/bin, `make engine`)
    python tools/transcripts.py --check      exit 1 when a doc is out of step (prints the diff)
    python tools/transcripts.py --list       the recipes, and where each is used
    python tools/transcripts.py --only NAME  one recipe (repeatable); its session's earlier
                                             recipes run too, unshown

Offline recipes need only the installed package; tests/unit/test_docs.py checks them. Engine
recipes run `pulumi up` through the operations CLI on a scratch project with a local file
backend and render mode (no cluster, no cloud); tests/engine/test_docs_transcripts.py checks
them. Run it with the checkout's virtualenv (`.venv/bin/python tools/transcripts.py`).
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DOCS = (REPO / "README.md", *sorted((REPO / "docs").glob("*.md")))
#: Terminal width the commands see (rich tables wrap to it).
COLUMNS = 100
#: How the scratch directory appears in the docs.
SHOWN_ROOT = "~/serving"
#: Passphrase of the scratch stacks' secrets (they hold none).
PASSPHRASE = "transcripts-only"

BLOCK_RE = re.compile(
    r"(?P<open><!-- transcript: (?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)(?P<close><!-- /transcript -->)",
    re.S,
)


# --- recipes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """Set one field of a stack file in the scratch project (before the commands run)."""

    file: str
    path: str
    value: Any

    def shown(self) -> str:
        return f"# edit: {self.file}: {self.path} = {_yaml_scalar(self.value)}"


@dataclass(frozen=True)
class Recipe:
    name: str
    #: Commands shown after `$ `; `servestack` is the installed CLI.
    commands: tuple[str, ...]
    #: Each edit copies `stacks/<file name>` to `file` first (unless it exists), then sets
    #: the field there, comments and order kept.
    edits: tuple[Edit, ...] = ()
    #: Needs the Pulumi engine (`make engine`): run only with --engine.
    engine: bool = False
    #: Recipes of one session share a scratch project and run in the order listed.
    session: str | None = None
    #: Files written into the scratch project before the commands (relative path -> text).
    files: tuple[tuple[str, str], ...] = ()
    #: Lines of output to keep (head, tail) when a command prints a lot; None keeps all.
    trim: tuple[int, int] | None = None


PROD_ALLOWANCE = """\
  servestack:allowReplacements:
    - path: deployments.llama-chat.model.version
      reason: "v3.1.0 blue-green rollout approved in CHG-1234; 2x A100 capacity reserved"
"""

RECIPES: tuple[Recipe, ...] = (
    # --- offline: config ---------------------------------------------------------------------
    Recipe(
        "validate",
        ("servestack validate stacks/Pulumi.dev.yaml stacks/Pulumi.staging.yaml "
         "stacks/Pulumi.prod.yaml",),
    ),
    Recipe(
        "validate-invalid",
        ("servestack validate edited/Pulumi.prod.yaml",),
        edits=(
            Edit("edited/Pulumi.prod.yaml", "deployments.bert-sentiment.autoscaling.minReplicas", 20),
            Edit("edited/Pulumi.prod.yaml", "deployments.bert-sentiment.replica", 2),
            Edit("edited/Pulumi.prod.yaml", "deployments.llama-chat.resources.gpu.type", "H100"),
        ),
    ),
    # --- offline: review ---------------------------------------------------------------------
    Recipe(
        "diff-prod-replace",
        (
            "diff -u stacks/Pulumi.prod.yaml edited/Pulumi.prod.yaml",
            "servestack diff stacks/Pulumi.prod.yaml edited/Pulumi.prod.yaml",
        ),
        edits=(
            Edit("edited/Pulumi.prod.yaml", "deployments.llama-chat.model.version", "v3.1.0"),
            Edit(
                "edited/Pulumi.prod.yaml",
                "deployments.llama-chat.model.image",
                "registry.example.com/llm/llama-chat:3.1.0",
            ),
        ),
    ),
    Recipe(
        "diff-prod-allowed",
        ("servestack diff stacks/Pulumi.prod.yaml allowed/Pulumi.prod.yaml",),
        edits=(
            Edit("allowed/Pulumi.prod.yaml", "deployments.llama-chat.model.version", "v3.1.0"),
            Edit(
                "allowed/Pulumi.prod.yaml",
                "deployments.llama-chat.model.image",
                "registry.example.com/llm/llama-chat:3.1.0",
            ),
            Edit(
                "allowed/Pulumi.prod.yaml",
                "allowReplacements",
                [
                    {
                        "path": "deployments.llama-chat.model.version",
                        "reason": "v3.1.0 blue-green rollout approved in CHG-1234; "
                        "2x A100 capacity reserved",
                    }
                ],
            ),
        ),
    ),
    Recipe(
        "diff-staging-restart",
        ("servestack diff stacks/Pulumi.staging.yaml edited/Pulumi.staging.yaml",),
        edits=(
            Edit("edited/Pulumi.staging.yaml", "deployments.bert-sentiment.resources.memory", "24Gi"),
            Edit("edited/Pulumi.staging.yaml", "deployments.bert-sentiment.replicas", 3),
            Edit("edited/Pulumi.staging.yaml", "nodePools.t4.maxNodes", 5),
        ),
    ),
    Recipe(
        "diff-forbidden",
        ("servestack diff stacks/Pulumi.dev.yaml edited/Pulumi.dev.yaml",),
        edits=(Edit("edited/Pulumi.dev.yaml", "deployments.bert-sentiment.model.type", "stt"),),
    ),
    Recipe(
        "diff-markdown",
        ("servestack diff --format markdown stacks/Pulumi.prod.yaml edited/Pulumi.prod.yaml",),
        edits=(
            Edit("edited/Pulumi.prod.yaml", "deployments.llama-chat.model.version", "v3.1.0"),
            Edit(
                "edited/Pulumi.prod.yaml",
                "deployments.llama-chat.model.image",
                "registry.example.com/llm/llama-chat:3.1.0",
            ),
            Edit("edited/Pulumi.prod.yaml", "deployments.bert-sentiment.strategy.weight", 25),
            Edit("edited/Pulumi.prod.yaml", "deployments.bert-sentiment.resources.memory", "24Gi"),
        ),
    ),
    Recipe(
        "diff-json",
        ("servestack diff --format json stacks/Pulumi.dev.yaml edited/Pulumi.dev.yaml",),
        edits=(Edit("edited/Pulumi.dev.yaml", "deployments.bert-sentiment.replicas", 3),),
    ),
    # --- offline: operations that need no engine ---------------------------------------------
    Recipe("status", ("servestack status dev bert-sentiment",)),
    Recipe(
        "delete-refused",
        ("servestack delete dev whisper-batch --confirm whisper-batch",),
    ),
    Recipe("init", ("servestack init my-models",)),
    # --- engine: operations on a dev stack that is up (render mode, local file backend) ----
    Recipe(
        "op-scale",
        ("servestack scale dev bert-sentiment --replicas 3",),
        engine=True,
        session="ops",
    ),
    Recipe(
        "op-resources",
        ("servestack resources dev bert-sentiment --cpu 4000 --memory 8192",),
        engine=True,
        session="ops",
    ),
    Recipe(
        "op-stop-start",
        ("servestack stop dev whisper-batch", "servestack start dev whisper-batch"),
        engine=True,
        session="ops",
    ),
    Recipe(
        "op-canary",
        (
            "servestack set-model dev bert-sentiment --version v2.2.0 --strategy canary --weight 10",
            "servestack promote dev bert-sentiment",
        ),
        engine=True,
        session="ops",
    ),
    Recipe(
        "op-rollback",
        (
            "servestack set-model dev bert-sentiment --version v2.3.0 --strategy canary --weight 5",
            "servestack rollback dev bert-sentiment",
        ),
        engine=True,
        session="ops",
    ),
    Recipe(
        "op-no-wait",
        (
            "servestack scale dev bert-sentiment --replicas 2 --no-wait",
            "servestack operation {op}",
        ),
        engine=True,
        session="ops",
    ),
    Recipe(
        "op-delete",
        ("servestack delete dev whisper-batch --confirm whisper-batch --yes",),
        engine=True,
        session="ops",
    ),
)

BY_NAME = {r.name: r for r in RECIPES}


# --- running ----------------------------------------------------------------------------------


def _yaml_scalar(value: Any) -> str:
    import json

    if isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_./:@-]+", value):
        return value
    return json.dumps(value)


def _cli() -> list[str]:
    """The installed `servestack` next to this interpreter, or `python -m servestack`."""
    script = Path(sys.executable).parent / "servestack"
    return [str(script)] if script.exists() else [sys.executable, "-m", "servestack"]


class Scratch:
    """A scratch project: a copy of the repository's `Pulumi.yaml` and `stacks/`."""

    def __init__(self, engine: bool) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="servestack-docs-")
        self.base = Path(self._tmp.name)
        self.root = self.base / "serving"
        if engine:
            from servestack.engine import make_project

            stacks = {
                p.name[len("Pulumi.") : -len(".yaml")]: p.read_text(encoding="utf-8")
                for p in sorted((REPO / "stacks").glob("Pulumi.*.yaml"))
            }
            make_project(self.root, stacks=stacks, name="serving")
        else:
            self.root.mkdir()
            shutil.copy(REPO / "Pulumi.yaml", self.root / "Pulumi.yaml")
            shutil.copytree(REPO / "stacks", self.root / "stacks")
        self.env = self._env(engine)
        self.vars: dict[str, str] = {}
        self.ids: dict[str, str] = {}

    def _env(self, engine: bool) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PULUMI_", "SERVESTACK_", "KUBECONFIG", "FORCE_COLOR"))
        }
        env.update(
            {
                "COLUMNS": str(COLUMNS),
                "LINES": "50",
                "NO_COLOR": "1",
                "TERM": "dumb",
                "PYTHONWARNINGS": "ignore",
                # The user's `pulumi login` must not leak into the transcripts.
                "PULUMI_HOME": str(self.root / ".pulumi-state" / "home"),
                "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            }
        )
        if engine:
            env["SERVESTACK_ENGINE_BIN"] = str(engine_dir())
        return env

    def close(self) -> None:
        self._tmp.cleanup()

    def edit(self, e: Edit) -> None:
        from servestack.config.stackfile import set_value

        target = self.root / e.file
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(self.root / "stacks" / target.name, target)
        text = target.read_text(encoding="utf-8")
        target.write_text(set_value(text, e.path, e.value), encoding="utf-8")

    def up(self, stack: str) -> None:
        """`pulumi up` a stack the way the operations do (project-local backend)."""
        from servestack.ops import Workspace

        old = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.env)
        try:
            ws = Workspace(project_dir=self.root)
            ws.runner.stack(self.root, stack).up(on_output=lambda _: None)
        finally:
            os.environ.clear()
            os.environ.update(old)

    def run(self, command: str) -> str:
        command = command.format(**self.vars)
        argv = shlex.split(command)
        if argv[0] == "servestack":
            argv = _cli() + argv[1:]
        proc = subprocess.run(
            argv,
            cwd=self.root,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=900,
        )
        out = proc.stdout
        found = re.search(r"operation ([0-9a-f]{12})|'operation_id': '([0-9a-f]{12})'", out)
        if found:
            self.vars["op"] = found.group(1) or found.group(2)
        shown = self.normalise(f"$ {command}\n{out}")
        if proc.returncode != 0:
            shown = shown.rstrip("\n") + f"\n(exit {proc.returncode})\n"
        return shown

    def normalise(self, text: str) -> str:
        text = text.replace(str(self.root), SHOWN_ROOT).replace(str(self.base), "/tmp")

        def op_id(m: re.Match[str]) -> str:
            return self.ids.setdefault(m.group(0), f"{len(self.ids) + 1:012d}")

        text = re.sub(r"(?<![0-9a-f])[0-9a-f]{12}(?![0-9a-f])", op_id, text)
        text = re.sub(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)", "2025-01-01T12:00:00+00:00", text
        )
        text = re.sub(r"\b\d+(\.\d+)?s\b", "N.Ns", text)
        # Rich pads table titles and cells with spaces up to the width: trailing blanks go.
        return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def engine_dir() -> Path:
    configured = os.environ.get("SERVESTACK_ENGINE_BIN")
    return Path(configured) if configured else REPO / ".engine" / "bin"


def _block(recipe: Recipe, shown: Iterable[str]) -> str:
    return "```console\n" + "".join(shown) + "```\n"


def run_recipes(recipes: list[Recipe]) -> dict[str, str]:
    """Run recipes (sessions in full, in order) and return each one's block body."""
    out: dict[str, str] = {}
    wanted = {r.name for r in recipes}
    sessions: dict[str | None, list[Recipe]] = {}
    for r in RECIPES:
        if r.name in wanted or (r.session and any(w.session == r.session for w in recipes)):
            sessions.setdefault(r.session or r.name, []).append(r)
    for key, members in sessions.items():
        engine = any(m.engine for m in members)
        scratch = Scratch(engine)
        try:
            if engine:
                scratch.up("dev")
            for r in members:
                for e in r.edits:
                    scratch.edit(e)
                shown = [e.shown() + "\n" for e in r.edits]
                shown += [scratch.run(c) for c in r.commands]
                if r.name in wanted:
                    out[r.name] = _block(r, shown)
        finally:
            scratch.close()
        del key
    return out


# --- documents ------------------------------------------------------------------------------


@dataclass
class Doc:
    path: Path
    text: str
    blocks: list[str] = field(default_factory=list)


def load_docs() -> list[Doc]:
    docs = []
    for path in DOCS:
        if path.exists():
            text = path.read_text(encoding="utf-8")
            docs.append(Doc(path, text, [m.group("name") for m in BLOCK_RE.finditer(text)]))
    return docs


def render_doc(doc: Doc, bodies: dict[str, str]) -> str:
    def replace(m: re.Match[str]) -> str:
        body = bodies.get(m.group("name"))
        return m.group(0) if body is None else m.group("open") + body + m.group("close")

    return BLOCK_RE.sub(replace, doc.text)


def _reference(check: bool) -> list[str]:
    """The generated config reference in docs/reference.md; returns problems in check mode."""
    from servestack.contract import reference

    path = REPO / "docs" / "reference.md"
    text = path.read_text(encoding="utf-8")
    try:
        new = reference.update(text)
    except Exception as exc:  # a gap in the table or the models: say so, keep the rest going
        return [f"{path.relative_to(REPO)}: cannot render the config reference: {exc!r}"]
    if new == text:
        return []
    if check:
        return [f"{path.relative_to(REPO)}: the config reference is out of step"]
    path.write_text(new, encoding="utf-8")
    print(f"updated {path.relative_to(REPO)} (config reference)")
    return []


def main(argv: list[str] | None = None, *, report: Callable[[str], None] = print) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 when a doc is out of step")
    ap.add_argument("--engine", action="store_true", help="include the engine recipes")
    ap.add_argument("--only", action="append", default=[], metavar="NAME")
    ap.add_argument("--list", action="store_true", help="list the recipes and where they are used")
    args = ap.parse_args(argv)

    docs = load_docs()
    used: dict[str, list[str]] = {}
    for d in docs:
        for name in d.blocks:
            used.setdefault(name, []).append(str(d.path.relative_to(REPO)))
    if args.list:
        for r in RECIPES:
            where = ", ".join(used.get(r.name, [])) or "(unused)"
            report(f"{r.name:22} {'engine ' if r.engine else 'offline'}  {where}")
        return 0

    problems = [f"{', '.join(w)}: no recipe named {n!r}" for n, w in used.items() if n not in BY_NAME]
    problems += [f"recipe {r.name!r} is used in no doc" for r in RECIPES if r.name not in used]
    unknown = [n for n in args.only if n not in BY_NAME]
    if unknown:
        report(f"no such recipe: {', '.join(unknown)}")
        return 2
    chosen = [
        r
        for r in RECIPES
        if r.name in used
        and (not args.only or r.name in args.only)
        and (args.engine or not r.engine or r.name in args.only)
    ]
    if any(r.engine for r in chosen) and not (engine_dir() / "pulumi").exists():
        report(f"engine recipes need the engine in {engine_dir()}: run `make engine`")
        return 2
    bodies = run_recipes(chosen)
    for d in docs:
        new = render_doc(d, bodies)
        if new == d.text:
            continue
        rel = str(d.path.relative_to(REPO))
        if args.check:
            delta = difflib.unified_diff(
                d.text.splitlines(keepends=True),
                new.splitlines(keepends=True),
                rel,
                rel + " (regenerated)",
                n=1,
            )
            problems.append(f"{rel} is out of step:\n" + "".join(delta))
        else:
            d.path.write_text(new, encoding="utf-8")
            report(f"updated {rel}")
    if not args.only:
        problems += _reference(args.check)
    for p in problems:
        report(p)
    if problems and args.check:
        report("run `.venv/bin/python tools/transcripts.py" + (" --engine" if args.engine else "") + "`")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
