"""CancelRequests queue -> the one cancel decision, a batch at a time.

Wiring only (the rules live in runstop.triggers): a Powertools BatchProcessor reports just
the records that hit a transient failure (ReportBatchItemFailures), so SQS redelivers those
alone; decisions are final and malformed messages are dead-lettered by the consumer.
"""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from runstop.metric_names import TRIGGER_DIMENSION, TRIGGER_SQS
from runstop.triggers import CancelQueueConsumer

logger = Logger()
metrics = Metrics()
# A batch whose every record failed is reported record by record too, not as one error.
processor = BatchProcessor(event_type=EventType.SQS, model=SqsRecordModel, raise_on_entire_batch_failure=False)
consume = CancelQueueConsumer(metrics)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # Per invocation: Metrics state is process-wide.
    metrics.add_dimension(name=TRIGGER_DIMENSION, value=TRIGGER_SQS)
    return process_partial_response(event=event, record_handler=consume, processor=processor, context=context)
