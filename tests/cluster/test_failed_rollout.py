"""A rollout that never becomes Ready, on the local cluster: the new image contains
"never-ready", so kwok's pod-never-ready Stage (tools/build-cluster.sh) starts its pods but
never passes their readiness.

- the provider's await fails within the environment's bound
  (servestack.program.stack.ROLLOUT_TIMEOUT_SECONDS), not after the provider's 10 minutes;
- servestack's operation rolls back to the last good config, and the live Deployment's
  template runs the old image again, with no never-ready pod left;
- throughout, the Service never had zero ready endpoints (its EndpointSlices are sampled
  through the API from before the edit until after the rollback).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from servestack.config.models import Environment
from servestack.config.stackfile import set_value
from servestack.contract import labels
from servestack.ops.operations import Workspace, apply, plan
from servestack.program.stack import ROLLOUT_TIMEOUT_SECONDS
from tests.cluster.live import (
    api_client,
    deploy_stack,
    deployments_ready,
    local_stack_text,
    objects_with_our_labels,
    wait_for,
    wait_until_clean,
)

pytestmark = pytest.mark.cluster

STACK, NS, DEP = "dev", "models-dev", "bert-sentiment"
BAD_IMAGE = "registry.example.com/nlp/bert-sentiment-never-ready:2.2.0"


class EndpointSampler(threading.Thread):
    """Counts the ready endpoints of a Service's EndpointSlices, as often as it can."""

    def __init__(self, api: client.ApiClient, namespace: str, service: str) -> None:
        super().__init__(daemon=True)
        self.discovery = client.DiscoveryV1Api(api)
        self.namespace, self.service = namespace, service
        self.samples: list[tuple[float, int]] = []
        self.errors: list[str] = []
        self.stop = threading.Event()

    def ready_endpoints(self) -> int:
        slices = self.discovery.list_namespaced_endpoint_slice(
            self.namespace, label_selector=f"kubernetes.io/service-name={self.service}"
        ).items
        return sum(
            1
            for s in slices
            for e in s.endpoints or []
            if e.conditions is not None and e.conditions.ready
        )

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.samples.append((time.monotonic(), self.ready_endpoints()))
            except Exception as exc:  # recorded: the test fails on any
                self.errors.append(repr(exc))
            self.stop.wait(0.2)


def test_never_ready_rollout_is_bounded_and_rolled_back(
    local_cluster: Path, tmp_path: Path
) -> None:
    api = api_client(local_cluster)
    apps = client.AppsV1Api(api)
    core = client.CoreV1Api(api)
    assert objects_with_our_labels(api) == [], "the cluster is not clean before the test"
    # dev's bert-sentiment runs 1 replica with maxUnavailable 1 (the defaults): any rollout
    # would take its only ready pod away. Keeping traffic needs maxUnavailable 0.
    text = set_value(local_stack_text(STACK), f"deployments.{DEP}.strategy.maxUnavailable", 0)
    s = deploy_stack(tmp_path, local_cluster, STACK, text)
    sampler = EndpointSampler(api, NS, DEP)
    try:
        s.up()
        wait_for("dev Deployments Ready", lambda: deployments_ready(api, NS))
        good = apps.read_namespaced_deployment(DEP, NS)
        good_image = good.spec.template.spec.containers[0].image
        assert "never-ready" not in good_image
        ws = Workspace(project_dir=s.project, engine=s.engine)
        # The first operation records the last good config (the stack as it is).
        p = plan(ws, STACK, {f"deployments.{DEP}.description": "last good"}, DEP)
        assert apply(ws, p)["status"] == "succeeded"
        wait_for("one ready endpoint", lambda: sampler.ready_endpoints() >= 1 or None)

        sampler.start()
        bound = ROLLOUT_TIMEOUT_SECONDS[Environment.development]
        p = plan(ws, STACK, {f"deployments.{DEP}.model.image": BAD_IMAGE}, DEP)
        t0 = time.monotonic()
        seen_bad: dict[str, Any] = {}

        def watch_bad_pods() -> None:
            # The bad rollout really reached the cluster: a pod of the new image, unready.
            while "pod" not in seen_bad and time.monotonic() - t0 < bound + 60:
                for pod in core.list_namespaced_pod(
                    NS, label_selector=f"{labels.NAME}={DEP}"
                ).items:
                    if any("never-ready" in c.image for c in pod.spec.containers):
                        ready = [c for c in pod.status.conditions or [] if c.type == "Ready"]
                        seen_bad["pod"] = pod.metadata.name
                        seen_bad["ready"] = ready[0].status if ready else None
                time.sleep(0.25)

        watcher = threading.Thread(target=watch_bad_pods, daemon=True)
        watcher.start()
        result = apply(ws, p)
        elapsed = time.monotonic() - t0
        watcher.join(timeout=5)
        assert result["status"] == "rolled_back", (result, seen_bad)
        assert result["rollback"]["status"] == "succeeded", result
        assert seen_bad.get("pod"), "no pod of the never-ready image was ever created"
        assert seen_bad.get("ready") != "True"
        # The await failed at the bound, not at the provider's 10 minutes (the whole
        # operation includes the rollback's own rollout).
        assert elapsed < bound + 120, f"failed rollout + rollback took {elapsed:.0f}s"
        # It failed by the await's timeout: not before the bound.
        assert elapsed >= bound, f"the update failed after {elapsed:.0f}s, before the bound"
        print(
            f"failed rollout + rollback: {elapsed:.1f}s (bound {bound}s); error: {result['error']}"
        )

        # Live: the Deployment runs the old image again, nothing of the bad one is left.
        wait_for("the rollback's rollout settled", lambda: deployments_ready(api, NS))
        live = apps.read_namespaced_deployment(DEP, NS)
        assert live.spec.template.spec.containers[0].image == good_image
        assert live.metadata.uid == good.metadata.uid
        wait_for(
            "no never-ready pod left",
            lambda: (
                not any(
                    "never-ready" in c.image
                    for pod in core.list_namespaced_pod(NS).items
                    for c in pod.spec.containers
                )
                or None
            ),
        )
        stack_text = ws.stack_file(STACK).read_text(encoding="utf-8")
        assert BAD_IMAGE not in stack_text, "the stack file still holds the failed config"
        assert Path(result["rollback"]["failed_config"]).read_text().count(BAD_IMAGE) == 1
    finally:
        sampler.stop.set()
        if sampler.is_alive():
            sampler.join(timeout=5)
        s.destroy()
    assert not sampler.errors, sampler.errors[:3]
    assert len(sampler.samples) >= 20, f"only {len(sampler.samples)} samples"
    zero = [t for t, n in sampler.samples if n == 0]
    assert not zero, f"{len(zero)} of {len(sampler.samples)} samples had no ready endpoint"
    wait_until_clean(api)
