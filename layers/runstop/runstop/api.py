"""The validating HTTP resolver shared by the runs API: routing, request validation and
the map from exceptions to problem documents live here so routes stay a few lines."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from runstop.errors import RunstopError
from runstop.http import (
    PROBLEM_CONTENT_TYPE,
    is_json_media_type,
    problem,
    problem_for,
    tenant_from_event,
    unsupported_media_type,
)
from runstop.models import Problem

logger = Logger(child=True)


def _problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response[Any]:
    # Serialized here: Powertools only encodes bodies whose content type is application/json.
    return Response(
        status_code=body["status"], content_type=PROBLEM_CONTENT_TYPE, body=json.dumps(body), headers=headers
    )


def _json_only(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """A body in another media type is refused (415) instead of being parsed as a form."""
    event = app.current_event
    if event.body and not is_json_media_type(event.headers.get("content-type")):
        return _problem_response(unsupported_media_type())
    return next_middleware(app)


def _validation_problem(error: RequestValidationError) -> Response[Any]:
    """Malformed JSON and a bad path parameter are 400; a well-formed but invalid body is 422."""
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in error.errors()
    ]
    if any(e["type"] == "json_invalid" or (e["loc"][:1] == ["path"]) for e in errors):
        body = problem(400, "Bad request", "the request is malformed", "bad-request", errors=errors)
    else:
        body = problem(422, "Validation failed", "the request body is not valid", "validation", errors=errors)
    return _problem_response(body)


_PROBLEM_DESCRIPTIONS = {
    400: "Malformed request: bad JSON or a run_id that does not match the pattern.",
    401: "No tenant claim in the token.",
    404: "No such run for this tenant.",
    409: "The run's status forbids this; run_status says what it is.",
    415: "The body is not application/json.",
    422: "The body breaks the schema; errors lists where.",
    503: "DynamoDB throttled or was unreachable; retry after Retry-After seconds.",
}


def problem_responses(*codes: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI declarations of the problem answers a route can give (plus the common ones)."""
    schema = Problem.model_json_schema()
    return {
        code: {"description": _PROBLEM_DESCRIPTIONS[code], "content": {PROBLEM_CONTENT_TYPE: {"schema": schema}}}
        for code in sorted({*codes, 400, 401, 503})
    }


def build_resolver() -> APIGatewayHttpResolver:
    """An HTTP API resolver that validates with pydantic and answers errors as problems."""
    app = APIGatewayHttpResolver(enable_validation=True)
    app.use(middlewares=[_json_only])

    @app.exception_handler(RequestValidationError)
    def _invalid(error: RequestValidationError) -> Response[Any]:
        return _validation_problem(error)

    @app.exception_handler(RunstopError)
    def _domain(error: RunstopError) -> Response[Any]:
        body, headers = problem_for(error)
        return _problem_response(body, headers)

    @app.not_found
    def _no_route(_: Exception) -> Response[Any]:
        return _problem_response(problem(404, "Not found", "no such route", "no-route"))

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response[Any]:
        logger.exception("unhandled error")
        body, _ = problem_for(error)
        return _problem_response(body)

    return app


def current_tenant(app: APIGatewayHttpResolver) -> str:
    """The caller's tenant, from the authorizer claims of the event being handled."""
    return tenant_from_event(app.current_event.raw_event)
