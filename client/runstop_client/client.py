"""`Client` and `AsyncClient`: every route of the runs API, retried safely, answered as typed values.

Every POST carries an Idempotency-Key that all its retries reuse, so a retry after a lost answer
is told what the first attempt did instead of doing it twice. 503, 429, 502, 504, a 409
"request in progress", timeouts and broken connections are retried (Retry-After first, else
backoff with jitter) until a total deadline; every other answer that is not a success becomes one
of the exceptions in `runstop_client.errors`.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import httpx

from runstop_client import _wire
from runstop_client._wire import Request, RetryPolicy, Settings
from runstop_client.models import BulkCancelItem, CancelResult, Run

if TYPE_CHECKING:
    from runstop_client.worker import AsyncWorker, Worker

__version__ = "0.1.0"
USER_AGENT = f"runstop-client/{__version__}"
BULK_BATCH = 100
"""POST /runs/cancel takes at most 100 ids."""
DEFAULT_HEARTBEAT_INTERVAL = 10.0
"""Seconds between heartbeats: 1/30 of the service's default HeartbeatTimeout (300 s), so a few
lost heartbeats never let the sweeper take a live run, and 1/6 of the default stop grace (60 s),
so a worker learns of a cancel with most of its grace left to clean up."""

log = logging.getLogger("runstop_client")

Progress = Callable[[int, int], None]
"""Called as progress(ids_decided, ids_total) after each batch of a bulk cancel."""


def _create(run_id: str | None, metadata: dict[str, Any] | None, grace: int | None, key: str | None) -> Request:
    body: dict[str, Any] = {}
    if run_id is not None:
        body["run_id"] = run_id
    if metadata is not None:
        body["metadata"] = metadata
    if grace is not None:
        body["stop_grace_seconds"] = grace
    return Request.post("/runs", body, key=key)


def _list(status: str | None, stop: str | None, page_size: int | None, cursor: str | None) -> Request:
    params = {"status": status, "stop": stop, "limit": page_size, "cursor": cursor}
    return Request("GET", "/runs", params={name: value for name, value in params.items() if value is not None})


def _cancel(run_id: str, reason: str | None, wait: int | None, force: bool, key: str | None) -> Request:
    body: dict[str, Any] = {}
    if reason is not None:
        body["reason"] = reason
    if force:
        body["force"] = True
    params = None if wait is None else {"wait": wait}
    return Request.post(f"/runs/{run_id}/cancel", body, key=key, params=params, extra_timeout=float(wait or 0))


def _bulk(run_ids: Sequence[str], reason: str | None, force: bool) -> Request:
    body: dict[str, Any] = {"run_ids": list(run_ids)}
    if reason is not None:
        body["reason"] = reason
    if force:
        body["force"] = True
    return Request.post("/runs/cancel", body)


def _worker_call(run_id: str, route: str, worker_id: str | None, **fields: Any) -> Request:
    """start, heartbeat, complete or stopped; worker_id only when given (the service makes one)."""
    body = {**fields, **({"worker_id": worker_id} if worker_id is not None else {})}
    return Request.post(f"/runs/{run_id}/{route}", body or None)


def _batches(run_ids: Iterable[str]) -> tuple[list[str], list[list[str]]]:
    distinct = builtins.list(dict.fromkeys(run_ids))
    return distinct, [distinct[i : i + BULK_BATCH] for i in range(0, len(distinct), BULK_BATCH)]


def _bulk_items(chunk: Sequence[str], answer: Any) -> dict[str, BulkCancelItem]:
    items = [BulkCancelItem.from_json(item) for item in (answer or {}).get("results", [])]
    found = {item.run_id: item for item in items}
    for run_id in chunk:  # an id the answer does not mention was not decided: say so, never drop it
        found.setdefault(run_id, BulkCancelItem(run_id, 503, error="not in the service's answer"))
    return found


class _Base:
    def __init__(
        self,
        url: str | None,
        token: str | None,
        tenant: str | None,
        timeout: float,
        retry: RetryPolicy | None,
        clock: _wire.Clock | None,
        jitter: _wire.Jitter | None,
    ) -> None:
        env = Settings.from_env()
        self.settings = Settings(url or env.url, token or env.token, tenant or env.tenant, env.deadline)
        self.timeout = timeout
        self.retry = retry or (RetryPolicy(deadline=env.deadline) if env.deadline is not None else RetryPolicy())
        self._clock = clock or time.monotonic
        self._jitter = jitter or random.random

    def _options(self) -> dict[str, Any]:
        return {"base_url": self.settings.url, "headers": self.settings.headers(USER_AGENT), "timeout": self.timeout}

    def _attempt_args(self, request: Request) -> dict[str, Any]:
        headers = request.headers()
        content = request.content()
        if content is not None:
            headers["Content-Type"] = "application/json"
        timeout = httpx.Timeout(self.timeout + request.extra_timeout, connect=self.timeout)
        return {"params": request.params, "headers": headers, "content": content, "timeout": timeout}

    def _next_delay(
        self, request: Request, policy: RetryPolicy, attempt: int, last: httpx.Response | Exception, started: float
    ) -> float:
        """The wait before the next attempt; raises what ends the call once the deadline is reached."""
        hint = _wire.retry_after(last) if isinstance(last, httpx.Response) else None
        delay = policy.delay(attempt, hint, self._clock() - started, self._jitter())
        if delay is None:
            raise _wire.gave_up(request, attempt, last) from (last if isinstance(last, Exception) else None)
        log.debug("%s %s: retrying in %.2fs after %r", request.method, request.path, delay, last)
        return delay


class Client(_Base):
    """The runs API, synchronously. `url`, `token` and `tenant` default to RUNSTOP_URL, RUNSTOP_TOKEN
    and RUNSTOP_TENANT (sent as X-Tenant-Id, which only the local runner reads); `retry` to
    RetryPolicy(deadline=RUNSTOP_DEADLINE or 30 s).

    Thread-safe: a worker's heartbeat thread shares it with the code doing the work.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        tenant: str | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: _wire.Clock | None = None,
        jitter: _wire.Jitter | None = None,
    ) -> None:
        super().__init__(url, token, tenant, timeout, retry, clock, jitter)
        self._sleep = sleep or time.sleep
        self._http = httpx.Client(transport=transport, **self._options())

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def send(self, request: Request, *, deadline: float | None = None) -> Any:
        """One call with its retries; the JSON of its success. `deadline` overrides the policy's."""
        policy = self.retry if deadline is None else replace(self.retry, deadline=deadline)
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            last: httpx.Response | Exception
            try:
                last = self._http.request(request.method, request.path, **self._attempt_args(request))
            except _wire.RETRY_ERRORS as error:
                last = error
            else:
                if not _wire.should_retry(last):
                    return _wire.answer(request, last)
            self._sleep(self._next_delay(request, policy, attempt, last, started))

    def create(
        self,
        run_id: str | None = None,
        *,
        metadata: dict[str, Any] | None = None,
        stop_grace_seconds: int | None = None,
        idempotency_key: str | None = None,
    ) -> Run:
        """A new pending run (its id generated when not given); `stop_grace_seconds` (1-3600) is how
        long its worker has to stop after a cancel (default: the service's StopGraceSeconds)."""
        return Run.from_json(self.send(_create(run_id, metadata, stop_grace_seconds, idempotency_key)))

    def get(self, run_id: str) -> Run:
        return Run.from_json(self.send(Request("GET", f"/runs/{run_id}")))

    def pages(
        self, *, status: str | None = None, stop: str | None = None, page_size: int | None = None
    ) -> Iterator[builtins.list[Run]]:
        """The runs newest first, one page per request, fetched as they are consumed."""
        cursor: str | None = None
        while True:
            page = self.send(_list(status, stop, page_size, cursor))
            yield [Run.from_json(item) for item in page.get("items", [])]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def list(
        self, *, status: str | None = None, stop: str | None = None, page_size: int | None = None
    ) -> Iterator[Run]:
        """Every run (of `status`, or still stopping/overdue/acknowledged with `stop`), newest first."""
        for page in self.pages(status=status, stop=stop, page_size=page_size):
            yield from page

    def cancel(
        self,
        run_id: str,
        *,
        reason: str | None = None,
        wait: int | None = None,
        force: bool = False,
        idempotency_key: str | None = None,
    ) -> CancelResult:
        """Interrupt a run. Always a result for a 202 (see `outcome`); RunConflict when it had finished.

        `wait` (0-20 s) keeps the answer until the worker acknowledged the stop, at most that long;
        `force` asks for no stop grace.
        """
        return CancelResult.from_json(self.send(_cancel(run_id, reason, wait, force, idempotency_key)))

    def cancel_many(
        self,
        run_ids: Iterable[str],
        *,
        reason: str | None = None,
        force: bool = False,
        progress: Progress | None = None,
    ) -> builtins.list[BulkCancelItem]:
        """Cancel any number of runs, 100 per request; one item per distinct id, in input order.

        Ids the service answered 503 for (not decided) are sent again until the retry deadline.
        """
        distinct, chunks = _batches(run_ids)
        decided: dict[str, BulkCancelItem] = {}
        for chunk in chunks:
            decided.update(self._cancel_batch(chunk, reason, force))
            if progress is not None:
                progress(len(decided), len(distinct))
        return [decided[run_id] for run_id in distinct]

    def _cancel_batch(self, chunk: Sequence[str], reason: str | None, force: bool) -> dict[str, BulkCancelItem]:
        started = self._clock()
        found: dict[str, BulkCancelItem] = {}
        pending, attempt = builtins.list(chunk), 0
        while True:
            attempt += 1
            found.update(_bulk_items(pending, self.send(_bulk(pending, reason, force))))
            pending = [run_id for run_id in pending if found[run_id].status_code == 503]
            delay = self.retry.delay(attempt, None, self._clock() - started, self._jitter()) if pending else None
            if delay is None:
                return found
            self._sleep(delay)

    def start(self, run_id: str, *, worker_id: str | None = None) -> Run:
        """pending -> running (a worker takes the run)."""
        return Run.from_json(self.send(_worker_call(run_id, "start", worker_id)))

    def heartbeat(self, run_id: str, *, worker_id: str | None = None) -> Run:
        """I am alive; RunConflict (run_status interrupted) means stop."""
        return Run.from_json(self.send(_worker_call(run_id, "heartbeat", worker_id)))

    def complete(self, run_id: str, status: str, *, worker_id: str | None = None) -> Run:
        """running -> success, error or timeout."""
        return Run.from_json(self.send(_worker_call(run_id, "complete", worker_id, status=status)))

    def stopped(self, run_id: str, *, worker_id: str | None = None) -> Run:
        """Acknowledge the stop of an interrupted run (records stopped_at once)."""
        return Run.from_json(self.send(_worker_call(run_id, "stopped", worker_id)))

    def worker(
        self,
        run_id: str | None = None,
        *,
        worker_id: str | None = None,
        heartbeat_interval: float | None = DEFAULT_HEARTBEAT_INTERVAL,
        metadata: dict[str, Any] | None = None,
        on_cancel: Callable[[Worker], None] | None = None,
    ) -> Worker:
        """`with client.worker(run_id) as run:` runs the block as the run (see runstop_client.worker)."""
        from runstop_client.worker import Worker

        return Worker(
            self,
            run_id,
            worker_id=worker_id,
            heartbeat_interval=heartbeat_interval,
            metadata=metadata,
            on_cancel=on_cancel,
        )


class AsyncClient(_Base):
    """The runs API for asyncio, with the same methods as `Client` (list and pages are async iterators)."""

    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        tenant: str | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        clock: _wire.Clock | None = None,
        jitter: _wire.Jitter | None = None,
    ) -> None:
        super().__init__(url, token, tenant, timeout, retry, clock, jitter)
        self._sleep = sleep or asyncio.sleep
        self._http = httpx.AsyncClient(transport=transport, **self._options())

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, request: Request, *, deadline: float | None = None) -> Any:
        """One call with its retries; the JSON of its success. `deadline` overrides the policy's."""
        policy = self.retry if deadline is None else replace(self.retry, deadline=deadline)
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            last: httpx.Response | Exception
            try:
                last = await self._http.request(request.method, request.path, **self._attempt_args(request))
            except _wire.RETRY_ERRORS as error:
                last = error
            else:
                if not _wire.should_retry(last):
                    return _wire.answer(request, last)
            await self._sleep(self._next_delay(request, policy, attempt, last, started))

    async def create(
        self,
        run_id: str | None = None,
        *,
        metadata: dict[str, Any] | None = None,
        stop_grace_seconds: int | None = None,
        idempotency_key: str | None = None,
    ) -> Run:
        return Run.from_json(await self.send(_create(run_id, metadata, stop_grace_seconds, idempotency_key)))

    async def get(self, run_id: str) -> Run:
        return Run.from_json(await self.send(Request("GET", f"/runs/{run_id}")))

    async def pages(
        self, *, status: str | None = None, stop: str | None = None, page_size: int | None = None
    ) -> AsyncIterator[builtins.list[Run]]:
        cursor: str | None = None
        while True:
            page = await self.send(_list(status, stop, page_size, cursor))
            yield [Run.from_json(item) for item in page.get("items", [])]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    async def list(
        self, *, status: str | None = None, stop: str | None = None, page_size: int | None = None
    ) -> AsyncIterator[Run]:
        async for page in self.pages(status=status, stop=stop, page_size=page_size):
            for run in page:
                yield run

    async def cancel(
        self,
        run_id: str,
        *,
        reason: str | None = None,
        wait: int | None = None,
        force: bool = False,
        idempotency_key: str | None = None,
    ) -> CancelResult:
        return CancelResult.from_json(await self.send(_cancel(run_id, reason, wait, force, idempotency_key)))

    async def cancel_many(
        self,
        run_ids: Iterable[str],
        *,
        reason: str | None = None,
        force: bool = False,
        progress: Progress | None = None,
    ) -> builtins.list[BulkCancelItem]:
        distinct, chunks = _batches(run_ids)
        decided: dict[str, BulkCancelItem] = {}
        for chunk in chunks:
            decided.update(await self._cancel_batch(chunk, reason, force))
            if progress is not None:
                progress(len(decided), len(distinct))
        return [decided[run_id] for run_id in distinct]

    async def _cancel_batch(self, chunk: Sequence[str], reason: str | None, force: bool) -> dict[str, BulkCancelItem]:
        started = self._clock()
        found: dict[str, BulkCancelItem] = {}
        pending, attempt = builtins.list(chunk), 0
        while True:
            attempt += 1
            found.update(_bulk_items(pending, await self.send(_bulk(pending, reason, force))))
            pending = [run_id for run_id in pending if found[run_id].status_code == 503]
            delay = self.retry.delay(attempt, None, self._clock() - started, self._jitter()) if pending else None
            if delay is None:
                return found
            await self._sleep(delay)

    async def start(self, run_id: str, *, worker_id: str | None = None) -> Run:
        return Run.from_json(await self.send(_worker_call(run_id, "start", worker_id)))

    async def heartbeat(self, run_id: str, *, worker_id: str | None = None) -> Run:
        return Run.from_json(await self.send(_worker_call(run_id, "heartbeat", worker_id)))

    async def complete(self, run_id: str, status: str, *, worker_id: str | None = None) -> Run:
        return Run.from_json(await self.send(_worker_call(run_id, "complete", worker_id, status=status)))

    async def stopped(self, run_id: str, *, worker_id: str | None = None) -> Run:
        return Run.from_json(await self.send(_worker_call(run_id, "stopped", worker_id)))

    def worker(
        self,
        run_id: str | None = None,
        *,
        worker_id: str | None = None,
        heartbeat_interval: float | None = DEFAULT_HEARTBEAT_INTERVAL,
        metadata: dict[str, Any] | None = None,
        on_cancel: Callable[[AsyncWorker], None] | None = None,
    ) -> AsyncWorker:
        """`async with client.worker(run_id) as run:`; an interruption cancels the enclosing task."""
        from runstop_client.worker import AsyncWorker

        return AsyncWorker(
            self,
            run_id,
            worker_id=worker_id,
            heartbeat_interval=heartbeat_interval,
            metadata=metadata,
            on_cancel=on_cancel,
        )
