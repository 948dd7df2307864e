"""Security scan of what the real engine renders: checkov's Kubernetes checks over each
stack's manifests, zero failures except the skips listed with a reason."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests import REPO
from tests.engine.conftest import deploy

SKIPS = yaml.safe_load((REPO / "tests" / "security" / "checkov-skips.yaml").read_text())
CHECKOV = Path(os.environ.get("SERVESTACK_CHECKOV", REPO / ".venv-checkov" / "bin" / "checkov"))


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_rendered_manifests_pass_checkov(stack: str, engine_ready: Path, tmp_path: Path) -> None:
    assert CHECKOV.exists(), f"checkov is not installed at {CHECKOV}: run `make test`"
    d = deploy(tmp_path, stack)
    skips = SKIPS.get(stack) or {}
    args = [
        str(CHECKOV),
        "-d",
        str(d.out / stack),
        "--framework",
        "kubernetes",
        "--output",
        "json",
        "--quiet",
        "--skip-download",
        "--compact",
    ]
    if skips:
        args += ["--skip-check", ",".join(skips)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
    report = json.loads(proc.stdout)
    summary = report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']}: {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]
    print(
        f"checkov {stack}: passed {summary['passed']}, failed {summary['failed']}, "
        f"skipped {len(skips)} check ids"
    )
    assert failed == []
    assert summary["passed"] > 100  # the scan really ran over the rendered manifests
