"""A custom resource its CRD refuses, on the local cluster.

The test program (tests/cluster/programs/rejection) composes a ServiceMonitor by hand, so no
servestack validation stands in front of it, with the scrape interval "30 seconds": the
Prometheus operator's CRD wants a duration such as "30s". The API server refuses it:

- `pulumi up` fails with an error that names the resource and the field, and servestack's
  reading of the engine's output (``servestack.ops.operations.engine_error``) keeps both in
  its one line;
- nothing is half-applied: the refused object is neither on the server nor in the state,
  and what was applied (the namespace and a ConfigMap) is recorded as it is on the server;
- with the interval fixed, a second `up` creates only the ServiceMonitor and finishes; a
  refreshed preview afterwards plans nothing, and destroy leaves nothing of ours.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import dynamic
from pulumi import automation as auto

from servestack.ops.operations import engine_error
from tests.cluster.live import (
    api_client,
    deploy_program,
    live_object,
    objects_with_our_labels,
    wait_until_clean,
)

pytestmark = pytest.mark.cluster

PROGRAM = Path(__file__).parent / "programs" / "rejection"
SM = {
    "apiVersion": "monitoring.coreos.com/v1",
    "kind": "ServiceMonitor",
    "metadata": {"name": "scrape", "namespace": "rejection"},
}


def test_crd_rejection_is_clear_and_a_second_up_finishes(
    local_cluster: Path, tmp_path: Path
) -> None:
    api = api_client(local_cluster)
    dyn = dynamic.DynamicClient(api)
    assert objects_with_our_labels(api) == [], "the cluster is not clean before the test"
    s = deploy_program(tmp_path, local_cluster, PROGRAM, "test", {"interval": "30 seconds"})
    try:
        with pytest.raises(auto.CommandError) as failed:
            s.up()
        output = str(failed.value)
        # The engine names the resource and the API server names the field and the value.
        assert "kubernetes:monitoring.coreos.com/v1:ServiceMonitor (scrape)" in output, output
        assert "spec.endpoints[0].interval" in output, output
        assert '"30 seconds"' in output, output
        said = engine_error(failed.value)
        print("servestack says:", said)
        assert said.startswith("kubernetes:monitoring.coreos.com/v1:ServiceMonitor (scrape): ")
        assert "spec.endpoints[0].interval" in said and "30 seconds" in said, said

        # Nothing half-applied: the refused object exists nowhere; the rest is recorded.
        assert live_object(dyn, SM) is None
        recorded = {r["outputs"]["kind"]: r for r in s.resources()}
        assert sorted(recorded) == ["ConfigMap", "Namespace"], sorted(recorded)
        for r in recorded.values():
            live = live_object(dyn, r["outputs"])
            assert live is not None and live.metadata.uid == r["outputs"]["metadata"]["uid"]

        # Fixed, a second up finishes the job: only the ServiceMonitor is created.
        s.engine.stack(s.project, s.stack).set_config("interval", auto.ConfigValue(value="30s"))
        changes = s.up()
        assert changes == {"create": 1, "same": 4}, changes
        live = live_object(dyn, SM)
        assert live is not None and live.spec.endpoints[0].interval == "30s"
        assert set(s.preview(refresh=True)) == {"same"}
    finally:
        s.destroy()
    wait_until_clean(api)
