"""servestack's tests, by tier: unit, review, security, engine, cluster, monitoring, bench."""

from pathlib import Path

#: The repository checkout the tests run in.
REPO = Path(__file__).resolve().parent.parent
