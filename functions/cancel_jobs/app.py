"""CancelJobs queue -> work a cancel job until it is done or this invocation's time runs short.

Wiring only (the rules live in runstop.jobs): one message per invocation (BatchSize 1); a
transient failure is reported for the record, so SQS delivers it again and the job resumes
from its last stored step.
"""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from runstop.consumers import JobWakeConsumer

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS, model=SqsRecordModel, raise_on_entire_batch_failure=False)
consume = JobWakeConsumer(metrics)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    metrics.add_dimension(name="trigger", value="cancel_job")  # per invocation: Metrics state is process-wide
    consume.remaining_ms = context.get_remaining_time_in_millis
    return process_partial_response(event=event, record_handler=consume, processor=processor, context=context)
