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
    # The config reference has a test of its own (test_reference.py).
    argv = ["--check"]
    for recipe in transcripts.RECIPES:
        if not recipe.engine:
            argv += ["--only", recipe.name]
    said: list[str] = []
    code = transcripts.main(argv, report=said.append)
    assert code == 0, "\n".join(said)


def test_every_block_has_a_recipe_and_every_recipe_a_block() -> None:
    used = {name for doc in transcripts.load_docs() for name in doc.blocks}
    assert used == set(transcripts.BY_NAME)


def test_offline_blocks_are_not_empty() -> None:
    """An empty block would pass the check only if its recipe printed nothing. (An empty
    engine block fails the engine tier's check, tests/engine/test_docs_transcripts.py.)"""
    for doc in transcripts.load_docs():
        for m in transcripts.BLOCK_RE.finditer(doc.text):
            if transcripts.BY_NAME[m.group("name")].engine:
                continue
            assert "\n$ " in "\n" + m.group("body"), f"{doc.path.name}: {m.group('name')} is empty"


def test_one_path_dialect_in_the_docs() -> None:
    """Field paths read `deployments.<name>.x` everywhere: never `deployments[x]` or
    `deployments[].x`, and the import name is `servestack`, not `components`."""
    stale = re.compile(r"deployments\[|nodePools\[|from components\b|import components\b")
    for doc in transcripts.load_docs():
        hits = [line for line in doc.text.splitlines() if stale.search(line)]
        assert hits == [], f"{doc.path.name}: {hits}"


def test_normalise_hides_what_changes_from_run_to_run() -> None:
    scratch = transcripts.Scratch(engine=False)
    try:
        text = (
            f"project {scratch.root}; backend file://{scratch.root}/.pulumi-state/backend\n"
            "operation 0d4521ad0e3f   \n"
            "updated_at 2026-11-22T06:31:23+00:00 after 0d4521ad0e3f, before 65962accd3bf\n"
            "--- stacks/Pulumi.prod.yaml\t2026-11-23 18:58:36.373268293 +0000\n"
        )
        assert scratch.normalise(text) == (
            "project ~/serving; backend file://~/serving/.pulumi-state/backend\n"
            "operation 000000000001\n"
            "updated_at 2025-01-01T12:00:00+00:00 after 000000000001, before 000000000002\n"
            "--- stacks/Pulumi.prod.yaml\n"
        )
    finally:
        scratch.close()
