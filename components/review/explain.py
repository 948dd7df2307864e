"""Trace the steps of a real `pulumi preview --json` back to the config fields behind them.

Each step's resource is attributed to its servestack component through its parent URN (the
component's name is the deployment's or node pool's name), and each changed property in the
step's ``detailedDiff`` to the config field that renders into it, using the ``renders``
provenance of the field-effect table. An engine operation more severe than anything the
table predicts for those fields is flagged ``unexpected``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from components import naming
from components.config import StackConfig
from components.effects import SEVERITY, EditContext, Effect, Rule, rules_rendering
from components.review.diff import Change

COMPONENT_TYPES = {naming.MODEL_DEPLOYMENT: "deployments", naming.GPU_NODE_POOL: "nodePools"}
#: Environment variables the builders set, and the field each comes from.
ENV_FIELDS = {
    "MODEL_ID": "model.id",
    "MODEL_VERSION": "model.version",
    "PORT": "port",
    "QUEUE_KIND": "queue.kind",
    "QUEUE_NAME": "queue.name",
    "QUEUE_URL": "queue.connectionSecret",
    "MODEL_TYPE": "model.type",
}
_KIND_ALIASES = {"NodeGroup": "NodePool"}
REPLACE_OPS = {"replace", "create-replacement", "delete-replaced"}


@dataclass
class StepExplanation:
    urn: str
    op: str
    kind: str
    name: str
    component: str | None
    observed: Change | None
    fields: list[str] = field(default_factory=list)
    predicted: Change | None = None
    unexpected: bool = False
    replace_reasons: list[str] = field(default_factory=list)
    properties: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "op": self.op,
            "kind": self.kind,
            "name": self.name,
            "component": self.component,
            "effect": self.observed.value if self.observed else None,
            "fields": self.fields,
            "predicted": self.predicted.value if self.predicted else None,
            "unexpected": self.unexpected,
            "replaceReasons": self.replace_reasons,
            "properties": self.properties,
        }


def _urn_parts(urn: str) -> tuple[str, str]:
    """(type chain, name) of a URN."""
    body = urn.split("::", 3)
    return (body[2], body[3]) if len(body) == 4 else ("", urn)


def _kind(type_chain: str) -> str:
    token = type_chain.rsplit("$", 1)[-1]
    kind = token.rsplit(":", 1)[-1]
    return _KIND_ALIASES.get(kind, kind)


def _component(state: dict[str, Any], urn: str) -> str | None:
    """`deployments.<name>` or `nodePools.<name>` of the component owning a resource."""
    chain, name = _urn_parts(urn)
    own = chain.rsplit("$", 1)[-1]
    if own in COMPONENT_TYPES:
        return f"{COMPONENT_TYPES[own]}.{name}"
    parent = state.get("parent")
    if isinstance(parent, str) and parent:
        p_chain, p_name = _urn_parts(parent)
        p_type = p_chain.rsplit("$", 1)[-1]
        if p_type in COMPONENT_TYPES:
            return f"{COMPONENT_TYPES[p_type]}.{p_name}"
        if p_type in (naming.AUTOSCALER, naming.LOAD_BALANCER) and "ModelDeployment" in p_chain:
            return f"deployments.{p_name}"
    return None


def _observed(op: str, kind: str, props: list[str]) -> Change | None:
    if op in REPLACE_OPS:
        return Change.REPLACE
    if op == "create":
        return Change.CREATE
    if op == "delete":
        return Change.DELETE
    if op == "update":
        if kind == "Deployment" and any(p.startswith("spec.template") for p in props):
            return Change.RESTART
        return Change.IN_PLACE
    return None


def _env_names(state: dict[str, Any] | None) -> dict[str, Any]:
    try:
        containers = state["inputs"]["spec"]["template"]["spec"]["containers"]  # type: ignore[index]
        return {e["name"]: e.get("value", e.get("valueFrom")) for e in containers[0]["env"]}
    except (KeyError, IndexError, TypeError):
        return {}


def _annotations(state: dict[str, Any] | None) -> dict[str, Any]:
    try:
        return dict(state["inputs"]["metadata"].get("annotations") or {})  # type: ignore[index]
    except (KeyError, TypeError, AttributeError):
        return {}


def _labels(state: dict[str, Any] | None) -> dict[str, Any]:
    try:
        return dict(state["inputs"]["metadata"]["labels"])  # type: ignore[index]
    except (KeyError, TypeError):
        return {}


def _refine(rules: list[Rule], prop: str, step: dict[str, Any]) -> list[Rule]:
    """Narrow ambiguous provenance by looking at what actually changed."""
    if len(rules) <= 1:
        return rules
    old, new = step.get("oldState"), step.get("newState")
    if prop.endswith(".env") or re.search(r"\.env(\[\d+\])?", prop):
        o, n = _env_names(old), _env_names(new)
        changed = {k for k in set(o) | set(n) if o.get(k) != n.get(k)}
        wanted = {f"deployments[].{ENV_FIELDS.get(k, 'env')}" for k in changed}
        narrowed = [r for r in rules if r.path in wanted]
        return narrowed or rules
    if prop.startswith("metadata.annotations"):
        keys = {
            "servestack.io/cluster": "cluster.name",
            "servestack.io/description": "deployments[].description",
        }
        wanted = {path for key, path in keys.items() if key in prop}
        if prop == "metadata.annotations":
            o, n = _annotations(old), _annotations(new)
            wanted = {keys[k] for k in set(o) | set(n) if k in keys and o.get(k) != n.get(k)}
        narrowed = [r for r in rules if r.path in wanted]
        return narrowed or rules
    if prop.startswith("metadata.labels"):
        o, n = _labels(old), _labels(new)
        changed = {k for k in set(o) | set(n) if o.get(k) != n.get(k)}
        wanted = set()
        for key in changed:
            if key.startswith("tags.servestack.io/"):
                wanted.add("deployments[].tags")
            elif key == "servestack.io/environment":
                wanted.update({"environment", "deployments[].environment"})
            elif key == "servestack.io/processing":
                wanted.add("deployments[].processing")
        narrowed = [r for r in rules if r.path in wanted]
        return narrowed or rules
    return rules


def _concrete(rule_path: str, component: str | None) -> str:
    if component and rule_path.startswith(("deployments[]", "nodePools[]")):
        _, rest = rule_path.split("[]", 1)
        return f"{component}{rest}"
    return rule_path


def _narrow(fields: list[str], changed: set[str] | None) -> list[str]:
    """Keep the candidate fields that the config edit really changed, when that is known."""
    if not changed:
        return fields
    hit = [f for f in fields if any(c == f or c.startswith(f + ".") for c in changed)]
    return hit or fields


def explain_step(
    step: dict[str, Any], stack: StackConfig | None = None, changed: set[str] | None = None
) -> StepExplanation | None:
    op = step.get("op", "same")
    if op in ("same", "read", "refresh"):
        return None
    urn = step.get("urn", "")
    chain, name = _urn_parts(urn)
    kind = _kind(chain)
    state = step.get("newState") or step.get("oldState") or {}
    component = _component(state, urn)
    detailed = step.get("detailedDiff") or {}
    props = sorted(detailed) if detailed else list(step.get("diffReasons") or [])
    # Pulumi quotes keys with dots (`limits["nvidia.com/gpu"]`); the table writes them plain.
    props = [re.sub(r'\["([^"\]]+)"\]', r".\1", p) for p in props if p != "__inputs"]
    reasons = list(step.get("replaceReasons") or [])
    exp = StepExplanation(
        urn,
        op,
        kind,
        name,
        component,
        _observed(op, kind, props),
        replace_reasons=reasons,
        properties=props,
    )
    found: dict[str, Rule] = {}
    for prop in props or reasons:
        for rule in _refine(rules_rendering(kind, prop), prop, step):
            found.setdefault(rule.path, rule)
    if kind == "Provider" or chain.endswith("pulumi:providers:kubernetes"):
        exp.kind = "Provider"
    exp.fields = _narrow(sorted(_concrete(p, component) for p in found), changed)
    found = {p: r for p, r in found.items() if _concrete(p, component) in exp.fields}
    if found:
        ctx = _context(stack, component)
        worst = max((r.resolve(ctx)[0] for r in found.values()), key=SEVERITY.__getitem__)
        exp.predicted = Change(worst.value)
        exp.unexpected = _more_severe(exp.observed, worst)
    elif exp.observed in (Change.REPLACE, Change.RESTART):
        exp.unexpected = True
    return exp


def _context(stack: StackConfig | None, component: str | None) -> EditContext | None:
    if stack is None or component is None:
        return None
    item = _index(stack).get(component)
    return EditContext(item, item, stack, stack)


_INDEX_CACHE: dict[int, tuple[StackConfig, dict[str, Any]]] = {}


def _index(stack: StackConfig) -> dict[str, Any]:
    """`deployments.<name>` / `nodePools.<name>` -> item, built once per stack object."""
    cached = _INDEX_CACHE.get(id(stack))
    if cached is None or cached[0] is not stack:
        items: dict[str, Any] = {f"deployments.{d.name}": d for d in stack.deployments}
        items.update({f"nodePools.{p.name}": p for p in stack.node_pools})
        cached = (stack, items)
        _INDEX_CACHE.clear()
        _INDEX_CACHE[id(stack)] = cached
    return cached[1]


def _more_severe(observed: Change | None, predicted: Effect) -> bool:
    if observed is None or observed in (Change.CREATE, Change.DELETE):
        return False
    if observed is Change.REPLACE and predicted is Effect.REPLACE:
        return False
    rank = {Change.IN_PLACE: 0, Change.RESTART: 1, Change.REPLACE: 2}
    return rank.get(observed, 0) > SEVERITY[predicted]


def explain_preview(
    preview: dict[str, Any],
    stack: StackConfig | None = None,
    base: StackConfig | None = None,
) -> list[StepExplanation]:
    """Explanations of every step that changes something, in the preview's order.

    With ``base`` (the config the stack was last deployed from) the candidate fields of each
    step are narrowed to those the edit really changed.
    """
    changed = None
    if base is not None and stack is not None:
        from components.review.diff import diff_configs

        changed = {c.path for c in diff_configs(base, stack).changes}
    out = []
    for step in preview.get("steps", []):
        exp = explain_step(step, stack, changed)
        if exp is not None:
            out.append(exp)
    return out


def overall_effect(steps: list[StepExplanation]) -> Change | None:
    """The effect class of a whole preview, as the engine plans it.

    A resource deleted and another of the same kind created under a new name (blue-green,
    renames) counts as a replacement, like the engine's own replace.
    """
    observed = {s.observed for s in steps if s.observed is not None}
    created = {(s.component, s.kind) for s in steps if s.observed is Change.CREATE}
    deleted = {(s.component, s.kind) for s in steps if s.observed is Change.DELETE}
    if Change.REPLACE in observed or created & deleted:
        return Change.REPLACE
    if Change.RESTART in observed:
        return Change.RESTART
    if observed:
        return Change.IN_PLACE
    return None
