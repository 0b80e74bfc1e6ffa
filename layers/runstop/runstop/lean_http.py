"""Payload-2.0 requests and answers without pydantic: the helper set of the lean cancel function.

The runs API's resolver (runstop.resolver) reuses the media-type and tenant rules from here,
so both doors refuse and identify callers the same way.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runstop import schemas
from runstop.cancel import CancelDecision, CancelOutcome
from runstop.errors import InvalidBody, InvalidInput, Unauthorized, UnsupportedMediaType
from runstop.ids import require_run_id, valid_run_id
from runstop.limits import text_problem
from runstop.problems import PROBLEM_CONTENT_TYPE, problem_for, run_finished
from runstop.settings import settings
from runstop.stop_wait import parse_wait

JSON_CONTENT_TYPE = "application/json"
MAX_BODY_BYTES = 64 * 1024
MAX_IDEMPOTENCY_KEY = 256


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
    except RecursionError:  # JSON nested thousands deep: no request of this API looks like that
        raise InvalidInput("the body is nested too deeply") from None


def tenant_from_event(event: Mapping[str, Any]) -> str:
    """The tenant from the JWT authorizer's claims (the local runner fills the same place)."""
    claims = ((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt", {}).get("claims") or {}
    claim = settings().tenant_claim
    tenant = claims.get(claim)
    if not isinstance(tenant, str) or not valid_run_id(tenant):
        raise Unauthorized(f"the token carries no usable {claim!r} claim")
    return tenant


def idempotency_key(event: Mapping[str, Any]) -> str | None:
    """The Idempotency-Key header, 1 to MAX_IDEMPOTENCY_KEY characters when present."""
    key = header(event, "Idempotency-Key")
    if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
        raise InvalidInput(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
    return key


@dataclass(frozen=True, slots=True)
class CancelCall:
    """POST /runs/{run_id}/cancel, parsed once: who, which run, how, and how long to wait."""

    tenant_id: str
    run_id: str
    reason: str | None
    idempotency_key: str | None
    wait: int | None
    force: bool = False

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> CancelCall:
        """Every check of the request, in the order its refusals take precedence."""
        tenant_id = tenant_from_event(event)
        run_id = require_run_id((event.get("pathParameters") or {}).get("run_id") or "")
        wait = parse_wait((event.get("queryStringParameters") or {}).get("wait"))
        body = json_body(event)
        # Only an empty body means "no options"; a JSON null is a body, and not an object.
        options = schemas.validate("cancel_request", body) if event.get("body") else {}
        reason = options.get("reason")
        if reason is not None and (problem := text_problem(reason)):
            raise InvalidBody(f"reason {problem}", [{"loc": ["body", "reason"], "msg": problem, "type": "value_error"}])
        return cls(tenant_id, run_id, reason, idempotency_key(event), wait, bool(options.get("force", False)))


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
        return run_finished(decision.run_id, decision.run_status)
    run = decision.run
    return {
        "run_id": decision.run_id,
        "status": None if run is None else run["status"],
        "outcome": decision.outcome.value,
        "cancel": None if run is None else run.get("cancel"),
        "version": None if run is None else run.get("version"),
        "stop_deadline": None if run is None else run.get("stop_deadline"),
    }


def cancel_response(decision: CancelDecision, stop_acknowledged: bool | None = None) -> dict[str, Any]:
    """The whole HTTP answer to one cancel (with `stop_acknowledged` when the caller waited)."""
    body = cancel_body(decision)
    if decision.outcome is CancelOutcome.CONFLICT:
        return response(409, body, PROBLEM_CONTENT_TYPE)
    if stop_acknowledged is not None:
        body["stop_acknowledged"] = stop_acknowledged
    return response(202, body)
