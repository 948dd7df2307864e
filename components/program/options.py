"""Resource options amended by the program's stack transformations, cheaply.

A stack transformation runs once for every resource the program registers, so what it
costs is paid about ten times per deployment. ``ResourceOptions.merge`` copies and
re-normalises every option (providers, dependencies, hooks, a dozen lists): about 27 us a
call, 8 % of what the components cost over hand-written resources under mocks (measured
with callgrind, docs/benchmarks.md). :func:`amended` copies the options once and changes
only what it is given; the engine receives the same registration as from ``merge`` (the
SDK reads the untouched options the same way in either form; tests/unit/test_options.py
compares the two).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import pulumi


def amended(
    opts: pulumi.ResourceOptions | None,
    *,
    replace_on_changes: Sequence[str] = (),
    **fields: Any,
) -> pulumi.ResourceOptions:
    """A copy of ``opts`` with ``replace_on_changes`` appended to its own and each of
    ``fields`` (scalar options: ``protect``, ``delete_before_replace``, ``custom_timeouts``)
    set, as ``ResourceOptions.merge(opts, ResourceOptions(...))`` would; ``opts`` is left
    unchanged (a component passes one options object to all its children)."""
    out = copy.copy(opts) if opts is not None else pulumi.ResourceOptions()
    if replace_on_changes:
        out.replace_on_changes = [*(out.replace_on_changes or ()), *replace_on_changes]
    for name, value in fields.items():
        if not hasattr(out, name):
            raise TypeError(f"ResourceOptions has no option {name!r}")
        setattr(out, name, value)
    return out
