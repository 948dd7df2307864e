"""`python -m demo` (what `make demo` runs): see :mod:`demo`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rich.console import Console

from demo import cluster, render
from harness import REPO, use_checkout_engine


def main() -> int:
    use_checkout_engine()
    console = Console(width=max(120, Console().width))
    #: Where state, manifests and scratch projects go (the checkout unless told otherwise).
    root = Path(os.environ.get("SERVESTACK_DEMO_DIR") or REPO).resolve()
    code = render.run(console, root)
    if code or os.environ.get("SERVESTACK_DEMO") == "render":
        return code
    return cluster.run(console, root)


if __name__ == "__main__":
    sys.exit(main())
