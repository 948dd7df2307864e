"""The cluster's certificates, made with the openssl command: a CA, the API server's serving
certificate, a client certificate per identity, and the service-account signing key pair."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path

from .common import ClusterError

_OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,\
DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:198.18.0.1
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
"""
# name -> (subject, extension section)
_LEAF_CERTS = {
    "apiserver": ("/CN=kube-apiserver", "server"),
    "admin": ("/O=system:masters/CN=servestack-admin", "client"),
    "controller-manager": ("/CN=system:kube-controller-manager", "client"),
    "scheduler": ("/CN=system:kube-scheduler", "client"),
    # kwok patches node/pod status and leases of any node: an admin identity of its own.
    "kwok": ("/O=system:masters/CN=kwok", "client"),
    "front-proxy-client": ("/CN=front-proxy-client", "client"),
}


def _openssl(*args: str) -> None:
    r = subprocess.run(["openssl", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise ClusterError(f"openssl {' '.join(args[:2])}: {r.stderr.strip()}")


def _ensure_certs(certs: Path) -> None:
    if (certs / ".complete").is_file():
        return
    if certs.exists():
        shutil.rmtree(certs)
    tmp = certs.with_name(certs.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True, mode=0o700)
    cnf = tmp / "openssl.cnf"
    cnf.write_text(_OPENSSL_CNF)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req",
        "-x509",
        "-config",
        str(cnf),
        "-extensions",
        "ca",
        *ec,
        "-keyout",
        str(tmp / "ca.key"),
        "-out",
        str(tmp / "ca.crt"),
        "-days",
        "3650",
        "-subj",
        "/CN=servestack-local-ca",
    )
    for name, (subject, ext) in _LEAF_CERTS.items():
        # OpenSSL 3: `req -x509 -CA` makes the key and the CA-signed certificate in one call.
        _openssl(
            "req",
            "-x509",
            "-config",
            str(cnf),
            "-extensions",
            ext,
            *ec,
            "-keyout",
            str(tmp / f"{name}.key"),
            "-out",
            str(tmp / f"{name}.crt"),
            "-subj",
            subject,
            "-CA",
            str(tmp / "ca.crt"),
            "-CAkey",
            str(tmp / "ca.key"),
            "-set_serial",
            str(secrets.randbits(63) | 1),
            "-days",
            "3650",
        )
    # Service-account token signing key pair.
    _openssl(
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        str(tmp / "sa.key"),
    )
    _openssl("pkey", "-in", str(tmp / "sa.key"), "-pubout", "-out", str(tmp / "sa.pub"))
    (tmp / ".complete").touch()
    tmp.rename(certs)
