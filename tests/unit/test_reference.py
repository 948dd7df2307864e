"""docs/reference.md's config reference is generated from the models and the field-effect table."""

from servestack.contract.effects import TABLE
from servestack.contract.reference import BEGIN, END, render, rows
from tests import REPO

REFERENCE = REPO / "docs" / "reference.md"
EFFECTS = {"no change", "in-place", "restart", "replace", "forbidden"}


def test_docs_reference_is_current() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    current = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert current == render(), "run `.venv/bin/python tools/transcripts.py` (or `python -m "
    "servestack.contract.reference docs/reference.md`) to regenerate docs/reference.md"


def test_every_leaf_row_has_an_effect() -> None:
    leaves = [r for r in rows() if r[1] != "object" and not r[1].startswith("list of object")]
    assert leaves
    assert [r for r in leaves if r[3] not in EFFECTS] == []


def test_rows_use_the_table_dialect() -> None:
    """Every row names its field as the field-effect table does (`deployments.<name>.x`)."""
    paths = [r[0] for r in rows()]
    assert "deployments.<name>.resources.cpu" in paths
    assert "nodePools.<name>.gpu.type" in paths
    assert [p for p in paths if "[" in p] == []
    # A leaf row's path is a table key, or falls under one (mappings such as env, tags).
    leaves = [r[0] for r in rows() if r[3]]
    assert [p for p in leaves if not any(p == k or p.startswith(k + ".") for k in TABLE)] == []
