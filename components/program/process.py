"""Interpreter settings for the process that runs a stack program.

A Pulumi program is a short, allocation-heavy process whose heap stays almost entirely live
until it exits: every resource, its inputs and its outputs are referenced by the SDK until
the deployment ends. CPython 3.11's generational collector keeps re-traversing that growing
live heap, so with default thresholds the cost per deployment grows with the stack (measured
by `make bench`: 16 ms per deployment at N = 10, 31 ms at N = 1,000 under mocks; 15 and
18 ms with these settings).

:func:`tune_gc` freezes what exists at start-up (imported modules) and makes young-generation
collections rare and older-generation ones rarer still. Cyclic garbage is still collected; a
stack of 1,000 deployments peaks about 5% above the default's memory (figures in
bench/RESULTS.md). It changes process-global state, so only entry points call it:
servestack's `__main__.py` does; a program of your own that composes the components may.
"""

from __future__ import annotations

import gc
import os

#: Allocations between young-generation collections (CPython's default is 700).
YOUNG_THRESHOLD = 1_000_000
#: Young collections per middle one, and middle ones per full one (defaults: 10, 10).
OLDER_THRESHOLD = 100

#: Set to ``default`` to keep CPython's collector settings (for comparison or suspicion).
ENV = "SERVESTACK_PROGRAM_GC"


_applied = False


def tune_gc() -> bool:
    """Apply the program's collector settings, once per process; returns False when
    ``SERVESTACK_PROGRAM_GC`` asks for CPython's defaults."""
    global _applied
    if os.environ.get(ENV, "").strip().lower() == "default":
        return False
    if not _applied:
        gc.freeze()
        gc.set_threshold(YOUNG_THRESHOLD, OLDER_THRESHOLD, OLDER_THRESHOLD)
        _applied = True
    return True
