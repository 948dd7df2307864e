"""The kill matrix of the fast path, on the real engine in render mode.

`servestack up` writes the checkpoint once, when the update ends (servestack.ops.execute).
Each case SIGKILLs the whole process group of a fresh `servestack up` (CLI, language host,
program, provider) at one point:

- ``before-engine``: the journal is written, the engine has not started;
- ``after-some``: some of the stack's objects are rendered, the rest not yet;
- ``before-final-write``: every object is rendered (each resource the program registered
  has its id), the program is held before its exports, so the engine cannot have written
  its checkpoint;
- ``around-final-write``: the program is let go and the kill follows at once, while the
  engine finishes and writes its checkpoint (the backend writes a temporary file and renames
  it: the kill finds the old checkpoint or the new one);
- ``after-final-write``: the engine has ended, its checkpoint written, and the operation's
  record is not final yet (its journal is still there).

Then the next `servestack up` recovers, with the same stack file or with a changed one (an
image changed, a deployment removed). Afterwards: the checkpoint parses and holds exactly the
resources a plain `pulumi up` (default checkpoints) of the final config holds; the rendered
directory holds exactly that run's files, byte for byte (no orphan, no truncated YAML); no
pending operation and no engine lock is left; `pulumi preview --expect-no-changes` passes.

`promote --shift` applies two updates. Killed between them (its first update applied), the
next `servestack up` applies the second: the rendered files, the state and the stack file
are those an uninterrupted shift leaves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.engine import stack_text
from bench.stacks import stack_raw
from servestack.config.stackfile import set_value
from servestack.engine import Engine, make_project
from servestack.ops import recovery
from servestack.ops.edits import delete_edits
from servestack.review.predict import apply_edits
from tests import REPO
from tests.engine.conftest import PASSPHRASE
from tests.engine.test_reliability import Project, kill_group, ready, wait_until

pytestmark = pytest.mark.engine

STACK = "dev"
N = 6
CHANGED_IMAGE = "registry.example.com/models/m0:2.0.0"
REMOVED = f"model-{N - 1:04d}"


def _text() -> str:
    raw = stack_raw(N)
    raw["environment"] = "development"
    return stack_text(raw)


def _changed(text: str) -> str:
    text = set_value(text, "deployments.model-0000.model.image", CHANGED_IMAGE)
    return apply_edits(text, delete_edits(text, REMOVED))


def _project(root: Path, text: str) -> Project:
    project = make_project(root / "project", stacks={STACK: text})
    out = root / "out"
    engine = Engine(
        project / ".pulumi-state",
        passphrase=PASSPHRASE,
        extra_env={"SERVESTACK_RENDER_ROOT": str(out)},
        project_dir=project,
    )
    return Project(project, out, root / "hooks", engine)


def _files(out: Path) -> dict[str, bytes]:
    return {str(f.relative_to(out)): f.read_bytes() for f in sorted(out.rglob("*")) if f.is_file()}


def _resources(project: Project) -> list[str]:
    data = project.checkpoint()
    assert data is not None, "the checkpoint must parse"
    latest = data["checkpoint"]["latest"]
    assert not latest.get("pending_operations")
    return sorted(r["urn"] for r in latest["resources"])


@pytest.fixture(scope="module")
def reference(engine_ready: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What a plain `pulumi up` with default checkpoints leaves, for each final config."""
    refs: dict[str, Any] = {}
    for name, text in (("same", _text()), ("changed", _changed(_text()))):
        project = _project(tmp_path_factory.mktemp(f"reference-{name}"), text)
        project.engine.stack(project.root, STACK)  # `pulumi stack init`
        proc = project.engine.cli(
            project.root, "up", "--yes", "--skip-preview", "-s", STACK, check=False
        )
        assert proc.returncode == 0, proc.stderr
        refs[name] = {
            "files": _files(project.out / STACK),
            "resources": _resources(project),
        }
    return refs


def _kill(project: Project, point: str) -> dict[str, Any]:
    """Start `servestack up` and SIGKILL its process group at ``point``; what it left."""
    pause = {"before-engine": "engine", "after-some": "", "after-final-write": "engine-done"}.get(
        point, "created"
    )
    proc = project.start("up", STACK, pause=pause, session=True)
    rendered = project.out / STACK / "1-manifest"
    expected = 0 if point == "before-engine" else _expected_objects(project)
    if point == "before-engine":
        wait_until(ready(project.hooks, "engine"), "servestack up before the engine", proc)
    elif point == "after-final-write":
        wait_until(ready(project.hooks, "engine-done"), "the engine done", proc)
    elif point == "after-some":
        some = expected // 2

        def half() -> bool:
            return rendered.is_dir() and len(list(rendered.iterdir())) >= some

        wait_until(half, f"{some} of {expected} objects rendered", proc)
    else:
        wait_until(ready(project.hooks, "created"), "every resource created", proc)
        assert rendered.is_dir() and len(list(rendered.iterdir())) == expected
        if point == "around-final-write":
            (project.hooks / "created.go").touch()
    kill_group(proc)
    (record,) = project.operations()
    return record


def _expected_objects(project: Project) -> int:
    """How many objects the program renders (one file each)."""
    from servestack.config.validation import load_stack_config
    from servestack.manifests.render import render_stack

    config = load_stack_config(project.stack_file)
    rendered = render_stack(config, STACK)
    return sum(1 for k in rendered.resources if k.type.startswith("kubernetes:"))


def _settled(project: Project, killed: dict[str, Any]) -> dict[str, Any]:
    """After the recovery: no engine lock and no journal left, `preview --expect-no-changes`
    passes, and the killed operation is reported interrupted, finished by the recovery (its
    record, returned)."""
    assert recovery.engine_lock_files(project.backend, "servestack", STACK) == []
    assert recovery.read_journal(project.root / ".servestack", STACK) is None
    proc = project.engine.cli(
        project.root, "preview", "--expect-no-changes", "-s", STACK, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record: dict[str, Any] = next(r for r in project.operations() if r["id"] == killed["id"])
    assert record["status"] == "interrupted"
    assert record["recovered_by"]["status"] == "succeeded", record
    return record


POINTS = [
    "before-engine",
    "after-some",
    "before-final-write",
    "around-final-write",
    "after-final-write",
]


@pytest.mark.parametrize("target", ["same", "changed"])
@pytest.mark.parametrize("point", POINTS)
def test_a_killed_up_is_recovered_by_the_next(
    point: str, target: str, reference: dict[str, Any], tmp_path: Path
) -> None:
    project = _project(tmp_path, _text())
    killed = _kill(project, point)
    assert recovery.read_journal(project.root / ".servestack", STACK) is not None
    if target == "changed":
        project.stack_file.write_text(_changed(project.stack_file.read_text()))
    code, out = project.run("up", STACK)
    assert code == 0, out
    assert f"operation {killed['id']} on stack {STACK} was interrupted" in out
    if target == "changed":
        assert "applying the interrupted change's config once more first" in out
    ref = reference[target]
    assert _resources(project) == ref["resources"]
    files = _files(project.out / STACK)
    assert sorted(files) == sorted(ref["files"]), "orphaned or missing rendered files"
    assert files == ref["files"], "a rendered file differs (truncated?)"
    _settled(project, killed)


def test_the_stack_lock_holds_on_the_fast_path(engine_ready: Path, tmp_path: Path) -> None:
    """An operation started while `servestack up` runs waits for it (here: refuses at once,
    with --no-queue, naming the holder), and lands after it."""
    project = _project(tmp_path, _text())
    up = project.start("up", STACK, pause="engine", session=True)
    wait_until(ready(project.hooks, "engine"), "servestack up holding the stack", up)
    code, out = project.run("scale", STACK, "model-0001", "--min", "1", "--max", "9", "--no-queue")
    assert code == 4, out
    assert f"servestack up {STACK}" in out, out
    (project.hooks / "engine.go").touch()
    rest, _ = up.communicate(timeout=1800)
    assert up.returncode == 0, rest
    code, out = project.run("scale", STACK, "model-0001", "--min", "1", "--max", "9")
    assert code == 0, out
    scaled = project.manifest("HorizontalPodAutoscaler", "model-0001")
    assert scaled["spec"]["maxReplicas"] == 9


# promote --shift: two updates, the second named by the first's journal (then_text).

SHIFTED = "bert-sentiment"


def _canary_text() -> str:
    """The repository's dev stack with bert-sentiment at 2 pods and a canary of 1."""
    text = (REPO / "stacks" / f"Pulumi.{STACK}.yaml").read_text()
    base = f"deployments.{SHIFTED}"
    text = set_value(text, f"{base}.replicas", 2)
    canary = {
        "type": "canary",
        "weight": 10,
        "canaryVersion": "v2.2.0",
        "canaryImage": "registry.example.com/nlp/bert-sentiment:2.2.0",
    }
    return set_value(text, f"{base}.strategy", canary)


def _deployed(root: Path) -> Project:
    project = _project(root, _canary_text())
    project.engine.stack(project.root, STACK).up(on_output=lambda _: None)
    return project


@pytest.fixture(scope="module")
def shifted(engine_ready: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What an uninterrupted `servestack promote dev bert-sentiment --shift` leaves."""
    project = _deployed(tmp_path_factory.mktemp("shift-reference"))
    code, out = project.run("promote", STACK, SHIFTED, "--shift")
    assert code == 0, out
    return {
        "files": _files(project.out / STACK),
        "resources": _resources(project),
        "text": _config(project.stack_file.read_text()),
    }


def _config(text: str) -> str:
    """The stack file without the salt `pulumi stack init` gives each project its own."""
    return "".join(line for line in text.splitlines(True) if not line.startswith("encryptionsalt:"))


@pytest.mark.parametrize(
    ("point", "first"),
    [
        # The first update's journal is marked applied; the second's is not written yet.
        ("step-applied", "applied"),
        # The first update's engine is done, its journal not marked applied yet.
        ("engine-done", "apply"),
    ],
)
def test_a_shift_killed_between_its_updates_is_finished_by_the_next(
    point: str, first: str, shifted: dict[str, Any], tmp_path: Path
) -> None:
    project = _deployed(tmp_path)
    proc = project.start("promote", STACK, SHIFTED, "--shift", pause=point, session=True)
    wait_until(ready(project.hooks, point), f"promote --shift at {point}", proc)
    kill_group(proc)
    journal = recovery.read_journal(project.root / ".servestack", STACK)
    assert journal is not None and journal.phase == first
    assert journal.then_text is not None and _config(journal.then_text) == shifted["text"]
    # The first update is what is deployed: both tracks at 2 pods, the canary at 100%.
    canary = project.manifest("Deployment", f"{SHIFTED}-canary")
    assert canary["spec"]["replicas"] == 2
    assert project.manifest("Deployment", SHIFTED)["spec"]["replicas"] == 2
    (killed,) = project.operations()

    code, out = project.run("up", STACK)
    assert code == 0, out
    assert f"operation {killed['id']} on stack {STACK} was interrupted" in out
    assert _config(project.stack_file.read_text()) == shifted["text"]
    assert _resources(project) == shifted["resources"]
    files = _files(project.out / STACK)
    assert sorted(files) == sorted(shifted["files"]), "orphaned or missing rendered files"
    assert files == shifted["files"]
    # The canary's pod template is the one it had before the shift.
    promoted = project.manifest("Deployment", f"{SHIFTED}-canary")
    assert promoted["spec"]["template"] == canary["spec"]["template"]
    record = _settled(project, killed)
    # Marked applied, the first update is not applied again.
    applied_once = "its first update was applied: applying its next one"
    assert (applied_once in record["recovered_by"]["cleanup"]) == (first == "applied"), record
