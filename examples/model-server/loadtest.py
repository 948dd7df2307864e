"""Bounded load generator for the model server: loopback only.

Sends exactly --requests POST /predict requests (fewer only if --max-seconds runs out) with
--concurrency requests in flight, then prints one JSON object: counts by status, errors and
the client-side latency percentiles (nearest rank, seconds).

    python examples/model-server/loadtest.py --url http://127.0.0.1:8080 \
        --requests 500 --concurrency 8 --max-seconds 60

Refuses any host other than 127.0.0.1, localhost or ::1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
MAX_REQUESTS = 1_000_000
MAX_SECONDS = 600.0

# Iris measurements, one per class (setosa, versicolor, virginica), taken in turn.
SAMPLES = (
    [5.1, 3.5, 1.4, 0.2],
    [6.0, 2.9, 4.5, 1.5],
    [6.9, 3.1, 5.4, 2.1],
)


@dataclass
class Report:
    url: str
    requested: int
    concurrency: int
    completed: int = 0  # answered with any status
    ok: int = 0  # 2xx
    errors: int = 0  # non-2xx answers plus transport errors
    transport_errors: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)
    timed_out: bool = False  # the --max-seconds cap stopped it before all requests were sent
    wall_seconds: float = 0.0
    requests_per_second: float = 0.0
    # Latency of answered requests (any status), seconds.
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    mean: float | None = None
    max: float | None = None


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an ascending list."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def check_loopback(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS:
        raise ValueError(f"refusing {url!r}: only http://127.0.0.1, localhost or [::1]")


async def run_load(
    url: str,
    requests: int,
    concurrency: int,
    max_seconds: float,
    timeout: float = 10.0,
) -> Report:
    check_loopback(url)
    if not 1 <= requests <= MAX_REQUESTS:
        raise ValueError(f"requests must be 1..{MAX_REQUESTS}")
    if not 1 <= concurrency <= min(requests, 256):
        raise ValueError("concurrency must be 1..min(requests, 256)")
    if not 0 < max_seconds <= MAX_SECONDS:
        raise ValueError(f"max_seconds must be in (0, {MAX_SECONDS}]")

    endpoint = url.rstrip("/") + "/predict"
    report = Report(url=endpoint, requested=requests, concurrency=concurrency)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    next_index = 0
    deadline = time.monotonic() + max_seconds

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False) as client:

        async def worker() -> None:
            nonlocal next_index
            while next_index < requests:
                if time.monotonic() >= deadline:
                    report.timed_out = True
                    return
                i = next_index
                next_index += 1
                body: dict[str, Any] = {"instances": [SAMPLES[i % len(SAMPLES)]]}
                t0 = time.perf_counter()
                try:
                    resp = await client.post(endpoint, json=body)
                    await resp.aread()
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1
                    report.transport_errors += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                statuses[str(resp.status_code)] += 1

        t_start = time.perf_counter()
        workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
        try:
            # Hard cap: a request in flight at the deadline gets `timeout` more at most.
            await asyncio.wait_for(asyncio.gather(*workers), timeout=max_seconds + timeout)
        except TimeoutError:
            report.timed_out = True
        report.wall_seconds = round(time.perf_counter() - t_start, 4)

    latencies.sort()
    report.completed = len(latencies)
    report.status_counts = dict(sorted(statuses.items()))
    report.ok = sum(n for s, n in statuses.items() if s.isdigit() and 200 <= int(s) < 300)
    report.errors = report.completed + report.transport_errors - report.ok
    if report.wall_seconds > 0:
        report.requests_per_second = round(report.completed / report.wall_seconds, 1)
    if latencies:
        report.p50 = round(percentile(latencies, 50), 6)
        report.p95 = round(percentile(latencies, 95), 6)
        report.p99 = round(percentile(latencies, 99), 6)
        report.mean = round(sum(latencies) / len(latencies), 6)
        report.max = round(latencies[-1], 6)
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8080", help="server base URL (loopback)")
    p.add_argument("--requests", type=int, default=200, help="number of requests to send")
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight at once")
    p.add_argument("--max-seconds", type=float, default=60.0, help="hard time cap")
    p.add_argument("--timeout", type=float, default=10.0, help="per-request timeout, seconds")
    args = p.parse_args(argv)
    try:
        report = asyncio.run(
            run_load(args.url, args.requests, args.concurrency, args.max_seconds, args.timeout)
        )
    except ValueError as exc:
        print(f"loadtest: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(asdict(report), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
