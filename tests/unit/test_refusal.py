"""The stack program's refusal is one marker (program.guards.REFUSED) that the program
writes and every reader of the engine's output recognises with is_refusal."""

from __future__ import annotations

from servestack.config.errors import Problem
from servestack.program.guards import REFUSED, is_refusal, refusal_problems, refusal_text

PROBLEMS = [
    Problem("deployments.bert-sentiment.model.type", "refused: 'llm' -> 'stt'; forbidden"),
    Problem("deployments.llama-chat", "delete (deleted: deployments.llama-chat) needs an entry"),
]
#: How the engine shows a RunError from the program (docs/review.md has a real one).
ENGINE_OUTPUT = """Diagnostics:
  pulumi:pulumi:Stack (servestack-prod):
    error: servestack refused the change (nothing was applied):
    deployments.bert-sentiment.model.type: refused: 'llm' -> 'stt'; forbidden
    deployments.llama-chat: delete (deleted: deployments.llama-chat) needs an entry

Resources:
    1 unchanged
"""


def test_the_refusal_is_the_marker_then_one_line_per_problem() -> None:
    assert refusal_text(PROBLEMS) == (
        "servestack refused the change (nothing was applied):\n"
        "deployments.bert-sentiment.model.type: refused: 'llm' -> 'stt'; forbidden\n"
        "deployments.llama-chat: delete (deleted: deployments.llama-chat) needs an entry"
    )
    assert refusal_text(PROBLEMS).startswith(REFUSED)


def test_a_refusal_is_recognised_in_the_engines_output_with_its_problems() -> None:
    assert is_refusal(ENGINE_OUTPUT)
    assert refusal_problems(ENGINE_OUTPUT) == [str(p) for p in PROBLEMS]


#: `pulumi up` without a terminal: the progress display shows the marker first, followed
#: by the engine's own line, before the Diagnostics section (seen in make demo's output).
UP_OUTPUT = (
    "     Type                 Name            Status                  Info\n"
    "     pulumi:pulumi:Stack  servestack-dev  running error: " + REFUSED + ":\n"
    "     pulumi:pulumi:Stack  servestack-dev  running error: an unhandled error occurred: "
    "program exited with non-zero exit code: 1\n"
    "     pulumi:pulumi:Stack  servestack-dev  **failed**     1 error\n\n" + ENGINE_OUTPUT
)


def test_the_problems_come_from_the_diagnostics_not_the_progress_display() -> None:
    assert refusal_problems(UP_OUTPUT) == [str(p) for p in PROBLEMS]


def test_other_failures_are_not_refusals() -> None:
    other = "error: invalid servestack config:\ndeployments.x.replicas: must be >= 0\n"
    assert not is_refusal(other)
    assert refusal_problems(other) == []
