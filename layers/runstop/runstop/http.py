"""HTTP API plumbing shared by the functions, kept free of pydantic for the cancel path.

Every error answer is an RFC 9457 problem document; `problem_for` is the single map from
domain exceptions to status codes, used by the lean cancel handler and the runs API alike.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

from runstop.cancel import CancelDecision, CancelOutcome
from runstop.config import settings
from runstop.errors import (
    InvalidBody,
    InvalidInput,
    RunAlreadyExists,
    RunNotFound,
    RunstopError,
    StoreUnavailable,
    TransitionConflict,
)

RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")  # used with fullmatch: no "$\n" loophole

PROBLEM_CONTENT_TYPE = "application/problem+json"
JSON_CONTENT_TYPE = "application/json"
MAX_BODY_BYTES = 64 * 1024
MAX_IDEMPOTENCY_KEY = 256
PROBLEM_BASE = "urn:runstop:problem:"


class Unauthorized(RunstopError):
    """No usable tenant claim on the request."""


class UnsupportedMediaType(RunstopError):
    """A body that is not declared as JSON."""


class IdempotencyKeyReused(RunstopError):
    """An Idempotency-Key sent again with a different request: which one was meant is unknowable."""


class RequestInProgress(RunstopError):
    """The first request with this Idempotency-Key is still running; retry to get its answer."""

    retry_after_seconds = 1


def valid_run_id(run_id: str) -> bool:
    return _RUN_ID.fullmatch(run_id) is not None


def require_run_id(run_id: str) -> str:
    if not valid_run_id(run_id):
        raise InvalidInput(f"run_id must match {RUN_ID_PATTERN}")
    return run_id


def header(event: Mapping[str, Any], name: str) -> str | None:
    """A request header; payload 2.0 lower-cases names and joins repeats with commas."""
    value = (event.get("headers") or {}).get(name.lower())
    return value if isinstance(value, str) else None


def is_json_media_type(content_type: str | None) -> bool:
    """No content type, application/json, or any +json type (a body is JSON or refused)."""
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def unsupported_media_type() -> dict[str, Any]:
    return problem(415, "Unsupported media type", "send the body as application/json", "unsupported-media-type")


def json_body(event: Mapping[str, Any]) -> Any:
    """The request body as JSON (None when empty); InvalidInput for bytes that are not JSON."""
    raw = event.get("body")
    if raw is None or raw == "":
        return None
    if not is_json_media_type(header(event, "content-type")):
        raise UnsupportedMediaType("send the body as application/json")
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput("the body is not valid base64") from None
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidInput(f"the body exceeds {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("the body is not valid JSON") from None


def tenant_from_event(event: Mapping[str, Any]) -> str:
    """The tenant from the JWT authorizer's claims (the local runner fills the same place)."""
    claims = ((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt", {}).get("claims") or {}
    tenant = claims.get(settings().tenant_claim)
    if not isinstance(tenant, str) or not valid_run_id(tenant):
        raise Unauthorized(f"the token carries no usable {settings().tenant_claim!r} claim")
    return tenant


def problem(status: int, title: str, detail: str, slug: str, **extensions: Any) -> dict[str, Any]:
    return {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail, **extensions}


def problem_for(error: Exception) -> tuple[dict[str, Any], dict[str, str]]:
    """The problem document and extra headers for a domain exception."""
    match error:
        case InvalidBody():
            return problem(422, "Validation failed", str(error), "validation", errors=error.errors), {}
        case InvalidInput():
            return problem(400, "Bad request", str(error), "bad-request"), {}
        case UnsupportedMediaType():
            return unsupported_media_type(), {}
        case Unauthorized():
            return problem(401, "Unauthorized", str(error), "unauthorized"), {}
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


def response(
    status: int, body: Any, content_type: str = JSON_CONTENT_TYPE, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A payload-2.0 Lambda proxy answer."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_type, **(headers or {})},
        "body": json.dumps(body, separators=(",", ":")),
    }


def error_response(error: Exception) -> dict[str, Any]:
    body, headers = problem_for(error)
    return response(body["status"], body, PROBLEM_CONTENT_TYPE, headers)


def cancel_body(decision: CancelDecision) -> dict[str, Any]:
    """The answer to one cancel: 202 with the outcome, or a 409 problem with the run's status."""
    if decision.outcome is CancelOutcome.CONFLICT:
        return problem(
            409,
            "Run already finished",
            f"run {decision.run_id!r} is {decision.run_status}; it cannot be cancelled",
            "run-finished",
            run_id=decision.run_id,
            run_status=decision.run_status,
        )
    run = decision.run
    return {
        "run_id": decision.run_id,
        "status": None if run is None else run["status"],
        "outcome": decision.outcome.value,
        "cancel": None if run is None else run.get("cancel"),
        "version": None if run is None else run.get("version"),
    }
