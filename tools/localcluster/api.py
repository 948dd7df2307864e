"""HTTP to 127.0.0.1 only (never through a proxy): API requests as the admin user, and health
checks."""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .common import HOST, ClusterError, ClusterInfo


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
