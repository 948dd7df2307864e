"""`servestack.program.process.tune_gc`: the stack program's collector settings, and the way out."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from servestack.program import process

CPYTHON_DEFAULTS = (700, 10, 10)


@pytest.fixture(autouse=True)
def cpython_defaults(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts from CPython's settings, whatever ran before, and leaves them."""
    before = gc.get_threshold()
    monkeypatch.setattr(process, "_applied", False)
    gc.unfreeze()
    gc.set_threshold(*CPYTHON_DEFAULTS)
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_program_settings_freeze_start_up_objects_and_raise_thresholds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(process.ENV, raising=False)
    assert gc.get_freeze_count() == 0
    assert process.tune_gc() is True
    assert gc.get_threshold() == (
        process.YOUNG_THRESHOLD,
        process.OLDER_THRESHOLD,
        process.OLDER_THRESHOLD,
    )
    assert gc.get_freeze_count() > 0
    assert gc.isenabled()  # cyclic garbage is still collected, only less often
    frozen = gc.get_freeze_count()
    assert process.tune_gc() is True  # a second call (tests run main() often) is a no-op
    assert gc.get_freeze_count() == frozen


def test_default_keeps_cpython_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(process.ENV, "default")
    assert process.tune_gc() is False
    assert gc.get_threshold() == CPYTHON_DEFAULTS
    assert gc.get_freeze_count() == 0
