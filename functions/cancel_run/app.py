"""POST /runs/{run_id}/cancel: the hot path, kept lean for cold start.

No pydantic and no validating resolver here (together they cost more cold start than the
whole function may add to the boto3 floor): API Gateway has already routed the request,
the run id is checked by pattern, and the body by the JSON Schema generated from
runstop.models.CancelRequest. Tracing comes from the Lambda platform (Tracing: Active).
`?wait=N` then waits up to N seconds for the worker's stop acknowledgement (runstop.stop_wait).
"""

from dataclasses import replace
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from runstop import schemas
from runstop.cancel import TRIGGER_API, TRIGGER_DIMENSION, CancelOutcome, cancel_metric, cancel_run
from runstop.errors import InvalidInput, RunstopError
from runstop.http import (
    MAX_IDEMPOTENCY_KEY,
    PROBLEM_CONTENT_TYPE,
    cancel_body,
    error_response,
    header,
    json_body,
    require_run_id,
    response,
    tenant_from_event,
)
from runstop.stop_wait import parse_wait, stop_acknowledged, wait_for_stop
from runstop.store import run_store

logger = Logger()
metrics = Metrics()

WAIT_MARGIN_SECONDS = 1.0
"""Left of the invocation after a wait, to answer before Lambda's timeout cuts the request off."""


def _count(name: str) -> None:
    # The dimension with the metric: Powertools clears dimensions only when it flushes metrics.
    metrics.add_dimension(name=TRIGGER_DIMENSION, value=TRIGGER_API)
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def _handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    tenant_id = tenant_from_event(event)
    run_id = require_run_id((event.get("pathParameters") or {}).get("run_id") or "")
    wait = parse_wait((event.get("queryStringParameters") or {}).get("wait"))
    body = json_body(event)
    # Only an empty body means "no options"; a JSON null is a body, and not an object.
    request = schemas.validate("cancel_request", body) if event.get("body") else {}
    key = header(event, "Idempotency-Key")
    if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
        raise InvalidInput(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
    decision = cancel_run(run_store(), tenant_id, run_id, reason=request.get("reason"), idempotency_key=key)
    _count(cancel_metric(decision.outcome.value))
    # The decision rides on the EMF line printed anyway (searchable in Logs Insights): a
    # separate log line per cancel cost a quarter of a warm invocation (bench row 4).
    metrics.add_metadata(key="run_id", value=run_id)
    metrics.add_metadata(key="tenant_id", value=tenant_id)
    metrics.add_metadata(key="outcome", value=decision.outcome.value)
    if decision.accepted and decision.run is not None and wait:
        budget = min(wait, context.get_remaining_time_in_millis() / 1000 - WAIT_MARGIN_SECONDS)
        decision = replace(decision, run=wait_for_stop(run_store(), tenant_id, decision.run, budget))
    body = cancel_body(decision)
    if decision.accepted and wait is not None:
        body["stop_acknowledged"] = stop_acknowledged(decision.run)
        logger.info("stop waited for", run_id=run_id, wait=wait, stop_acknowledged=body["stop_acknowledged"])
    content_type = PROBLEM_CONTENT_TYPE if decision.outcome is CancelOutcome.CONFLICT else "application/json"
    return response(decision.status_code, body, content_type)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The request id read directly: Powertools' correlation_id_path runs a JMESPath search per call.
    logger.set_correlation_id((event.get("requestContext") or {}).get("requestId"))
    try:
        return _handle(event, context)
    except RunstopError as error:
        logger.info("cancel refused", error=type(error).__name__, detail=str(error))
        _count(cancel_metric(type(error).__name__))
        return error_response(error)
    except Exception as error:  # the last line of defence: a problem document, never a trace
        logger.exception("cancel failed unexpectedly")
        return error_response(error)
