"""Refuse `forbidden` edits against what the stack last deployed.

Pydantic sees one config at a time; a forbidden edit is a relation between the deployed
config and the new one. The stack program records each model's identity in its outputs and
reads them back, through the engine's own `readStackOutputs` builtin, before registering
anything: a forbidden edit fails the preview with a plain message and changes nothing.
"""

from __future__ import annotations

from typing import Any

from servestack.config.errors import Problem
from servestack.config.models import StackConfig
from servestack.contract import paths
from servestack.contract.effects import TABLE, Effect

#: Stack output holding, per deployment, the fields whose edit is forbidden.
IDENTITY_OUTPUT = "models"
_FORBIDDEN = [path for path, rule in TABLE.items() if rule.effect is Effect.FORBIDDEN]


def identity(config: StackConfig) -> dict[str, dict[str, Any]]:
    """Per deployment, the values `forbidden` rules protect (and a few for reviewers)."""
    return {
        d.name: {
            "id": d.model.id,
            "version": d.model.version,
            "type": d.model.type.value,
            "active": d.active,
        }
        for d in config.deployments
    }


def forbidden_edits(previous: Any, config: StackConfig) -> list[Problem]:
    """Problems for every forbidden edit between the last deployed identities and ``config``."""
    if not isinstance(previous, dict):
        return []
    problems = []
    for dep in config.deployments:
        before = previous.get(dep.name)
        if not isinstance(before, dict):
            continue
        old_type, new_type = before.get("type"), dep.model.type.value
        if old_type is not None and old_type != new_type:
            rule = TABLE["deployments.<name>.model.type"]
            problems.append(
                Problem(
                    paths.deployment(dep.name, "model.type"),
                    f"refused: {old_type!r} -> {new_type!r}; {rule.reason}",
                )
            )
    return problems


assert _FORBIDDEN == ["deployments.<name>.model.type"], (
    "a new forbidden rule needs its guard in forbidden_edits()"
)
