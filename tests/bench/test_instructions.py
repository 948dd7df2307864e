"""The instruction count's reading of callgrind and its rows in bench/RESULTS.md."""

from __future__ import annotations

import pytest

from bench.instructions import collected
from bench.report import instruction_targets

SUMMARY = """==4242== Events    : Ir
==4242== Collected : 4058663812
==4242==
==4242== I   refs:      4,058,663,812
"""


def test_the_count_is_read_from_callgrinds_summary() -> None:
    assert collected("program output\n" + SUMMARY) == 4058663812


@pytest.mark.parametrize("stderr", ["", "Traceback (most recent call last):\n", SUMMARY * 2])
def test_no_single_summary_is_an_error(stderr: str) -> None:
    with pytest.raises(ValueError, match="callgrind summary"):
        collected(stderr)


def test_rows_say_met_or_missed_and_the_layers_share() -> None:
    rows = instruction_targets(
        {"n": 30, "ratio": {"handwritten": 1.0, "layers": 1.084, "components": 1.107}}
    )
    assert rows[0].endswith("| 1.107 | **missed** |")
    assert "| 1.084 (79 % of the components' extra instructions) |" in rows[1]
    met = instruction_targets(
        {"n": 30, "ratio": {"handwritten": 1.0, "layers": 1.05, "components": 1.08}}
    )
    assert met[0].endswith("| 1.08 | met |")


def test_a_machine_without_valgrind_says_so() -> None:
    (row,) = instruction_targets({"n": 30, "not_measured": "valgrind not found"})
    assert "not measured (valgrind not found)" in row
