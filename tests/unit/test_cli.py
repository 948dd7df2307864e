"""The command line's refusals: every command, every refusal it can meet, in render mode.

Each one ends with the documented exit code (1 invalid input, 2 refused, 4 stack busy), its
message on whole lines of stderr, no traceback, and the stack files and operation records
as they were. None of these reaches the engine: every refusal comes before `pulumi up`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from servestack.cli import ExitCode, app, operations
from servestack.cli.output import flow
from servestack.config.models import StrategyType
from servestack.ops.lock import StackLock
from tests import REPO

DIGEST = "sha256:14ba8079e1b86c81c20c3b76c5e38954d88b71288e3caa76cdc098b3d8a173ff"
INVALID, REFUSED, BUSY = ExitCode.INVALID, ExitCode.REFUSED, ExitCode.BUSY


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    code: ExitCode
    #: The whole message: lines of stderr; `{root}` is the project's directory, `{gate}`
    #: the production gate's refusal as `servestack.ops` raises it for the same edit.
    message: str


CASES = (
    # --- review commands ----------------------------------------------------------------------
    Case(
        "validate-unreadable",
        ("validate", "nope.yaml"),
        INVALID,
        "nope.yaml: cannot read: No such file or directory",
    ),
    Case(
        "validate-invalid",
        ("validate", "bad/Pulumi.dev.yaml"),
        INVALID,
        "bad/Pulumi.dev.yaml: deployments.whisper-batch.autoscaling: "
        "minReplicas (5) must be <= maxReplicas (3)",
    ),
    Case(
        "diff-unreadable",
        ("diff", "stacks/Pulumi.dev.yaml", "nope.yaml"),
        INVALID,
        "nope.yaml: cannot read: No such file or directory",
    ),
    Case(
        "diff-forbidden",
        ("diff", "stacks/Pulumi.dev.yaml", "forbidden/Pulumi.dev.yaml"),
        REFUSED,
        "",  # the table says it (BLOCKED ...); stderr stays empty
    ),
    Case(
        "diff-format",
        ("diff", "stacks/Pulumi.dev.yaml", "bad/Pulumi.dev.yaml", "--format", "bogus"),
        INVALID,
        "servestack diff: Invalid value for '--format' / '-f': Value error, 'bogus' is not one "
        "of 'text', 'markdown', 'json'. (see servestack diff --help)",
    ),
    Case(
        "explain-not-json",
        ("explain", "stacks/Pulumi.dev.yaml"),
        INVALID,
        "stacks/Pulumi.dev.yaml: not JSON from `pulumi preview --json` (line 1: Expecting value)",
    ),
    Case(
        "init-not-empty",
        ("init", "stacks"),
        INVALID,
        "stacks: is not empty: servestack init writes a new project",
    ),
    Case(
        "cwd-missing",
        ("-C", "missing", "validate"),
        INVALID,
        "-C missing: No such file or directory",
    ),
    Case(
        "unknown-command",
        ("frob",),
        INVALID,
        "servestack: No such command 'frob'. (see servestack --help)",
    ),
    # --- status and operation -----------------------------------------------------------------
    Case(
        "status-unknown-deployment",
        ("status", "dev", "nope"),
        INVALID,
        "deployments.nope: no such deployment; have: bert-sentiment, whisper-batch",
    ),
    Case(
        "status-unknown-stack",
        ("status", "nope", "bert-sentiment"),
        INVALID,
        "{root}/stacks/Pulumi.nope.yaml: cannot read: No such file or directory",
    ),
    Case(
        "status-file-too-large",
        ("--max-file-bytes", "10", "status", "dev", "bert-sentiment"),
        INVALID,
        "{root}/stacks/Pulumi.dev.yaml: {dev_bytes} bytes is over the 10-byte limit for stack "
        "files (raise it with SERVESTACK_MAX_STACK_FILE_BYTES or servestack --max-file-bytes)",
    ),
    Case(
        "operation-unknown",
        ("operation", "0123456789ab"),
        INVALID,
        "no operation 0123456789ab",
    ),
    # --- scale and resources: invalid input, bad units ----------------------------------------
    Case(
        "scale-nothing",
        ("scale", "dev", "bert-sentiment"),
        INVALID,
        "servestack scale: Invalid value: give --replicas, or --min/--max "
        "(see servestack scale --help)",
    ),
    Case(
        "scale-not-a-number",
        ("scale", "dev", "bert-sentiment", "--replicas", "three"),
        INVALID,
        "servestack scale: Invalid value for '--replicas': Input should be a valid integer, "
        "unable to parse string as an integer (see servestack scale --help)",
    ),
    Case(
        "scale-negative",
        ("scale", "dev", "bert-sentiment", "--replicas", "-1"),
        INVALID,
        "{root}/stacks/Pulumi.dev.yaml: deployments.bert-sentiment.replicas: -1 is not allowed: "
        "input should be greater than or equal to 0",
    ),
    Case(
        "scale-min-over-max",
        ("scale", "prod", "bert-sentiment", "--min", "5", "--max", "3"),
        INVALID,
        "{root}/stacks/Pulumi.prod.yaml: deployments.bert-sentiment.autoscaling: "
        "minReplicas (5) must be <= maxReplicas (3)",
    ),
    Case(
        "scale-unknown-stack",
        ("scale", "nope", "bert-sentiment", "--replicas", "2"),
        INVALID,
        "{root}/stacks/Pulumi.nope.yaml: cannot read: No such file or directory",
    ),
    Case(
        "scale-unknown-deployment",
        ("scale", "dev", "nope", "--replicas", "2"),
        INVALID,
        "deployments.nope: no such deployment; have: bert-sentiment, whisper-batch",
    ),
    Case(
        "scale-replicas-under-autoscaler",
        ("scale", "prod", "bert-sentiment", "--replicas", "3"),
        REFUSED,
        "refused: deployments.bert-sentiment.replicas: 3 changes nothing: replicas is owned by "
        "the autoscaler (set minReplicas/maxReplicas, or remove autoscaling); "
        "use servestack scale prod bert-sentiment --min N --max M",
    ),
    Case(
        "resources-cpu-zero",
        ("resources", "dev", "bert-sentiment", "--cpu", "0"),
        INVALID,
        "deployments.bert-sentiment.resources.cpu: 0 must be more than 0",
    ),
    Case(
        "resources-memory-negative",
        ("resources", "dev", "bert-sentiment", "--memory", "-5Gi"),
        INVALID,
        "deployments.bert-sentiment.resources.memory: -5Gi must be a quantity above 0 with a "
        "unit of Ki, Mi, Gi, Ti, K, M, G, T",
    ),
    Case(
        "resources-units",
        ("resources", "dev", "bert-sentiment", "--cpu", "2Gi"),
        INVALID,
        "deployments.bert-sentiment.resources.cpu: 2Gi must be a number of cores (e.g. 4, 0.5) "
        "or millicores (e.g. '500m')",
    ),
    Case(
        "resources-memory-bare-number",
        ("resources", "dev", "bert-sentiment", "--memory", "8192"),
        INVALID,
        "deployments.bert-sentiment.resources.memory: 8192 has no unit: give one of "
        "Ki, Mi, Gi, Ti, K, M, G, T (e.g. 512Mi, 8Gi)",
    ),
    Case(
        "resources-every-problem",
        ("resources", "dev", "bert-sentiment", "--cpu", "-1", "--memory", "65536"),
        INVALID,
        "deployments.bert-sentiment.resources.cpu: -1 must be a number of cores (e.g. 4, 0.5) "
        "or millicores (e.g. '500m')\n"
        "deployments.bert-sentiment.resources.memory: 65536 has no unit: give one of "
        "Ki, Mi, Gi, Ti, K, M, G, T (e.g. 512Mi, 8Gi)",
    ),
    Case(
        "resources-does-not-fit",
        ("resources", "prod", "bert-sentiment", "--cpu", "160", "--memory", "2048Gi"),
        INVALID,
        "{root}/stacks/Pulumi.prod.yaml: deployments.bert-sentiment.resources.cpu: 160 does not "
        "fit a100's p4d.24xlarge (96 vCPU, 1152 GiB; allocatable 95690m after the kubelet's "
        "reserves)\n"
        "{root}/stacks/Pulumi.prod.yaml: deployments.bert-sentiment.resources.memory: 2Ti does "
        "not fit a100's p4d.24xlarge (96 vCPU, 1152 GiB; allocatable 1178083Mi after the "
        "kubelet's reserves)",
    ),
    Case(
        "resources-below-gpu-floor",
        ("resources", "prod", "bert-sentiment", "--cpu", "4m", "--memory", "512Mi"),
        REFUSED,
        "refused: deployments.bert-sentiment.resources.cpu: 4 -> 4m, below 1 core(s), the floor "
        "for a deployment with GPUs (1 x A100); deployments.bert-sentiment.resources.memory: "
        "16Gi -> 512Mi, below 1Gi, the floor for a deployment with GPUs (1 x A100); "
        "pass --yes if this is meant",
    ),
    Case(
        "resources-nothing",
        ("resources", "dev", "bert-sentiment"),
        INVALID,
        "servestack resources: Invalid value: give --cpu and/or --memory "
        "(see servestack resources --help)",
    ),
    # --- stop and start -----------------------------------------------------------------------
    Case(
        "stop-unknown-deployment",
        ("stop", "dev", "nope"),
        INVALID,
        "deployments.nope: no such deployment; have: bert-sentiment, whisper-batch",
    ),
    Case(
        "start-unknown-stack",
        ("start", "nope", "bert-sentiment"),
        INVALID,
        "{root}/stacks/Pulumi.nope.yaml: cannot read: No such file or directory",
    ),
    # --- a whole stack ------------------------------------------------------------------------
    Case(
        "up-unknown-stack",
        ("up", "nope", "--yes"),
        INVALID,
        "{root}/stacks/Pulumi.nope.yaml: cannot read: No such file or directory",
    ),
    Case(
        "preview-unknown-stack",
        ("preview", "nope"),
        INVALID,
        "{root}/stacks/Pulumi.nope.yaml: cannot read: No such file or directory",
    ),
    # --- model rollouts -----------------------------------------------------------------------
    Case(
        "set-model-prod-blue-green",
        (
            "set-model",
            "prod",
            "llama-chat",
            "--version",
            "v3.1.0",
            "--image",
            f"registry.example.com/llm/llama-chat:3.1.0@{DIGEST}",
            "--strategy",
            "blue_green",
            "--yes",
        ),
        REFUSED,
        "{gate}",
    ),
    Case(
        "set-model-weight",
        ("set-model", "dev", "bert-sentiment", "--version", "v3", "--strategy", "canary")
        + ("--weight", "150"),
        INVALID,
        "{root}/stacks/Pulumi.dev.yaml: deployments.bert-sentiment.strategy.weight: 150 is not "
        "allowed: input should be less than or equal to 100",
    ),
    Case(
        "set-model-strategy",
        ("set-model", "dev", "bert-sentiment", "--version", "v3", "--strategy", "bogus"),
        INVALID,
        "servestack set-model: Invalid value for '--strategy': Value error, 'bogus' is not one "
        "of 'rolling', 'blue_green', 'canary'. (see servestack set-model --help)",
    ),
    Case(
        "promote-no-canary",
        ("promote", "prod", "llama-chat"),
        INVALID,
        "deployments.llama-chat.strategy: no canary to promote",
    ),
    Case(
        "promote-shift-no-canary",
        ("promote", "dev", "bert-sentiment", "--shift"),
        INVALID,
        "deployments.bert-sentiment.strategy: no canary to promote with --shift",
    ),
    Case(
        "rollback-no-canary",
        ("rollback", "dev", "bert-sentiment"),
        INVALID,
        "deployments.bert-sentiment.strategy: no canary to roll back: strategy is rolling, and "
        "v2.1.0 takes all the traffic; to go back to the previous release: servestack rollback "
        "STACK bert-sentiment --to-previous",
    ),
    Case(
        "rollback-no-previous-release",
        ("rollback", "dev", "bert-sentiment", "--to-previous"),
        INVALID,
        "deployments.bert-sentiment: no previous release to roll back to: no succeeded "
        "operation on it ran another model version or image than v2.1.0 "
        "(registry.example.com/nlp/bert-sentiment:2.1.0) (.servestack/operations)",
    ),
    Case(
        "set-model-digest-without-image",
        ("set-model", "prod", "llama-chat", "--version", "v3.1.0"),
        INVALID,
        f"deployments.llama-chat.model.image: registry.example.com/llm/llama-chat:3.0.1@{DIGEST} "
        "is pinned by digest: pass --image",
    ),
    Case(
        "promote-check-no-prometheus",
        ("promote", "prod", "bert-sentiment", "--check", "--prometheus", "http://127.0.0.1:1"),
        REFUSED,
        "refused: http://127.0.0.1:1: cannot query Prometheus: "
        "<urlopen error [Errno 111] Connection refused>",
    ),
    Case(
        "rollback-unknown-stack",
        ("rollback", "nope", "bert-sentiment"),
        INVALID,
        "{root}/stacks/Pulumi.nope.yaml: cannot read: No such file or directory",
    ),
    # --- delete: missing confirmation, production -------------------------------------------
    Case(
        "delete-no-confirm",
        ("delete", "dev", "whisper-batch"),
        INVALID,
        "servestack delete: Missing option '--confirm'. (see servestack delete --help)",
    ),
    Case(
        "delete-wrong-confirm",
        ("delete", "dev", "whisper-batch", "--confirm", "whisper"),
        REFUSED,
        "refused: --confirm must repeat 'whisper-batch'",
    ),
    Case(
        "delete-no-yes",
        ("delete", "dev", "whisper-batch", "--confirm", "whisper-batch"),
        REFUSED,
        "refused: this replaces or deletes resources; pass --yes",
    ),
    Case(
        "delete-prod",
        ("delete", "prod", "bert-sentiment", "--confirm", "bert-sentiment", "--yes"),
        REFUSED,
        "{gate}",
    ),
    Case(
        "delete-unknown-deployment",
        ("delete", "dev", "nope", "--confirm", "nope"),
        INVALID,
        "deployments.nope: no such deployment; have: bert-sentiment, whisper-batch",
    ),
)

#: Every operation, with arguments it would otherwise apply, for the lock-held refusal.
OPERATIONS = {
    "scale": ("scale", "dev", "bert-sentiment", "--replicas", "2"),
    "resources": ("resources", "dev", "bert-sentiment", "--cpu", "3"),
    "stop": ("stop", "dev", "bert-sentiment"),
    "start": ("start", "dev", "bert-sentiment"),
    "set-model": ("set-model", "dev", "bert-sentiment", "--version", "v2.2.0"),
    "promote": ("promote", "dev", "bert-sentiment"),
    "rollback": ("rollback", "dev", "bert-sentiment"),
    "delete": ("delete", "dev", "whisper-batch", "--confirm", "whisper-batch", "--yes"),
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the repository's project, with an invalid and a forbidden dev stack file
    beside it; the current directory while the test runs."""
    root = tmp_path / "serving"
    root.mkdir()
    shutil.copy(REPO / "Pulumi.yaml", root)
    shutil.copytree(REPO / "stacks", root / "stacks")
    dev = (REPO / "stacks" / "Pulumi.dev.yaml").read_text(encoding="utf-8")
    for name, old, new in (
        ("bad", "minReplicas: 1, maxReplicas: 3", "minReplicas: 5, maxReplicas: 3"),
        ("forbidden", "type: llm", "type: stt"),
    ):
        assert old in dev
        (root / name).mkdir()
        (root / name / "Pulumi.dev.yaml").write_text(dev.replace(old, new, 1), encoding="utf-8")
    monkeypatch.chdir(root)
    yield root


def _files(root: Path) -> dict[str, bytes]:
    """Every file of the project but the lock files (a refused operation may create its
    stack's lock file; it never writes a stack file or an operation record)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix != ".lock"
    }


def _invoke(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, list(args), prog_name="servestack", input=stdin)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception  # a traceback the user would have seen
    return res.exit_code, res.stdout, res.stderr


def _gate_refusal(root: Path, case: Case) -> str:
    """What the Python API's apply() refuses for the case's edit: the CLI shows the same."""
    from servestack.ops import operations as ops

    command, stack, deployment = case.args[:3]
    ws = ops.Workspace(root)
    if command == "set-model":
        image = case.args[case.args.index("--image") + 1]
        p = ops.plan(
            ws,
            stack,
            lambda text: ops.set_model_edits(
                text, deployment, version="v3.1.0", image=image, strategy=StrategyType.blue_green
            ),
            deployment,
        )
    else:
        p = ops.plan(ws, stack, lambda text: ops.delete_edits(text, deployment))
    with pytest.raises(ops.OperationRefused) as refused:
        ops.apply(ws, p)
    assert str(refused.value).startswith(
        "production refuses replacements and deletions without an allowance: "
    )
    return f"refused: {refused.value}"


def _assert_refused(code: int, out: str, err: str, case: Case, root: Path) -> None:
    size = (root / "stacks" / "Pulumi.dev.yaml").stat().st_size
    gate = _gate_refusal(root, case) if case.message == "{gate}" else ""
    message = case.message.format(root=root, dev_bytes=f"{size:,}", gate=gate)
    assert "Traceback" not in out + err
    assert (code, err) == (case.code, f"{message}\n" if message else ""), out


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_every_refusal_is_its_exit_code_and_its_lines(case: Case, project: Path) -> None:
    before = _files(project)
    code, out, err = _invoke(*case.args)
    _assert_refused(code, out, err, case, project)
    assert _files(project) == before


def test_the_cases_cover_every_command() -> None:
    commands = set(typer.main.get_group(app).commands)
    assert commands == {c.args[0] for c in CASES if not c.args[0].startswith("-")} - {"frob"}


@pytest.mark.parametrize("command", sorted(OPERATIONS))
def test_every_operation_refuses_a_held_stack_with_exit_4(command: str, project: Path) -> None:
    before = _files(project)
    lock = StackLock(project / ".servestack", "dev")
    lock.acquire("servestack scale dev bert-sentiment", timeout=0)
    try:
        code, out, err = _invoke(*OPERATIONS[command], "--no-queue")
    finally:
        lock.release()
    assert "Traceback" not in out + err
    assert code == BUSY, out + err
    assert err.startswith("stack dev is busy (not waiting: --no-queue): the lock is held by pid")
    assert err.count("\n") == 1
    assert "running servestack scale dev bert-sentiment since" in err
    assert _files(project) == before


def test_declining_at_the_prompt_is_a_refusal(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(operations, "can_ask", lambda: True)
    before = _files(project)
    code, out, err = _invoke(
        "delete", "dev", "whisper-batch", "--confirm", "whisper-batch", stdin="n\n"
    )
    assert "This replaces or deletes resources. Apply? [y/N]: n" in out
    assert (code, err) == (REFUSED, "refused: not confirmed at the prompt\n")
    assert _files(project) == before


def test_validate_without_files_validates_the_projects_stacks(project: Path) -> None:
    code, out, err = _invoke("validate")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"{project}/stacks/Pulumi.dev.yaml: ok (development, 2 deployments, 0 node pools)",
        f"{project}/stacks/Pulumi.prod.yaml: ok (production, 2 deployments, 1 node pools)",
        f"{project}/stacks/Pulumi.staging.yaml: ok (staging, 2 deployments, 1 node pools)",
    ]


def test_validate_without_files_reads_the_stack_config_dir(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "Pulumi.yaml").write_text("name: serving\nruntime: python\nstackConfigDir: bad\n")
    monkeypatch.chdir(project / "stacks")  # the project is found looking upward
    code, out, err = _invoke("validate")
    assert (code, out) == (INVALID, "")
    assert err == (
        f"{project}/bad/Pulumi.dev.yaml: deployments.whisper-batch.autoscaling: "
        "minReplicas (5) must be <= maxReplicas (3)\n"
    )
    (project / "bad" / "Pulumi.dev.yaml").unlink()
    assert _invoke("validate") == (
        INVALID,
        "",
        f"{project}/bad: no Pulumi.<stack>.yaml files (stackConfigDir)\n",
    )


def test_validate_without_files_outside_a_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = _invoke("validate")
    assert (code, out) == (INVALID, "")
    assert err.startswith(f"no Pulumi.yaml in {tmp_path} or above it")
    assert err.count("\n") == 1


@pytest.mark.parametrize("how", ["script", "module"])
def test_the_reported_commands_exit_2_on_one_line_without_traceback(
    how: str, project: Path
) -> None:
    """Issue 18: `set-model ... --strategy blue_green --yes` and `delete ... --yes` in
    production printed a traceback and exited 1; the real entry points, in a real process."""
    entry = (
        [str(Path(sys.executable).parent / "servestack")]
        if how == "script"
        else [sys.executable, "-m", "servestack"]
    )
    for case in (c for c in CASES if c.id in ("set-model-prod-blue-green", "delete-prod")):
        proc = subprocess.run(
            [*entry, *case.args],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "COLUMNS": "80"},
        )
        _assert_refused(proc.returncode, proc.stdout, proc.stderr, case, project)
        assert "forbidden 0 · replace" in proc.stdout  # the classified diff came first


# --- values in the stack file's dialect ---------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ({"min_replicas": 2, "max_replicas": 6}, "{minReplicas: 2, maxReplicas: 6}"),
        ({"count": 0, "type": None}, "{count: 0, type: null}"),
        (True, "true"),
        (
            {"version": "v2.3.0", "image": f"r.example.com/a/b:2.3.0@{DIGEST}", "weight": 5},
            f"{{version: v2.3.0, image: r.example.com/a/b:2.3.0@{DIGEST}, weight: 5}}",
        ),
        (
            {"status": "succeeded", "failed_config": "/tmp/a b.yaml"},
            '{status: succeeded, failedConfig: "/tmp/a b.yaml"}',
        ),
        (
            ["1.0", "yes", "null", "a: b", "x,y", "v1", ""],
            '["1.0", "yes", "null", "a: b", "x,y", v1, ""]',
        ),
    ],
)
def test_values_are_shown_in_the_stack_files_dialect(value: object, shown: str) -> None:
    assert flow(value) == shown
    assert yaml.safe_load(shown) == _camel(value)


def _camel(value: object) -> object:
    from pydantic.alias_generators import to_camel

    if isinstance(value, dict):
        return {to_camel(k): _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def test_below_the_gpu_floor_asks_naming_before_and_after(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(operations, "can_ask", lambda: True)
    before = _files(project)
    code, out, err = _invoke("resources", "prod", "bert-sentiment", "--cpu", "4m", stdin="n\n")
    assert (
        "deployments.bert-sentiment.resources.cpu: 4 -> 4m, below 1 core(s), the floor for a "
        "deployment with GPUs (1 x A100)\n"
    ) in out
    assert "Apply below the GPU floor? [y/N]: n" in out
    assert (code, err) == (REFUSED, "refused: not confirmed at the prompt\n")
    assert _files(project) == before


def test_without_a_terminal_tables_are_120_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    from servestack.cli.output import PIPE_WIDTH, make_console

    monkeypatch.delenv("COLUMNS", raising=False)
    assert not make_console().is_terminal
    assert make_console().width == PIPE_WIDTH == 120
    monkeypatch.setenv("COLUMNS", "90")
    assert make_console().width == 90


def test_an_operations_review_table_is_not_rewrapped(project: Path) -> None:
    """The diff an operation prints is as wide as it needs up to 120 columns, each of its
    lines whole (rich's 80-column default used to cut them, breaking the box)."""
    from servestack.cli import output

    code, out, _ = _invoke("delete", "dev", "whisper-batch", "--confirm", "whisper-batch")
    assert code == REFUSED
    table = [ln for ln in out.splitlines() if ln[:1] in "┏┃┡│└"]
    assert len({len(ln) for ln in table}) == 1, out
    assert 80 < len(table[0]) <= output.console.width, out
