"""Load generators: concurrent clients in processes of their own, kept cheap.

On a 2-core machine the load generator competes with what it measures, so its clients are
plain http.client connections with keep-alive (no SDK, no async framework) in separate
processes, each holding a share of the concurrent clients as threads. All processes start
at one agreed instant after their connections are open.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

# One request's result: HTTP status, latency in seconds, the cancel outcome (None if none).
Sample = tuple[int, float, str | None]

START_LEAD_S = 0.3
"""Time between handing out the work and the agreed start: enough to open the connections."""


@dataclass
class LoadResult:
    """What one burst of requests did."""

    samples: list[Sample] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def latencies_ms(self) -> list[float]:
        return [s[1] * 1000 for s in self.samples]

    @property
    def statuses(self) -> Counter[int]:
        return Counter(s[0] for s in self.samples)

    @property
    def outcomes(self) -> Counter[str]:
        return Counter(s[2] or str(s[0]) for s in self.samples)

    @property
    def throughput(self) -> float:
        return len(self.samples) / self.elapsed_s if self.elapsed_s else 0.0


def _outcome(status: int, payload: bytes) -> str | None:
    if status == 409:
        return "409"
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    return body.get("outcome") if isinstance(body, dict) else None


def _run_threads(
    threads: int, jobs: Sequence[Any], start_at: float, make: Callable[[], Any], call: Callable[[Any, Any], Sample]
) -> tuple[list[Sample], float, float]:
    """Run `jobs` on `threads` threads, each with its own connection from `make`."""
    samples: list[Sample] = []
    lock = threading.Lock()
    cursor = iter(range(len(jobs)))
    bounds = [float("inf"), 0.0]

    def worker() -> None:
        conn = make()
        mine: list[Sample] = []
        time.sleep(max(0.0, start_at - time.time()))
        first = time.time()
        while True:
            with lock:
                index = next(cursor, None)
            if index is None:
                break
            mine.append(call(conn, jobs[index]))
        last = time.time()
        with lock:
            samples.extend(mine)
            bounds[0] = min(bounds[0], first)
            bounds[1] = max(bounds[1], last)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return samples, bounds[0], bounds[1]


def _http_proc(
    host: str, port: int, jobs: list[tuple[str, bytes]], headers: dict[str, str], threads: int, start_at: float
) -> tuple[list[Sample], float, float]:
    def make() -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        conn.connect()
        return conn

    def call(conn: http.client.HTTPConnection, job: tuple[str, bytes]) -> Sample:
        path, body = job
        started = time.perf_counter()
        conn.request("POST", path, body=body, headers=headers)
        reply = conn.getresponse()
        payload = reply.read()
        latency = time.perf_counter() - started
        return reply.status, latency, _outcome(reply.status, payload)

    return _run_threads(threads, jobs, start_at, make, call)


def raw_cancel_params(table: str, tenant_id: str, run_id: str, stamp: str) -> dict[str, Any]:
    """The conditional update a hand-written cancel sends: what runstop's one request does."""
    return {
        "TableName": table,
        "Key": {"tenant_id": {"S": tenant_id}, "run_id": {"S": run_id}},
        "UpdateExpression": (
            "SET #status = :interrupted, tenant_status = :ts, updated_at = :stamp, ended_at = :stamp,"
            " #cancel = :cancel, version = version + :one REMOVE active_pk, sweep_at"
        ),
        "ConditionExpression": "#status IN (:pending, :running)",
        "ExpressionAttributeNames": {"#status": "status", "#cancel": "cancel"},
        "ExpressionAttributeValues": {
            ":interrupted": {"S": "interrupted"},
            ":ts": {"S": f"{tenant_id}#interrupted"},
            ":stamp": {"S": stamp},
            ":cancel": {"M": {"reason": {"S": "bench"}, "requested_at": {"S": stamp}, "source": {"S": "raw"}}},
            ":one": {"N": "1"},
            ":pending": {"S": "pending"},
            ":running": {"S": "running"},
        },
        "ReturnValues": "ALL_NEW",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def _raw_proc(
    endpoint: str, table: str, tenant_id: str, run_ids: list[str], threads: int, start_at: float
) -> tuple[list[Sample], float, float]:
    """Raw conditional updates with boto3, the way a hand-written client makes them."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1")
    client = session.client(
        "dynamodb",
        endpoint_url=endpoint,
        config=Config(max_pool_connections=threads, retries={"mode": "standard", "max_attempts": 3}),
    )
    client.describe_limits()  # warm the client (endpoint rules, connection) before the start

    def call(_: Any, run_id: str) -> Sample:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
        started = time.perf_counter()
        try:
            client.update_item(**raw_cancel_params(table, tenant_id, run_id, stamp))
            status, outcome = 200, "interrupted"
        except client.exceptions.ConditionalCheckFailedException:
            status, outcome = 400, "condition_failed"
        return status, time.perf_counter() - started, outcome

    return _run_threads(threads, run_ids, start_at, lambda: None, call)


def _ready() -> bool:
    return True


class ClientProcesses:
    """A few long-lived client processes (spawned once, reused by every burst)."""

    def __init__(self, procs: int) -> None:
        self.procs = procs
        self.executor = ProcessPoolExecutor(max_workers=procs, mp_context=multiprocessing.get_context("spawn"))

    def warm(self) -> None:
        for future in [self.executor.submit(time.sleep, 0.5) for _ in range(self.procs)]:
            future.result(timeout=120)

    def _split(self, concurrency: int, items: Sequence[Any]) -> list[tuple[int, list[Any]]]:
        procs = min(self.procs, concurrency)
        shares = []
        for p in range(procs):
            threads = concurrency // procs + (1 if p < concurrency % procs else 0)
            shares.append((threads, list(items[p::procs])))
        return shares

    def _gather(self, futures: list[Any]) -> LoadResult:
        result = LoadResult()
        first, last = float("inf"), 0.0
        for future in futures:
            samples, begin, end = future.result(timeout=600)
            result.samples.extend(samples)
            first, last = min(first, begin), max(last, end)
        result.elapsed_s = max(0.0, last - first)
        return result

    def http(
        self, url: str, jobs: Sequence[tuple[str, bytes]], concurrency: int, headers: dict[str, str] | None = None
    ) -> LoadResult:
        """POST each (path, body) once, `concurrency` requests in flight at a time."""
        host, port = url.removeprefix("http://").split(":")
        sent = {"Content-Type": "application/json", **(headers or {})}
        start_at = time.time() + START_LEAD_S
        futures = [
            self.executor.submit(_http_proc, host, int(port), share, sent, threads, start_at)
            for threads, share in self._split(concurrency, jobs)
        ]
        return self._gather(futures)

    def raw_updates(
        self, endpoint: str, table: str, tenant_id: str, run_ids: Sequence[str], concurrency: int
    ) -> LoadResult:
        """One raw conditional update per run id, `concurrency` in flight at a time."""
        start_at = time.time() + START_LEAD_S + 1.0  # boto3 import and client creation first
        futures = [
            self.executor.submit(_raw_proc, endpoint, table, tenant_id, share, threads, start_at)
            for threads, share in self._split(concurrency, run_ids)
        ]
        return self._gather(futures)

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ClientProcesses:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
