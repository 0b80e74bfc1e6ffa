"""POST /runs/{run_id}/cancel: the hot path, kept lean for cold start.

No pydantic and no validating resolver here (together they cost more cold start than the
whole function may add to the boto3 floor): API Gateway has already routed the request,
the run id is checked by pattern, and the body by the JSON Schema generated from
runstop.models.CancelRequest. Tracing comes from the Lambda platform (Tracing: Active).
`?wait=N` then waits up to N seconds for the worker's stop acknowledgement (runstop.stop_wait).
Its one metric per call is an EMF line written by runstop.emf, not Powertools Metrics (the
warm budget: measured there).
"""

from dataclasses import replace
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from runstop import emf
from runstop.cancel import TRIGGER_API, TRIGGER_DIMENSION, cancel_metric, cancel_run
from runstop.errors import RunstopError
from runstop.lean_http import CancelCall, cancel_response, error_response
from runstop.settings import settings
from runstop.stop_wait import stop_acknowledged, wait_for_stop
from runstop.store import run_store

logger = Logger()
settings()  # a missing TABLE_NAME fails the first cold start, with its name, not a later request

WAIT_MARGIN_SECONDS = 1.0
"""Left of the invocation after a wait, to answer before Lambda's timeout cuts the request off."""


_DIMENSIONS = {TRIGGER_DIMENSION: TRIGGER_API}


def _handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    call = CancelCall.from_event(event)
    decision = cancel_run(
        run_store(),
        call.tenant_id,
        call.run_id,
        reason=call.reason,
        idempotency_key=call.idempotency_key,
        force=call.force,
    )
    # The decision rides on the EMF line printed anyway (searchable in Logs Insights): a
    # separate log line per cancel cost a quarter of a warm invocation (bench: warm path).
    outcome = decision.outcome.value
    emf.count(
        cancel_metric(outcome), _DIMENSIONS, {"run_id": call.run_id, "tenant_id": call.tenant_id, "outcome": outcome}
    )
    if call.wait is None or not decision.accepted:
        return cancel_response(decision)
    if decision.run is not None and call.wait:
        budget = min(call.wait, context.get_remaining_time_in_millis() / 1000 - WAIT_MARGIN_SECONDS)
        decision = replace(decision, run=wait_for_stop(run_store(), call.tenant_id, decision.run, budget))
    acknowledged = stop_acknowledged(decision.run)
    logger.info("stop waited for", run_id=call.run_id, wait=call.wait, stop_acknowledged=acknowledged)
    return cancel_response(decision, acknowledged)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The request id read directly: Powertools' correlation_id_path runs a JMESPath search per call.
    logger.set_correlation_id((event.get("requestContext") or {}).get("requestId"))
    try:
        return _handle(event, context)
    except RunstopError as error:
        logger.info("cancel refused", error=type(error).__name__, detail=str(error))
        emf.count(cancel_metric(type(error).__name__), _DIMENSIONS)
        return error_response(error)
    except Exception as error:  # the last line of defence: a problem document, never a trace
        logger.exception("cancel failed unexpectedly")
        return error_response(error)
