"""The docs' transcripts are real runs: `tools/transcripts.py --check` regenerates every
offline one (commands run for real on a scratch copy of the stacks) and compares."""

from __future__ import annotations

import importlib.util
import re
import sys
from types import ModuleType

from tests import REPO


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("transcripts", REPO / "tools" / "transcripts.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["transcripts"] = module
    spec.loader.exec_module(module)
    return module


transcripts = _tool()


def test_offline_transcripts_are_current() -> None:
    said: list[str] = []
    code = transcripts.main(["--check"], report=said.append)
    assert code == 0, "\n".join(said)


def test_every_block_has_a_recipe_and_every_recipe_a_block() -> None:
    used = {name for doc in transcripts.load_docs() for name in doc.blocks}
    assert used == set(transcripts.BY_NAME)


def test_blocks_are_not_empty() -> None:
    """An empty block would pass the check only if its recipe printed nothing."""
    for doc in transcripts.load_docs():
        for m in transcripts.BLOCK_RE.finditer(doc.text):
            assert "\n$ " in "\n" + m.group("body"), f"{doc.path.name}: {m.group('name')} is empty"


def test_one_path_dialect_in_the_docs() -> None:
    """Field paths read `deployments.<name>.x` everywhere: never `deployments[x]` or
    `deployments[].x`, and the import name is `servestack`, not `components`."""
    stale = re.compile(r"deployments\[|nodePools\[|from components\b|import components\b")
    for doc in transcripts.load_docs():
        hits = [line for line in doc.text.splitlines() if stale.search(line)]
        assert hits == [], f"{doc.path.name}: {hits}"
