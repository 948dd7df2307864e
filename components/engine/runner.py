"""Run the Pulumi engine: find it, choose the backend, run stacks through the Automation API.

Engine discovery is in :mod:`servestack.engine.discovery`.

Backend, first hit wins: ``PULUMI_BACKEND_URL``; the project's ``backend.url``; the user's
login (``pulumi login``); otherwise a project-local ``file://`` backend under the state dir.
:attr:`Engine.backend` says which one a run used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi import automation as auto
from semver import VersionInfo

from servestack.engine.discovery import (
    EngineLocation,
    find_engine,
)

DEFAULT_PASSPHRASE_ENV = "PULUMI_CONFIG_PASSPHRASE"


def _user_login() -> str | None:
    """The backend the user is logged in to with `pulumi login`, if any."""
    home = Path(os.environ.get("PULUMI_HOME") or Path.home() / ".pulumi")
    try:
        creds = json.loads((home / "credentials.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    current = creds.get("current") if isinstance(creds, dict) else None
    return current if isinstance(current, str) and current else None


def _project_backend(project_dir: Path | None) -> str | None:
    if project_dir is None:
        return None
    from ruamel.yaml import YAML

    try:
        doc = YAML(typ="safe", pure=True).load((project_dir / "Pulumi.yaml").read_text("utf-8"))
    except Exception:  # a broken Pulumi.yaml is the CLI's to report
        return None
    backend = doc.get("backend") if isinstance(doc, dict) else None
    url = backend.get("url") if isinstance(backend, dict) else None
    return url if isinstance(url, str) and url else None


class _PulumiCommand(auto.PulumiCommand):
    """The Automation API's handle on the CLI, made without upstream's constructor: that one
    asks `pulumi version` in this process's environment, so with the user's `PULUMI_HOME`
    (the CLI logs every run there) whatever home the engine runs with. Here the question
    is asked in the engine's environment; the answer is not checked against the SDK's
    minimum (upstream's ``skip_version_check``): the versions are pinned together."""

    def __init__(self, pulumi: Path, env: dict[str, str]) -> None:  # no super(): see above
        self.command = str(pulumi)
        said = subprocess.run(
            [self.command, "version"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        try:
            self.version = VersionInfo.parse(said.removeprefix("v"))
        except ValueError:
            self.version = None


@dataclass
class Engine:
    """A hermetic engine environment rooted at ``state_dir``."""

    state_dir: Path
    passphrase: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    #: The project whose `backend.url` counts (None: only the environment and the login).
    project_dir: Path | None = None
    #: Forced backend URL (tests); None follows the discovery order.
    backend_url: str | None = None
    #: Leave KUBECONFIG to the user (`target: cluster`); False hides it (render mode).
    cluster: bool = False

    @property
    def location(self) -> EngineLocation:
        return find_engine()

    @property
    def bin_dir(self) -> Path:
        return self.location.bin_dir

    @property
    def backend(self) -> str:
        """The backend runs use, and why: shown to the user before anything runs."""
        if self.backend_url:
            return self.backend_url
        if os.environ.get("PULUMI_BACKEND_URL"):
            return f"{os.environ['PULUMI_BACKEND_URL']} (PULUMI_BACKEND_URL)"
        project = _project_backend(self.project_dir)
        if project:
            return f"{project} (Pulumi.yaml backend.url)"
        login = _user_login()
        if login:
            return f"{login} (pulumi login)"
        return f"file://{self.state_dir / 'backend'} (project-local)"

    def env(self) -> dict[str, str]:
        location = self.location
        venv_bin = str(Path(sys.executable).parent)
        env = {
            "PATH": os.pathsep.join([str(location.bin_dir), venv_bin, os.environ.get("PATH", "")]),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
            "PULUMI_SKIP_CONFIRMATIONS": "true",
        }
        local = self.backend_url is None and self.backend.endswith("(project-local)")
        #: The backend named outright, by the caller or by PULUMI_BACKEND_URL.
        named = self.backend_url or os.environ.get("PULUMI_BACKEND_URL") or ""
        if named.startswith("file://"):
            # The file backend refuses a directory that does not exist yet.
            Path(named.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
        if self.backend_url:
            env["PULUMI_BACKEND_URL"] = self.backend_url
        elif local:
            backend = self.state_dir / "backend"
            backend.mkdir(parents=True, exist_ok=True)
            env["PULUMI_BACKEND_URL"] = f"file://{backend}"
        if location.hermetic and (local or named.startswith("file://")):
            # Our own build: a private home, and a missing plugin is an error, not a download.
            home = self.state_dir / "home"
            home.mkdir(parents=True, exist_ok=True)
            env["PULUMI_HOME"] = str(home)
            env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] = "true"
        if not self.cluster:
            # Render mode must never read a cluster's credentials (and the provider refuses a
            # kubeconfig next to renderYamlToDirectory): an empty value hides the user's.
            env["KUBECONFIG"] = ""
        passphrase = self.passphrase or os.environ.get(DEFAULT_PASSPHRASE_ENV)
        if passphrase is not None:
            env[DEFAULT_PASSPHRASE_ENV] = passphrase
        env.update(self.extra_env)
        return env

    def command(self) -> auto.PulumiCommand:
        return _PulumiCommand(self.bin_dir / "pulumi", self.env())

    def stack(self, project_dir: Path, stack: str, *, create: bool = True) -> auto.Stack:
        """Create or select a stack of the project in ``project_dir`` (``create=False``:
        select only; :class:`pulumi.automation.StackNotFoundError` when there is none)."""
        env = self.env()
        opts = auto.LocalWorkspaceOptions(
            work_dir=str(project_dir),
            pulumi_command=self.command(),
            env_vars=env,
            pulumi_home=env.get("PULUMI_HOME"),
            secrets_provider="passphrase",
        )
        make = auto.create_or_select_stack if create else auto.select_stack
        return make(stack_name=stack, work_dir=str(project_dir), opts=opts)

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

    def update(
        self,
        project_dir: Path,
        stack: str,
        *args: str,
        on_output: Callable[[str], None] | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, int]:
        """`pulumi up --yes --skip-preview ARGS` of an existing stack, its output streamed to
        ``on_output`` line by line and, when ``on_event`` is given, its engine events (the
        `--event-log` JSON) to ``on_event`` as they come; returns the resource changes by kind.

        What a targeted update of one deployment in a large stack does not pay for:

        * the event log, unless ``on_event`` wants it: it holds each step's whole old and new
          state, the "same" step of every untargeted resource included (about 100 MB for a
          targeted update at 1,000 deployments, a fifth of the engine's CPU time; bench/fleet.py).
          The resource changes are then read from the stack's history instead, whose entry
          is told apart from another update's by a message naming this one;
        * the stack outputs on stdout (`--suppress-outputs`): the deployed config is one of
          them, about 120,000 lines at 1,000 deployments, which nothing here reads from the
          display.

        The Automation API's `up` asks for the stack's outputs and history afterwards (three
        more CLI runs, each reading the whole checkpoint); nothing here needs them.

        Raises:
            pulumi.automation.CommandError: the update failed (its output in the message).
        """
        import tempfile
        import uuid

        from pulumi.automation.errors import create_command_error

        message = f"servestack update {uuid.uuid4().hex[:12]}"
        argv = [str(self.bin_dir / "pulumi"), "up", "--yes", "--skip-preview", "--non-interactive"]
        argv += ["--suppress-outputs", "--message", message, "--stack", stack]
        changes: dict[str, int] = {}
        with tempfile.TemporaryDirectory(prefix="servestack-up-") as tmp:
            if on_event is not None:
                log = Path(tmp) / "events.jsonl"
                log.touch()
                argv += ["--event-log", str(log)]
                events = _EventReader(log, changes, on_event)
            with (Path(tmp) / "stderr").open("w+", encoding="utf-8") as errors:
                proc = subprocess.Popen(
                    [*argv, *args],
                    cwd=project_dir,
                    # The CLI offers --event-log (as to the Automation API) only with this set.
                    env={**os.environ, **self.env(), "PULUMI_DEBUG_COMMANDS": "true"},
                    stdout=subprocess.PIPE,
                    stderr=errors,
                    text=True,
                )
                out: list[str] = []
                assert proc.stdout is not None
                for text in proc.stdout:
                    out.append(text)
                    if on_output is not None:
                        on_output(text)
                code = proc.wait()
                errors.seek(0)
                err = errors.read()
            if on_event is not None:
                events.finish()
        if code != 0:
            raise create_command_error(auto.CommandResult("".join(out), err, code))
        return changes if on_event is not None else self.changes_of(project_dir, stack, message)

    def changes_of(self, project_dir: Path, stack: str, message: str) -> dict[str, int]:
        """The resource changes by kind of the stack's last update, if its message is
        ``message`` (empty otherwise: another update came in between)."""
        args = ("stack", "history", "--json", "--page-size", "1", "--stack", stack)
        proc = self.cli(project_dir, *args, check=False)
        try:
            last = json.loads(proc.stdout)[0]
        except (ValueError, IndexError, KeyError):
            return {}
        if not isinstance(last, dict) or last.get("message") != message:
            return {}
        found = last.get("resourceChanges") or {}
        return {str(k): int(v) for k, v in found.items()} if isinstance(found, dict) else {}

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
        return self.cli(self.state_dir.parent, "version").stdout.strip()


def make_project(dest: Path, *, stacks: dict[str, str], name: str = "servestack") -> Path:
    """A scratch project (the `servestack init` layout) that runs in this interpreter's venv.

    The engine writes stack state and encryption salts into its stack files; working on
    a copy keeps the repository's stack files untouched.
    """
    from servestack.engine.project import write_project

    write_project(dest, name=name, virtualenv=Path(sys.prefix), stacks=stacks)
    return dest


class _EventReader:
    """Follows an engine's `--event-log` file in a thread of its own while the engine writes
    it: each event goes to ``on_event``, the summary's resource changes into ``changes``."""

    def __init__(
        self,
        log: Path,
        changes: dict[str, int],
        on_event: Callable[[dict[str, Any]], None],
    ) -> None:
        import threading

        self._log, self._changes, self._on_event = log, changes, on_event
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def finish(self) -> None:
        """Read what is left (the engine has exited) and stop."""
        self._done.set()
        self._thread.join()

    def _handle(self, line: bytes) -> None:
        event = json.loads(line)
        summary = event.get("summaryEvent")
        if summary:
            self._changes.update(summary.get("resourceChanges") or {})
        self._on_event(event)

    def _follow(self) -> None:
        pending = b""
        with self._log.open("rb") as events:
            while True:
                finished = self._done.is_set()  # before the read: a last one after it
                chunk = events.read()
                if chunk:
                    *lines, pending = (pending + chunk).split(b"\n")
                    for line in lines:
                        if line.strip():
                            self._handle(line)
                elif finished:
                    return
                else:
                    self._done.wait(0.05)
