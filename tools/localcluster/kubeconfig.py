"""Kubeconfig files of the cluster's identities, certificates embedded."""

from __future__ import annotations

import base64
from pathlib import Path

CONTEXT = "servestack-local"


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _write_kubeconfig(path: Path, server: str, certs: Path, user: str) -> None:
    text = f"""\
apiVersion: v1
kind: Config
clusters:
- name: {CONTEXT}
  cluster:
    server: {server}
    certificate-authority-data: {_b64(certs / "ca.crt")}
users:
- name: {CONTEXT}-{user}
  user:
    client-certificate-data: {_b64(certs / f"{user}.crt")}
    client-key-data: {_b64(certs / f"{user}.key")}
contexts:
- name: {CONTEXT}
  context:
    cluster: {CONTEXT}
    user: {CONTEXT}-{user}
    namespace: default
current-context: {CONTEXT}
"""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    tmp.replace(path)
