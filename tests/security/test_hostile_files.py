"""Every file of the hostile-file corpus (tests/security/hostile_files.py) through the real
`servestack validate`, each in a fresh process: the outcome the corpus records, one clear
line (or the documented summary), no traceback, and memory growth well under 100 MB.

Time is not asserted here (these machines are noisy): `python -m
tests.security.hostile_files --report` measures it into tests/security/RESULTS.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.security.hostile_files import CASES, Case, measure

#: What reading any one hostile file may add to the process's peak memory, in MB.
MAX_GROWTH_MB = 100


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hostile_file_gets_its_answer_within_bounds(case: Case, tmp_path: Path) -> None:
    m = measure(case, tmp_path)
    assert "crashed" not in m, m
    assert (m["code"], m["traceback"]) == (case.code, False), m
    assert case.says in m["first"] or case.says in m["last"], m
    if case.code != 0 and not case.says.startswith("..."):
        assert m["lines"] == 1, m
    assert m["growth_mb"] < MAX_GROWTH_MB, m
