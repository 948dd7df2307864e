"""The development harness: what the demo, the benchmarks and the tests share and users never
run. It knows the repository's layout (where `make` builds the engine and the local cluster);
the servestack package does not, and the wheel ships none of this (tests/packaging checks)."""

from __future__ import annotations

import os
from pathlib import Path

#: The servestack checkout this harness lives in.
REPO = Path(__file__).resolve().parent.parent
#: Where `make engine` links the engine build; `make` hands it over as SERVESTACK_ENGINE_BIN.
ENGINE_BIN = REPO / ".engine" / "bin"


def use_checkout_engine() -> Path:
    """Point servestack at the checkout's engine build unless SERVESTACK_ENGINE_BIN already
    names one (the package no longer looks for a checkout on its own)."""
    os.environ.setdefault("SERVESTACK_ENGINE_BIN", str(ENGINE_BIN))
    return Path(os.environ["SERVESTACK_ENGINE_BIN"])
