"""Fixtures for the tests that run against the local control plane of tools/cluster.py
(etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on 127.0.0.1).

`local_cluster` starts it once per session (building the binaries with
tools/build-cluster.sh first if .cluster-bin is missing: ~10 min cold) and yields the
kubeconfig path. A cluster that was already running is reused and left running; one this
session started is stopped at the end (data kept) unless SERVESTACK_KEEP_CLUSTER=1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.cluster.live import load_cluster_module, running_cluster

ROOT = Path(__file__).resolve().parents[2]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cluster: runs against the local Kubernetes control plane (tools/cluster.py)"
    )


@pytest.fixture(scope="session")
def cluster_module() -> ModuleType:
    return load_cluster_module()


@pytest.fixture(scope="session")
def cluster_info() -> Iterator[Any]:
    with running_cluster(ROOT) as info:
        yield info


@pytest.fixture(scope="session")
def local_cluster(cluster_info: Any) -> Path:
    """Path of the kubeconfig (context `servestack-local`) of the running local cluster."""
    path: Path = cluster_info.kubeconfig
    return path
