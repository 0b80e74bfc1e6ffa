"""Event-driven cancels: the CancelRequests queue and Run Cancel Requested events.

Every message is decided by the one cancel decision (runstop.cancel.cancel_run) and what
happens next depends only on what kind of answer that is:

- a decision (interrupted, already_interrupted, absent, conflict) is final: logged, counted,
  never retried; a finished run stays finished whoever asks;
- a malformed message can never succeed, so retrying it only delays the rest: it goes
  straight to the trigger's dead-letter queue, with the validation error attached, and
  counts as handled;
- a transient store failure (throttling, timeouts: StoreUnavailable) says nothing about the
  run, so it is raised: SQS redelivers the record (ReportBatchItemFailures) and Lambda retries
  the EventBridge invocation; both end in their dead-letter queue once retries run out.

The idempotency key of a trigger's cancel is its message id (`sqs:<messageId>`,
`eventbridge:<event id>`), so a redelivered message that had interrupted the run answers
`interrupted` again, and the run's cancel record says which message stopped it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from botocore.config import Config
from pydantic import ValidationError

from runstop.cancel import CancelDecision, cancel_run
from runstop.errors import StoreUnavailable
from runstop.messages import CancelMessage, CancelRequestedEvent, validation_summary
from runstop.metric_names import (
    CANCEL_STORE_UNAVAILABLE,
    TRIGGER_EVENTBRIDGE,
    TRIGGER_SQS,
    cancel_metric,
)
from runstop.settings import settings
from runstop.store import RunStore, run_store, translate_errors

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

logger = Logger(child=True)

MALFORMED = "malformed"
"""What a trigger answers for input that can never be a cancel (it is dead-lettered)."""


class DeadLetterQueue:
    """Where a trigger parks input that can never succeed, with the reason it was refused."""

    def __init__(self, client: SQSClient, url: str) -> None:
        self.client = client
        self.url = url

    def send(self, body: str, *, error: str, trigger: str, origin_id: str) -> None:
        """Raises StoreUnavailable when SQS does not answer: the caller must then retry."""
        with translate_errors():
            self.client.send_message(
                QueueUrl=self.url,
                MessageBody=body or "<empty>",
                MessageAttributes={
                    "runstop_error": {"DataType": "String", "StringValue": error or "invalid"},
                    "runstop_trigger": {"DataType": "String", "StringValue": trigger},
                    "runstop_origin_id": {"DataType": "String", "StringValue": origin_id or "unknown"},
                },
            )


@cache
def dead_letter_queue() -> DeadLetterQueue:
    """The function's own dead-letter queue (DEAD_LETTER_QUEUE_URL), made on first use."""
    import boto3

    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=1, read_timeout=3)
    client: SQSClient = boto3.session.Session().client("sqs", config=config)
    return DeadLetterQueue(client, settings().require("dead_letter_queue_url"))


def reset_caches() -> None:
    dead_letter_queue.cache_clear()


def record_decision(
    metrics: Metrics, decision: CancelDecision, *, tenant_id: str, trigger: str, origin_id: str
) -> None:
    """A final answer: one metric per outcome and one structured log line, never a retry."""
    metrics.add_metric(name=cancel_metric(decision.outcome.value), unit=MetricUnit.Count, value=1)
    logger.info(
        "cancel decided",
        trigger=trigger,
        origin_id=origin_id,
        tenant_id=tenant_id,
        run_id=decision.run_id,
        outcome=decision.outcome.value,
        status_code=decision.status_code,
        run_status=decision.run_status,
    )


def _refuse(
    metrics: Metrics,
    dead_letters: DeadLetterQueue,
    body: str,
    error: ValidationError,
    *,
    trigger: str,
    origin_id: str,
) -> None:
    summary = validation_summary(error)
    dead_letters.send(body, error=summary, trigger=trigger, origin_id=origin_id)
    metrics.add_metric(name=cancel_metric(MALFORMED), unit=MetricUnit.Count, value=1)
    logger.warning("malformed cancel dead-lettered", trigger=trigger, origin_id=origin_id, error=summary)


def decide(
    metrics: Metrics, store: RunStore, message: CancelMessage, *, trigger: str, origin_id: str
) -> CancelDecision:
    """The step both triggers share: one cancel decision, keyed by the delivery's own id.

    Raises StoreUnavailable (counted) so the trigger's own retry takes the message again.
    """
    try:
        decision = cancel_run(
            store,
            message.tenant_id,
            message.run_id,
            reason=message.reason,
            idempotency_key=f"{trigger}:{origin_id}",
            source=trigger,
            force=message.force,
        )
    except StoreUnavailable:
        metrics.add_metric(name=CANCEL_STORE_UNAVAILABLE, unit=MetricUnit.Count, value=1)
        logger.warning("store unavailable; the delivery will be retried", trigger=trigger, origin_id=origin_id)
        raise
    record_decision(metrics, decision, tenant_id=message.tenant_id, trigger=trigger, origin_id=origin_id)
    return decision


class CancelQueueConsumer:
    """The record handler for the CancelRequests queue (Powertools BatchProcessor, SQS).

    Returns the outcome for a final answer; raises only for a transient failure, which the
    batch processor reports as that record's item failure.
    """

    trigger = TRIGGER_SQS

    def __init__(
        self,
        metrics: Metrics,
        store: Callable[[], RunStore] = run_store,
        dead_letters: Callable[[], DeadLetterQueue] = dead_letter_queue,
    ) -> None:
        self.metrics = metrics
        self.store = store
        self.dead_letters = dead_letters

    def __call__(self, record: SqsRecordModel) -> str:
        body = record.body if isinstance(record.body, str) else json.dumps(record.body)
        try:
            message = CancelMessage.model_validate_json(body)
        except ValidationError as error:
            _refuse(self.metrics, self.dead_letters(), body, error, trigger=self.trigger, origin_id=record.messageId)
            return MALFORMED
        decision = decide(self.metrics, self.store(), message, trigger=self.trigger, origin_id=record.messageId)
        return decision.outcome.value


def handle_cancel_event(
    event: Any,
    metrics: Metrics,
    store: Callable[[], RunStore] = run_store,
    dead_letters: Callable[[], DeadLetterQueue] = dead_letter_queue,
) -> dict[str, Any]:
    """Decide one Run Cancel Requested event; raises StoreUnavailable so Lambda retries it."""
    trigger = TRIGGER_EVENTBRIDGE
    origin_id = str(event.get("id") or "unknown") if isinstance(event, Mapping) else "unknown"
    try:
        parsed: CancelRequestedEvent = parse(event=event, model=CancelRequestedEvent)
    except ValidationError as error:
        _refuse(metrics, dead_letters(), json.dumps(event, default=str), error, trigger=trigger, origin_id=origin_id)
        return {"outcome": MALFORMED, "error": validation_summary(error)}
    message = parsed.detail
    decision = decide(metrics, store(), message, trigger=trigger, origin_id=parsed.id)
    return {
        "tenant_id": message.tenant_id,
        "run_id": message.run_id,
        "outcome": decision.outcome.value,
        "status_code": decision.status_code,
        "run_status": decision.run_status,
    }
