"""Shared by every tier: the engine the tests run is the checkout's own build, never a
`pulumi` that happens to be on PATH, and never a backend the developer is logged in to."""

from __future__ import annotations

import os

from tests import REPO

if "SERVESTACK_ENGINE_BIN" not in os.environ and (REPO / ".engine" / "bin").exists():
    os.environ["SERVESTACK_ENGINE_BIN"] = str(REPO / ".engine" / "bin")
os.environ.pop("PULUMI_BACKEND_URL", None)
