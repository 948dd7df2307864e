"""Trace the steps of a real `pulumi preview --json` back to the config fields behind them.

Each step's resource is attributed to its servestack component through its parent URN (the
component's name is the deployment's or node pool's name). Its changed properties (the
step's ``detailedDiff``) are traced through the provenance the builders record: the stack
file is built again, without Pulumi, and each property is looked up where it was made
(:mod:`servestack.manifests.provenance`). With the stack file last deployed (``base``) both
builds are read and only fields that really changed are named, so the answer is exact.
Without any stack file, properties are traced through the sample stacks, by kind and
property, which may name several candidates. An engine operation more severe than
anything the table predicts for those fields is flagged ``unexpected``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from servestack.config.models import StackConfig
from servestack.config.paths import FieldPath
from servestack.contract.effects import EditContext, Effect, rule_for, worst
from servestack.manifests import lifecycle, naming
from servestack.manifests.provenance import (
    ADD,
    DELETE,
    UPDATE,
    Cause,
    Prop,
    Record,
    parse_prop,
    prop_text,
)
from servestack.manifests.render import Key, Rendered, render_deployment, render_stack

COMPONENT_TYPES = {naming.MODEL_DEPLOYMENT: "deployments", naming.GPU_NODE_POOL: "nodePools"}
REPLACE_OPS = {"replace", "create-replacement", "delete-replaced"}
#: detailedDiff kinds -> what happened to the property.
_DIFF_KINDS = {
    "add": ADD,
    "add-replace": ADD,
    "delete": DELETE,
    "delete-replace": DELETE,
    "update": UPDATE,
    "update-replace": UPDATE,
}


@dataclass
class StepExplanation:
    urn: str
    op: str
    kind: str
    name: str
    component: str | None
    observed: Effect | None
    fields: list[str] = field(default_factory=list)
    predicted: Effect | None = None
    unexpected: bool = False
    replace_reasons: list[str] = field(default_factory=list)
    properties: list[str] = field(default_factory=list)
    #: The fields are candidates traced through the sample stacks (no stack file for the
    #: step): one of them, not all, caused it.
    candidates: bool = False
    #: Every effect the table gives the fields, least severe first (several for candidates).
    possible: list[Effect] = field(default_factory=list)

    @property
    def says(self) -> str:
        """What the table says, as the review shows it: ``restart or replace`` when the
        candidates disagree, ``-`` when no rule applies."""
        if self.candidates and len(self.possible) > 1:
            return " or ".join(e.value for e in self.possible)
        return self.predicted.value if self.predicted else "-"

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
            "candidates": self.candidates,
        }


def _urn_parts(urn: str) -> tuple[str, str]:
    """(type chain, name) of a URN."""
    body = urn.split("::", 3)
    return (body[2], body[3]) if len(body) == 4 else ("", urn)


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


def _observed(op: str, type_token: str, props: list[Prop]) -> Effect | None:
    if op in REPLACE_OPS:
        return Effect.REPLACE
    if op in ("create", "delete", "update"):
        # The engine decided update vs replace; what is left is restart vs in place.
        step = lifecycle.ResourceChange(type_token, "", op, tuple(props))
        found = lifecycle.step_effect(step)
        return Effect.IN_PLACE if found is Effect.REPLACE else found
    return None


def _changed_props(step: dict[str, Any]) -> list[tuple[Prop, str]]:
    detailed = step.get("detailedDiff")
    if isinstance(detailed, dict) and detailed:
        items = [(p, _DIFF_KINDS.get(str(d.get("kind")), UPDATE)) for p, d in detailed.items()]
    else:
        reasons = step.get("diffReasons") or step.get("replaceReasons") or []
        items = [(p, UPDATE) for p in reasons]
    out = []
    for text, change in items:
        if text == "__inputs":
            continue
        try:
            out.append((parse_prop(text), change))
        except ValueError:
            continue
    return out


@dataclass
class _Context:
    new: Rendered | None
    old: Rendered | None
    stack: StackConfig | None
    base: StackConfig | None
    #: Changed config paths -> their effect, when the base is known.
    changed: dict[str, Effect] | None
    #: Models built so far: each is built when a step first needs it.
    built: set[tuple[str, str]] = field(default_factory=set)
    names: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    def _record(self, which: str, key: Key, component: str | None) -> Record | None:
        rendered, config = (self.new, self.stack) if which == "new" else (self.old, self.base)
        if rendered is None or config is None:
            return None
        if component and component.startswith("deployments."):
            name = component.split(".", 1)[1]
            if (which, name) not in self.built and key.name in self._names(which, config, name):
                # Built only when the step can be one of its children (names are contract).
                self.built.add((which, name))
                render_deployment(rendered, config, name)
        return rendered.record(key)

    def _names(self, which: str, config: StackConfig, name: str) -> set[str]:
        found = self.names.get((which, name))
        if found is None:
            spec = _items(config).get(f"deployments.{name}")
            found = self.names[(which, name)] = naming.child_names(spec) if spec else set()
        return found

    def cause(
        self, key: Key, op: str, props: list[tuple[Prop, str]], component: str | None
    ) -> Cause | None:
        """Fields behind a step, from the builds; None when they say nothing about it."""
        new = self._record("new", key, component)
        old = self._record("old", key, component)
        if new is None and old is None:
            return None
        if not props:
            # The whole resource appears or goes: whatever decides that it exists.
            props = [((), DELETE if op == "delete" else ADD)]
        out = Cause()
        for prop, change in props:
            # An added property is in the new build, a deleted one in the old.
            builds = {ADD: (new,), DELETE: (old,)}.get(change, (new, old))
            found = Cause()
            for record in builds:
                if record is not None and record.exists(prop):
                    found |= record.cause(prop, change)
            if not found.all:
                # Not where the engine says (no base build): its nearest container's.
                for record in (new, old):
                    if record is not None:
                        found |= record.cause(prop, change)
            out |= found
        return out if out.all else None


def _generic(
    type_token: str, op: str, props: list[tuple[Prop, str]], component: str | None
) -> Cause:
    """Trace through the sample stacks (no stack file, or a resource the builds lack)."""
    from servestack.manifests.sample import generic_cause

    out = Cause()
    for prop, change in props or [((), ADD if op != "delete" else DELETE)]:
        found = generic_cause(type_token, prop, change)
        out |= Cause(
            frozenset(_concrete(f, component) for f in found.direct),
            frozenset(_concrete(f, component) for f in found.via),
        )
    return out


@functools.lru_cache(maxsize=8192)
def _concrete(table_path: str, component: str | None) -> str:
    path = FieldPath.parse(table_path)
    if component and path.collection and path.collection == component.split(".", 1)[0]:
        return str(FieldPath.of(component, path.rest))
    return table_path


def _related(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _fields(cause: Cause, changed: dict[str, Effect] | None) -> list[str]:
    """The fields to name: the direct ones, or with a base, those the edit changed (as the
    diff names them)."""
    if changed is None:
        return sorted(cause.direct)
    hit: set[str] = set()
    for c in changed:
        for f in cause.all:
            if _related(c, f):
                # The more general of the two: a whole new item, or a map field's key.
                hit.add(c if f.startswith(c + ".") else f)
    return sorted(hit) or sorted(cause.direct)


def _predict(fields: list[str], ctx: _Context, component: str | None) -> list[Effect]:
    """The effects the table gives ``fields``, least severe first."""
    effects = []
    for f in fields:
        if ctx.changed is not None:
            known = [e for c, e in ctx.changed.items() if _related(c, f)]
            if known:
                effects += known
                continue
        try:
            rule = rule_for(f)
        except KeyError:
            continue
        effects.append(rule.resolve(_edit(ctx, component)).effect)
    # A forbidden edit never reaches the engine (validation and the program refuse it): a
    # step the engine planned has another cause among the candidates.
    possible = [e for e in effects if e is not Effect.FORBIDDEN] or effects
    return sorted(set(possible), key=lambda e: e.severity)


def _edit(ctx: _Context, component: str | None) -> EditContext | None:
    if ctx.stack is None or component is None:
        return None
    new = _items(ctx.stack).get(component)
    old = _items(ctx.base).get(component) if ctx.base is not None else new
    return EditContext(old or new, new or old, ctx.base or ctx.stack, ctx.stack)


_ITEMS: dict[int, tuple[StackConfig, dict[str, Any]]] = {}


def _items(stack: StackConfig) -> dict[str, Any]:
    """`deployments.<name>` / `nodePools.<name>` -> item, built once per stack object."""
    cached = _ITEMS.get(id(stack))
    if cached is None or cached[0] is not stack:
        items: dict[str, Any] = {f"deployments.{d.name}": d for d in stack.deployments}
        items.update({f"nodePools.{p.name}": p for p in stack.node_pools})
        if len(_ITEMS) > 8:
            _ITEMS.clear()
        cached = _ITEMS[id(stack)] = (stack, items)
    return cached[1]


def _explain(step: dict[str, Any], ctx: _Context) -> StepExplanation | None:
    op = step.get("op", "same")
    if op in ("same", "read", "refresh"):
        return None
    urn = step.get("urn", "")
    chain, name = _urn_parts(urn)
    type_token = chain.rsplit("$", 1)[-1]
    state = step.get("newState") or step.get("oldState") or {}
    component = _component(state, urn)
    props = _changed_props(step)
    plain = [p for p, _ in props]
    exp = StepExplanation(
        urn,
        op,
        lifecycle.kind(type_token),
        name,
        component,
        _observed(op, type_token, plain),
        replace_reasons=list(step.get("replaceReasons") or []),
        properties=[prop_text(p) for p in plain],
    )
    key = Key(type_token, name)
    cause = ctx.cause(key, op, props, component)
    if cause is None:
        cause = _generic(type_token, op, props, component)
        exp.candidates = ctx.changed is None
    exp.fields = _fields(cause, ctx.changed)
    exp.possible = _predict(exp.fields, ctx, component)
    exp.predicted = worst(exp.possible)
    if exp.predicted is not None:
        exp.unexpected = _more_severe(exp.observed, exp.predicted)
    elif exp.observed in (Effect.REPLACE, Effect.RESTART):
        exp.unexpected = True
    return exp


def _more_severe(observed: Effect | None, predicted: Effect) -> bool:
    if observed is None or observed in (Effect.CREATE, Effect.DELETE):
        return False
    return observed.severity > predicted.severity


def explain_preview(
    preview: dict[str, Any],
    stack: StackConfig | None = None,
    base: StackConfig | None = None,
) -> list[StepExplanation]:
    """Explanations of every step that changes something, in the preview's order.

    ``stack`` is the config the preview was made from; ``base`` the config the stack was
    last deployed from. With both, each step names exactly the edited fields behind it.
    """
    changed = None
    if base is not None and stack is not None:
        from servestack.review.diff import diff_configs

        changed = {c.path: c.effect for c in diff_configs(base, stack).changes if not c.capacity}
    ctx = _Context(
        new=render_stack(stack, deployments=set()) if stack is not None else None,
        old=render_stack(base, deployments=set()) if base is not None else None,
        stack=stack,
        base=base,
        changed=changed,
    )
    out = []
    for step in preview.get("steps", []):
        exp = _explain(step, ctx)
        if exp is not None:
            out.append(exp)
    return out


def overall_effect(steps: list[StepExplanation]) -> Effect | None:
    """The effect class of a whole preview, as the engine plans it (see
    :func:`servestack.manifests.lifecycle.combine`)."""
    return lifecycle.combine((s.kind, s.observed) for s in steps if s.observed is not None)
