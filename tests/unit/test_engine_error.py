"""What an operation records as its error: the resource's own diagnostic from the engine's
output, not the closing summary ("update failed", "2 errored")."""

from __future__ import annotations

import pytest

from servestack.ops.operations import engine_error

#: The layout of the engine's output after a rollout that timed out (see the cluster tier's
#: failed-rollout test for the real run).
TIMED_OUT = """code: 255
stdout: Updating (dev):
 ~  kubernetes:apps/v1:Deployment bert-sentiment **updating failed** [diff: ~spec]; error: 1 e
Diagnostics:
  kubernetes:apps/v1:Deployment (bert-sentiment):
    error: 1 error occurred:
    \t* 'bert-sentiment' timed out waiting to be Ready
  pulumi:pulumi:Stack (servestack-dev):
    error: update failed
Resources:
    2 errored
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            TIMED_OUT,
            "kubernetes:apps/v1:Deployment (bert-sentiment): 'bert-sentiment' timed out "
            "waiting to be Ready",
        ),
        (
            "Diagnostics:\n  pulumi:pulumi:Stack (servestack-dev):\n"
            "    error: Program failed with an unhandled exception:\n    error: update failed\n",
            "pulumi:pulumi:Stack (servestack-dev): Program failed with an unhandled exception:",
        ),
        (
            "Diagnostics:\n  pulumi:pulumi:Stack (servestack-prod):\n"
            "    error: servestack refused the change (nothing was applied):\n"
            "    deployments.a.model.type: refused: 'llm' -> 'stt'; forbidden\n"
            "    nodePools.a100.machineType: replace in production needs an entry\n\n"
            "Resources:\n    1 unchanged\n",
            "servestack refused the change (nothing was applied): deployments.a.model.type: "
            "refused: 'llm' -> 'stt'; forbidden; nodePools.a100.machineType: replace in "
            "production needs an entry",
        ),
        ("something broke\nerror: no details", "no details"),
        ("plain failure", "plain failure"),
        ("", "RuntimeError"),
    ],
)
def test_the_error_is_the_resources_own(text: str, expected: str) -> None:
    assert engine_error(RuntimeError(text)) == expected
