"""`make test` ends with the time of each tier (tests/tiers.py): the clock is registered in
every run, and it files each test under its folder below tests/."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.tiers import TierClock


def test_the_tier_clock_runs_in_every_session(request: pytest.FixtureRequest) -> None:
    assert isinstance(request.config.pluginmanager.get_plugin("servestack-tier-clock"), TierClock)


@pytest.mark.parametrize(
    ("nodeid", "tier"),
    [
        ("tests/engine/test_ops.py::test_x", "engine"),
        ("tests/cluster/programs/x/test_y.py::test_z[a/b::c]", "cluster"),
        ("tests/test_top.py::test_t", "top"),
        ("elsewhere/test_z.py::test_t", "other"),
    ],
)
def test_a_test_is_filed_under_its_folder(nodeid: str, tier: str) -> None:
    report = SimpleNamespace(nodeid=nodeid)
    assert TierClock.tier(report) == tier  # type: ignore[arg-type]
