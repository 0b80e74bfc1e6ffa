"""The local runner serving the designs under test (bench/designs) beside the template's routes.

The dev runner (runstop_dev.local_api) knows only the template; this adds one route and one
pool of worker processes per design, with CancelRunFunction's environment plus the design's
own. Pools start processes on demand, so `start_workers` brings every one up (its cold start)
before anything is timed: a process starting mid-storm would put a cold start in the figures.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence

from bench.designs import CANCEL_FUNCTION, Design
from runstop_dev.local_api import FunctionPool, LocalApi
from runstop_dev.template import HttpRoute, function_environment, function_timeout


class DesignApi(LocalApi):
    """LocalApi plus `POST /<design>/runs/{run_id}/cancel` for each design; a context manager."""

    def __init__(
        self, refs: dict[str, str], env: dict[str, str], designs: Sequence[Design], workers: Mapping[str, int]
    ) -> None:
        # The template's own pools start no process unless a request reaches them. No stream pipes:
        # they would poll DynamoDB through the counting proxy and put their requests in the rows.
        super().__init__(refs, env, port=0, workers=1, quiet=True, stream_pipes=False)
        self.designs = {d.name: d for d in designs}
        self.workers = dict(workers)
        base = function_environment(CANCEL_FUNCTION, refs)
        for design in designs:
            fn = design.function
            fn_env = {**base, **env, **design.env, "AWS_LAMBDA_FUNCTION_NAME": fn.logical_id}
            timeout = function_timeout(CANCEL_FUNCTION)
            self.pools[fn.logical_id] = FunctionPool(fn, fn_env, self.workers[design.name], True, timeout)
            self.routes.insert(0, HttpRoute("POST", f"{design.prefix}/runs/{{run_id}}/cancel", fn))

    def start_workers(self, timeout: float = 600.0) -> None:
        """Every worker process of every design started and initialised (its handler imported)."""
        for design in self.designs.values():
            start_workers(self.pools[design.function.logical_id], self.workers[design.name], timeout)


def start_workers(pool: FunctionPool, count: int, timeout: float) -> None:
    """Submit `count` short sleeps at once, in rounds, until `count` distinct processes answered.

    A ProcessPoolExecutor (spawn) starts a process per submission while none is idle, and a
    process takes work only once its initializer (the handler's import) has run.
    """
    deadline = time.monotonic() + timeout
    seen: set[int] = set()
    while len(seen) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{pool.logical_id}: {len(seen)} of {count} workers started")
        futures = [pool.executor.submit(_pid_after, 0.2) for _ in range(count)]
        seen |= {f.result(timeout=timeout) for f in futures}


def _pid_after(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()
