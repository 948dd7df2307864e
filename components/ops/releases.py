"""A deployment's releases, from the operation history (`.servestack/operations/*.json`).

A release is what a deployment's stable track runs: its model version and image
(`model.version`, `model.image`) as a succeeded operation applied them. The strategy is how a
release rolls out, not part of it; a canary in flight is not a release until it is promoted.

Each succeeded operation on the deployment says the release it ran after the change (its
record's ``fields``; for a `servestack up` of the whole stack, its ``releases``) and, from its
planned changes of `model.version` and `model.image`, the release it ran before. Operations
that failed, were rolled back or interrupted are not in the history: their configuration
never ran to the end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servestack.config import paths
from servestack.ops.records import OperationStatus


@dataclass(frozen=True)
class Release:
    version: str
    image: str

    def __str__(self) -> str:
        return f"{self.version} ({self.image})"


def history(state: Path, stack: str, deployment: str) -> list[Release]:
    """The deployment's releases on ``stack``, oldest first, without consecutive repeats."""
    out: list[Release] = []
    for record in _succeeded(state, stack, deployment):
        after = _after(record, deployment)
        if after is None:
            continue
        for release in (_before(record, deployment, after), after):
            if not out or out[-1] != release:
                out.append(release)
    return out


def previous(releases: list[Release], current: Release) -> Release | None:
    """The latest release in ``releases`` that is not ``current``: the one it replaced (or,
    when the stack file was edited past the history, the last one an operation applied).
    Going back twice returns to where the first went from, as `kubectl rollout undo` does."""
    for release in reversed(releases):
        if release != current:
            return release
    return None


def _succeeded(state: Path, stack: str, deployment: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in sorted((state / "operations").glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a record being written, or not a record: not history
        if (
            isinstance(data, dict)
            and data.get("stack") == stack
            and (data.get("deployment") == deployment or _stack_wide(data, deployment))
            and data.get("status") == OperationStatus.succeeded.value
            and data.get("finished_at")
        ):
            found.append(data)
    return sorted(found, key=lambda d: (str(d["finished_at"]), str(d.get("started_at"))))


def _stack_wide(record: dict[str, Any], deployment: str) -> bool:
    """A `servestack up` that changed the deployment's release."""
    releases = record.get("releases")
    whole = record.get("deployment") is None
    return whole and isinstance(releases, dict) and deployment in releases


def _after(record: dict[str, Any], deployment: str) -> Release | None:
    fields = record.get("fields")
    if record.get("deployment") is None:
        fields = (record.get("releases") or {}).get(deployment)
    if not isinstance(fields, dict) or not fields.get("model_version") or not fields.get("image"):
        return None
    return Release(str(fields["model_version"]), str(fields["image"]))


def _before(record: dict[str, Any], deployment: str, after: Release) -> Release:
    version, image = after.version, after.image
    for change in record.get("changes") or []:
        before = change.get("before")
        if before is None:
            continue
        if change.get("path") == paths.deployment(deployment, "model", "version"):
            version = str(before)
        elif change.get("path") == paths.deployment(deployment, "model", "image"):
            image = str(before)
    return Release(version, image)
