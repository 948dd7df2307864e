"""Secrets on the real engine: a `secretEnv` value set with `pulumi config set --secret`
reaches a Kubernetes Secret, and never appears in plain text in the state, the stack file
or the program's output."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import yaml
from pulumi import automation as auto

from servestack.config.stackfile import set_value
from servestack.engine import Engine, make_project
from tests import REPO
from tests.engine.conftest import PASSPHRASE

SECRET = "hf_s3cr3t-token-value-0123456789"


def test_secret_env_never_in_plain_text(engine_ready: Path, tmp_path: Path) -> None:
    text = (REPO / "stacks" / "Pulumi.dev.yaml").read_text()
    text = set_value(text, "deployments.bert-sentiment.secretEnv", ["HF_TOKEN"])
    project = make_project(tmp_path / "project", stacks={"dev": text})
    out = tmp_path / "out"
    engine = Engine(
        tmp_path / "state", passphrase=PASSPHRASE, extra_env={"SERVESTACK_RENDER_ROOT": str(out)}
    )
    stack = engine.stack(project, "dev")
    stack.set_config(
        "servestack:secrets.bert-sentiment.HF_TOKEN",
        auto.ConfigValue(value=SECRET, secret=True),
        path=True,
    )
    printed: list[str] = []
    result = stack.up(on_output=printed.append)
    assert result.summary.result == "succeeded"

    stack_file = (project / "stacks" / "Pulumi.dev.yaml").read_text()
    assert "secure:" in stack_file and SECRET not in stack_file
    # `pulumi stack export` as a user runs it (the Automation API's export shows secrets).
    state = engine.cli(project, "stack", "export", "--stack", "dev").stdout
    assert '"ciphertext"' in state
    assert SECRET not in state
    assert base64.b64encode(SECRET.encode()).decode() not in state
    assert SECRET not in "".join(printed) + result.stdout + result.stderr
    backend_files = "".join(
        p.read_text(errors="ignore") for p in (tmp_path / "state").rglob("*") if p.is_file()
    )
    assert SECRET not in backend_files
    assert base64.b64encode(SECRET.encode()).decode() not in backend_files

    docs = [
        d for f in (out / "dev").rglob("*.yaml") for d in yaml.safe_load_all(f.read_text()) if d
    ]
    (secret,) = [d for d in docs if d["kind"] == "Secret"]
    assert secret["metadata"]["name"] == "bert-sentiment-env"
    # Render mode writes the Secret manifest to disk (documented): the value is only there.
    values = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    values.update(secret.get("stringData") or {})
    assert values == {"HF_TOKEN": SECRET}
    (dep,) = [
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "bert-sentiment"
    ]
    env = dep["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {
        "name": "HF_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "bert-sentiment-env", "key": "HF_TOKEN"}},
    } in env
    assert SECRET not in json.dumps(dep)
