"""Edits that change nothing deployed (``no change``), held to the builders.

Every deployment edit of the provenance test (one per table field and branch) is made to
every deployment of a sample stack that has each feature on and off (autoscaled, fixed,
autoscaling disabled, a queue worker, stopped, monitoring off with settings, mesh routing
off with a policy, production defaults). For each, the deployment's manifests are built
before and after, and:

* the diff says ``no change`` for every changed field exactly when the manifests are the
  same (derived from the builders, not listed: no inert case is missing, none is made up);
* each ``no change`` has a reason from the table's cases (:data:`UNREAD`), never the
  fallback.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from servestack.config.errors import ConfigError
from servestack.config.models import StackConfig
from servestack.config.paths import FieldPath
from servestack.contract.effects import UNREAD_FALLBACK, Effect
from servestack.manifests.render import render_stack
from servestack.manifests.sample import KARPENTER, parse_config
from servestack.review.diff import FieldChange, diff_configs
from servestack.review.predict import predict
from tests.unit.test_provenance import EDITS, _set

_CHAT = next(d for d in KARPENTER["deployments"] if d["name"] == "chat")
_MODEL = {"id": "m", "type": "llm", "version": "v1"}
#: The sample, plus deployments with a feature switched off while its settings stay.
BASE: dict[str, Any] = {
    **KARPENTER,
    "deployments": [
        *KARPENTER["deployments"],
        {**copy.deepcopy(_CHAT), "name": "chat-off", "active": False},
        {
            "name": "quiet",
            "model": {**_MODEL, "image": "r.example.com/quiet:1"},
            "resources": {"cpu": 1, "memory": "1Gi"},
            "replicas": 2,
            "autoscaling": {
                "enabled": False,
                "minReplicas": 1,
                "maxReplicas": 3,
                "targetCpuUtilization": 60,
            },
            "loadBalancer": {"enabled": False, "algorithm": "round_robin", "stickySessions": True},
            "monitoring": {
                "enabled": False,
                "scrape": {"path": "/m", "port": 9100},
                "slo": {"latencyP99Ms": 100},
                "namespace": "obs",
            },
        },
        {
            "name": "prod",
            "environment": "production",
            "model": {**_MODEL, "image": "r.example.com/prod:1"},
            "resources": {"cpu": 1, "memory": "1Gi"},
        },
    ],
}
NAMES = [d["name"] for d in BASE["deployments"]]


@dataclass(frozen=True)
class Case:
    field: str
    deployment: str
    edits: tuple[tuple[str, Any], ...]

    @property
    def id(self) -> str:
        return f"{self.deployment}:" + ",".join(
            f"{p.split('.', 2)[2]}={v!r}" for p, v in self.edits
        )


def _cases() -> list[Case]:
    """Each deployment edit, moved to every deployment where the result is valid."""
    out: dict[str, Case] = {}
    for edit in EDITS:
        if not edit.field.startswith("deployments.") or edit.field.endswith("<name>.name"):
            continue
        source = FieldPath.parse(edit.path).item_name
        for name in NAMES:
            moved = tuple(
                (p.replace(f"deployments.{source}.", f"deployments.{name}.", 1), v)
                for p, v in {edit.path: edit.value, **edit.also}.items()
            )
            case = Case(edit.field, name, moved)
            out.setdefault(case.id, case)
    return list(out.values())


OLD = parse_config(copy.deepcopy(BASE))


def _edited(case: Case) -> StackConfig | None:
    raw = copy.deepcopy(BASE)
    for path, value in case.edits:
        _set(raw, path, value)
    if raw == BASE:
        return None
    try:
        new = parse_config(raw)
    except ConfigError:
        return None
    return None if new == OLD else new  # written out as it was: no change of the config


def _manifests(config: StackConfig, name: str) -> dict[Any, Any]:
    built = render_stack(config, deployments={name})
    return {k: r.manifest for k, r in built.resources.items() if built.components[k]}


CASES = [(c, new) for c in _cases() if (new := _edited(c)) is not None]


def _own(changes: list[FieldChange], name: str) -> list[FieldChange]:
    return [c for c in changes if c.path.startswith(f"deployments.{name}.")]


@pytest.mark.parametrize(("case", "new"), CASES, ids=[c.id for c, _ in CASES])
def test_no_change_exactly_when_the_builders_build_the_same(case: Case, new: StackConfig) -> None:
    changes = _own(diff_configs(OLD, new).changes, case.deployment)
    assert changes, "the edit is a change of the stack file"
    same = _manifests(OLD, case.deployment) == _manifests(new, case.deployment)
    inert = [c for c in changes if c.effect is Effect.NONE]
    if same:
        assert inert == changes
    else:
        # At least one field changes something; a field only said unread when the builders
        # read it in neither build (the rest of the edit may still leave it out).
        assert len(inert) < len(changes)
    fallback = UNREAD_FALLBACK.split("{field}")[0]
    assert [c.path for c in inert if c.reason.startswith(fallback)] == []


def test_the_matrix_finds_the_inert_classes() -> None:
    """Which (field, deployment) pairs the builders leave unread: the issue's list."""
    found = set()
    for case, new in CASES:
        for c in _own(diff_configs(OLD, new).changes, case.deployment):
            if c.effect is Effect.NONE and c.reason:
                found.add((FieldPath.parse(c.path).rest, case.deployment))
    expected = {
        ("replicas", "chat"),  # autoscaled (HPA)
        ("replicas", "whisper"),  # queue worker with bounds (KEDA)
        ("replicas", "prod"),  # production's default autoscaler
        ("replicas", "idle"),  # stopped
        ("autoscaling.maxReplicas", "quiet"),  # autoscaling.enabled: false
        ("autoscaling.maxReplicas", "digest"),  # a worker held at replicas
        ("autoscaling.minReplicas", "chat-off"),  # stopped
        ("strategy.canaryReplicas", "chat-off"),
        ("monitoring.scrape.path", "quiet"),  # monitoring off
        ("monitoring.alerts.canaryWorse.enabled", "ranker"),  # no canary
        ("loadBalancer.stickySessions", "quiet"),  # mesh routing off
        ("monitoring.prometheusUrl", "chat"),  # never deployed
    }
    assert expected <= found, sorted(expected - found)
    assert len(CASES) > 300


@pytest.mark.parametrize(
    ("deployment", "edits", "reason"),
    [
        (
            "chat",
            {"replicas": 3},
            "replicas is owned by the autoscaler (set minReplicas/maxReplicas, or remove "
            "autoscaling)",
        ),
        (
            "idle",
            {"replicas": 3},
            "the deployment is stopped (active: false): replicas is read when it starts again "
            "(servestack start)",
        ),
        (
            "quiet",
            {"autoscaling.minReplicas": 2},
            "autoscaling is off: autoscaling.minReplicas is not read (set autoscaling.enabled: "
            "true, or edit replicas)",
        ),
        (
            "quiet",
            {"monitoring.slo.latencyP99Ms": 250},
            "monitoring is off: monitoring.slo.latencyP99Ms is not read (set monitoring.enabled: "
            "true)",
        ),
        (
            "ranker",
            {"monitoring.alerts.canaryWorse.severity": "info"},
            "the canaryWorse alert exists only while a canary runs (strategy.type: canary)",
        ),
        (
            "quiet",
            {"loadBalancer.algorithm": "least_connections", "loadBalancer.stickySessions": False},
            "mesh routing is off (loadBalancer.enabled: false): loadBalancer.algorithm is not read",
        ),
    ],
)
def test_the_reason_says_why_and_what_to_edit(
    deployment: str, edits: dict[str, Any], reason: str
) -> None:
    text = _yaml(BASE)
    found = predict(text, {f"deployments.{deployment}.{k}": v for k, v in edits.items()})
    first = found.diff.changes[0]
    assert (first.path, first.effect, first.reason) == (
        f"deployments.{deployment}.{next(iter(edits))}",
        Effect.NONE,
        reason,
    )
    assert found.effect is Effect.NONE
    assert found.unread == found.diff.changes


def test_an_edit_with_the_autoscaler_switched_on_is_read() -> None:
    # replicas and autoscaling.enabled edited together: replicas was read before.
    found = predict(
        _yaml(BASE),
        {
            "deployments.quiet.autoscaling.enabled": True,
            "deployments.quiet.replicas": 4,
        },
    )
    assert [(c.path, c.effect) for c in found.diff.changes] == [
        ("deployments.quiet.replicas", Effect.IN_PLACE),
        ("deployments.quiet.autoscaling.enabled", Effect.IN_PLACE),
    ]


def _yaml(raw: dict[str, Any]) -> str:
    """The stack as a stack file, its secret values encrypted (by assumption)."""
    secrets = {
        d["name"]: {k: {"secure": "v1:AAAA"} for k in d["secretEnv"]}
        for d in raw["deployments"]
        if d.get("secretEnv")
    }
    config = {f"servestack:{k}": v for k, v in {**raw, "secrets": secrets}.items()}
    return yaml.safe_dump({"config": config}, sort_keys=False)
