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
import resource
import sys
import time

from bench.handwritten_program import handwritten, handwritten_with_layers
from bench.stacks import stack_raw
from servestack.config.validation import parse_stack
from servestack.program.process import tune_gc
from servestack.program.stack import build
from tests.mocks import run_program

#: `layers`: the hand-written program plus the components' empty ComponentResources (the
#: floor of the overhead ratio, see :func:`bench.handwritten_program.handwritten_with_layers`).
PROGRAMS = {"components": build, "handwritten": handwritten, "layers": handwritten_with_layers}


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.mock_run")
    ap.add_argument("--variant", choices=sorted(PROGRAMS), required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--gc", choices=["program", "default"], default="program")
    ap.add_argument(
        "--profile",
        metavar="FILE",
        help="also write cProfile stats of the measured run (read with `python -m pstats FILE`)",
    )
    args = ap.parse_args()
    program = PROGRAMS[args.variant]
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
