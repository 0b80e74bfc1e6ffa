"""Domain exceptions. Handlers map each class to one HTTP answer; nothing matches on text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class RunstopError(Exception):
    """Base class for every error the domain raises on purpose."""


class RunNotFound(RunstopError):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id!r} not found")
        self.run_id = run_id


class RunAlreadyExists(RunstopError):
    def __init__(self, run_id: str, existing: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"run {run_id!r} already exists")
        self.run_id = run_id
        self.existing = existing
        """The run as stored, when DynamoDB handed it back with the refusal."""


CONFLICT_DETAILS = ("worker_id", "cancel", "stop_deadline")
"""What a 409 tells a worker besides the status: who holds the run, and why and by when to stop."""


class TransitionConflict(RunstopError):
    """The run's current status (or holder) does not allow the requested transition."""

    def __init__(self, run_id: str, action: str, run: Mapping[str, Any], reason: str | None = None) -> None:
        run_status = str(run["status"])
        super().__init__(reason or f"cannot {action} run {run_id!r}: it is {run_status}")
        self.run_id = run_id
        self.action = action
        self.run_status = run_status
        self.details = {name: run[name] for name in CONFLICT_DETAILS if run.get(name) is not None}


class StoreUnavailable(RunstopError):
    """DynamoDB throttled or was unreachable after the SDK's own retries.

    Nothing can be said about the write, so the caller must retry rather than guess.
    """

    retry_after_seconds = 1

    def __init__(self, detail: str, *, throttled: bool = False) -> None:
        super().__init__(detail)
        self.throttled = throttled
        """DynamoDB refused for capacity (the request never applied), rather than failed to answer."""


class InvalidInput(RunstopError):
    """Input the domain rejects before any I/O (the HTTP layer answers 400)."""


class InvalidBody(InvalidInput):
    """A well-formed JSON body that breaks the contract (the HTTP layer answers 422)."""

    def __init__(self, detail: str, errors: list[dict[str, object]] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []


class InvalidCursor(InvalidInput):
    def __init__(self) -> None:
        super().__init__("cursor is not a cursor of this listing; start again without it")


class Unauthorized(RunstopError):
    """No usable tenant claim on the request."""


class UnsupportedMediaType(RunstopError):
    """A body that is not declared as JSON."""


class IdempotencyKeyReused(RunstopError):
    """An Idempotency-Key sent again with a different request: which one was meant is unknowable."""


class RequestInProgress(RunstopError):
    """The first request with this Idempotency-Key is still running; retry to get its answer."""

    retry_after_seconds = 1


class ParentNotFound(RunNotFound):
    """The parent_run_id of a create names no run of the caller's tenant."""

    def __init__(self, parent_run_id: str) -> None:
        RunstopError.__init__(self, f"parent run {parent_run_id!r} not found")
        self.run_id = parent_run_id


class ParentNotActive(RunstopError):
    """The parent named by a create is no longer pending or running: no child may join it."""

    def __init__(self, parent_run_id: str, run_status: str) -> None:
        super().__init__(f"parent run {parent_run_id!r} is {run_status}; no run can be created under it")
        self.run_id = parent_run_id
        self.run_status = run_status


class ConcurrencyKeyHeld(RunstopError):
    """The key's run is active and the create asked to be refused then (on_active: reject)."""

    def __init__(self, concurrency_key: str, active_run_id: str, run_status: str) -> None:
        super().__init__(f"concurrency key {concurrency_key!r} is held by run {active_run_id!r}, which is {run_status}")
        self.concurrency_key = concurrency_key
        self.active_run_id = active_run_id
        self.run_status = run_status


class CascadeIncomplete(StoreUnavailable):
    """Fewer children listed than the parent counts, after every listing: the index still lags
    (or DynamoDB failed), so the queue delivers the cascade again."""


class CancelJobNotFound(RunstopError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"cancel job {job_id!r} not found")
        self.job_id = job_id
