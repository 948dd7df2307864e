"""One operation at a time per stack: an OS file lock under the project's state directory.

An operation takes `.servestack/locks/<stack>.lock` before it reads the stack file and
keeps it until the engine is done. The lock is `flock(2)` on that file, so the kernel
releases it when the holder's process ends, however it ends (`kill -9` included): a lock
is never left behind. While it holds the lock, the holder keeps a JSON description of
itself in the file (pid, host, operation, since), which a waiting operation shows.

Stacks have a lock each, so operations on different stacks run in parallel.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

#: How long an operation waits for another one on the same stack by default, in seconds.
DEFAULT_TIMEOUT_SECONDS = 600.0
#: How often a waiting operation tries again, in seconds.
_POLL_SECONDS = 0.1


def now() -> str:
    """A UTC timestamp with milliseconds: operations one after the other stay ordered."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot; Linux), to tell it from a later
    process that got the same pid. None where /proc is not there or the pid is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22; the command name (field 2) may hold spaces and parentheses: skip past it.
    return stat.rsplit(")", 1)[1].split()[19]


def process_alive(pid: int, start: str | None = None) -> bool:
    """Whether ``pid`` is still the process that recorded ``start`` (see :func:`process_start`)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    if _zombie(pid):
        return False  # ended; only its parent has not collected its status yet
    if start is None:
        return True
    current = process_start(pid)
    return current is None or current == start


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


@dataclass(frozen=True)
class Holder:
    """Who holds a stack's lock, as the holder wrote it."""

    pid: int
    host: str
    operation: str
    since: str
    pid_start: str | None = None

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, running {self.operation} since {self.since}"


class StackBusy(Exception):
    """Another operation holds the stack's lock (and the caller would not, or no longer,
    wait)."""

    def __init__(self, stack: str, holder: Holder | None, timeout: float) -> None:
        who = holder.describe() if holder else "a process that has not said who it is yet"
        how = f"after waiting {timeout:g}s" if timeout else "(not waiting: --no-queue)"
        super().__init__(f"stack {stack} is busy {how}: the lock is held by {who}")
        self.stack = stack
        self.holder = holder


class StackLock:
    """The lock of one stack. Not re-entrant: a second :meth:`acquire` of the same stack,
    even from the same process, waits for the first to be released."""

    def __init__(self, state_dir: Path, stack: str) -> None:
        self.stack = stack
        self.path = state_dir / "locks" / f"{stack}.lock"
        self.operation = ""
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(
        self,
        operation: str,
        *,
        timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
        on_wait: Callable[[Holder | None], None] | None = None,
    ) -> None:
        """Take the lock, waiting up to ``timeout`` seconds (0: not at all; None: forever).

        ``on_wait`` is called once, with the holder, when the lock is busy.

        Raises:
            StackBusy: the lock is still held when the timeout ends.
        """
        if self._fd is not None:
            raise RuntimeError(f"the lock of stack {self.stack} is already held here")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        start = time.monotonic()
        told = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    waited = time.monotonic() - start
                    if timeout is not None and waited >= timeout:
                        raise StackBusy(self.stack, self.holder(), timeout) from None
                    if not told and on_wait is not None:
                        on_wait(self.holder())
                    told = True
                    time.sleep(_POLL_SECONDS)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self.describe(operation)

    def describe(self, operation: str) -> None:
        """Say who holds the lock (the holder updates it as its operation gets an id)."""
        assert self._fd is not None
        self.operation = operation
        pid = os.getpid()
        holder = Holder(pid, socket.gethostname(), operation, now(), process_start(pid))
        data = json.dumps(asdict(holder)).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def holder(self) -> Holder | None:
        """Who holds the lock now, if they said (a holder writes right after it locks)."""
        for _ in range(3):
            try:
                data = json.loads(self.path.read_bytes() or b"null")
            except OSError:
                return None
            except ValueError:  # caught mid-write
                time.sleep(0.01)
                continue
            if isinstance(data, dict):
                try:
                    return Holder(**data)
                except TypeError:
                    return None
            return None
        return None

    def hand_over(self) -> int:
        """The lock's file descriptor, for a child process to inherit (``pass_fds``); after
        :meth:`let_go` the child alone holds the lock (see :meth:`adopt`)."""
        assert self._fd is not None
        return self._fd

    def let_go(self) -> None:
        """Close this process's descriptor without unlocking: a child that inherited it
        (:meth:`hand_over`) keeps the lock, which is the open file's, not the process's."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    @classmethod
    def adopt(cls, state_dir: Path, stack: str, fd: int, operation: str) -> StackLock:
        """The lock a parent handed over as descriptor ``fd``, held from now on by this
        process (which says so in the lock file).

        Raises:
            RuntimeError: ``fd`` is not that stack's lock file, or not locked.
        """
        lock = cls(state_dir, stack)
        if not lock.path.exists() or not os.path.samestat(os.fstat(fd), lock.path.stat()):
            raise RuntimeError(f"descriptor {fd} is not the lock of stack {stack}")
        try:
            # Already ours (the same open file): this succeeds at once; anyone else's: no.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"descriptor {fd} does not hold the lock of stack {stack}") from None
        os.set_inheritable(fd, False)
        lock._fd = fd
        lock.describe(operation)
        return lock

    def release(self) -> None:
        """Give the lock up (idempotent). The file stays: deleting a lock file that
        another process has open and is about to lock would let two hold "the" lock."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> StackLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:  # a dropped Plan must not keep its stack locked
        self.release()
