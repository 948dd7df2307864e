"""`servestack status` on a cluster target, against the live dev stack on the local cluster,
run as the `servestack` command a user types:

- after `up`: the Deployment's desired/updated/ready/available counts, the image each
  ReplicaSet runs (as the server has it), the rollout's conditions, the pods' last events,
  and, for the autoscaled worker, the HPA's current and target metrics; "rolled out";
- `--watch` on a rollout that cannot finish (an image kwok never lets turn Ready, set on the
  Deployment by hand, as `kubectl set image` would) gives up after `--timeout` with exit 3
  and says what is missing;
- `--watch` started while that rollout hangs follows it to the end once the image is set
  back: "rollout in progress" first, then "rolled out", exit 0.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.cluster.live import (
    ClusterStack,
    api_client,
    deploy_stack,
    deployments_ready,
    local_stack_text,
    objects_with_our_labels,
    wait_for,
    wait_until_clean,
)

pytestmark = pytest.mark.cluster

STACK, NS, DEP, WORKER = "dev", "models-dev", "bert-sentiment", "whisper-batch"
BAD_IMAGE = "registry.example.com/nlp/bert-sentiment-never-ready:2.2.0"


def table_rows(out: str) -> list[list[str]]:
    """The cells of each row of the tables rich printed."""
    return [
        [cell.strip() for cell in line.strip().strip("│┃").split("│")]
        for line in out.splitlines()
        if line.lstrip().startswith("│")
    ]


@pytest.fixture(scope="module")
def dev(local_cluster: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterStack]:
    api = api_client(local_cluster)
    assert objects_with_our_labels(api) == [], "the cluster is not clean before the test"
    s = deploy_stack(
        tmp_path_factory.mktemp("status"), local_cluster, STACK, local_stack_text(STACK)
    )
    try:
        s.up()
        wait_for("dev Deployments Ready", lambda: deployments_ready(api, NS))
        yield s
    finally:
        s.destroy()
        wait_until_clean(api)


def test_status_shows_the_live_deployment(dev: ClusterStack, local_cluster: Path) -> None:
    apps = client.AppsV1Api(api_client(local_cluster))
    proc = dev.servestack("status", STACK, DEP)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    print(out)
    live = apps.read_namespaced_deployment(DEP, NS)
    image = live.spec.template.spec.containers[0].image
    assert f"Deployment {DEP} (namespace {NS})" in out
    # The counts row: desired, updated, ready, available and pods, 1 each.
    assert ["1"] * 5 in table_rows(out), out
    (rs,) = [
        r
        for r in apps.list_namespaced_replica_set(NS).items
        if r.metadata.owner_references[0].name == DEP
    ]
    assert f"  replicaset {rs.metadata.name} revision 1: 1 pods, 1 ready, image {image}" in out
    for cond in live.status.conditions:
        assert f"  condition {cond.type}={cond.status}: {cond.message}" in out
    assert f"  event Pod/{rs.metadata.name}-" in out  # e.g. the scheduler's Scheduled
    assert out.rstrip().endswith("rolled out")


def test_status_shows_the_autoscalers_metrics(dev: ClusterStack) -> None:
    proc = dev.servestack("status", STACK, WORKER)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(proc.stdout)
    # whisper-batch is a queue worker: a KEDA ScaledObject scales it, on its queue's depth
    # and on CPU. No KEDA operator runs on the local cluster, so the current figures are
    # unknown, and status says why.
    rows = table_rows(proc.stdout)
    assert ["replicas", "<unknown>", "1..3"] in rows, rows
    assert ["rabbitmq transcriptions", "<unknown>", "20"] in rows, rows
    assert ["cpu", "<unknown>", "80%"] in rows, rows
    assert "  autoscaler Ready=Unknown: no status: KEDA has not reconciled" in proc.stdout


def test_watch_times_out_on_a_stuck_rollout_then_follows_it_to_the_end(
    dev: ClusterStack, local_cluster: Path
) -> None:
    apps = client.AppsV1Api(api_client(local_cluster))
    good = apps.read_namespaced_deployment(DEP, NS).spec.template.spec.containers[0].image

    def set_image(image: str) -> None:
        # A JSON patch (the client sends a list as one): the image of the first container.
        path = "/spec/template/spec/containers/0/image"
        apps.patch_namespaced_deployment(DEP, NS, [{"op": "replace", "path": path, "value": image}])

    set_image(BAD_IMAGE)
    try:
        t0 = time.monotonic()
        proc = dev.servestack("status", STACK, DEP, "--watch", "--timeout", "8")
        took = time.monotonic() - t0
        print(proc.stdout)
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert "rollout in progress" in proc.stdout
        assert f"image {BAD_IMAGE}" in proc.stdout
        assert f"rollout not complete after 8 s (--timeout): {DEP}: 1/1 updated, " in proc.stdout
        assert 8 <= took < 60, took

        watcher = subprocess.Popen(
            dev.servestack_command("status", STACK, DEP, "--watch", "--timeout", "120"),
            env=dev.servestack_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert watcher.stdout is not None
        seen = []
        for line in watcher.stdout:
            seen.append(line)
            if line.startswith("rollout in progress"):
                break
        assert seen and seen[-1].startswith("rollout in progress"), "".join(seen)
        set_image(good)
        rest, _ = watcher.communicate(timeout=150)
        out = "".join(seen) + rest
        print(out)
        assert watcher.returncode == 0, out
        assert out.rstrip().endswith("rolled out")
        last = out[out.rindex(f"Deployment {DEP}") :]
        assert f"image {good}" in last
    finally:
        set_image(good)
        wait_for("dev Deployments Ready", lambda: deployments_ready(api_client(local_cluster), NS))
