"""Shared by every tier: the engine the tests run is the checkout's own build, never a
`pulumi` that happens to be on PATH, and never a backend or Pulumi home of the developer's.
And no process a test starts outlives the test session."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import ENGINE_BIN, use_checkout_engine
from servestack.ops.recovery import Leftover, end_processes, processes_marked
from tests import REPO

pytest_plugins = ["tests.tiers"]

if ENGINE_BIN.exists():
    use_checkout_engine()

#: In the environment of every process the session starts (set before any test runs, so
#: the children, grandchildren and plugins of every tier inherit it).
SESSION_ENV = "SERVESTACK_TEST_SESSION"
SESSION = uuid.uuid4().hex
os.environ[SESSION_ENV] = SESSION
#: How long processes get to go away after the last test before they count as left over.
LEFTOVER_GRACE_SECONDS = 15.0
#: Variables through which a shell could hand the suite a backend or an account.
USER_PULUMI_ENV = ("PULUMI_BACKEND_URL", "PULUMI_ACCESS_TOKEN", "PULUMI_HOME")


@pytest.fixture(scope="session", autouse=True)
def _own_pulumi_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's own, empty Pulumi home, whatever `pulumi login` the machine has.

    With no ``PULUMI_BACKEND_URL``, no project ``backend.url`` and no login in the home,
    every engine the tests make (:class:`servestack.engine.Engine`) takes the
    project-local ``file://`` backend under its own tmp_path, and a `pulumi` run outside
    an Engine finds nobody logged in: it fails rather than write to the developer's
    backend. No single session-wide ``PULUMI_BACKEND_URL``: the tests' scratch projects
    share names (`servestack`, stack `dev`), so one backend would mix their stacks.
    tests/engine/test_backend.py runs the suite on a machine logged in elsewhere.
    """
    home = tmp_path_factory.mktemp("pulumi-home")
    with pytest.MonkeyPatch.context() as mp:
        for name in USER_PULUMI_ENV:
            mp.delenv(name, raising=False)
        mp.setenv("PULUMI_HOME", str(home))
        yield home


def _kept_on_purpose(proc: Leftover) -> bool:
    """The local cluster the session started, kept with SERVESTACK_KEEP_CLUSTER=1."""
    if os.environ.get("SERVESTACK_KEEP_CLUSTER") != "1":
        return False
    try:
        exe = Path(os.readlink(f"/proc/{proc.pid}/exe"))
    except OSError:
        return False
    # .cluster-bin is a link into the build cache; /proc/<pid>/exe names the real file.
    return exe.is_relative_to((REPO / ".cluster-bin").resolve())


def session_leftovers(grace: float = LEFTOVER_GRACE_SECONDS) -> list[Leftover]:
    """The session's processes still alive after ``grace`` seconds."""
    deadline = time.monotonic() + grace
    while True:
        left = [p for p in processes_marked(SESSION_ENV, SESSION) if not _kept_on_purpose(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A process the tests started that is still running fails the session (it is named,
    then ended so that it does not outlive the run as well). Under pytest-xdist the run
    that started the workers checks, once they have ended: a worker would count the other
    worker's live processes."""
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker
    left = session_leftovers()
    if not left:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    write = reporter.write_line if reporter is not None else print
    write("")
    write(f"FAILED: {len(left)} process(es) started by this test session outlived it:")
    for proc in left:
        write(f"  pid {proc.pid}: {proc.cmdline}")
    ended = end_processes(
        SESSION_ENV, SESSION, "the test session", lambda _line: None, only={p.pid for p in left}
    )
    for line in ended:
        write(f"  {line}")
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


#: The tier whose tests share one local control plane (tests/cluster/conftest.py).
CLUSTER_TIER = "tests/cluster/"


class _Workers:
    """How `make test` runs on pytest-xdist (`-n 2`).

    - The cluster tier runs on one worker, in its order, with its one local control plane
      (its run dir is the checkout's `.cluster/`), while the other tiers are spread over
      both workers test by test: the cluster tier mostly waits on the control plane.
    - The workers keep the session of the run that started them: the run's processes are
      one set, checked once, by that run, after its workers have ended (see
      pytest_sessionfinish). A pytest a test starts is a session of its own.
    """

    @staticmethod
    def pytest_configure_node(node: Any) -> None:
        node.workerinput[SESSION_ENV] = SESSION

    @staticmethod
    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
        from xdist.scheduler import LoadScopeScheduling

        class ClusterTierOnOneWorker(LoadScopeScheduling):  # type: ignore[misc]
            def _split_scope(self, nodeid: str) -> str:
                return CLUSTER_TIER if nodeid.startswith(CLUSTER_TIER) else nodeid

        return ClusterTierOnOneWorker(config, log)


def pytest_configure(config: pytest.Config) -> None:
    global SESSION
    if hasattr(config, "workerinput"):
        # xdist's workers get COLUMNS=80 (they have no terminal); the CLI reads COLUMNS as
        # the user's width. The suite runs the CLI as a pipe would: without it.
        os.environ.pop("COLUMNS", None)
    handed = getattr(config, "workerinput", {}).get(SESSION_ENV)
    if handed:
        SESSION = os.environ[SESSION_ENV] = handed
    elif config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_Workers())


@pytest.fixture(autouse=True)
def _no_stack_file_limit_from_earlier_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """`servestack --max-file-bytes` sets the limit in its process's environment; tests that
    run the CLI in-process must not hand it to the tests after them."""
    # setenv first: a delenv of an unset variable records nothing, so nothing would be undone.
    monkeypatch.setenv("SERVESTACK_MAX_STACK_FILE_BYTES", "unset-by-the-fixture")
    monkeypatch.delenv("SERVESTACK_MAX_STACK_FILE_BYTES")
