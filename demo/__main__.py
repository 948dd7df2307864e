"""`python -m servestack.demo` (what `make demo` runs): see :mod:`servestack.demo`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rich.console import Console
from servestack.demo import cluster, render


def main() -> int:
    console = Console(width=max(120, Console().width))
    #: Where state, manifests and scratch projects go (the checkout unless told otherwise).
    root = Path(os.environ.get("SERVESTACK_DEMO_DIR") or render.REPO).resolve()
    code = render.run(console, root)
    if code or os.environ.get("SERVESTACK_DEMO") == "render":
        return code
    return cluster.run(console, root)


if __name__ == "__main__":
    sys.exit(main())
