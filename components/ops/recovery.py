"""What a killed operation leaves behind, and how the next operation on the stack cleans up.

An operation that runs the engine first writes a journal, `.servestack/inflight/<stack>.json`:
its id, its pid, the stack file it started from and the one it is applying. The journal
goes when the operation's record is final. A journal that is still there when the next
operation takes the stack's lock therefore belongs to an operation that died (its pid is
gone: the lock is only free when it is), and the next operation:

1. removes what the engine left (see :func:`clear_engine_leftovers`):
   - the DIY backend's own lock, `<backend>/.pulumi/locks/<org>/<project>/<stack>/<uuid>.json`.
     The CLI writes it (pid, user, host, time) before an update and deletes it in a
     deferred call, so `kill -9` leaves it, and every later update fails with "the stack
     is currently locked" until `pulumi cancel` deletes all of them. A lock is removed
     only when it names this host and a pid that is gone: a live `pulumi` (an update the
     killed operation started, still running as an orphan) is waited for;
   - pending operations in the checkpoint: steps the engine began and never saw finish.
     `pulumi up` warns about them; it drops pending updates and deletes, but carries
     pending *creates* into every new checkpoint until an interactive `pulumi refresh`
     or a `pulumi stack import` clears them. Refresh cannot run in render mode (the
     provider cannot read rendered objects back), so they are cleared the way
     `pulumi stack import` does: the checkpoint is exported and imported again, and the
     next `up` runs those steps again from the program;
   - the engine's processes: the `pulumi` CLI starts its language host, the program and
     the provider plugins in process groups of their own, so killing the operation's
     process group leaves them running (reparented to init), some blocked for good on an
     engine that is gone. Every engine process an operation starts carries
     ``SERVESTACK_OPERATION_ID=<operation>`` in its environment (the CLI hands its
     environment on to every plugin), so they are found by that marker in
     `/proc/<pid>/environ` (see :func:`processes_marked`), whoever their parent is now, and
     ended (see :func:`end_processes`). The marker is checked again through a pidfd right
     before each signal, so a pid reused by an unrelated process is never signalled;
2. makes the stack file the one the interrupted operation was applying (it is the old
   or the new file: writes are atomic), unless someone has edited it since;
3. runs `pulumi up` to finish the change, or rolls back to the last good config if it
   fails, exactly as the operation itself would have;
4. records all of it in the interrupted operation's record, whose status stays
   ``interrupted``, and says it to the user.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from servestack.config.stackfile import write_atomic
from servestack.ops.lock import process_alive, process_start

Say = Callable[[str], None]
#: How long to wait for a `pulumi` left running by a killed operation, in seconds.
ORPHAN_WAIT_SECONDS = 600.0
#: In the environment of every engine process an operation starts: the operation's id.
OPERATION_ENV = "SERVESTACK_OPERATION_ID"
#: How long an engine process left behind gets to stop after SIGTERM before SIGKILL, in s.
TERM_GRACE_SECONDS = 5.0


@dataclass
class Journal:
    """The in-flight record of an operation that is running the engine on a stack."""

    operation: str
    stack: str
    pid: int
    host: str
    pid_start: str | None
    #: ``apply`` (the operation's change) or ``rollback`` (the last good config).
    phase: str
    #: The stack file before the operation, and the one being applied now.
    before_text: str
    target_text: str
    #: The deployments the update was scoped to (:mod:`servestack.ops.scope`); None: all.
    scope: list[str] | None = None
    #: The stack file the operation applies next, by an update of its own, once
    #: ``target_text`` is applied (phase ``applied``): an operation in steps.
    then_text: str | None = None

    @classmethod
    def start(cls, operation: str, stack: str, before_text: str, target_text: str) -> Journal:
        pid = os.getpid()
        return cls(
            operation,
            stack,
            pid,
            socket.gethostname(),
            process_start(pid),
            "apply",
            before_text,
            target_text,
        )


def journal_path(state: Path, stack: str) -> Path:
    return state / "inflight" / f"{stack}.json"


def write_journal(state: Path, journal: Journal) -> None:
    write_atomic(journal_path(state, journal.stack), json.dumps(asdict(journal)))


def read_journal(state: Path, stack: str) -> Journal | None:
    try:
        data = json.loads(journal_path(state, stack).read_text(encoding="utf-8"))
        return Journal(**data)
    except (OSError, ValueError, TypeError):
        return None


def remove_journal(state: Path, stack: str) -> None:
    journal_path(state, stack).unlink(missing_ok=True)


def dead(pid: int, host: str, pid_start: str | None) -> bool:
    """Whether the process that wrote a record is known to be gone (only provable here)."""
    return host == socket.gethostname() and not process_alive(pid, pid_start)


# --- the engine's leftovers ---------------------------------------------------------------


def diy_backend_dir(env: dict[str, str]) -> Path | None:
    """The DIY backend's directory when the engine runs on a local `file://` backend."""
    url = env.get("PULUMI_BACKEND_URL", "")
    if not url.startswith("file://"):
        return None
    path = url[len("file://") :].split("?", 1)[0]
    return Path(os.path.expanduser(path))


def engine_lock_files(backend: Path, project: str, stack: str) -> list[Path]:
    """The DIY backend's lock files of a stack (`.pulumi/locks/<org>/<project>/<stack>/`)."""
    return sorted((backend / ".pulumi" / "locks").glob(f"*/{project}/{stack}/*.json"))


def clear_engine_locks(
    backend: Path, project: str, stack: str, say: Say, wait: float = ORPHAN_WAIT_SECONDS
) -> list[str]:
    """Remove the engine's stack locks whose process is gone; wait for live ones to go."""
    done: list[str] = []
    deadline = time.monotonic() + wait
    told: set[Path] = set()
    while True:
        waiting = []
        for path in engine_lock_files(backend, project, stack):
            try:
                info = json.loads(path.read_text(encoding="utf-8"))
                pid, host = int(info["pid"]), str(info["hostname"])
            except (OSError, ValueError, KeyError, TypeError):
                continue  # being written or removed right now: look again
            if host != socket.gethostname():
                done.append(f"left the engine's lock {path} alone: it is from host {host}")
                continue
            if process_alive(pid):
                waiting.append((path, pid))
                continue
            path.unlink(missing_ok=True)
            line = (
                f"removed the engine's stale stack lock {path} "
                f"(pulumi pid {pid} is gone; locked at {info.get('timestamp')})"
            )
            say(line)
            done.append(line)
        if not waiting:
            return done
        for path, pid in waiting:
            if path not in told:
                say(f"waiting for pulumi pid {pid}, left running by the interrupted operation")
                told.add(path)
        if time.monotonic() > deadline:
            line = f"pulumi pid {waiting[0][1]} still holds {waiting[0][0]}: left alone"
            done.append(line)
            return done
        time.sleep(0.1)


# --- processes left running --------------------------------------------------------------


@dataclass(frozen=True)
class Leftover:
    """A live process that carries a marker in its environment."""

    pid: int
    cmdline: str


def _carries(pid: int, marker: bytes) -> bool:
    """Whether ``pid``'s environment (as it was at exec) holds ``marker`` (``NAME=value``).
    A zombie's or another user's environment cannot be read: never ours to end."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return marker in environ.split(b"\0")


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return " ".join(raw.decode(errors="replace").split("\0")).strip()[:200] or "?"


def processes_marked(name: str, value: str) -> list[Leftover]:
    """The live processes of this user whose environment holds ``name=value`` (Linux: read
    from /proc; elsewhere there is nothing to read and the list is empty)."""
    marker = f"{name}={value}".encode()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    me = os.getpid()
    return [
        Leftover(int(e), _cmdline(int(e)))
        for e in entries
        if e.isdigit() and int(e) != me and _carries(int(e), marker)
    ]


class _Target:
    """One process to end, pinned by a pidfd when the kernel has them: the pidfd names that
    process and no other, so a pid reused after it exits is neither signalled nor mistaken
    for it, and it turns readable only once the process has exited (its environment goes
    unreadable earlier, while it is still tearing down)."""

    def __init__(self, pid: int, marker: bytes) -> None:
        self.pid, self.marker = pid, marker
        try:
            self.fd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:
            self.fd = -1  # gone already
        except OSError:  # a kernel without pidfds: the environment check alone
            self.fd = None
        if self.fd is not None and self.fd >= 0 and not _carries(pid, marker):
            self.close()  # not (or no longer) ours
            self.fd = -1

    def signal(self, sig: int) -> bool:
        """Send ``sig`` if the process is still the marked one; whether it was sent."""
        if self.fd == -1:
            return False
        try:
            if self.fd is None:
                if not _carries(self.pid, self.marker):
                    return False
                os.kill(self.pid, sig)
            else:
                signal.pidfd_send_signal(self.fd, sig)
            return True
        except ProcessLookupError:
            return False

    def running(self) -> bool:
        if self.fd == -1:
            return False
        if self.fd is None:
            return _carries(self.pid, self.marker)
        ready, _, _ = select.select([self.fd], [], [], 0)
        return not ready

    def close(self) -> None:
        if self.fd is not None and self.fd >= 0:
            os.close(self.fd)


def end_processes(
    name: str,
    value: str,
    why: str,
    say: Say,
    grace: float = TERM_GRACE_SECONDS,
    only: Collection[int] | None = None,
) -> list[str]:
    """End every process whose environment holds ``name=value`` (of those, only the pids in
    ``only`` when given): SIGTERM, then SIGKILL for those still there after ``grace``
    seconds. A process counts as ended once it has exited, not when it starts to. Returns
    (and says) one line per process."""
    marker = f"{name}={value}".encode()
    found = [p for p in processes_marked(name, value) if only is None or p.pid in only]
    targets = {p.pid: _Target(p.pid, marker) for p in found}
    try:
        sent = {p.pid: p for p in found if targets[p.pid].signal(signal.SIGTERM)}
        how = dict.fromkeys(sent, "SIGTERM")
        deadline = time.monotonic() + grace
        while True:
            alive = [pid for pid in sent if targets[pid].running()]
            if not alive:
                break
            if time.monotonic() > deadline:
                if any(how[pid] == "SIGKILL" for pid in alive):
                    break  # not gone even after SIGKILL (uninterruptible sleep): reported below
                for pid in alive:
                    if targets[pid].signal(signal.SIGKILL):
                        how[pid] = "SIGKILL"
                deadline = time.monotonic() + grace
            time.sleep(0.05)
        lines = []
        for pid, proc in sent.items():
            if targets[pid].running():
                line = f"could not end pid {pid} ({proc.cmdline}), left running by {why}"
            else:
                line = f"ended pid {pid} ({proc.cmdline}) with {how[pid]}, left running by {why}"
            say(line)
            lines.append(line)
        return lines
    finally:
        for target in targets.values():
            target.close()


def end_engine_processes(journal: Journal, say: Say) -> list[str]:
    """End the engine processes the interrupted operation of ``journal`` left running."""
    if journal.host != socket.gethostname():
        line = f"its engine processes, if any are left, are on host {journal.host}: not here"
        say(line)
        return [line]
    return end_processes(
        OPERATION_ENV, journal.operation, f"interrupted operation {journal.operation}", say
    )


def clear_engine_leftovers(
    journal: Journal, backend: Path | None, project: str, stack: str, say: Say, wait: float
) -> list[str]:
    """The engine's stack lock and processes, as the interrupted operation left them.

    A live `pulumi` that holds the lock is waited for first (up to ``wait`` seconds): it
    may be finishing the update. What still carries the operation's id after that is ended;
    if that ended a `pulumi` that outlived the wait, the lock it held is now stale and goes
    too. (Pending operations are cleared afterwards: :func:`clear_pending_operations`.)
    """
    lines = clear_engine_locks(backend, project, stack, say, wait) if backend else []
    ended = end_engine_processes(journal, say)
    lines += ended
    if backend is not None and ended:
        lines += clear_engine_locks(backend, project, stack, say, wait=0)
    return list(dict.fromkeys(lines))


def pending_operations(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    inner = deployment.get("deployment") or {}
    ops = inner.get("pending_operations") or []
    return [op for op in ops if isinstance(op, dict)]


def describe_pending(op: dict[str, Any]) -> str:
    resource = op.get("resource") or {}
    return f"{op.get('type', '?')} {resource.get('urn', '?')}"


def clear_pending_operations(
    cli: Callable[..., Any], project_dir: Path, stack: str, scratch: Path, say: Say
) -> list[str]:
    """Drop the checkpoint's pending operations the way `pulumi stack import` does.

    ``cli`` runs the `pulumi` CLI (:meth:`servestack.engine.Engine.cli`).
    """
    scratch.mkdir(parents=True, exist_ok=True)
    exported = scratch / f"{stack}.checkpoint.json"
    try:
        cli(project_dir, "stack", "export", "--stack", stack, "--file", str(exported))
        deployment = json.loads(exported.read_text(encoding="utf-8"))
        pending = pending_operations(deployment)
        if not pending:
            return []
        # The CLI's import removes every pending operation (warning once per operation).
        cli(project_dir, "stack", "import", "--stack", stack, "--file", str(exported))
    finally:
        exported.unlink(missing_ok=True)
    lines = [
        f"cleared the pending operation {describe_pending(op)} from the checkpoint "
        "(the engine was stopped before it finished; the update below runs it again)"
        for op in pending
    ]
    for line in lines:
        say(line)
    return lines


class GracefulInterrupt:
    """While the engine runs, a first SIGINT is the engine's to handle, not a crash.

    Ctrl-C in a terminal signals the whole foreground process group: `pulumi` gets it too,
    stops starting new steps, lets the running ones finish, saves its checkpoint and
    releases its lock. Raising KeyboardInterrupt here instead would close the pipes the
    Automation API reads `pulumi` through and stop waiting for it. So the first SIGINT is
    noted (:attr:`interrupted`) and the engine is waited for; a second one raises
    KeyboardInterrupt at once. Only the main thread can catch signals: elsewhere
    (``wait=False`` operations) this does nothing.
    """

    def __init__(self, say: Say | None) -> None:
        self.say = say
        self.interrupted = 0
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> GracefulInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.interrupted += 1
        if self.interrupted > 1:
            raise KeyboardInterrupt
        if self.say is not None:
            self.say("interrupted: waiting for the engine to stop cleanly (Ctrl-C again: stop now)")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
