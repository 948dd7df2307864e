"""`write_atomic`: a reader never sees a half-written stack file or operation record."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from servestack.config.stackfile import write_atomic


def test_replaces_content_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "state" / "op.json"
    write_atomic(target, '{"status": "running"}')
    write_atomic(target, '{"status": "succeeded"}')
    assert target.read_text(encoding="utf-8") == '{"status": "succeeded"}'
    assert [p.name for p in target.parent.iterdir()] == ["op.json"]


def test_keeps_the_mode_of_the_file_it_replaces(tmp_path: Path) -> None:
    kept = tmp_path / "Pulumi.dev.yaml"
    kept.write_text("config: {}\n", encoding="utf-8")
    kept.chmod(0o640)
    write_atomic(kept, "config: {a: 1}\n")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640
    new = tmp_path / "op.json"
    write_atomic(new, "{}")
    status = Path("/proc/self/status").read_text(encoding="utf-8")
    umask = int(next(ln for ln in status.splitlines() if ln.startswith("Umask:")).split()[1], 8)
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600


def test_a_linked_file_is_edited_through_its_link(tmp_path: Path) -> None:
    target = tmp_path / "real" / "Pulumi.dev.yaml"
    target.parent.mkdir()
    target.write_text("config: {}\n", encoding="utf-8")
    link = tmp_path / "Pulumi.dev.yaml"
    link.symlink_to(target)
    write_atomic(link, "config: {a: 1}\n")
    assert link.is_symlink()
    assert target.read_text(encoding="utf-8") == "config: {a: 1}\n"


def test_failed_write_keeps_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "Pulumi.dev.yaml"
    target.write_text("config: {}\n", encoding="utf-8")
    seen: list[str] = []

    def replace_fails(src: str, dst: str) -> None:
        # At the moment of the swap the new text is complete and the old file untouched.
        seen.extend([Path(src).read_text(encoding="utf-8"), Path(dst).read_text(encoding="utf-8")])
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", replace_fails)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, "config: {a: 1}\n")
    assert seen == ["config: {a: 1}\n", "config: {}\n"]
    assert target.read_text(encoding="utf-8") == "config: {}\n"
    assert [p.name for p in tmp_path.iterdir()] == ["Pulumi.dev.yaml"]
