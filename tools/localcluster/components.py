"""The five components' command lines (flags, ports, files) and environment."""

from __future__ import annotations

import os
from pathlib import Path

from .common import HOST, KWOK_NODE_ANNOTATION, NODE_IP, POD_CIDR, SERVICE_CIDR
from .kwok import _kwok_stages


def _child_env(rd: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }
    env["NO_PROXY"] = env["no_proxy"] = HOST
    env.pop("KUBECONFIG", None)
    env["KWOK_WORKDIR"] = str(rd / "kwok")  # else kwok also loads ~/.kwok/kwok.yaml
    return env


def _argv(entry: Path, rd: Path, ports: dict[str, int]) -> dict[str, list[str]]:
    b, c = entry / "bin", rd / "certs"
    etcd_url = f"http://{HOST}:{ports['etcd']}"
    peer_url = f"http://{HOST}:{ports['etcd-peer']}"
    stages = _kwok_stages(entry, rd)
    return {
        "etcd": [
            str(b / "etcd"),
            "--name=servestack",
            f"--data-dir={rd / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=servestack={peer_url}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync",
            "--quota-backend-bytes=2147483648",
            "--log-level=warn",
        ],
        "kube-apiserver": [
            str(b / "kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            f"--bind-address={HOST}",
            f"--advertise-address={HOST}",
            f"--secure-port={ports['kube-apiserver']}",
            f"--tls-cert-file={c / 'apiserver.crt'}",
            f"--tls-private-key-file={c / 'apiserver.key'}",
            f"--client-ca-file={c / 'ca.crt'}",
            f"--service-account-key-file={c / 'sa.pub'}",
            f"--service-account-signing-key-file={c / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--profiling=false",
            f"--requestheader-client-ca-file={c / 'ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={c / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={c / 'front-proxy-client.key'}",
            f"--cert-dir={rd / 'kube-apiserver'}",
        ],
        "kube-controller-manager": [
            str(b / "kube-controller-manager"),
            f"--kubeconfig={rd / 'controller-manager.kubeconfig'}",
            f"--authentication-kubeconfig={rd / 'controller-manager.kubeconfig'}",
            f"--authorization-kubeconfig={rd / 'controller-manager.kubeconfig'}",
            f"--bind-address={HOST}",
            f"--secure-port={ports['kube-controller-manager']}",
            f"--cert-dir={rd / 'kube-controller-manager'}",
            "--leader-elect=false",
            f"--root-ca-file={c / 'ca.crt'}",
            "--use-service-account-credentials=true",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--profiling=false",
        ],
        "kube-scheduler": [
            str(b / "kube-scheduler"),
            f"--kubeconfig={rd / 'scheduler.kubeconfig'}",
            f"--authentication-kubeconfig={rd / 'scheduler.kubeconfig'}",
            f"--authorization-kubeconfig={rd / 'scheduler.kubeconfig'}",
            f"--bind-address={HOST}",
            f"--secure-port={ports['kube-scheduler']}",
            f"--cert-dir={rd / 'kube-scheduler'}",
            "--leader-elect=false",
            "--profiling=false",
        ],
        "kwok": [
            str(b / "kwok"),
            f"--kubeconfig={rd / 'kwok.kubeconfig'}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=" + "=".join(KWOK_NODE_ANNOTATION),
            f"--cidr={POD_CIDR}",
            f"--node-ip={NODE_IP}",
            f"--server-address={HOST}:{ports['kwok']}",
            "--node-lease-duration-seconds=40",
            *(f"--config={s}" for s in stages),
        ],
    }
