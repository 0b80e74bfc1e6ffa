"""RunEnded queue -> cascade an interrupted run to its children, free a final run's concurrency key.

Wiring only (the rules live in runstop.trees, runstop.concurrency and runstop.consumers): a
Powertools BatchProcessor reports just the records that hit a transient failure
(ReportBatchItemFailures), so SQS redelivers those alone and dead-letters them after three tries.
"""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from runstop.consumers import RunEndedConsumer

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS, model=SqsRecordModel, raise_on_entire_batch_failure=False)
consume = RunEndedConsumer(metrics)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    metrics.add_dimension(name="trigger", value="cascade")  # per invocation: Metrics state is process-wide
    consume.remaining_ms = context.get_remaining_time_in_millis
    return process_partial_response(event=event, record_handler=consume, processor=processor, context=context)
