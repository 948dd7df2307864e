"""Polling with a deadline: the one loop the demo, the operations' tests and the cluster and
monitoring tiers wait with."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    what: str, check: Callable[[], T | None], timeout: float = 120, every: float = 0.5
) -> T:
    """Call ``check`` every ``every`` seconds until it returns something truthy, and return
    that; after ``timeout`` seconds raise TimeoutError naming ``what`` and the last value."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(every)
