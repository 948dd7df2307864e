"""One measurement of the mocks benchmark, in its own process (as a stack program runs).

`python -m bench.mock_run --variant components|handwritten|layers --n N --gc program|default
[--profile FILE]` prints one JSON line: seconds for the program under mocks and the
process's peak RSS.
Imports and first-call costs are paid before the clock starts, on a two-deployment stack.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import resource
import sys
import time

#: `layers`: the hand-written program plus the components' empty ComponentResources (the
#: floor of the overhead ratio, see :func:`bench.handwritten_program.handwritten_with_layers`).
VARIANTS = ("components", "handwritten", "layers")


def command(variant: str, n: int, gc_mode: str = "program") -> tuple[list[str], dict[str, str]]:
    """The command line and environment of one measurement in a fresh process. The
    collector settings are ``gc_mode``'s alone: the caller's `SERVESTACK_PROGRAM_GC` is
    dropped."""
    argv = [sys.executable, "-m", "bench.mock_run", "--variant", variant, "--n", str(n)]
    env = {k: v for k, v in os.environ.items() if k != "SERVESTACK_PROGRAM_GC"}
    return [*argv, "--gc", gc_mode], env


def main() -> int:
    # Imported here: the bench's driver builds the command line without the Pulumi SDK.
    from bench.handwritten_program import handwritten, handwritten_with_layers
    from bench.stacks import stack_raw
    from servestack.config.validation import parse_stack
    from servestack.program.process import tune_gc
    from servestack.program.stack import build
    from tests.mocks import run_program

    programs = {"components": build, "handwritten": handwritten, "layers": handwritten_with_layers}
    ap = argparse.ArgumentParser(prog="python -m bench.mock_run")
    ap.add_argument("--variant", choices=VARIANTS, required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--gc", choices=["program", "default"], default="program")
    ap.add_argument(
        "--profile",
        metavar="FILE",
        help="also write cProfile stats of the measured run (read with `python -m pstats FILE`)",
    )
    args = ap.parse_args()
    program = programs[args.variant]
    if args.gc == "program" and not tune_gc():  # as __main__.py does, after its imports
        raise SystemExit("SERVESTACK_PROGRAM_GC=default is set: unset it, or use --gc default")
    warm = parse_stack(stack_raw(2))
    run_program(lambda: program(warm, "bench"))
    config = parse_stack(stack_raw(args.n))
    profiler = cProfile.Profile() if args.profile else None
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    recorder = run_program(lambda: program(config, "bench"))
    seconds = time.perf_counter() - started
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    print(
        json.dumps(
            {
                "s": seconds,
                "resources": len(recorder.resources),
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
