"""Run Cancel Requested (EventBridge) -> the one cancel decision.

Wiring only (the rules live in runstop.triggers). A transient store failure is raised, so
Lambda retries the asynchronous invocation and, after the last try, sends it to the
on-failure destination; a malformed event is dead-lettered at once and not retried.
"""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from runstop.metric_names import TRIGGER_DIMENSION, TRIGGER_EVENTBRIDGE
from runstop.triggers import handle_cancel_event

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Per invocation: Metrics state is process-wide.
    metrics.add_dimension(name=TRIGGER_DIMENSION, value=TRIGGER_EVENTBRIDGE)
    return handle_cancel_event(event, metrics)
