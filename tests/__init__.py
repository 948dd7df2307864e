"""servestack's tests, by tier: unit, review, security, engine, cluster, monitoring, bench."""

import re
import shutil
import sys
from pathlib import Path

#: The repository checkout the tests run in.
REPO = Path(__file__).resolve().parent.parent
#: Stacks the tests use besides the repository's own (stacks/): tests/stacks/.
TEST_STACKS = REPO / "tests" / "stacks"


def stack_text(stack: str) -> str:
    """The text of stack ``stack``: the repository's stacks/, else the tests' own."""
    name = f"Pulumi.{stack}.yaml"
    path = REPO / "stacks" / name
    return (path if path.exists() else TEST_STACKS / name).read_text(encoding="utf-8")


def copy_program(source: Path, dest: Path) -> Path:
    """A copy of a Pulumi project directory whose virtualenv is the one running the tests
    (its Pulumi.yaml names the checkout's `.venv` by a path relative to where it lives)."""
    shutil.copytree(source, dest)
    project = dest / "Pulumi.yaml"
    text = project.read_text(encoding="utf-8")
    text, n = re.subn(r"(?m)^(\s*virtualenv:\s*)\S+$", lambda m: m[1] + sys.prefix, text)
    assert n == 1, f"{project}: no virtualenv option to point at {sys.prefix}"
    project.write_text(text, encoding="utf-8")
    return dest
