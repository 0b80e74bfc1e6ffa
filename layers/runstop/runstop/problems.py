"""The one map from domain exceptions to RFC 9457 problem documents (status code, headers).

Pydantic-free: the lean cancel function and the runs API's resolver answer errors alike.
"""

from __future__ import annotations

from typing import Any

from runstop.errors import (
    CancelJobNotFound,
    ConcurrencyKeyHeld,
    IdempotencyKeyReused,
    InvalidBody,
    InvalidInput,
    ParentNotActive,
    ParentNotFound,
    RequestInProgress,
    RunAlreadyExists,
    RunNotFound,
    StoreUnavailable,
    TransitionConflict,
    Unauthorized,
    UnsupportedMediaType,
)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "urn:runstop:problem:"


def problem(status: int, title: str, detail: str, slug: str, **extensions: Any) -> dict[str, Any]:
    return {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail, **extensions}


def unsupported_media_type() -> dict[str, Any]:
    return problem(415, "Unsupported media type", "send the body as application/json", "unsupported-media-type")


def run_finished(run_id: str, run_status: str | None) -> dict[str, Any]:
    """The 409 of a cancel that found the run already finished."""
    return problem(
        409,
        "Run already finished",
        f"run {run_id!r} is {run_status}; it cannot be cancelled",
        "run-finished",
        run_id=run_id,
        run_status=run_status,
    )


def problem_for(error: Exception) -> tuple[dict[str, Any], dict[str, str]]:
    """The problem document and extra headers for an exception (500 for anything unforeseen)."""
    match error:
        case InvalidBody():
            return problem(422, "Validation failed", str(error), "validation", errors=error.errors), {}
        case InvalidInput():
            return problem(400, "Bad request", str(error), "bad-request"), {}
        case UnsupportedMediaType():
            return unsupported_media_type(), {}
        case Unauthorized():
            return problem(401, "Unauthorized", str(error), "unauthorized"), {}
        case ParentNotFound():
            body = problem(404, "Parent run not found", str(error), "parent-not-found", parent_run_id=error.run_id)
            return body, {}
        case ParentNotActive():
            body = problem(
                409,
                "Parent run not active",
                str(error),
                "parent-not-active",
                parent_run_id=error.run_id,
                run_status=error.run_status,
            )
            return body, {}
        case ConcurrencyKeyHeld():
            body = problem(
                409,
                "Concurrency key held",
                str(error),
                "concurrency-key-held",
                concurrency_key=error.concurrency_key,
                active_run_id=error.active_run_id,
                run_status=error.run_status,
            )
            return body, {}
        case CancelJobNotFound():
            return problem(404, "Cancel job not found", str(error), "cancel-job-not-found", job_id=error.job_id), {}
        case RunNotFound():
            return problem(404, "Run not found", str(error), "run-not-found", run_id=error.run_id), {}
        case RunAlreadyExists():
            return problem(409, "Run already exists", str(error), "run-exists", run_id=error.run_id), {}
        case IdempotencyKeyReused():
            return problem(422, "Idempotency-Key reused", str(error), "idempotency-key-reused"), {}
        case RequestInProgress():
            body = problem(409, "Request in progress", str(error), "request-in-progress")
            return body, {"Retry-After": str(error.retry_after_seconds)}
        case TransitionConflict():
            body = problem(
                409,
                "Run status conflict",
                str(error),
                "status-conflict",
                run_id=error.run_id,
                run_status=error.run_status,
                **error.details,
            )
            return body, {}
        case StoreUnavailable():
            body = problem(
                503,
                "Store unavailable",
                "DynamoDB did not answer in time; nothing can be said about this request, retry it",
                "store-unavailable",
            )
            return body, {"Retry-After": str(error.retry_after_seconds)}
    return problem(500, "Internal error", "an unexpected error occurred", "internal"), {}
