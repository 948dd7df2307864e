"""What went wrong, read from the engine's output."""

from __future__ import annotations

import re

from servestack.program.guards import REFUSED, is_refusal, refusal_problems

#: Engine lines that say only that something failed, never what.
_GENERIC_ERRORS = re.compile(r"^error: (update failed|preview failed|\d+ errors? occurred:?)$")


def engine_error(exc: Exception) -> str:
    """What went wrong, from the engine's output: the resources' own diagnostics (with the
    resource they are about), not the closing "update failed" or "2 errored"; for the stack
    program's refusal, its problems (:data:`servestack.program.guards.REFUSED`)."""
    text = str(exc)
    if is_refusal(text):
        # The program's refusal: nothing was applied, and each line after it is a problem.
        return f"{REFUSED}: {'; '.join(refusal_problems(text))}"[:500]
    lines = [ln.strip() for ln in text.splitlines()]
    said: list[str] = []
    resource = ""
    for i, line in enumerate(lines):
        if re.match(r"^[\w.-]+:[\w./-]*:\w+ \(.*\):$", line):
            resource = line[:-1]  # `kubernetes:apps/v1:Deployment (bert-sentiment)`
        elif line.startswith("error: ") and not line.startswith("error: update failed"):
            detail = line if not _GENERIC_ERRORS.match(line) else ""
            # `error: 1 error occurred:` is followed by the errors, one `* ...` line each.
            items = [x[2:] for x in lines[i + 1 : i + 6] if x.startswith("* ")]
            message = "; ".join(filter(None, [detail.removeprefix("error: "), *items]))
            if message:
                said.append(f"{resource}: {message}" if resource else message)
    if said:
        return " | ".join(dict.fromkeys(said))[:500]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return (errors[-1] if errors else lines[-1] if text.strip() else type(exc).__name__)[:500]
