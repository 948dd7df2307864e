"""`servestack up`'s progress line: resources the engine finished, out of those the program
registers, and deletions apart (tests/cluster/test_kill_matrix.py checks the total against
the real engine's events, with a local pool and a deletion)."""

from __future__ import annotations

from typing import Any

from servestack.ops.stack_up import Progress


def _outputs(urn: str, op: str) -> dict[str, Any]:
    return {"resOutputsEvent": {"metadata": {"urn": urn, "op": op}}}


def test_a_replacement_counts_once_and_deletions_apart() -> None:
    seen: list[str] = []
    p = Progress(3, on_change=seen.append)
    for event in (
        {"preludeEvent": {}},
        _outputs("urn:a", "create"),
        _outputs("urn:b", "create-replacement"),
        _outputs("urn:b", "replace"),
        _outputs("urn:b", "delete-replaced"),
        _outputs("urn:gone", "delete"),
        _outputs("urn:c", "same"),
    ):
        p.event(event)
    assert p.text().startswith("3/3 resources, 1 deleted, ")
    assert [line.split(",")[0] for line in seen] == [
        "1/3 resources",
        "2/3 resources",
        "2/3 resources",
        "2/3 resources",
        "2/3 resources",
        "3/3 resources",
    ]


def test_no_deletion_is_not_mentioned() -> None:
    p = Progress(1)
    p.event(_outputs("urn:a", "update"))
    assert p.text().startswith("1/1 resources, ")
    assert "deleted" not in p.text()
