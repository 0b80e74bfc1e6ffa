"""The CancelRequests queue: every message gets the one cancel decision, and only transient
failures are ever retried.

A decision (interrupted, already interrupted, absent, finished) is final and the message is
consumed; a malformed message is moved to the DLQ at once with the reason and consumed; a
throttled or timed-out store call is reported as that record's item failure, alone.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from runstop.triggers import CancelQueueConsumer
from runstop_dev.handlers import load_handler
from runstop_dev.template import resource
from tests.helpers import load_event
from tests.unit.support import TENANT, seed_run, stored
from tests.unit.trigger_support import (
    Throttle,
    cancel_body,
    error_of,
    make_queue,
    messages_in,
    poll_once,
    sqs_event,
    sqs_record,
    use_dead_letter_queue,
)

FUNCTION = "CancelQueueFunction"


@pytest.fixture
def sqs(aws: Any) -> Any:
    return boto3.client("sqs", region_name="us-east-1")


@pytest.fixture
def dlq(sqs: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    return use_dead_letter_queue(monkeypatch, sqs, "CancelRequestsDLQ")


@pytest.fixture
def handler(aws: Any, dlq: str, context: LambdaContext) -> Any:
    function = load_handler(FUNCTION)
    return lambda event: function(event, context)


def failures(response: dict[str, Any]) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def test_given_the_sample_batch_when_handled_then_good_messages_cancel_and_malformed_ones_are_dead_lettered(
    aws, store, sqs, dlq, handler
):
    # Given: the runs the sample's two good messages name, one running and one pending
    seed_run(store, "run-sqs-1", "running", tenant="local")
    seed_run(store, "run-sqs-2", "pending", tenant="local")
    event = load_event("sqs-cancel-requests.json")
    good, plain, bad_json, bad_id = (r["messageId"] for r in event["Records"])
    # When
    response = handler(event)
    # Then: nothing is retried
    assert failures(response) == []
    first, second = stored(aws, "run-sqs-1", "local"), stored(aws, "run-sqs-2", "local")
    assert first["status"] == second["status"] == "interrupted"
    assert first["cancel"] == {
        "reason": "nightly cleanup",
        "requested_at": first["ended_at"],
        "source": "sqs",
        "idempotency_key": f"sqs:{good}",
    }
    assert second["cancel"]["reason"] is None
    assert second["cancel"]["idempotency_key"] == f"sqs:{plain}"
    # and both malformed messages wait in the DLQ with their reason and original body
    parked = {m["MessageAttributes"]["runstop_origin_id"]["StringValue"]: m for m in messages_in(sqs, dlq)}
    assert set(parked) == {bad_json, bad_id}
    assert "Invalid JSON" in error_of(parked[bad_json])
    assert "run_id" in error_of(parked[bad_id])
    assert parked[bad_id]["Body"] == event["Records"][3]["body"]


MALFORMED = [
    pytest.param("not json", id="not-json"),
    pytest.param("[]", id="json-array"),
    pytest.param("", id="empty"),
    pytest.param(json.dumps({"run_id": "r1"}), id="no-tenant"),
    pytest.param(json.dumps({"tenant_id": TENANT}), id="no-run-id"),
    pytest.param(json.dumps({"tenant_id": TENANT, "run_id": "r1\n"}), id="run-id-with-newline"),
    pytest.param(json.dumps({"tenant_id": TENANT, "run_id": "-r1"}), id="run-id-bad-first-char"),
    pytest.param(json.dumps({"tenant_id": TENANT, "run_id": "r" * 129}), id="run-id-too-long"),
    pytest.param(json.dumps({"tenant_id": "a/b", "run_id": "r1"}), id="bad-tenant"),
    pytest.param(json.dumps({"tenant_id": TENANT, "run_id": 7}), id="run-id-not-a-string"),
    pytest.param(json.dumps({"tenant_id": TENANT, "run_id": "r1", "reason": "x" * 257}), id="reason-too-long"),
    pytest.param(json.dumps({"tenant_id": TENANT, "run_id": "r1", "forcefully": True}), id="unknown-field"),
]


@pytest.mark.parametrize("body", MALFORMED)
def test_given_a_malformed_message_when_handled_then_it_is_dead_lettered_once_and_not_retried(
    aws, store, sqs, dlq, handler, body
):
    # Given: a running run that a lenient parser might cancel anyway
    seed_run(store, "r1", "running")
    before = stored(aws, "r1")
    record = sqs_record(body)
    # When
    response = handler(sqs_event(record))
    # Then: consumed (no item failure), parked with its reason, the run untouched
    assert failures(response) == []
    [parked] = messages_in(sqs, dlq)
    assert parked["Body"] == (body or "<empty>")
    assert parked["MessageAttributes"]["runstop_origin_id"]["StringValue"] == record["messageId"]
    assert parked["MessageAttributes"]["runstop_trigger"]["StringValue"] == "sqs"
    assert error_of(parked)
    assert stored(aws, "r1") == before


def test_given_a_field_name_with_control_characters_when_dead_lettered_then_the_reason_is_printable(
    aws, sqs, dlq, handler
):
    # SQS refuses control characters in attributes; the unknown field's name is in the reason
    body = json.dumps({"tenant_id": TENANT, "run_id": "r1", "bad\u0001name\u200b": 1})
    response = handler(sqs_event(sqs_record(body)))
    assert failures(response) == []
    [parked] = messages_in(sqs, dlq)
    assert "bad?name?" in error_of(parked)
    assert error_of(parked).isprintable()


def test_given_a_good_a_malformed_and_a_throttled_record_when_handled_then_only_the_throttled_one_is_retried(
    aws, store, sqs, dlq, handler
):
    # Given
    seed_run(store, "good", "running")
    seed_run(store, "slow", "running")
    Throttle(store.client, "UpdateItem", {"slow"})
    good, bad, slow = (
        sqs_record(cancel_body(TENANT, "good", "cleanup")),
        sqs_record("{oops"),
        sqs_record(cancel_body(TENANT, "slow", "cleanup")),
    )
    # When
    response = handler(sqs_event(good, bad, slow))
    # Then: the throttled record alone is reported; the others are done
    assert failures(response) == [slow["messageId"]]
    assert stored(aws, "good")["status"] == "interrupted"
    assert stored(aws, "slow")["status"] == "running"
    assert [m["MessageAttributes"]["runstop_origin_id"]["StringValue"] for m in messages_in(sqs, dlq)] == [
        bad["messageId"]
    ]


def test_given_a_whole_batch_throttled_when_handled_then_every_record_is_reported_not_an_error(
    aws, store, sqs, dlq, handler
):
    # Given
    Throttle(store.client, "UpdateItem")
    records = [sqs_record(cancel_body(TENANT, f"r{i}")) for i in range(3)]
    # When
    response = handler(sqs_event(*records))
    # Then: SQS redelivers each of them; nothing was dead-lettered
    assert failures(response) == [r["messageId"] for r in records]
    assert messages_in(sqs, dlq) == []


@pytest.mark.parametrize(
    ("seeded", "outcome", "status"),
    [
        ("running", "interrupted", "interrupted"),
        ("interrupted", "already_interrupted", "interrupted"),
        ("absent", "absent", None),
        ("success", "conflict", "success"),
        ("error", "conflict", "error"),
        ("timeout", "conflict", "timeout"),
    ],
)
def test_given_a_run_in_any_state_when_a_message_names_it_then_the_decision_is_final(
    aws, store, sqs, dlq, handler, capsys, seeded, outcome, status
):
    # Given
    seed_run(store, "r1", seeded)
    # When
    response = handler(sqs_event(sqs_record(cancel_body(TENANT, "r1"))))
    # Then: never retried, never dead-lettered, and the run is what the decision says
    assert failures(response) == []
    assert messages_in(sqs, dlq) == []
    run = stored(aws, "r1")
    assert (run or {}).get("status") == status
    # and the outcome is counted as a metric, in the trigger's dimension
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [m[f"Cancel.{outcome}"] for m in metrics if f"Cancel.{outcome}" in m] == [[1.0]]
    assert all(m["trigger"] == "sqs" for m in metrics)


def test_given_a_message_that_interrupted_its_run_when_redelivered_then_it_answers_interrupted_again(
    aws, store, dlq, metrics_sink
):
    # Given: a message whose first delivery interrupted the run (its deletion was lost)
    seed_run(store, "r1", "running")
    consume = CancelQueueConsumer(metrics_sink)
    record = SqsRecordModel.model_validate(sqs_record(cancel_body(TENANT, "r1", "cleanup")))
    assert consume(record) == "interrupted"
    # When
    again = consume(record)
    other = consume(SqsRecordModel.model_validate(sqs_record(cancel_body(TENANT, "r1", "cleanup"))))
    # Then: the message id is the cancel's idempotency key; another message sees it done
    assert (again, other) == ("interrupted", "already_interrupted")


@pytest.fixture
def metrics_sink() -> Any:
    from aws_lambda_powertools import Metrics

    sink = Metrics(namespace="runstop-tests")
    yield sink
    sink.clear_metrics()


def test_given_the_template_queue_when_a_message_keeps_failing_then_it_reaches_the_dlq_after_max_receives(
    aws, store, sqs, dlq, handler
):
    # Given: the queue as the template defines it, its redrive policy pointing at the DLQ
    props = resource("CancelRequestsQueue")["Properties"]
    max_receives = int(props["RedrivePolicy"]["maxReceiveCount"])
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = make_queue(sqs, "CancelRequestsQueue")
    sqs.set_queue_attributes(
        QueueUrl=queue,
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives})},
    )
    seed_run(store, "ok", "running")
    seed_run(store, "slow", "running")
    throttle = Throttle(store.client, "UpdateItem", {"slow"})
    sqs.send_message(QueueUrl=queue, MessageBody=cancel_body(TENANT, "slow"))
    sqs.send_message(QueueUrl=queue, MessageBody=cancel_body(TENANT, "ok"))
    # When: the event source polls until the queue is empty
    polls = 0
    while poll_once(sqs, queue, handler):
        polls += 1
        assert polls <= max_receives + 1, "the failing message was never redriven"
    # Then: the good message was consumed on the first poll; the failing one was tried
    # maxReceiveCount times, then moved to the DLQ by SQS itself
    assert stored(aws, "ok")["status"] == "interrupted"
    assert stored(aws, "slow")["status"] == "running"
    assert throttle.refused == ["slow"] * max_receives
    [parked] = messages_in(sqs, dlq)
    assert json.loads(parked["Body"])["run_id"] == "slow"


def test_given_the_dlq_is_unreachable_when_a_malformed_message_arrives_then_it_is_retried_not_lost(
    aws, store, sqs, handler, monkeypatch
):
    # Given: a DLQ URL that does not exist
    from runstop import triggers

    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/missing")
    triggers.reset_caches()
    record = sqs_record("not json")
    # When
    response = handler(sqs_event(record))
    # Then: it stays on the queue (and reaches the DLQ by redrive if this persists)
    assert failures(response) == [record["messageId"]]


def test_the_event_source_reports_item_failures_and_the_queue_outlives_the_function_timeout():
    function = resource(FUNCTION)["Properties"]
    [source] = [e for e in function["Events"].values() if e["Type"] == "SQS"]
    assert source["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["Properties"]["Queue"] == {"Fn::GetAtt": ["CancelRequestsQueue", "Arn"]}
    queue = resource("CancelRequestsQueue")["Properties"]
    timeout = float(function.get("Timeout", 10))
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert queue["SqsManagedSseEnabled"] is True
    assert function["Environment"]["Variables"]["DEAD_LETTER_QUEUE_URL"] == {"Ref": "CancelRequestsDLQ"}
