"""`python -m servestack.ops.worker OPERATION`: an operation that outlives the command that
started it (`--no-wait`).

The command plans the change under the stack's lock, records the operation, writes the plan
to `.servestack/operations/<operation>.plan` and starts this worker
(:func:`servestack.ops.detach.start`) in a session of its own (no terminal: Ctrl-C in the
command's terminal does not reach it), with its output in
`.servestack/operations/<operation>.log`. The worker inherits the lock's open file, so the
stack stays locked from the plan to the end of the operation with no gap in between, and the
kernel releases it when the worker ends, however it ends. The record names the worker's pid:
a killed worker reads ``interrupted``, and the next operation on the stack finishes its change
from the journal (:mod:`servestack.ops.interrupted`), as for a killed command.

The command says "go" on a pipe once the record names the worker; a worker whose command
died before that applies nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from servestack.ops import records
from servestack.ops.detach import GO, engine_of, plan_path
from servestack.ops.lock import StackLock, now
from servestack.ops.transaction import Plan, run
from servestack.ops.workspace import Workspace
from servestack.review.diff import diff_configs
from servestack.review.predict import parse_text


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(prog="servestack.ops.worker")
    args.add_argument("operation")
    args.add_argument("--lock-fd", type=int, required=True)
    args.add_argument("--go-fd", type=int, required=True)
    ns = args.parse_args(argv)
    with os.fdopen(ns.go_fd, "rb") as go:
        if go.read() != GO:
            print(f"{now()} the command that started operation {ns.operation} ended first")
            return 1
    state = Workspace().state  # the project around the directory the command started it in
    saved = json.loads(plan_path(state, ns.operation).read_text(encoding="utf-8"))
    ws = Workspace(Path(saved["project_dir"]), engine_of(saved))
    ws.say = lambda text: print(text, flush=True)
    op = records.load(ws.state, ns.operation)
    if op is None:
        print(f"{now()} no record of operation {ns.operation}")
        return 1
    lock = StackLock.adopt(ws.state, op.stack, ns.lock_fd, f"operation {op.id} (--no-wait)")
    source = str(ws.stack_file(op.stack))
    before = parse_text(saved["before_text"], source)
    after = parse_text(saved["after_text"], source)
    p = Plan(
        op.stack,
        saved["deployment"],
        saved["before_text"],
        saved["after_text"],
        before,
        after,
        diff_configs(before, after),
        notes=saved["notes"],
        steps=saved.get("steps") or [],
    )
    op.adopt()
    print(f"{now()} operation {op.id}: pid {op.pid}, stack {op.stack}", flush=True)
    try:
        run(ws, p, op, lambda text: print(text, end="", flush=True), lock)
    finally:
        plan_path(ws.state, op.id).unlink(missing_ok=True)
    print(f"\n{now()} operation {op.id}: {op.status}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
