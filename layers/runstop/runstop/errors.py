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
