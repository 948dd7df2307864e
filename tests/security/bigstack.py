"""A large, valid stack file: the scale fixture (20,000 deployments, about 4.5 MB)."""

from __future__ import annotations

HEADER = """# Scale fixture: many small deployments on one cluster.
config:
  servestack:environment: staging
  servestack:target: render
  servestack:namespace: models
  servestack:cluster:
    name: big
    provider: existing
  servestack:deployments:
"""

DEPLOYMENT = """    - name: m-{i:05d}
      model:
        id: model-{i:05d}
        version: v1.{minor}.0
        type: {kind}
        image: registry.example.com/models/m-{i:05d}:1.{minor}.0
      resources: {{cpu: {cpu}, memory: {memory}Gi}}
      tags: {{team: t{team}}}
"""

KINDS = ("llm", "vision", "embedding", "tabular")


def stack_text(n: int, *, replicas_of: dict[int, int] | None = None) -> str:
    """``n`` deployments; ``replicas_of`` sets ``replicas`` on some (the edit a diff sees)."""
    parts = [HEADER]
    for i in range(n):
        parts.append(
            DEPLOYMENT.format(
                i=i, minor=i % 7, kind=KINDS[i % 4], cpu=1 + i % 3, memory=2 + i % 5, team=i % 9
            )
        )
        if replicas_of and i in replicas_of:
            parts.append(f"      replicas: {replicas_of[i]}\n")
    return "".join(parts)
