"""The README's config reference is generated from the models and the field-effect table."""

from pathlib import Path

from components.reference import BEGIN, END, render, rows

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_reference_is_current() -> None:
    text = README.read_text()
    current = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert current == render(), "run `python -m components.reference` and update README.md"


def test_every_leaf_row_has_an_effect() -> None:
    leaves = [r for r in rows() if r[1] != "object" and not r[1].startswith("list of object")]
    assert leaves
    assert all(r[3] in {"in-place", "restart", "replace", "forbidden"} for r in leaves), [
        r for r in leaves if not r[3]
    ]
