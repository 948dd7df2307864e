#!/usr/bin/env python3
"""Regenerate the terminal transcripts in the docs from real runs, or check that they are current.

A transcript is a marked block in README.md or a Markdown file under docs/:

    <!-- transcript: diff-prod-replace -->
    ```console
    $ servestack diff stacks/Pulumi.prod.yaml edited/Pulumi.prod.yaml
    ...output...
    ```
    <!-- /transcript -->

Everything between the markers is produced by the recipe of that name (RECIPES below). The
recipe's steps run for real in a scratch copy of the repository's `Pulumi.yaml` and `stacks/`:
commands, and edits of stack files, which the block shows as `# edit:` lines. Nothing in a
block is written by hand. Output is normalised so that it does not change from run to run:
the scratch directory is shown as `~/serving`, operation ids as `000000000001`, ..., times
of day as `2025-01-01T12:00:00+00:00`, and `diff -u` headers lose the files' times.

    tools/transcripts.py              regenerate the offline transcripts, and the config
                                      reference in docs/reference.md
    tools/transcripts.py --engine     also the engine transcripts (needs `make engine`)
    tools/transcripts.py --check      exit 1 when a doc is out of step, printing the diff
    tools/transcripts.py --list       the recipes, and which doc uses each
    tools/transcripts.py --only NAME  one recipe (repeatable); the earlier recipes of its
                                      session run too, unshown

Run it with the checkout's virtualenv: `.venv/bin/python tools/transcripts.py`. Offline
recipes need only the installed package, and tests/unit/test_docs.py checks them. Engine
recipes run the operations on a scratch project whose dev stack is brought up first, in
render mode on a project-local file backend (no cluster, no cloud);
tests/engine/test_docs_transcripts.py checks them.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import difflib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
#: Terminal width the commands see (rich tables wrap to it).
COLUMNS = 100
#: How the scratch project's directory appears in the docs.
SHOWN_ROOT = "~/serving"
#: Passphrase of the scratch stacks' secrets (they hold none).
PASSPHRASE = "transcripts-only"
OPEN = r"<!-- transcript: (?P<name>[a-z0-9-]+) -->\n"
CLOSE = r"<!-- /transcript -->"
BLOCK_RE = re.compile(f"(?P<open>{OPEN})(?P<body>.*?)(?P<close>{CLOSE})", re.S)


# --- recipes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """Set one field of a stack file in the scratch project before the commands run.

    The file is first copied from `stacks/` (same file name) unless it exists; the edit keeps
    comments and key order, as the operations do.
    """

    file: str
    path: str
    value: Any

    def shown(self) -> str:
        value = self.value
        if not (isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_./:@-]+", value)):
            value = json.dumps(value)
        return f"# edit: {self.file}: {self.path} = {value}\n"


@dataclass(frozen=True)
class Recipe:
    name: str
    #: Commands, shown after `$ `, and edits, shown as `# edit:` lines, in order. In a
    #: command, `servestack` is the installed CLI, `pulumi` the engine's CLI on the scratch
    #: project's backend, `{op}` the last operation id printed in the same session, and
    #: `> FILE` at the end writes the output to FILE instead of showing it.
    steps: tuple[str | Edit, ...]
    #: Needs the Pulumi engine (`make engine`): runs only with --engine.
    engine: bool = False
    #: Recipes of one session share a scratch project and run in the order listed.
    session: str | None = None


PROD = "edited/Pulumi.prod.yaml"
STAGING = "edited/Pulumi.staging.yaml"
DEV = "edited/Pulumi.dev.yaml"
LLAMA_V31 = (
    Edit(PROD, "deployments.llama-chat.model.version", "v3.1.0"),
    Edit(PROD, "deployments.llama-chat.model.image", "registry.example.com/llm/llama-chat:3.1.0"),
)
ALLOWANCE = {
    "path": "deployments.llama-chat.model.version",
    "from": "v3.0.1",
    "to": "v3.1.0",
    "reason": "v3.1.0 blue-green rollout approved in CHG-1234; 2x A100 capacity reserved",
}


def _in(file: str, edits: tuple[Edit, ...]) -> tuple[Edit, ...]:
    return tuple(Edit(file, e.path, e.value) for e in edits)


RECIPES: tuple[Recipe, ...] = (
    # --- offline: config ---------------------------------------------------------------------
    Recipe("init", ("servestack init my-models",)),
    Recipe(
        "validate",
        (
            "servestack validate stacks/Pulumi.dev.yaml stacks/Pulumi.staging.yaml "
            "stacks/Pulumi.prod.yaml",
        ),
    ),
    Recipe(
        "validate-invalid",
        (
            Edit(PROD, "deployments.bert-sentiment.autoscaling.minReplicas", 20),
            Edit(PROD, "deployments.bert-sentiment.replica", 2),
            "servestack validate edited/Pulumi.prod.yaml",
        ),
    ),
    # --- offline: review ---------------------------------------------------------------------
    Recipe(
        "diff-staging-restart",
        (
            Edit(STAGING, "deployments.bert-sentiment.resources.memory", "12Gi"),
            Edit(STAGING, "deployments.bert-sentiment.replicas", 3),
            Edit(STAGING, "nodePools.t4.maxNodes", 6),
            "servestack diff stacks/Pulumi.staging.yaml edited/Pulumi.staging.yaml",
        ),
    ),
    Recipe(
        "diff-cannot-finish",
        (
            Edit(STAGING, "nodePools.t4.maxNodes", 3),
            Edit(STAGING, "deployments.bert-sentiment.env.LOG_LEVEL", "debug"),
            "servestack diff stacks/Pulumi.staging.yaml edited/Pulumi.staging.yaml",
            Edit(PROD, "nodePools.a100.maxNodes", 1),
            Edit(PROD, "deployments.llama-chat.env.LOG_LEVEL", "debug"),
            "servestack diff stacks/Pulumi.prod.yaml edited/Pulumi.prod.yaml",
        ),
    ),
    Recipe(
        "diff-prod-replace",
        (
            *LLAMA_V31,
            "diff -u stacks/Pulumi.prod.yaml edited/Pulumi.prod.yaml",
            "servestack diff stacks/Pulumi.prod.yaml edited/Pulumi.prod.yaml",
        ),
    ),
    Recipe(
        "diff-prod-allowed",
        (
            *_in("allowed/Pulumi.prod.yaml", LLAMA_V31),
            Edit("allowed/Pulumi.prod.yaml", "allowReplacements", [ALLOWANCE]),
            "servestack diff stacks/Pulumi.prod.yaml allowed/Pulumi.prod.yaml",
        ),
    ),
    Recipe(
        "diff-forbidden",
        (
            Edit(DEV, "deployments.bert-sentiment.model.type", "stt"),
            "servestack diff stacks/Pulumi.dev.yaml edited/Pulumi.dev.yaml",
        ),
    ),
    Recipe(
        "diff-markdown",
        (
            *LLAMA_V31,
            Edit(PROD, "deployments.bert-sentiment.strategy.weight", 25),
            Edit(PROD, "deployments.bert-sentiment.resources.memory", "24Gi"),
            "servestack diff --format markdown stacks/Pulumi.prod.yaml edited/Pulumi.prod.yaml",
        ),
    ),
    Recipe(
        "diff-json",
        (
            Edit(DEV, "deployments.bert-sentiment.replicas", 3),
            "servestack diff --format json stacks/Pulumi.dev.yaml edited/Pulumi.dev.yaml",
        ),
    ),
    # --- offline: operations that stop before the engine -------------------------------------
    Recipe("status", ("servestack status dev bert-sentiment",)),
    Recipe("delete-refused", ("servestack delete dev whisper-batch --confirm whisper-batch",)),
    # --- engine: a real preview of an edit of the dev stack, explained -----------------------
    Recipe(
        "explain-dev",
        (
            "cp stacks/Pulumi.dev.yaml deployed.yaml",
            Edit(
                "stacks/Pulumi.dev.yaml",
                "deployments.whisper-batch.autoscaling.targetCpuUtilization",
                60,
            ),
            Edit("stacks/Pulumi.dev.yaml", "deployments.bert-sentiment.resources.cpu", 3),
            "pulumi preview --json --diff --stack dev > preview.json",
            "servestack explain preview.json --stack-file stacks/Pulumi.dev.yaml "
            "--base-stack-file deployed.yaml",
        ),
        engine=True,
        session="explain",
    ),
    # --- engine: operations on a dev stack that is up (render mode, local file backend) ------
    Recipe("op-scale", ("servestack scale dev bert-sentiment --replicas 3",), True, "ops"),
    Recipe(
        "op-resources",
        ("servestack resources dev bert-sentiment --cpu 4 --memory 8Gi",),
        True,
        "ops",
    ),
    Recipe(
        "op-stop-start",
        ("servestack stop dev whisper-batch", "servestack start dev whisper-batch"),
        True,
        "ops",
    ),
    Recipe(
        "op-canary",
        (
            "servestack set-model dev bert-sentiment --version v2.2.0 --strategy canary "
            "--weight 10",
            "servestack promote dev bert-sentiment",
        ),
        True,
        "ops",
    ),
    Recipe(
        "op-rollback",
        (
            "servestack set-model dev bert-sentiment --version v2.3.0 --strategy canary --weight 5",
            "servestack rollback dev bert-sentiment",
        ),
        True,
        "ops",
    ),
    Recipe(
        "op-no-wait",
        (
            "servestack scale dev bert-sentiment --replicas 2 --no-wait",
            "servestack operation {op}",
        ),
        True,
        "ops",
    ),
    Recipe(
        "op-delete",
        ("servestack delete dev whisper-batch --confirm whisper-batch --yes",),
        True,
        "ops",
    ),
)

BY_NAME = {r.name: r for r in RECIPES}

#: Brings a stack up the way the operations would (their project, engine and backend).
_UP = """
import sys
from servestack.ops import Workspace
ws = Workspace()
ws.runner.stack(ws.project_dir, sys.argv[1]).up(on_output=lambda _: None)
"""


# --- running ----------------------------------------------------------------------------------


def engine_dir() -> Path:
    configured = os.environ.get("SERVESTACK_ENGINE_BIN")
    return Path(configured) if configured else REPO / ".engine" / "bin"


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
        self.root.mkdir()
        shutil.copytree(REPO / "stacks", self.root / "stacks")
        project = (REPO / "Pulumi.yaml").read_text(encoding="utf-8")
        # The engine runs the program with this interpreter's environment.
        project = re.sub(r"virtualenv: .*", f"virtualenv: {sys.prefix}", project)
        (self.root / "Pulumi.yaml").write_text(project, encoding="utf-8")
        if engine:
            shutil.copy(REPO / "__main__.py", self.root / "__main__.py")
        self.env = self._env(engine)
        self.vars: dict[str, str] = {}
        self._ids: dict[str, str] = {}

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
                # A `pulumi login` of whoever runs this must not reach the transcripts.
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

    def _exec(
        self, argv: list[str], env: dict[str, str], *, merge: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            cwd=self.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge else subprocess.PIPE,
            text=True,
            timeout=900,
        )

    def up(self, stack: str) -> None:
        proc = self._exec([sys.executable, "-c", _UP, stack], self.env)
        if proc.returncode != 0:
            raise RuntimeError(f"pulumi up of the scratch {stack} stack failed:\n{proc.stdout}")

    def run(self, command: str) -> str:
        """Run one command; its transcript: `$ command`, the output, a non-zero exit code."""
        command = command.format(**self.vars)
        shown_command = command
        command, _, into = command.partition(" > ")
        argv = shlex.split(command)
        env = self.env
        if argv[0] == "servestack":
            argv = _cli() + argv[1:]
        elif argv[0] == "pulumi":
            argv[0] = str(engine_dir() / "pulumi")
            env = self.pulumi_env()
        proc = self._exec(argv, env, merge=not into)
        out = proc.stdout
        if into:
            (self.root / into.strip()).write_text(out, encoding="utf-8")
            out = proc.stderr or ""
        found = re.findall(r"operation ([0-9a-f]{12})\b", out)
        if found:
            self.vars["op"] = found[-1]
            if "--no-wait" in argv:
                self.wait_for(found[-1])
        shown = self.normalise(f"$ {shown_command}\n{out}")
        # `diff -u` exits 1 when the files differ: only servestack's and pulumi's codes count.
        if proc.returncode != 0 and argv[0] != "diff":
            shown += f"(exit {proc.returncode})\n"
        return shown

    def wait_for(self, op_id: str) -> None:
        """Until a `--no-wait` operation's worker is done: the next command neither waits for
        the stack's lock nor sees the operation half way, whatever the timing."""
        from servestack.ops import records

        deadline = time.monotonic() + 900
        while records.read(self.root / ".servestack", op_id)["status"] in ("pending", "running"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"operation {op_id} did not end in 900 s")
            time.sleep(0.2)

    def pulumi_env(self) -> dict[str, str]:
        """What `pulumi` needs to see the stacks the operations run: their backend and home."""
        state = self.root / ".pulumi-state"
        return {
            **self.env,
            "PATH": os.pathsep.join([str(engine_dir()), self.env.get("PATH", "")]),
            "PULUMI_BACKEND_URL": f"file://{state / 'backend'}",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "KUBECONFIG": "",
        }

    def normalise(self, text: str) -> str:
        text = text.replace(str(self.root), SHOWN_ROOT).replace(str(self.base), "/tmp")

        def op_id(m: re.Match[str]) -> str:
            return self._ids.setdefault(m.group(0), f"{len(self._ids) + 1:012d}")

        text = re.sub(r"(?<![0-9a-f])[0-9a-f]{12}(?![0-9a-f])", op_id, text)
        shown = "2025-01-01T12:00:00+00:00"
        # Padded to the real time's length, so that table borders stay where rich put them.
        text = re.sub(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)",
            lambda m: shown.ljust(len(m.group(0))),
            text,
        )
        text = re.sub(r"^((?:---|\+\+\+) \S+)\t.*$", r"\1", text, flags=re.M)
        # Rich pads titles and cells with blanks up to the width: trailing blanks go.
        return "".join(line.rstrip() + "\n" for line in text.splitlines())


def _run_session(members: list[Recipe], wanted: set[str]) -> dict[str, str]:
    engine = any(m.engine for m in members)
    scratch = Scratch(engine)
    out: dict[str, str] = {}
    try:
        if engine:
            scratch.up("dev")
        for r in members:
            shown = []
            for step in r.steps:
                if isinstance(step, Edit):
                    scratch.edit(step)
                    shown.append(step.shown())
                else:
                    shown.append(scratch.run(step))
            if r.name in wanted:
                out[r.name] = "```console\n" + "".join(shown) + "```\n"
    finally:
        scratch.close()
    return out


def run_recipes(recipes: list[Recipe]) -> dict[str, str]:
    """Run recipes, each session in full and in order, sessions in parallel.

    Returns each wanted recipe's block body.
    """
    wanted = {r.name for r in recipes}
    sessions = {r.session for r in recipes if r.session}
    groups: dict[str, list[Recipe]] = {}
    for r in RECIPES:
        if r.name in wanted or r.session in sessions:
            groups.setdefault(r.session or r.name, []).append(r)
    out: dict[str, str] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        for result in pool.map(lambda g: _run_session(g, wanted), groups.values()):
            out.update(result)
    return out


# --- documents ------------------------------------------------------------------------------


@dataclass
class Doc:
    path: Path
    text: str

    @property
    def rel(self) -> str:
        return str(self.path.relative_to(REPO))

    @property
    def blocks(self) -> list[str]:
        return [m.group("name") for m in BLOCK_RE.finditer(self.text)]

    def rendered(self, bodies: dict[str, str]) -> str:
        def replace(m: re.Match[str]) -> str:
            body = bodies.get(m.group("name"))
            return m.group(0) if body is None else m.group("open") + body + m.group("close")

        return BLOCK_RE.sub(replace, self.text)


def load_docs() -> list[Doc]:
    paths = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    return [Doc(p, p.read_text(encoding="utf-8")) for p in paths if p.exists()]


def _reference(check: bool, report: Callable[[str], None]) -> list[str]:
    """Bring docs/reference.md's generated config reference up to date (or check it)."""
    from servestack.contract import reference

    doc = Doc(REPO / "docs" / "reference.md", "")
    doc.text = doc.path.read_text(encoding="utf-8")
    try:
        new = reference.update(doc.text)
    except Exception as exc:  # a gap in the table or the models: say so, keep going
        return [f"{doc.rel}: cannot render the config reference: {exc!r}"]
    if new == doc.text:
        return []
    if check:
        return [f"{doc.rel}: the config reference is out of step"]
    doc.path.write_text(new, encoding="utf-8")
    report(f"updated {doc.rel} (config reference)")
    return []


def main(argv: list[str] | None = None, *, report: Callable[[str], None] = print) -> int:
    ap = argparse.ArgumentParser(
        prog="tools/transcripts.py",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    ap.add_argument("--check", action="store_true", help="exit 1 when a doc is out of step")
    ap.add_argument("--engine", action="store_true", help="include the engine recipes")
    ap.add_argument("--only", action="append", default=[], metavar="NAME", help="one recipe")
    ap.add_argument("--list", action="store_true", help="the recipes, and where each is used")
    args = ap.parse_args(argv)

    docs = load_docs()
    used: dict[str, list[str]] = {}
    for d in docs:
        for name in d.blocks:
            used.setdefault(name, []).append(d.rel)
    if args.list:
        for r in RECIPES:
            kind = "engine " if r.engine else "offline"
            report(f"{r.name:22} {kind}  {', '.join(used.get(r.name, [])) or '(unused)'}")
        return 0
    unknown = [n for n in args.only if n not in BY_NAME]
    if unknown:
        report(f"no such recipe: {', '.join(unknown)}")
        return 2

    problems = [f"{', '.join(w)}: no recipe {n!r}" for n, w in used.items() if n not in BY_NAME]
    problems += [f"recipe {r.name!r} is used in no doc" for r in RECIPES if r.name not in used]
    chosen = [
        r
        for r in RECIPES
        if r.name in used and (r.name in args.only if args.only else args.engine or not r.engine)
    ]
    if any(r.engine for r in chosen) and not (engine_dir() / "pulumi").exists():
        report(f"the engine recipes need the engine in {engine_dir()}: run `make engine`")
        return 2
    bodies = run_recipes(chosen)
    for d in docs:
        new = d.rendered(bodies)
        if new == d.text:
            continue
        if args.check:
            delta = difflib.unified_diff(
                d.text.splitlines(keepends=True),
                new.splitlines(keepends=True),
                d.rel,
                f"{d.rel} (regenerated)",
                n=1,
            )
            problems.append(f"{d.rel} is out of step:\n" + "".join(delta))
        elif d.path.read_text(encoding="utf-8") != d.text:
            problems.append(f"{d.rel} changed while the recipes ran: left alone, run again")
        else:
            d.path.write_text(new, encoding="utf-8")
            report(f"updated {d.rel}")
    if not args.only:
        problems += _reference(args.check, report)
    for p in problems:
        report(p)
    if problems and args.check:
        engine = " --engine" if args.engine else ""
        report(f"to regenerate: .venv/bin/python tools/transcripts.py{engine}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
