"""Shared by every tier: the engine the tests run is the checkout's own build, never a
`pulumi` that happens to be on PATH, and never a backend the developer is logged in to."""

from __future__ import annotations

import os

import pytest

from tests import REPO

pytest_plugins = ["tests.tiers"]

if "SERVESTACK_ENGINE_BIN" not in os.environ and (REPO / ".engine" / "bin").exists():
    os.environ["SERVESTACK_ENGINE_BIN"] = str(REPO / ".engine" / "bin")
os.environ.pop("PULUMI_BACKEND_URL", None)


@pytest.fixture(autouse=True)
def _no_stack_file_limit_from_earlier_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """`servestack --max-file-bytes` sets the limit in its process's environment; tests that
    run the CLI in-process must not hand it to the tests after them."""
    # setenv first: a delenv of an unset variable records nothing, so nothing would be undone.
    monkeypatch.setenv("SERVESTACK_MAX_STACK_FILE_BYTES", "unset-by-the-fixture")
    monkeypatch.delenv("SERVESTACK_MAX_STACK_FILE_BYTES")
