"""Builders for the event-driven triggers' tests: SQS batches, EventBridge events, a local SQS poller."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from runstop_dev.template import resource

DEAD_LETTER_QUEUE_URL = "DEAD_LETTER_QUEUE_URL"

SQS_ARN = "arn:aws:sqs:us-east-1:123456789012:CancelRequestsQueue"


def sqs_record(body: str, message_id: str | None = None, receive_count: int = 1) -> dict[str, Any]:
    """One record as the SQS event source hands it to Lambda."""
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": f"handle-{uuid.uuid4()}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1795467600000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1795467600010",
        },
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": SQS_ARN,
        "awsRegion": "us-east-1",
    }


def cancel_body(tenant_id: str, run_id: str, reason: str | None = None) -> str:
    message: dict[str, Any] = {"tenant_id": tenant_id, "run_id": run_id}
    if reason is not None:
        message["reason"] = reason
    return json.dumps(message)


def sqs_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def cancel_requested(detail: Any, *, event_id: str | None = None, detail_type: str = "Run Cancel Requested") -> Any:
    """A Run Cancel Requested event as the EventBridge rule delivers it."""
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "orchestrator.example",
        "account": "123456789012",
        "time": "2026-11-23T21:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def make_queue(sqs: Any, logical_id: str) -> str:
    """The template's queue in moto, with its own attributes (redrive policy included)."""
    props = resource(logical_id)["Properties"]
    attributes: dict[str, str] = {}
    if "VisibilityTimeout" in props:
        attributes["VisibilityTimeout"] = str(props["VisibilityTimeout"])
    url: str = sqs.create_queue(QueueName=logical_id, Attributes=attributes)["QueueUrl"]
    return url


def use_dead_letter_queue(monkeypatch: Any, sqs: Any, logical_id: str) -> str:
    """Create the function's DLQ in moto and point DEAD_LETTER_QUEUE_URL at it."""
    from runstop import triggers
    from runstop.settings import settings

    url = make_queue(sqs, logical_id)
    monkeypatch.setenv(DEAD_LETTER_QUEUE_URL, url)
    settings.cache_clear()  # settings are read once per process
    triggers.reset_caches()
    return url


def messages_in(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message now visible in the queue, with its attributes (left in flight)."""
    found: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=300
        ).get("Messages", [])
        if not got:
            return found
        found.extend(got)


def error_of(message: dict[str, Any]) -> str:
    return str(message["MessageAttributes"]["runstop_error"]["StringValue"])


def poll_once(sqs: Any, queue_url: str, handler: Callable[[dict[str, Any]], dict[str, Any]]) -> list[str]:
    """What Lambda's SQS event source does once: receive a batch, invoke, delete all but the
    reported item failures (which become visible again at once here). Returns the ids received."""
    received = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=0
    ).get("Messages", [])
    if not received:
        return []
    records = [
        {
            **sqs_record(m["Body"], m["MessageId"], int(m["Attributes"]["ApproximateReceiveCount"])),
            "receiptHandle": m["ReceiptHandle"],
        }
        for m in received
    ]
    response = handler(sqs_event(*records))
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    for message in received:
        if message["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return [m["MessageId"] for m in received]


class Throttle:
    """Throttle chosen DynamoDB calls before they reach moto (before-call, so no write can
    happen behind the error, and botocore's retries are skipped: one call, one refusal)."""

    def __init__(self, client: Any, operation: str, run_ids: set[str] | None = None) -> None:
        self.run_ids = run_ids
        self.refused: list[str] = []
        client.meta.events.register_first(f"before-call.dynamodb.{operation}", self._maybe_refuse)

    def _maybe_refuse(self, params: dict[str, Any], **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        run_id = json.loads(params["body"]).get("Key", {}).get("run_id", {}).get("S", "")
        if self.run_ids is not None and run_id not in self.run_ids:
            return None
        self.refused.append(run_id)
        error = {"Code": "ProvisionedThroughputExceededException", "Message": "throttled (test)"}
        return AWSResponse("https://dynamodb.us-east-1.amazonaws.com/", 400, {}, None), {
            "Error": error,
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
