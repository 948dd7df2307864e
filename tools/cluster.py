#!/usr/bin/env python3
"""A real Kubernetes control plane on 127.0.0.1 for local tests: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and kwok (fake kubelets), built by
tools/build-cluster.sh. Standard library only (plus the `openssl` command for certificates).

    python3 tools/cluster.py up [--timeout S]   start (or find running) and print the export line
    python3 tools/cluster.py down [--purge]     stop by the recorded pids; --purge removes .cluster/
    python3 tools/cluster.py status             running?, ports, memory, nodes
    python3 tools/cluster.py env                print `export KUBECONFIG=...`

    eval "$(python3 tools/cluster.py up)"

Everything listens on 127.0.0.1 only, on free ports picked at start (reused on a restart when
still free). The cluster's service and pod addresses are fake (nothing answers there): they come
from 198.18.0.0/15, the block RFC 2544 reserves for benchmark testing, which is routed nowhere
and collides with none of the private, CGNAT (100.64.0.0/10) or cloud/Kubernetes default ranges.

State lives in <root>/.cluster/: certs/, etcd/ (data, --unsafe-no-fsync), logs/, kubeconfig
(context `servestack-local`), pids.json (pids, process start times, ports) and ports.json.

Tests import it (importlib from tools/cluster.py): `up(root) -> ClusterInfo`, `down(root)`,
`status(root)`, `kubeconfig_path(root)`, `request(info, method, path, body)`. Importing it has
no side effects.
"""

from __future__ import annotations

import argparse
import base64
import calendar
import concurrent.futures
import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
CONTEXT = "servestack-local"
FIELD_MANAGER = "servestack-cluster"
SERVICE_CIDR = "198.18.0.0/16"  # RFC 2544 test range; the `kubernetes` Service gets 198.18.0.1
POD_CIDR = "198.19.0.0/17"  # RFC 2544 test range (kwok hands out pod IPs from here)
NODE_IP = "198.19.128.1"  # RFC 2544 test range, outside POD_CIDR (kwok nodes' InternalIP)
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
BOOTSTRAP_NODE = "local-system"
BOOTSTRAP_NODE_LABELS = {"servestack.io/pool": "system"}
BOOTSTRAP_NODE_CAPACITY = {
    "cpu": "8",
    "memory": "32Gi",
    "ephemeral-storage": "100Gi",
    "pods": "110",
}

# Start order; stopped in reverse.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
PORT_NAMES = (
    "etcd",
    "etcd-peer",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
)
STOP_TIMEOUT = 15.0


class ClusterError(RuntimeError):
    pass


@dataclass(frozen=True)
class ClusterInfo:
    root: Path
    run_dir: Path
    kubeconfig: Path
    server: str
    ports: dict[str, int]
    pids: dict[str, int]
    ca_file: Path
    client_cert: Path
    client_key: Path
    already_running: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    def export_line(self) -> str:
        return f"export KUBECONFIG={self.kubeconfig}"


# ---------------------------------------------------------------------------------------------
# paths


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def run_dir(root: Path) -> Path:
    return Path(root).resolve() / ".cluster"


def kubeconfig_path(root: Path) -> Path:
    return run_dir(root) / "kubeconfig"


def _bin_dir(root: Path) -> Path:
    return Path(root).resolve() / ".cluster-bin"


def _log(msg: str) -> None:
    print(f"cluster: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# build


def ensure_binaries(root: Path) -> Path:
    """The cache entry dir (bin/, crds/, kwok/); builds it with tools/build-cluster.sh if
    .cluster-bin is missing or incomplete."""
    link = _bin_dir(root)

    def ok() -> bool:
        if not link.is_dir():
            return False
        entry = link.resolve().parent
        return (
            (entry / ".complete").is_file()
            and all(os.access(link / c, os.X_OK) for c in COMPONENTS)
            and (entry / "crds" / "index.json").is_file()
        )

    if not ok():
        _log(".cluster-bin missing: running tools/build-cluster.sh (cold: ~10 min)")
        subprocess.run(
            ["bash", str(Path(root) / "tools" / "build-cluster.sh")], check=True, stdout=sys.stderr
        )
        if not ok():
            raise ClusterError("tools/build-cluster.sh did not produce .cluster-bin")
    return link.resolve().parent


# ---------------------------------------------------------------------------------------------
# processes (by recorded pid and start time, never by name)


def _proc_start_time(pid: int) -> int | None:
    """Start time (clock ticks since boot) of a live, non-zombie process, else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _alive(entry: dict[str, Any]) -> bool:
    start = _proc_start_time(int(entry["pid"]))
    return start is not None and start == entry["start"]


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _spawn(name: str, argv: list[str], log: Path, env: dict[str, str]) -> dict[str, Any]:
    """Start argv detached (own session, parent = init) with output appended to log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as f:
        f.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
    # sh starts the program in the background and prints its pid; the program is then not our
    # child, so it outlives this process and never lingers as our zombie.
    out = subprocess.run(
        [
            "sh",
            "-c",
            'log="$1"; shift; "$@" >>"$log" 2>&1 </dev/null & echo $!',
            "sh",
            str(log),
            *argv,
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        start_new_session=True,
    )
    pid = int(out.stdout.strip())
    start = None
    for _ in range(100):
        start = _proc_start_time(pid)
        if start is not None:
            break
        time.sleep(0.01)
    if start is None:
        raise ClusterError(f"{name} exited at once; see {log}")
    return {"pid": pid, "start": start, "argv0": argv[0], "log": str(log)}


def _stop_entries(entries: dict[str, dict[str, Any]], timeout: float = STOP_TIMEOUT) -> None:
    """Stop the recorded processes: first everything but etcd together, then etcd (the API
    server's graceful shutdown needs etcd; with etcd gone first it hangs until SIGKILL).
    SIGTERM, SIGKILL after timeout, and wait for each group to exit."""
    order = [n for n in reversed(COMPONENTS) if n in entries]
    order += [n for n in entries if n not in order]
    late = [n for n in order if n == "etcd"]
    early = [n for n in order if n != "etcd"]
    for group in (early, late):
        _stop_group({n: entries[n] for n in group}, timeout)


def _stop_group(entries: dict[str, dict[str, Any]], timeout: float) -> None:
    live = {n: e for n, e in entries.items() if _alive(e)}
    for name, e in live.items():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(e["pid"]), signal.SIGTERM)
        _log(f"stopping {name} (pid {e['pid']})")
    deadline = time.monotonic() + timeout
    while live and time.monotonic() < deadline:
        for name in list(live):
            _reap(int(live[name]["pid"]))
            if not _alive(live[name]):
                del live[name]
        time.sleep(0.05)
    for name, e in live.items():
        _log(f"{name} (pid {e['pid']}) ignored SIGTERM for {timeout:.0f}s: SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(e["pid"]), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while live and time.monotonic() < deadline:
        for name in list(live):
            _reap(int(live[name]["pid"]))
            if not _alive(live[name]):
                del live[name]
        time.sleep(0.05)
    if live:
        raise ClusterError(f"processes did not exit: {sorted(live)}")


# ---------------------------------------------------------------------------------------------
# ports


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Go's listeners do
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _pick_ports(previous: dict[str, int]) -> dict[str, int]:
    """Free loopback ports: the previous ones where still free (stable kubeconfig and etcd
    peer URL across restarts), fresh ones from the kernel otherwise."""
    ports: dict[str, int] = {}
    held: list[socket.socket] = []
    try:
        for name in PORT_NAMES:
            port = previous.get(name)
            if port and port not in ports.values() and _port_free(port):
                ports[name] = port
                continue
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))  # held open until all are picked: no duplicates
            held.append(s)
            ports[name] = s.getsockname()[1]
    finally:
        for s in held:
            s.close()
    return ports


def _wait_ports_free(ports: dict[str, int], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    busy = list(ports.values())
    while busy and time.monotonic() < deadline:
        busy = [p for p in busy if not _port_free(p)]
        if busy:
            time.sleep(0.1)
    if busy:
        raise ClusterError(f"ports still in use after stop: {busy}")


# ---------------------------------------------------------------------------------------------
# certificates (openssl)

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


# ---------------------------------------------------------------------------------------------
# HTTP to 127.0.0.1 only (never through a proxy)


def _opener(ctx: ssl.SSLContext | None) -> urllib.request.OpenerDirector:
    handlers: list[Any] = [urllib.request.ProxyHandler({})]
    if ctx is not None:
        handlers.append(urllib.request.HTTPSHandler(context=ctx))
    return urllib.request.build_opener(*handlers)


_CONTEXTS: dict[tuple[str, ...], ssl.SSLContext] = {}


def _admin_context(info: ClusterInfo) -> ssl.SSLContext:
    files = (str(info.ca_file), str(info.client_cert), str(info.client_key))
    key = (*files, *(str(os.stat(f).st_mtime_ns) for f in files))
    if key not in _CONTEXTS:
        ctx = ssl.create_default_context(cafile=files[0])
        ctx.load_cert_chain(files[1], files[2])
        _CONTEXTS[key] = ctx
    return _CONTEXTS[key]


def _loopback_only(url: str) -> None:
    if urllib.parse.urlsplit(url).hostname != HOST:
        raise ClusterError(f"refusing to connect to {url}: only {HOST}")


def request(
    info: ClusterInfo,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
    timeout: float = 30,
) -> tuple[int, Any]:
    """One API request as the admin user: (status, parsed JSON body or text)."""
    url = info.server + path
    _loopback_only(url)
    data = None
    if body is not None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", content_type)
    opener = _opener(_admin_context(info))
    try:
        with opener.open(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def _health(url: str, ctx: ssl.SSLContext | None = None, timeout: float = 2) -> bool:
    _loopback_only(url)
    try:
        with _opener(ctx).open(url, timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError, ssl.SSLError):
        return False


def _insecure_loopback_ctx() -> ssl.SSLContext:
    # kube-controller-manager and kube-scheduler serve /healthz with a self-signed cert.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# ---------------------------------------------------------------------------------------------
# state files


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[Path]:
    """Serialise up/down of one run dir (e.g. parallel test workers)."""
    rd = run_dir(root)
    rd.mkdir(parents=True, exist_ok=True)
    with open(rd / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            rd.mkdir(parents=True, exist_ok=True)  # a `down --purge` may have run meanwhile
            yield rd
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _info(
    root: Path,
    state: dict[str, Any],
    already_running: bool = False,
    timings: dict[str, float] | None = None,
) -> ClusterInfo:
    rd = run_dir(root)
    certs = rd / "certs"
    ports = {k: int(v) for k, v in state["ports"].items()}
    return ClusterInfo(
        root=Path(root).resolve(),
        run_dir=rd,
        kubeconfig=rd / "kubeconfig",
        server=f"https://{HOST}:{ports['kube-apiserver']}",
        ports=ports,
        pids={k: int(v["pid"]) for k, v in state["pids"].items()},
        ca_file=certs / "ca.crt",
        client_cert=certs / "admin.crt",
        client_key=certs / "admin.key",
        already_running=already_running,
        timings=dict(timings or {}),
    )


# ---------------------------------------------------------------------------------------------
# up


def _wait(
    what: str, check: Any, timeout: float, procs: dict[str, dict[str, Any]], interval: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        for name, e in procs.items():
            if not _alive(e):
                raise ClusterError(
                    f"{name} exited while waiting for {what}; "
                    f"log {e['log']}:\n{_tail(Path(e['log']))}"
                )
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def _tail(path: Path, n: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


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


#: A Node may declare the capacity of the machine it stands for in this annotation (JSON, as
#: servestack's `local` node pools write it); the node-initialize Stage below copies it into
#: status.capacity and status.allocatable, which the scheduler places by. The Pulumi provider
#: cannot write a Node's status, so the shape has to travel in metadata.
CAPACITY_ANNOTATION = "servestack.io/capacity"


def _stock_block(key: str) -> str:
    """The `allocatable` or `capacity` block of kwok's stock node-initialize Stage."""
    return (
        f"      {key}:\n"
        f"      {{{{ with .status.{key} }}}}\n"
        "      {{ YAML . 1 }}\n"
        "      {{ else }}\n"
        "        cpu: 1k\n"
        "        memory: 1Ti\n"
        "        pods: 1M\n"
        "      {{ end }}\n"
    )


_STOCK_CAPACITY = {key: _stock_block(key) for key in ("allocatable", "capacity")}


def _node_initialize_stage(stock: str) -> str:
    """kwok's stock node-initialize Stage, with capacity and allocatable taken first from the
    node's CAPACITY_ANNOTATION, then from its status (a Node created with status, as the
    bootstrap node is), then kwok's defaults."""
    declared = (
        '      {{ $declared := "" }}\n'
        "      {{ with .metadata.annotations }}"
        f'{{{{ with index . "{CAPACITY_ANNOTATION}" }}}}{{{{ $declared = . }}}}{{{{ end }}}}'
        "{{ end }}\n"
    )
    out = stock
    for i, (key, block) in enumerate(_STOCK_CAPACITY.items()):
        if out.count(block) != 1:
            raise ClusterError(
                f"kwok's node-initialize Stage changed shape (no unique {key} block): "
                "update _node_initialize_stage in tools/cluster.py"
            )
        new = (declared if i == 0 else "") + (
            f"      {key}:\n"
            "      {{ if $declared }}\n"
            "      {{ YAML (fromJson $declared) 1 }}\n"
            "      {{ else }}\n" + block.split("\n", 1)[1] + "      {{ end }}\n"
        )
        out = out.replace(block, new)
    return out


def _kwok_stages(entry: Path, rd: Path) -> list[str]:
    """The Stages of the cache entry, with node-initialize replaced by ours (written to
    <run dir>/kwok-stages/)."""
    own = rd / "kwok-stages"
    own.mkdir(mode=0o700, exist_ok=True)
    stages = []
    for p in sorted((entry / "kwok").glob("*.yaml")):
        if p.name == "node-initialize.yaml":
            mine = own / p.name
            mine.write_text(_node_initialize_stage(p.read_text()))
            stages.append(str(mine))
        else:
            stages.append(str(p))
    return stages


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


def _apply_crds(info: ClusterInfo, crd_dir: Path) -> list[str]:
    index = json.loads((crd_dir / "index.json").read_text())

    def apply(item: dict[str, str]) -> str:
        name = item["name"]
        body = (crd_dir / item["file"]).read_text()
        path = (
            f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
            f"?fieldManager={FIELD_MANAGER}&force=true"
        )
        for attempt in range(5):
            status, out = request(
                info, "PATCH", path, body, content_type="application/apply-patch+yaml", timeout=60
            )
            if status in (200, 201):
                if out.get("metadata", {}).get("name") != name:
                    raise ClusterError(f"CRD {name}: server returned {out.get('metadata')}")
                return name
            if status in (409, 429, 500, 503) and attempt < 4:
                time.sleep(0.5 * (attempt + 1))
                continue
            raise ClusterError(f"apply CRD {name}: HTTP {status}: {str(out)[:500]}")
        raise AssertionError("unreachable")

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(apply, index))


def _crds_established(info: ClusterInfo, names: list[str], nudge_after: float = 3.0) -> bool:
    """All `names` Established. A CRD whose names are accepted but that is not Established
    `nudge_after` seconds after its creation gets an annotation touched: the API server's
    establishing controller drops its work item when its status update meets a conflict
    (another status controller wrote first) and only retries on the CRD's next update event,
    so without a touch such a CRD can stay "Installing" forever."""
    status, out = request(info, "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
    if status != 200:
        return False
    established: set[str] = set()
    now = time.time()
    for item in out.get("items") or []:
        meta = item["metadata"]
        conds = {
            c.get("type"): c.get("status")
            for c in (item.get("status") or {}).get("conditions") or []
        }
        if conds.get("Established") == "True":
            established.add(meta["name"])
            continue
        created = calendar.timegm(time.strptime(meta["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ"))
        if conds.get("NamesAccepted") == "True" and now - created > nudge_after:
            request(
                info,
                "PATCH",
                f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{meta['name']}",
                {"metadata": {"annotations": {"servestack.io/establish-nudge": str(now)}}},
                content_type="application/merge-patch+json",
            )
    return set(names) <= established


def _ensure_bootstrap_node(info: ClusterInfo) -> None:
    key, value = KWOK_NODE_ANNOTATION
    labels = {
        "kubernetes.io/hostname": BOOTSTRAP_NODE,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
        **BOOTSTRAP_NODE_LABELS,
    }
    capacity = dict(BOOTSTRAP_NODE_CAPACITY)
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": BOOTSTRAP_NODE, "labels": labels, "annotations": {key: value}},
        # A Node's status may be set on create (as a kubelet registers): kwok's node-initialize
        # Stage keeps the capacity/allocatable it finds, and the scheduler places by allocatable.
        "status": {"capacity": capacity, "allocatable": capacity},
    }
    status, out = request(info, "POST", "/api/v1/nodes", node)
    if status == 409:  # restarted with kept data: make sure labels and capacity are ours
        patch = {"metadata": {"labels": labels, "annotations": {key: value}}}
        status, out = request(
            info,
            "PATCH",
            f"/api/v1/nodes/{BOOTSTRAP_NODE}",
            patch,
            content_type="application/merge-patch+json",
        )
        if status == 200:
            status, out = request(
                info,
                "PATCH",
                f"/api/v1/nodes/{BOOTSTRAP_NODE}/status",
                {"status": {"capacity": capacity, "allocatable": capacity}},
                content_type="application/merge-patch+json",
            )
    if status not in (200, 201):
        raise ClusterError(f"create node {BOOTSTRAP_NODE}: HTTP {status}: {str(out)[:500]}")


def _node_ready(info: ClusterInfo, name: str = BOOTSTRAP_NODE) -> bool:
    status, out = request(info, "GET", f"/api/v1/nodes/{name}")
    return status == 200 and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (out.get("status") or {}).get("conditions") or []
    )


def _default_sa(info: ClusterInfo) -> bool:
    status, _ = request(info, "GET", "/api/v1/namespaces/default/serviceaccounts/default")
    return status == 200


def _healthy(root: Path, state: dict[str, Any]) -> bool:
    if not state.get("pids") or set(state["pids"]) != set(COMPONENTS):
        return False
    if not all(_alive(e) for e in state["pids"].values()):
        return False
    info = _info(root, state)
    return _health(info.server + "/readyz", _admin_context(info)) and _node_ready(info)


def up(root: Path | None = None, timeout: float = 120) -> ClusterInfo:
    """Start the cluster (or find it running and healthy) and return how to reach it."""
    root = Path(root or repo_root()).resolve()
    entry = ensure_binaries(root)
    with _locked(root) as rd:
        pids_file, ports_file = rd / "pids.json", rd / "ports.json"
        state = _read_json(pids_file)
        if state:
            if _healthy(root, state):
                _log(f"already running (kube-apiserver {HOST}:{state['ports']['kube-apiserver']})")
                return _info(root, state, already_running=True)
            # Stale or broken: stop whatever is left of it and start afresh from empty data.
            _log("stale .cluster/pids.json (processes dead or unhealthy): cleaning up")
            _stop_entries(state.get("pids", {}))
            _wait_ports_free(state.get("ports", {}))
            # Keep the certificates, the ports and the logs (appended to); drop the rest.
            for p in rd.iterdir():
                if p.name in ("certs", "logs", "ports.json", ".lock"):
                    continue
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()
        return _start(root, rd, entry, pids_file, ports_file, timeout)


def _start(
    root: Path, rd: Path, entry: Path, pids_file: Path, ports_file: Path, timeout: float
) -> ClusterInfo:
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    _ensure_certs(rd / "certs")
    timings["certs"] = time.monotonic() - t0
    ports = _pick_ports(_read_json(ports_file))
    _write_json(ports_file, ports)
    for d in (
        "etcd",
        "logs",
        "kwok",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ):
        (rd / d).mkdir(mode=0o700, exist_ok=True)
    server = f"https://{HOST}:{ports['kube-apiserver']}"
    certs = rd / "certs"
    _write_kubeconfig(rd / "controller-manager.kubeconfig", server, certs, "controller-manager")
    _write_kubeconfig(rd / "scheduler.kubeconfig", server, certs, "scheduler")
    _write_kubeconfig(rd / "kwok.kubeconfig", server, certs, "kwok")
    argv = _argv(entry, rd, ports)
    env = _child_env(rd)
    procs: dict[str, dict[str, Any]] = {}
    state: dict[str, Any] = {"ports": ports, "pids": procs, "bin": str(entry / "bin")}

    def spawn(name: str) -> None:
        procs[name] = _spawn(name, argv[name], rd / "logs" / f"{name}.log", env)
        _write_json(pids_file, state)  # recorded at once: `down` can always stop them

    try:
        spawn("etcd")
        _wait("etcd /health", lambda: _health(f"http://{HOST}:{ports['etcd']}/health"), 30, procs)
        timings["etcd"] = time.monotonic() - t0
        spawn("kube-apiserver")
        info = _info(root, state)
        ctx = _admin_context(info)
        _wait(
            "kube-apiserver /readyz",
            lambda: _health(server + "/readyz", ctx),
            timeout,
            procs,
            interval=0.2,
        )
        timings["apiserver_ready"] = time.monotonic() - t0
        for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
            spawn(name)
        info = _info(root, state)
        _write_kubeconfig(rd / "kubeconfig", server, certs, "admin")
        names = _apply_crds(info, entry / "crds")
        timings["crds_applied"] = time.monotonic() - t0
        _ensure_bootstrap_node(info)
        insecure = _insecure_loopback_ctx()
        _wait(
            "kube-controller-manager /healthz",
            lambda: _health(f"https://{HOST}:{ports['kube-controller-manager']}/healthz", insecure),
            60,
            procs,
        )
        _wait(
            "kube-scheduler /healthz",
            lambda: _health(f"https://{HOST}:{ports['kube-scheduler']}/healthz", insecure),
            60,
            procs,
        )
        _wait("kwok /healthz", lambda: _health(f"http://{HOST}:{ports['kwok']}/healthz"), 60, procs)
        _wait(
            f"{len(names)} CRDs Established",
            lambda: _crds_established(info, names),
            60,
            procs,
            interval=0.5,
        )
        timings["crds_established"] = time.monotonic() - t0
        _wait(f"node {BOOTSTRAP_NODE} Ready", lambda: _node_ready(info), 60, procs)
        _wait("ServiceAccount default/default", lambda: _default_sa(info), 60, procs)
        timings["ready"] = time.monotonic() - t0
    except BaseException:
        _log("start failed: stopping what was started")
        with contextlib.suppress(Exception):
            _stop_entries(procs)
        pids_file.unlink(missing_ok=True)
        raise
    _log(
        f"up in {timings['ready']:.1f}s: kube-apiserver {server}, {len(names)} CRDs, "
        f"node {BOOTSTRAP_NODE} Ready"
    )
    return _info(root, state, timings=timings)


# ---------------------------------------------------------------------------------------------
# down / status


def down(root: Path | None = None, purge: bool = False) -> None:
    """Stop the processes recorded in .cluster/pids.json; purge removes .cluster/ too."""
    root = Path(root or repo_root()).resolve()
    rd = run_dir(root)
    if not rd.exists():
        return
    with _locked(root):
        state = _read_json(rd / "pids.json")
        if state:
            _stop_entries(state.get("pids", {}))
            _wait_ports_free(state.get("ports", {}))
            (rd / "pids.json").unlink(missing_ok=True)
        if purge:
            shutil.rmtree(rd)
            _log(f"removed {rd}")


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def status(root: Path | None = None) -> dict[str, Any]:
    root = Path(root or repo_root()).resolve()
    rd = run_dir(root)
    state = _read_json(rd / "pids.json")
    result: dict[str, Any] = {
        "running": False,
        "run_dir": str(rd),
        "components": {},
        "ports": state.get("ports", {}),
        "nodes": [],
    }
    for name, e in state.get("pids", {}).items():
        alive = _alive(e)
        result["components"][name] = {
            "pid": e["pid"],
            "alive": alive,
            "rss_mib": round(_rss_mib(e["pid"]), 1) if alive else 0,
        }
    if (
        state
        and all(c["alive"] for c in result["components"].values())
        and set(result["components"]) == set(COMPONENTS)
    ):
        info = _info(root, state)
        result["running"] = _health(info.server + "/readyz", _admin_context(info))
        if result["running"]:
            result["kubeconfig"] = str(info.kubeconfig)
            code, out = request(info, "GET", "/api/v1/nodes")
            for n in out.get("items", []) if code == 200 else []:
                ready = any(
                    c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (n.get("status") or {}).get("conditions") or []
                )
                result["nodes"].append(
                    {
                        "name": n["metadata"]["name"],
                        "ready": ready,
                        "pool": n["metadata"].get("labels", {}).get("servestack.io/pool", ""),
                        "allocatable": n.get("status", {}).get("allocatable", {}),
                    }
                )
    result["rss_mib_total"] = round(sum(c["rss_mib"] for c in result["components"].values()), 1)
    return result


# ---------------------------------------------------------------------------------------------
# CLI


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tools/cluster.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, default=None, help="repo root (default: this repo)")
    sub = p.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="start (or find running) and print the export line")
    p_up.add_argument("--timeout", type=float, default=120)
    p_down = sub.add_parser("down", help="stop by recorded pids")
    p_down.add_argument("--purge", action="store_true", help="also remove .cluster/")
    p_status = sub.add_parser("status", help="running?, ports, memory, nodes")
    p_status.add_argument("--json", action="store_true")
    sub.add_parser("env", help="print the export line")
    args = p.parse_args(argv)
    root = (args.root or repo_root()).resolve()
    try:
        if args.cmd == "up":
            info = up(root, timeout=args.timeout)
            print(info.export_line())
        elif args.cmd == "down":
            down(root, purge=args.purge)
        elif args.cmd == "env":
            print(f"export KUBECONFIG={kubeconfig_path(root)}")
        elif args.cmd == "status":
            st = status(root)
            if args.json:
                print(json.dumps(st, indent=1))
            else:
                print(f"running: {'yes' if st['running'] else 'no'}  ({st['run_dir']})")
                for name, c in st["components"].items():
                    port = st["ports"].get(name, "")
                    print(
                        f"  {name:<24} pid {c['pid']:<8} {'alive' if c['alive'] else 'dead ':<6}"
                        f" {HOST}:{port:<6} rss {c['rss_mib']:.0f} MiB"
                    )
                if st["components"]:
                    print(
                        f"  etcd peer port {st['ports'].get('etcd-peer')}; "
                        f"total rss {st['rss_mib_total']:.0f} MiB"
                    )
                for n in st["nodes"]:
                    a = n["allocatable"]
                    print(
                        f"  node {n['name']}: {'Ready' if n['ready'] else 'NotReady'}"
                        f" pool={n['pool']} cpu={a.get('cpu')} memory={a.get('memory')}"
                        f" pods={a.get('pods')}"
                    )
                if st["running"]:
                    print(f"export KUBECONFIG={st['kubeconfig']}")
            return 0 if st["running"] else 1
    except (ClusterError, subprocess.CalledProcessError) as e:
        _log(f"error: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
