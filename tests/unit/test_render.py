"""The review tool's model of a stack is what the stack program really registers.

`explain` and the provenance test read :func:`servestack.manifests.render.render_stack`
instead of running Pulumi. Under mocks, the program registers every resource; each
registered Kubernetes resource (and the provider) must be rendered, with the same inputs.
"""

from __future__ import annotations

from typing import Any

import pytest

from servestack.config.models import StackConfig
from servestack.manifests.provenance import Record, changes
from servestack.manifests.render import PROVIDER_TYPE, Key, render_stack
from servestack.manifests.sample import sample_stack
from servestack.program.stack import build
from tests.mocks import run_program
from tests.unit.specs import STACK_NAMES, stack_config

CASES = [(name, stack_config(name)) for name in STACK_NAMES] + [
    ("sample", sample_stack("karpenter"))
]


def _registered(config: StackConfig, stack: str) -> dict[Key, dict[str, Any]]:
    recorder = run_program(lambda: build(config, stack), stack=stack)
    return {
        Key(r.type, r.name): r.inputs
        for r in recorder.resources
        if r.type.startswith("kubernetes:") or r.type == PROVIDER_TYPE
    }


@pytest.mark.parametrize(("stack", "config"), CASES, ids=[c[0] for c in CASES])
def test_render_is_what_the_program_registers(stack: str, config: StackConfig) -> None:
    registered = _registered(config, stack)
    rendered = render_stack(config, stack)
    assert sorted(rendered.resources) == sorted(registered)
    for key, record in rendered.resources.items():
        inputs = registered[key]
        if key.type == PROVIDER_TYPE:
            # Its render directory depends on the environment the program runs in.
            assert sorted(inputs) == sorted(record.manifest), key
            continue
        got = dict(inputs)
        want = dict(record.manifest)
        if key.type == "kubernetes:core/v1:Secret":
            # Secret values are Pulumi secrets, not config: compare their keys.
            assert sorted(want.pop("stringData")) == sorted(config_secret_keys(config, key))
            got.pop("stringData", None)
        assert changes(want, got) == [], key


def config_secret_keys(config: StackConfig, key: Key) -> list[str]:
    dep = next(d for d in config.deployments if f"{d.name}-env" == key.name)
    return list(dep.secret_env)


def test_every_render_carries_a_record_for_each_resource() -> None:
    rendered = render_stack(sample_stack("karpenter"))
    assert all(isinstance(r, Record) and r.marks for r in rendered.resources.values())
    assert set(rendered.components.values()) >= {None, "deployments.chat", "nodePools.a100"}
