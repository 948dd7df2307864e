"""`servestack.program.options.amended`: the program's transformations amend a resource's
options without ``ResourceOptions.merge`` (its cost is paid once per resource), and the
engine must receive the same registration either way."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
from google.protobuf.json_format import MessageToDict

from servestack.program.options import amended
from tests.mocks import RecordingMonitor, run_program

#: What differs between two registrations of equal options: who they are and where the
#: program made them.
_IDENTITY = {"name", "sourcePosition", "stackTrace"}

AMENDMENTS: list[dict[str, Any]] = [
    {"replace_on_changes": ['metadata.annotations["x"]'], "delete_before_replace": True},
    {"protect": True},
    {"protect": False},
    {"custom_timeouts": pulumi.CustomTimeouts(create="60s", update="60s")},
]


def _registrations(amendment: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """One ConfigMap with options from ``merge``, one from ``amended``, under the same
    component, provider and dependencies; their RegisterResource requests."""
    built: dict[str, pulumi.ResourceOptions] = {}

    def program() -> None:
        provider = k8s.Provider("k8s", render_yaml_to_directory="out")
        parent = pulumi.ComponentResource("test:index:Parent", "p", None, None)
        dep = k8s.core.v1.ConfigMap(
            "dep", data={"a": "1"}, opts=pulumi.ResourceOptions(parent=parent)
        )
        base = pulumi.ResourceOptions(
            parent=parent,
            provider=provider,
            depends_on=[dep],
            delete_before_replace=None,
            replace_on_changes=["spec.selector"],
            ignore_changes=["data.b"],
        )
        built["base"] = base
        merged = pulumi.ResourceOptions.merge(base, pulumi.ResourceOptions(**amendment))
        k8s.core.v1.ConfigMap("merged", data={"a": "1"}, opts=merged)
        k8s.core.v1.ConfigMap("amended", data={"a": "1"}, opts=amended(base, **amendment))

    rec = run_program(program, monitor=RecordingMonitor)
    assert isinstance(rec.monitor, RecordingMonitor)
    requests = {
        req.name: {
            k: sorted(v) if k == "dependencies" else v
            for k, v in MessageToDict(req).items()
            if k not in _IDENTITY
        }
        for _, req in rec.monitor.requests
    }
    # The base options are left as they were: a component hands one object to every child.
    assert built["base"].replace_on_changes == ["spec.selector"]
    assert built["base"].protect is None and built["base"].custom_timeouts is None
    return requests["merged"], requests["amended"]


@pytest.mark.parametrize("amendment", AMENDMENTS, ids=lambda a: ",".join(a))
def test_amended_registers_what_merge_registers(amendment: dict[str, Any]) -> None:
    merged, amended_ = _registrations(amendment)
    assert amended_ == merged
    # The comparison sees the amendment itself (the fields are in the request).
    if "replace_on_changes" in amendment:
        assert merged["replaceOnChanges"] == ["spec.selector", 'metadata.annotations["x"]']
    if "protect" in amendment:
        assert merged.get("protect", False) is amendment["protect"]


def test_amended_without_options() -> None:
    opts = amended(None, protect=True)
    assert opts.protect is True and opts.replace_on_changes is None


def test_amended_refuses_an_unknown_option() -> None:
    with pytest.raises(TypeError, match="no option 'protekt'"):
        amended(pulumi.ResourceOptions(), protekt=True)
