"""Load generators: concurrent clients in processes of their own, kept cheap.

On a 2-core machine the load generator competes with what it measures, so its clients are
plain http.client connections with keep-alive (no SDK, no async framework) in separate
processes, each holding a share of the concurrent clients as threads. All processes start
at one agreed instant after their connections are open.

Two modes: closed (each client sends its next request when the last one is answered: the
storms) and paced (request i is due at start + i / rate whatever the answers: the hot-run
row, where the arrival rate itself is the condition under test). A paced request that finds
every client busy goes out late; its lateness is recorded, so a saturated generator shows.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

# One request's result: HTTP status, latency in seconds (from sending to the whole answer),
# the cancel outcome (None if none), and how late a paced request went out (0 when unpaced).
Sample = tuple[int, float, str | None, float]
Job = tuple[str, bytes]
"""(path, body) of one POST."""

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
    def late_ms(self) -> list[float]:
        return [s[3] * 1000 for s in self.samples]

    @property
    def throughput(self) -> float:
        return len(self.samples) / self.elapsed_s if self.elapsed_s else 0.0


def _outcome(status: int, payload: bytes) -> str | None:
    if status in (409, 503):
        return str(status)
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    return body.get("outcome") if isinstance(body, dict) else None


def _client_proc(
    host: str,
    port: int,
    jobs: list[tuple[int, Job]],
    headers: dict[str, str],
    threads: int,
    start_at: float,
    rate: float | None,
) -> tuple[list[Sample], float, float]:
    """POST `jobs` (each with its global index) from `threads` threads, one connection each."""
    samples: list[Sample] = []
    lock = threading.Lock()
    cursor = iter(jobs)
    bounds = [float("inf"), 0.0]

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        conn.connect()
        mine: list[Sample] = []
        time.sleep(max(0.0, start_at - time.time()))
        first = time.time()
        while True:
            with lock:
                job = next(cursor, None)
            if job is None:
                break
            index, (path, body) = job
            late = 0.0
            if rate:
                due = start_at + index / rate
                wait = due - time.time()
                if wait > 0:
                    time.sleep(wait)
                else:
                    late = -wait
            started = time.perf_counter()
            conn.request("POST", path, body=body, headers=headers)
            reply = conn.getresponse()
            payload = reply.read()
            mine.append((reply.status, time.perf_counter() - started, _outcome(reply.status, payload), late))
        last = time.time()
        conn.close()
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


class ClientProcesses:
    """A few long-lived client processes (spawned once, reused by every burst)."""

    def __init__(self, procs: int) -> None:
        self.procs = procs
        self.executor = ProcessPoolExecutor(max_workers=procs, mp_context=multiprocessing.get_context("spawn"))

    def warm(self) -> None:
        for future in [self.executor.submit(time.sleep, 0.5) for _ in range(self.procs)]:
            future.result(timeout=120)

    def http(
        self,
        url: str,
        jobs: Sequence[Job],
        concurrency: int,
        headers: dict[str, str] | None = None,
        rate: float | None = None,
    ) -> LoadResult:
        """POST each (path, body) once with `concurrency` clients: as fast as answered, or
        paced at `rate` requests a second (job i due at start + i / rate)."""
        host, port = url.removeprefix("http://").split(":")
        sent = {"Content-Type": "application/json", **(headers or {})}
        start_at = time.time() + START_LEAD_S
        indexed = list(enumerate(jobs))
        procs = min(self.procs, concurrency)
        futures = []
        for p in range(procs):
            threads = concurrency // procs + (1 if p < concurrency % procs else 0)
            share = indexed[p::procs]
            futures.append(self.executor.submit(_client_proc, host, int(port), share, sent, threads, start_at, rate))
        result = LoadResult()
        first, last = float("inf"), 0.0
        for future in futures:
            samples, begin, end = future.result(timeout=900)
            result.samples.extend(samples)
            first, last = min(first, begin), max(last, end)
        result.elapsed_s = max(0.0, last - first)
        return result

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ClientProcesses:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
