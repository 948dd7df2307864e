"""Refuse `forbidden` edits against what the stack last deployed.

Pydantic sees one config at a time; a forbidden edit is a relation between the deployed
config and the new one. The stack program records each model's identity in its outputs and
reads them back, through the engine's own `readStackOutputs` builtin, before registering
anything: a forbidden edit fails the preview with a plain message and changes nothing.
"""

from __future__ import annotations

from typing import Any

from servestack.config import paths
from servestack.config.errors import Problem
from servestack.config.models import StackConfig
from servestack.contract.effects import TABLE, Effect

#: Stack output holding, per deployment, the fields whose edit is forbidden.
IDENTITY_OUTPUT = "models"
#: How the stack program starts its refusal (a forbidden edit, or one the production gate
#: does not allow), followed by one line per problem. Callers that read the engine's output
#: find a refusal with :func:`is_refusal`, never by searching for their own copy of it.
REFUSED = "servestack refused the change (nothing was applied)"
_FORBIDDEN = [path for path, rule in TABLE.items() if rule.effect is Effect.FORBIDDEN]


def refusal_text(problems: list[Problem]) -> str:
    """The program's refusal: :data:`REFUSED`, then one line per problem."""
    return f"{REFUSED}:\n" + "\n".join(str(p) for p in problems)


def is_refusal(output: str) -> bool:
    """Whether the engine's output (or an exception's text) is the program's refusal."""
    return REFUSED in output


def refusal_problems(output: str) -> list[str]:
    """The problem lines of a refusal in the engine's output (none if it is not one): the
    lines after the last :data:`REFUSED` up to the first blank one."""
    lines = output.splitlines()
    # The last occurrence: the CLI's progress display shows the marker's line first, with
    # the engine's own "program exited" line after it; the Diagnostics section has it whole.
    at = max((i for i, line in enumerate(lines) if REFUSED in line), default=None)
    if at is None:
        return []
    problems = []
    for line in lines[at + 1 :]:
        if not line.strip():
            break
        problems.append(line.strip())
    return problems


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
