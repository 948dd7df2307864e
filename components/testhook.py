"""Named pause points that let tests stop a process exactly where they want to kill it.

``SERVESTACK_TEST_PAUSE=stack-written`` (a comma-separated list of points) and
``SERVESTACK_TEST_PAUSE_DIR=DIR`` make a process that reaches a listed point write
``DIR/<point>.<pid>.ready`` and wait until ``DIR/<point>.go`` exists. A test
then signals a process that is known to be at that point, instead of guessing with
timing. Unset (always, outside tests), :func:`pause` returns at once.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

ENV = "SERVESTACK_TEST_PAUSE"
DIR_ENV = "SERVESTACK_TEST_PAUSE_DIR"


def wanted(point: str) -> bool:
    """Whether a test asked to stop at ``point``."""
    points = os.environ.get(ENV)
    return bool(points) and point in (points or "").split(",")


def pause(point: str) -> None:
    """Stop at ``point`` when a test asked for it; see the module docstring."""
    if not wanted(point):
        return
    where = Path(os.environ.get(DIR_ENV) or ".")
    where.mkdir(parents=True, exist_ok=True)
    go = where / f"{point}.go"
    (where / f"{point}.{os.getpid()}.ready").touch()
    while not go.exists():
        time.sleep(0.02)
