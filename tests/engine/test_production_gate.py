"""The production gate inside the program, on the real engine (render mode): `pulumi preview`
and `pulumi up` refuse uncovered replacements and deletions with nothing applied; a covering
allowReplacements entry lets exactly its edit through and is then stale."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

import pytest

from servestack.config.stackfile import get_value, set_value
from servestack.config.validation import load_stack_config
from servestack.ops import operations as ops
from servestack.program.guards import REFUSED
from servestack.review.allowances import fingerprint, value_at
from servestack.review.diff import diff_configs
from servestack.review.predict import apply_edits
from tests.engine.conftest import Deployed, deploy

SPOT = "nodePools.a100.spot"
REASON = "spot capacity approved in CHG-2001"


def _files(out: Path) -> dict[str, str]:
    return {
        str(f.relative_to(out)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(out.rglob("*"))
        if f.is_file()
    }


def _state(d: Deployed) -> dict[str, dict[str, Any]]:
    """Each resource's URN -> its inputs and protect flag, as the checkpoint holds them."""
    deployment = d.engine.stack(d.project, d.stack).export_stack().deployment
    return {
        r["urn"]: {"inputs": r.get("inputs"), "protect": r.get("protect", False)}
        for r in deployment.get("resources", [])
    }


def _run(d: Deployed, *args: str) -> subprocess.CompletedProcess[str]:
    return d.engine.cli(d.project, *args, "--stack", d.stack, check=False)


def _protected(d: Deployed) -> set[str]:
    return {urn.rsplit("::", 1)[-1] for urn, r in _state(d).items() if r["protect"]}


@pytest.fixture
def prod(engine_ready: Path, tmp_path: Path) -> Any:
    d = deploy(tmp_path, "prod")
    yield d
    _run(d, "state", "unprotect", "--all", "--yes")
    d.engine.stack(d.project, d.stack).destroy(on_output=lambda _: None)


def _refused(d: Deployed, text: str, *expected: str, head: str = REFUSED) -> None:
    """`pulumi preview` and `pulumi up` of ``text`` fail naming ``expected``, and neither the
    checkpoint nor the rendered files change."""
    state, files = _state(d), _files(d.out)
    d.stack_file.write_text(text)
    try:
        for command in (("preview",), ("up", "--yes")):
            proc = _run(d, *command)
            output = proc.stdout + proc.stderr
            assert proc.returncode != 0, output
            assert head in output, output
            for line in expected:
                assert line in output, output
            assert "Traceback" not in output
            assert _state(d) == state
            assert _files(d.out) == files
    finally:
        d.stack_file.write_text(d.base)


def test_unchanged_prod_previews_no_changes_and_protects_what_always_exists(
    prod: Deployed,
) -> None:
    proc = _run(prod, "preview", "--expect-no-changes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {"a100", "llama-chat", "bert-sentiment", "bert-sentiment-ingress"} <= _protected(prod)
    # What an in-place edit may remove is never protected (stop/start, scaling).
    assert not {"bert-sentiment-pdb", "bert-sentiment-canary"} & _protected(prod)


def test_uncovered_node_pool_replacement_is_refused_by_preview_and_up(prod: Deployed) -> None:
    _refused(
        prod,
        set_value(prod.base, SPOT, True),
        f"{SPOT}: replace (deleted and created: NodePool/a100) in production needs an "
        "allowReplacements entry naming this edit: "
        f"{{path: {SPOT}, from: false, to: true",
    )


def test_uncovered_deployment_delete_is_refused_by_preview_and_up(prod: Deployed) -> None:
    text = apply_edits(prod.base, ops.delete_edits(prod.base, "llama-chat"))
    _refused(prod, text, "deployments.llama-chat: delete (deleted: deployments.llama-chat)")


def test_a_prefix_entry_no_longer_opens_the_gate(prod: Deployed) -> None:
    text = set_value(prod.base, SPOT, True)
    text = set_value(text, "allowReplacements", [{"path": "nodePools.a100", "reason": REASON}])
    _refused(
        prod,
        text,
        "allowReplacements.0: {path, reason} without from and to is no longer accepted",
        head="invalid servestack config",
    )


def test_stop_and_start_are_not_refused(prod: Deployed) -> None:
    base = "deployments.bert-sentiment.active"
    for active in (False, True):
        prod.stack_file.write_text(set_value(prod.base, base, active))
        proc = _run(prod, "up", "--yes")
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _run(prod, "preview", "--expect-no-changes").returncode == 0
    prod.stack_file.write_text(prod.base)


def test_covered_replacement_goes_through_once_then_the_entry_is_stale(prod: Deployed) -> None:
    entry = {"path": SPOT, "from": False, "to": True, "reason": REASON}
    text = set_value(set_value(prod.base, SPOT, True), "allowReplacements", [entry])
    prod.stack_file.write_text(text)
    up = prod.engine.stack(prod.project, prod.stack).up(on_output=lambda _: None)
    assert up.summary.resource_changes.get("replace") == 1, up.summary.resource_changes
    assert any("- spot" in f.read_text() for f in prod.out.rglob("*.yaml"))
    # That update left the pool unprotected; the next one protects it again, and that is
    # not a change.
    assert "a100" not in _protected(prod)
    proc = _run(prod, "up", "--yes", "--expect-no-changes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "a100" in _protected(prod)
    # The entry allowed that edit and nothing more: the diff calls it stale, and the edit
    # back (or any other) is refused although the entry is still in the file.
    now = load_stack_config(prod.stack_file)
    assert [e.path for e in diff_configs(now, now).stale] == [SPOT]
    back = set_value(text, SPOT, False)
    state = _state(prod)
    prod.stack_file.write_text(back)
    proc = _run(prod, "up", "--yes")
    assert proc.returncode != 0 and f"{SPOT}: replace" in proc.stdout + proc.stderr
    assert _state(prod) == state
    prod.stack_file.write_text(text)


def test_covered_delete_needs_the_protection_lifted_first(prod: Deployed) -> None:
    before = load_stack_config(prod.stack_file)
    entry = {
        "path": "deployments.llama-chat",
        "from": fingerprint(value_at(before, "deployments.llama-chat")),
        "to": None,
        "reason": "llama-chat retired in CHG-2002",
    }
    armed = set_value(prod.base, "allowReplacements", [entry])
    # Entry and deletion in one update: the engine would refuse half-way; the program
    # refuses first and says what to do.
    _refused(
        prod,
        apply_edits(armed, ops.delete_edits(armed, "llama-chat")),
        "deployments.llama-chat: the allowed edit deletes",
        "which the last update protected",
    )
    # The operation lifts the protection (an update with the entry), deletes, and removes
    # the entry it used from the stack file.
    prod.stack_file.write_text(armed)
    ws = ops.Workspace(prod.project, prod.engine)
    plan = ops.plan(ws, "prod", lambda text: ops.delete_edits(text, "llama-chat"), "llama-chat")
    result = ops.apply(ws, plan)
    assert result["status"] == "succeeded", result
    text = prod.stack_file.read_text()
    assert "llama-chat" not in str(get_value(text, "deployments"))
    assert "allowReplacements" not in text
    assert not any("llama-chat" in urn for urn in _state(prod))
    assert _run(prod, "preview", "--expect-no-changes").returncode == 0
