"""The runs API's RFC 9457 problems as exceptions a caller can catch by kind, never by message."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from runstop_client.models import CancelRecord, parse_time

PROBLEM_BASE = "urn:runstop:problem:"


class RunstopError(Exception):
    """Any answer of the runs API that is not a success; `problem` is the document as sent."""

    def __init__(self, message: str, *, status: int | None = None, problem: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problem: dict[str, Any] = problem or {}

    @property
    def type(self) -> str:
        """The problem type without its urn prefix (e.g. `run-finished`), or '' when there was none."""
        kind = self.problem.get("type")
        return kind.removeprefix(PROBLEM_BASE) if isinstance(kind, str) else ""


class RunConflict(RunstopError):
    """409: the run is not in a state that allows the call; `run_status` says which state it is in.

    For a run that was interrupted, `cancel` says who cancelled it and why, and `stop_deadline`
    by when the work must have stopped (when the service gives them).
    """

    @property
    def run_id(self) -> str | None:
        value = self.problem.get("run_id")
        return value if isinstance(value, str) else None

    @property
    def run_status(self) -> str | None:
        value = self.problem.get("run_status")
        return value if isinstance(value, str) else None

    @property
    def stop_deadline(self) -> datetime | None:
        return parse_time(self.problem.get("stop_deadline"))

    @property
    def cancel(self) -> CancelRecord | None:
        return CancelRecord.from_json(self.problem.get("cancel"), self.problem.get("stop_deadline"))

    @property
    def worker_id(self) -> str | None:
        """The worker holding the run, when another worker's call was refused."""
        value = self.problem.get("worker_id")
        return value if isinstance(value, str) else None


class RunNotFound(RunstopError):
    """404: no such run for this tenant."""

    @property
    def run_id(self) -> str | None:
        value = self.problem.get("run_id")
        return value if isinstance(value, str) else None


class InvalidRequest(RunstopError):
    """400, 415 or 422: the request itself is wrong; retrying it unchanged cannot help."""

    @property
    def errors(self) -> list[Any]:
        value = self.problem.get("errors")
        return value if isinstance(value, list) else []


class Unauthorized(RunstopError):
    """401 or 403: no usable token (deployed) or tenant."""


class Unavailable(RunstopError):
    """The service could not answer within the retry deadline (503, 429, 502, 504, or no connection)."""


class RunCancelled(Exception):
    """Raised by a worker's check(): the run was interrupted (or taken away), so stop the work.

    Leaving the worker block with it is the normal way to stop: the block acknowledges the stop
    and does not re-raise it.
    """

    def __init__(self, run_id: str, cancel: CancelRecord | None = None, run_status: str | None = None) -> None:
        why = f" ({cancel.reason})" if cancel and cancel.reason else ""
        super().__init__(f"run {run_id!r} was {run_status or 'interrupted'}{why}")
        self.run_id = run_id
        self.cancel = cancel
        self.run_status = run_status


def error_for(status: int, body: Any, fallback: str) -> RunstopError:
    """The exception for a non-success answer; `body` is its JSON (a problem, or anything else)."""
    problem = body if isinstance(body, dict) else {}
    detail = problem.get("detail") or problem.get("title") or problem.get("message") or fallback
    message = f"{status}: {detail}"
    kind: type[RunstopError]
    if status == 404:
        kind = RunNotFound
    elif status == 409:
        kind = RunConflict
    elif status in (400, 413, 415, 422):
        kind = InvalidRequest
    elif status in (401, 403):
        kind = Unauthorized
    elif status >= 500 or status == 429:
        kind = Unavailable
    else:
        kind = RunstopError
    return kind(message, status=status, problem=problem)
