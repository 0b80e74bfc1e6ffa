"""The worker helper: the SDK, not the user, owns the heartbeat loop and the final call.

    with client.worker(run_id) as run:
        for item in work:
            run.check()          # raises RunCancelled once the run was interrupted
            process(item)

Entering starts the run; a background heartbeat learns of a cancel (the heartbeat is refused with
409 interrupted) and sets `run.cancelled`, with `run.cancel` saying who, why and by when. Leaving
the block completes the run (`success`, or `error` on an exception), or, once it was cancelled,
acknowledges the stop (POST /stopped) and swallows the RunCancelled that check() raised. The
async variant cancels the task that entered the block, so a cancel reaches any `await`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from runstop_client import client as _client
from runstop_client.errors import RunCancelled, RunConflict, RunNotFound, RunstopError, Unavailable
from runstop_client.models import CancelRecord, Run

if TYPE_CHECKING:
    from runstop_client.client import AsyncClient, Client

log = logging.getLogger("runstop_client")

GONE = "absent"
"""run_status recorded when the run disappeared under the worker (404)."""


def default_worker_id() -> str:
    """`host:pid`, in the run-id alphabet: what an operator (or a `Run Stop Overdue` rule) needs
    to find the process, and known before the first start, so a retried start is recognised."""
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()).lstrip("._-")[:100] or "host"
    return f"{host}:{os.getpid()}"


class _State:
    """What both workers know about their run; no I/O."""

    def __init__(self, run_id: str | None, worker_id: str | None, heartbeat_interval: float | None) -> None:
        self.run_id = run_id or ""
        self.worker_id = worker_id or default_worker_id()
        self.heartbeat_interval = heartbeat_interval
        self.run: Run | None = None
        self.cancel: CancelRecord | None = None
        """Who interrupted the run, why, and its stop_deadline; None until then."""
        self.stopped_status: str | None = None
        """The run's status when the service told this worker to stop (interrupted, or another)."""

    def _adopt(self, run: Run) -> Run:
        self.run = run
        return run

    @property
    def stop_deadline(self) -> datetime | None:
        return self.cancel.stop_deadline if self.cancel else None

    def _heartbeat_deadline(self, client: Client | AsyncClient) -> float:
        """Retry one heartbeat for at most an interval, so the next one is on time."""
        interval = self.heartbeat_interval or client.retry.deadline
        return min(interval, client.retry.deadline)

    def _own_start(self, error: RunConflict) -> bool:
        """A start refused because this very worker holds the run: our first start's answer was lost."""
        return error.run_status == "running" and error.worker_id == self.worker_id

    def _stop_reason(self, error: RunstopError) -> str | None:
        """The status that means stop working, or None when the error says nothing about the run."""
        if isinstance(error, RunNotFound):
            return GONE
        if isinstance(error, RunConflict):
            return error.run_status or "unknown"
        return None

    def _cancelled_error(self) -> RunCancelled:
        return RunCancelled(self.run_id, self.cancel, self.stopped_status)

    @staticmethod
    def _suppress(exc: BaseException | None, run_id: str) -> bool:
        return isinstance(exc, RunCancelled) and exc.run_id == run_id


class Worker(_State):
    """One run worked on by this process, synchronously (heartbeats on a daemon thread)."""

    def __init__(
        self,
        client: Client,
        run_id: str | None,
        *,
        worker_id: str | None = None,
        heartbeat_interval: float | None = _client.DEFAULT_HEARTBEAT_INTERVAL,
        metadata: dict[str, Any] | None = None,
        on_cancel: Callable[[Worker], None] | None = None,
    ) -> None:
        super().__init__(run_id, worker_id, heartbeat_interval)
        self.client = client
        self.metadata = metadata
        self.on_cancel = on_cancel
        self.cancelled = threading.Event()
        """Set once the service said stop (interrupted, finished by someone else, or gone)."""
        self._halt = threading.Event()
        self._beats: threading.Thread | None = None

    def start(self) -> Run:
        """Create the run when no id was given, then start it; RunCancelled if it was cancelled while pending."""
        if not self.run_id:
            self.run_id = self._adopt(self.client.create(metadata=self.metadata)).run_id
        try:
            return self._adopt(self.client.start(self.run_id, worker_id=self.worker_id))
        except RunConflict as error:
            if self._own_start(error):
                return self._adopt(self.client.get(self.run_id))
            if error.run_status != "interrupted":
                raise
            self._stop(error)
            raise self._cancelled_error() from None

    def heartbeat(self) -> bool:
        """One heartbeat now; False once the run must stop (then `cancelled` is set)."""
        try:
            request = _client._worker_call(self.run_id, "heartbeat", self.worker_id)
            self._adopt(Run.from_json(self.client.send(request, deadline=self._heartbeat_deadline(self.client))))
        except Unavailable as error:
            log.warning("run %s: heartbeat not delivered (%s); trying again at the next one", self.run_id, error)
            return True
        except RunstopError as error:
            if self._stop_reason(error) is None:
                log.warning("run %s: heartbeat refused (%s)", self.run_id, error)
                return True
            self._stop(error)
            return False
        return True

    def check(self) -> None:
        """Raise RunCancelled when the run was interrupted; call it at safe points of the work."""
        if self.cancelled.is_set():
            raise self._cancelled_error()

    def complete(self, status: str) -> Run:
        """Finish the run; RunCancelled when a cancel won the race (the run is interrupted)."""
        try:
            return self._adopt(self.client.complete(self.run_id, status, worker_id=self.worker_id))
        except RunConflict as error:
            if error.run_status == status:  # our own completion, whose first answer was lost
                return self._adopt(self.client.get(self.run_id))
            if error.run_status != "interrupted":
                raise
            self._stop(error)
            raise self._cancelled_error() from None

    def acknowledge(self) -> Run | None:
        """Say the work has stopped (stopped_at); None when the run is not interrupted (nothing to say)."""
        if self.stopped_status not in (None, "interrupted"):
            return None
        try:
            return self._adopt(self.client.stopped(self.run_id, worker_id=self.worker_id))
        except RunConflict:
            return None

    def start_heartbeats(self) -> None:
        if self.heartbeat_interval and self._beats is None:
            self._beats = threading.Thread(target=self._beat, name=f"runstop-heartbeat-{self.run_id}", daemon=True)
            self._beats.start()

    def stop_heartbeats(self) -> None:
        self._halt.set()
        if self._beats is not None and self._beats is not threading.current_thread():
            self._beats.join()

    def _beat(self) -> None:
        assert self.heartbeat_interval
        while not self._halt.wait(self.heartbeat_interval):
            if not self.heartbeat():
                return

    def _stop(self, error: RunstopError) -> None:
        """Record why the run must stop, set `cancelled`, and tell on_cancel (once)."""
        if self.cancelled.is_set():
            return
        self.stopped_status = self._stop_reason(error)
        if isinstance(error, RunConflict) and error.run_status == "interrupted":
            self.cancel = error.cancel or self._cancel_from_run()
        self.cancelled.set()
        if self.on_cancel is not None:
            try:
                self.on_cancel(self)
            except Exception:
                log.exception("run %s: on_cancel failed", self.run_id)

    def _cancel_from_run(self) -> CancelRecord | None:
        """The cancel record when the 409 did not carry it (services before stop deadlines)."""
        try:
            return self._adopt(self.client.get(self.run_id)).cancel
        except RunstopError:
            return None

    def __enter__(self) -> Worker:
        try:
            self.start()
        except RunCancelled:
            self.acknowledge()  # cancelled while pending: nothing ran, so it has stopped
            raise
        self.start_heartbeats()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        self.stop_heartbeats()
        if not self.cancelled.is_set():
            try:
                self.complete("success" if exc is None else "error")
                return False
            except RunCancelled:
                pass  # a cancel won the race with the end of the work: acknowledge it below
            except RunstopError:
                if exc is None:
                    raise
                log.exception("run %s: could not record the error", self.run_id)
                return False
        try:
            self.acknowledge()
        except RunstopError:
            if exc is not None and not self._suppress(exc, self.run_id):
                log.exception("run %s: could not acknowledge the stop", self.run_id)
                return False
            raise
        return self._suppress(exc, self.run_id)


class AsyncWorker(_State):
    """One run worked on by this task; an interruption cancels the task that entered the block."""

    def __init__(
        self,
        client: AsyncClient,
        run_id: str | None,
        *,
        worker_id: str | None = None,
        heartbeat_interval: float | None = _client.DEFAULT_HEARTBEAT_INTERVAL,
        metadata: dict[str, Any] | None = None,
        on_cancel: Callable[[AsyncWorker], None] | None = None,
    ) -> None:
        super().__init__(run_id, worker_id, heartbeat_interval)
        self.client = client
        self.metadata = metadata
        self.on_cancel = on_cancel
        self.cancelled = asyncio.Event()
        self._beats: asyncio.Task[None] | None = None
        self._task: asyncio.Task[Any] | None = None
        self._in_body = False
        self._cancelled_task = False

    async def start(self) -> Run:
        if not self.run_id:
            self.run_id = self._adopt(await self.client.create(metadata=self.metadata)).run_id
        try:
            return self._adopt(await self.client.start(self.run_id, worker_id=self.worker_id))
        except RunConflict as error:
            if self._own_start(error):
                return self._adopt(await self.client.get(self.run_id))
            if error.run_status != "interrupted":
                raise
            await self._stop(error)
            raise self._cancelled_error() from None

    async def heartbeat(self) -> bool:
        try:
            request = _client._worker_call(self.run_id, "heartbeat", self.worker_id)
            answer = await self.client.send(request, deadline=self._heartbeat_deadline(self.client))
            self._adopt(Run.from_json(answer))
        except Unavailable as error:
            log.warning("run %s: heartbeat not delivered (%s); trying again at the next one", self.run_id, error)
            return True
        except RunstopError as error:
            if self._stop_reason(error) is None:
                log.warning("run %s: heartbeat refused (%s)", self.run_id, error)
                return True
            await self._stop(error)
            return False
        return True

    def check(self) -> None:
        if self.cancelled.is_set():
            raise self._cancelled_error()

    async def complete(self, status: str) -> Run:
        try:
            return self._adopt(await self.client.complete(self.run_id, status, worker_id=self.worker_id))
        except RunConflict as error:
            if error.run_status == status:
                return self._adopt(await self.client.get(self.run_id))
            if error.run_status != "interrupted":
                raise
            await self._stop(error)
            raise self._cancelled_error() from None

    async def acknowledge(self) -> Run | None:
        if self.stopped_status not in (None, "interrupted"):
            return None
        try:
            return self._adopt(await self.client.stopped(self.run_id, worker_id=self.worker_id))
        except RunConflict:
            return None

    async def _beat(self) -> None:
        assert self.heartbeat_interval
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            if not await self.heartbeat():
                return

    async def _stop(self, error: RunstopError) -> None:
        if self.cancelled.is_set():
            return
        self.stopped_status = self._stop_reason(error)
        if isinstance(error, RunConflict) and error.run_status == "interrupted":
            self.cancel = error.cancel or await self._cancel_from_run()
        self.cancelled.set()
        if self.on_cancel is not None:
            try:
                self.on_cancel(self)
            except Exception:
                log.exception("run %s: on_cancel failed", self.run_id)
        # Only while the block runs: the task is then suspended inside it, so the CancelledError
        # lands in the user's code and reaches __aexit__ as the block's exception.
        if self._in_body and self._task is not None and not self._task.done():
            self._cancelled_task = True
            self._task.cancel(f"run {self.run_id} was {self.stopped_status}")

    async def _cancel_from_run(self) -> CancelRecord | None:
        try:
            return self._adopt(await self.client.get(self.run_id)).cancel
        except RunstopError:
            return None

    async def __aenter__(self) -> AsyncWorker:
        try:
            await self.start()
        except RunCancelled:
            await self.acknowledge()
            raise
        self._task = asyncio.current_task()
        self._in_body = True
        if self.heartbeat_interval:
            self._beats = asyncio.get_running_loop().create_task(self._beat())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        self._in_body = False
        if self._beats is not None:
            self._beats.cancel()
            await asyncio.wait([self._beats])
        ours = isinstance(exc, asyncio.CancelledError) and self._cancelled_task
        if ours and sys.version_info >= (3, 11) and self._task is not None and self._task.uncancel() > 0:
            ours = False  # someone else cancelled the task too: let that cancellation through
        suppress = ours or self._suppress(exc, self.run_id)
        if not self.cancelled.is_set():
            try:
                await self.complete("success" if exc is None else "error")
                return False
            except RunCancelled:
                pass
            except RunstopError:
                if exc is None:
                    raise
                log.exception("run %s: could not record the error", self.run_id)
                return False
        try:
            await self.acknowledge()
        except RunstopError:
            if exc is not None and not suppress:
                log.exception("run %s: could not acknowledge the stop", self.run_id)
                return False
            raise
        return suppress
