"""The runs API's Powertools resolver (validating, pydantic): routing, request validation and
the map from exceptions to problem documents live here so routes stay a few lines."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Header, Path
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel

from runstop.errors import RunstopError
from runstop.ids import RUN_ID_PATTERN
from runstop.lean_http import JSON_CONTENT_TYPE, MAX_IDEMPOTENCY_KEY, is_json_media_type, tenant_from_event
from runstop.models import Problem
from runstop.problems import PROBLEM_CONTENT_TYPE, problem, problem_for, unsupported_media_type

logger = Logger(child=True)

RunIdPath = Annotated[str, Path(pattern=RUN_ID_PATTERN, description="The run's id within the caller's tenant.")]
JobIdPath = Annotated[str, Path(pattern=RUN_ID_PATTERN, description="The cancel job's id within the caller's tenant.")]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=MAX_IDEMPOTENCY_KEY,
        description="Makes a retried request safe: a repeat with the same key gets the first request's answer.",
    ),
]


def _problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response[Any]:
    # Serialized here: Powertools only encodes bodies whose content type is application/json.
    return Response(
        status_code=body["status"], content_type=PROBLEM_CONTENT_TYPE, body=json.dumps(body), headers=headers
    )


def _refusal(app: APIGatewayHttpResolver) -> dict[str, Any] | None:
    """The problem for a request refused whatever its route and body say, else None."""
    event = app.current_event
    # HTTP APIs hand the path over decoded, and Powertools' route regex ends in `$`, which
    # matches before a final newline: GET /runs/abc%0A would otherwise read run "abc".
    if any(char < " " or char == "\x7f" for char in event.path):
        return problem(400, "Bad request", "the path contains control characters", "bad-request")
    # A body in another media type is refused (415) instead of being parsed as a form.
    if event.body and not is_json_media_type(event.headers.get("content-type")):
        return unsupported_media_type()
    return None


def _json_only(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """Refuse such a request even when its route's validation let it through."""
    refusal = _refusal(app)
    return _problem_response(refusal) if refusal else next_middleware(app)


def _validation_problem(error: RequestValidationError) -> Response[Any]:
    """Malformed JSON and a bad path, query or header parameter are 400; a well-formed but invalid body is 422."""
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in error.errors()
    ]
    if any(e["type"] == "json_invalid" or e["loc"][:1] in (["path"], ["query"], ["header"]) for e in errors):
        body = problem(400, "Bad request", "the request is malformed", "bad-request", errors=errors)
    else:
        body = problem(422, "Validation failed", "the request body is not valid", "validation", errors=errors)
    return _problem_response(body)


_PROBLEM_DESCRIPTIONS = {
    400: "Malformed request: bad JSON, a run_id that does not match the pattern, or a bad parameter.",
    401: "No tenant claim in the token.",
    404: "No such run (or job) for this tenant.",
    409: "The run's status forbids this; run_status says what it is.",
    415: "The body is not application/json.",
    422: "The request body breaks the schema; errors lists where.",
    503: "DynamoDB throttled or was unreachable; retry after Retry-After seconds.",
}


def problem_responses(*codes: int, notes: Mapping[int, str] | None = None) -> dict[int, OpenAPIResponse]:
    """OpenAPI declarations of the problem answers a route can give (plus the common ones).

    `notes` replaces the generic description of a code where this route means more by it.
    """
    descriptions = {**_PROBLEM_DESCRIPTIONS, **(notes or {})}
    # 422 always: it replaces the JSON validation error Powertools would declare, which this API never sends.
    return {
        code: {"description": descriptions[code], "content": {PROBLEM_CONTENT_TYPE: {"model": Problem}}}
        for code in sorted({*codes, 400, 401, 422, 503})
    }


def route_responses(
    status: int, model: type[BaseModel], description: str, *problems: int, notes: Mapping[int, str] | None = None
) -> dict[int, OpenAPIResponse]:
    """A route's success answer and its problems; Powertools documents no success once `responses` is given."""
    success: OpenAPIResponse = {"description": description, "content": {JSON_CONTENT_TYPE: {"model": model}}}
    return {status: success, **problem_responses(*problems, notes=notes)}


def json_media_type_for_validation(event: dict[str, Any]) -> dict[str, Any]:
    """The event with a JSON body's media type spelled `application/json`, its parameters kept.

    Media types are case-insensitive (RFC 9110, 8.3.1) and `+json` types are JSON, but
    Powertools' request validation reads a body as JSON only after a case-sensitive
    `startswith("application/json")`, answering 415 to `Application/Json` otherwise. The cancel
    function reads such bodies (lean_http); the runs API now does too. The event is copied.
    """
    headers = event.get("headers") or {}
    content_type = headers.get("content-type")
    if not content_type or content_type.startswith(JSON_CONTENT_TYPE) or not is_json_media_type(content_type):
        return event
    _, semicolon, parameters = content_type.partition(";")
    return {**event, "headers": {**headers, "content-type": JSON_CONTENT_TYPE + semicolon + parameters}}


def build_resolver() -> APIGatewayHttpResolver:
    """An HTTP API resolver that validates with pydantic and answers errors as problems."""
    app = APIGatewayHttpResolver(enable_validation=True)
    app.use(middlewares=[_json_only])

    # Request validation runs before any middleware, so it can fail first on such requests.
    @app.exception_handler(RequestValidationError)
    def _invalid(error: RequestValidationError) -> Response[Any]:
        refusal = _refusal(app)
        return _problem_response(refusal) if refusal else _validation_problem(error)

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported(_: RequestUnsupportedContentType) -> Response[Any]:
        return _problem_response(_refusal(app) or unsupported_media_type())

    # Powertools decodes a base64 body as UTF-8 before parsing it, outside its JSON error handling.
    @app.exception_handler(UnicodeDecodeError)
    def _undecodable(_: UnicodeDecodeError) -> Response[Any]:
        detail = "the body is not valid JSON (not UTF-8 text)"
        return _problem_response(_refusal(app) or problem(400, "Bad request", detail, "bad-request"))

    # Python's JSON parser gives up on bodies nested thousands deep; no request here is like that.
    @app.exception_handler(RecursionError)
    def _too_deep(_: RecursionError) -> Response[Any]:
        return _problem_response(
            _refusal(app) or problem(400, "Bad request", "the body is nested too deeply", "bad-request")
        )

    # Powertools parses a multipart body before any middleware runs, and raises ValueError when
    # its boundary is missing: such a body is refused for its media type like any non-JSON one.
    @app.exception_handler(ValueError)
    def _unparsable(error: ValueError) -> Response[Any]:
        refusal = _refusal(app)
        return _problem_response(refusal) if refusal else _unexpected(error)

    @app.exception_handler(RunstopError)
    def _domain(error: RunstopError) -> Response[Any]:
        body, headers = problem_for(error)
        return _problem_response(body, headers)

    @app.not_found
    def _no_route(_: Exception) -> Response[Any]:
        return _problem_response(_refusal(app) or problem(404, "Not found", "no such route", "no-route"))

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response[Any]:
        logger.exception("unhandled error")
        body, _ = problem_for(error)
        return _problem_response(body)

    return app


def current_tenant(app: APIGatewayHttpResolver) -> str:
    """The caller's tenant, from the authorizer claims of the event being handled."""
    return tenant_from_event(app.current_event.raw_event)
