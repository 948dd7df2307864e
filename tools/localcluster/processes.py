"""The components' processes, by recorded pid and start time, never by name: started detached
with their output appended to a log; stopped with SIGTERM, then SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from .common import COMPONENTS, ClusterError, _log

STOP_TIMEOUT = 15.0


def _proc_start_time(pid: int) -> int | None:
    """Start time (clock ticks since boot) of a live, non-zombie process, else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _alive(entry: dict[str, Any]) -> bool:
    start = _proc_start_time(int(entry["pid"]))
    return start is not None and start == entry["start"]


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _spawn(name: str, argv: list[str], log: Path, env: dict[str, str]) -> dict[str, Any]:
    """Start argv detached (own session, parent = init) with output appended to log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as f:
        f.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
    # sh starts the program in the background and prints its pid; the program is then not our
    # child, so it outlives this process and never lingers as our zombie.
    out = subprocess.run(
        [
            "sh",
            "-c",
            'log="$1"; shift; "$@" >>"$log" 2>&1 </dev/null & echo $!',
            "sh",
            str(log),
            *argv,
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        start_new_session=True,
    )
    pid = int(out.stdout.strip())
    start = None
    for _ in range(100):
        start = _proc_start_time(pid)
        if start is not None:
            break
        time.sleep(0.01)
    if start is None:
        raise ClusterError(f"{name} exited at once; see {log}")
    return {"pid": pid, "start": start, "argv0": argv[0], "log": str(log)}


def _stop_entries(entries: dict[str, dict[str, Any]], timeout: float = STOP_TIMEOUT) -> None:
    """Stop the recorded processes: first everything but etcd together, then etcd (the API
    server's graceful shutdown needs etcd; with etcd gone first it hangs until SIGKILL).
    SIGTERM, SIGKILL after timeout, and wait for each group to exit."""
    order = [n for n in reversed(COMPONENTS) if n in entries]
    order += [n for n in entries if n not in order]
    late = [n for n in order if n == "etcd"]
    early = [n for n in order if n != "etcd"]
    for group in (early, late):
        _stop_group({n: entries[n] for n in group}, timeout)


def _stop_group(entries: dict[str, dict[str, Any]], timeout: float) -> None:
    live = {n: e for n, e in entries.items() if _alive(e)}
    for name, e in live.items():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(e["pid"]), signal.SIGTERM)
        _log(f"stopping {name} (pid {e['pid']})")
    deadline = time.monotonic() + timeout
    while live and time.monotonic() < deadline:
        for name in list(live):
            _reap(int(live[name]["pid"]))
            if not _alive(live[name]):
                del live[name]
        time.sleep(0.05)
    for name, e in live.items():
        _log(f"{name} (pid {e['pid']}) ignored SIGTERM for {timeout:.0f}s: SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(e["pid"]), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while live and time.monotonic() < deadline:
        for name in list(live):
            _reap(int(live[name]["pid"]))
            if not _alive(live[name]):
                del live[name]
        time.sleep(0.05)
    if live:
        raise ClusterError(f"processes did not exit: {sorted(live)}")


def _wait(
    what: str, check: Any, timeout: float, procs: dict[str, dict[str, Any]], interval: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        for name, e in procs.items():
            if not _alive(e):
                raise ClusterError(
                    f"{name} exited while waiting for {what}; "
                    f"log {e['log']}:\n{_tail(Path(e['log']))}"
                )
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def _tail(path: Path, n: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"
