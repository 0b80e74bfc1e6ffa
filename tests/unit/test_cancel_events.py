"""Run Cancel Requested events: the one cancel decision, final answers, and a DLQ for the rest.

EventBridge invokes the function asynchronously: a raised error makes Lambda retry (then the
on-failure destination), so only transient store failures raise. A malformed event is
dead-lettered at once and answered, never retried.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from runstop.errors import StoreUnavailable
from runstop.messages import CANCEL_REQUESTED, RUN_INTERRUPTED
from runstop_dev.handlers import load_handler
from runstop_dev.pipes import matches
from runstop_dev.template import resource
from tests.helpers import load_event
from tests.unit.support import TENANT, seed_run, stored
from tests.unit.trigger_support import Throttle, cancel_requested, error_of, messages_in, use_dead_letter_queue

FUNCTION = "CancelEventsFunction"


@pytest.fixture
def sqs(aws: Any) -> Any:
    return boto3.client("sqs", region_name="us-east-1")


@pytest.fixture
def dlq(sqs: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    return use_dead_letter_queue(monkeypatch, sqs, "CancelEventsDLQ")


@pytest.fixture
def handler(aws: Any, dlq: str, context: LambdaContext) -> Any:
    function = load_handler(FUNCTION)
    return lambda event: function(event, context)


def test_given_the_sample_event_when_handled_then_the_run_is_interrupted_by_that_event(aws, store, handler):
    # Given
    seed_run(store, "run-eb-1", "running", tenant="local")
    event = load_event("eventbridge-cancel-requested.json")
    # When
    result = handler(event)
    # Then
    assert result == {
        "tenant_id": "local",
        "run_id": "run-eb-1",
        "outcome": "interrupted",
        "status_code": 202,
        "run_status": "interrupted",
    }
    run = stored(aws, "run-eb-1", "local")
    assert run["status"] == "interrupted"
    assert run["cancel"]["source"] == "eventbridge"
    assert run["cancel"]["reason"] == "upstream job cancelled"
    assert run["cancel"]["idempotency_key"] == f"eventbridge:{event['id']}"


@pytest.mark.parametrize(
    ("seeded", "outcome", "status_code", "final"),
    [
        ("pending", "interrupted", 202, "interrupted"),
        ("interrupted", "already_interrupted", 202, "interrupted"),
        ("absent", "absent", 202, None),
        ("success", "conflict", 409, "success"),
        ("timeout", "conflict", 409, "timeout"),
    ],
)
def test_given_a_run_in_any_state_when_an_event_names_it_then_the_answer_is_final_and_nothing_is_parked(
    aws, store, sqs, dlq, handler, seeded, outcome, status_code, final
):
    # Given
    seed_run(store, "r1", seeded)
    # When
    result = handler(cancel_requested({"tenant_id": TENANT, "run_id": "r1", "reason": "upstream"}))
    # Then: returned normally (no Lambda retry), nothing in the DLQ
    assert (result["outcome"], result["status_code"]) == (outcome, status_code)
    assert (stored(aws, "r1") or {}).get("status") == final
    assert messages_in(sqs, dlq) == []


def test_given_an_event_redelivered_when_it_had_interrupted_the_run_then_it_answers_interrupted_again(
    aws, store, handler
):
    # Given: EventBridge delivers at least once; the same event id may come twice
    seed_run(store, "r1", "running")
    event = cancel_requested({"tenant_id": TENANT, "run_id": "r1"})
    first = handler(event)
    # When
    second = handler(event)
    third = handler(cancel_requested({"tenant_id": TENANT, "run_id": "r1"}))
    # Then
    assert [first["outcome"], second["outcome"], third["outcome"]] == [
        "interrupted",
        "interrupted",
        "already_interrupted",
    ]


MALFORMED = [
    pytest.param(cancel_requested({"tenant": TENANT, "run_id": "r1"}), id="detail-wrong-field"),
    pytest.param(cancel_requested({"tenant_id": TENANT, "run_id": "r 1"}), id="detail-bad-run-id"),
    pytest.param(cancel_requested({"tenant_id": TENANT, "run_id": "r1", "reason": "x" * 300}), id="reason-too-long"),
    pytest.param(cancel_requested("tenant_id=acme"), id="detail-not-an-object"),
    pytest.param(cancel_requested({"tenant_id": TENANT, "run_id": "r1"}, detail_type="Run Started"), id="other-type"),
    pytest.param({"tenant_id": TENANT, "run_id": "r1"}, id="no-envelope"),
    pytest.param(["not", "an", "event"], id="not-an-object"),
]


@pytest.mark.parametrize("event", MALFORMED)
def test_given_a_malformed_event_when_handled_then_it_is_parked_with_its_reason_and_not_retried(
    aws, store, sqs, dlq, handler, event
):
    # Given
    seed_run(store, "r1", "running")
    before = stored(aws, "r1")
    # When: the handler returns (a raise would make Lambda retry an event that cannot succeed)
    result = handler(event)
    # Then
    assert result["outcome"] == "malformed"
    [parked] = messages_in(sqs, dlq)
    assert json.loads(parked["Body"]) == event
    assert parked["MessageAttributes"]["runstop_trigger"]["StringValue"] == "eventbridge"
    assert error_of(parked) == result["error"]
    assert stored(aws, "r1") == before


def test_given_the_malformed_sample_when_handled_then_the_dlq_says_what_is_wrong(aws, sqs, dlq, handler):
    result = handler(load_event("eventbridge-cancel-requested-malformed.json"))
    [parked] = messages_in(sqs, dlq)
    assert result["outcome"] == "malformed"
    assert "tenant_id" in error_of(parked)


@pytest.mark.parametrize("operation", ["UpdateItem", "GetItem"])
def test_given_the_store_throttles_when_an_event_arrives_then_the_handler_raises_so_lambda_retries_it(
    aws, store, sqs, dlq, handler, operation
):
    # Given: GetItem is only needed when the run is absent
    Throttle(store.client, operation)
    # When / Then
    with pytest.raises(StoreUnavailable):
        handler(cancel_requested({"tenant_id": TENANT, "run_id": "r1"}))
    assert messages_in(sqs, dlq) == []


def test_the_rule_takes_cancel_requests_and_never_its_own_stop_notifications():
    function = resource(FUNCTION)["Properties"]
    [rule] = [e["Properties"] for e in function["Events"].values() if e["Type"] == "EventBridgeRule"]
    pattern = rule["Pattern"]
    sample = load_event("eventbridge-cancel-requested.json")
    notification = {**sample, "detail-type": RUN_INTERRUPTED, "source": "runstop"}
    assert pattern["detail-type"] == [CANCEL_REQUESTED]
    assert matches(sample, [pattern])
    assert not matches(notification, [pattern])
    assert rule["EventBusName"] == {"Ref": "EventBusName"}


def test_failures_that_outlast_the_retries_end_in_the_same_dead_letter_queue_as_malformed_events():
    function = resource(FUNCTION)["Properties"]
    [rule] = [e["Properties"] for e in function["Events"].values() if e["Type"] == "EventBridgeRule"]
    dlq_arn = {"Fn::GetAtt": ["CancelEventsDLQ", "Arn"]}
    # EventBridge could not deliver: its own retries, then the DLQ
    assert rule["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert rule["DeadLetterConfig"] == {"Arn": dlq_arn}
    # Lambda ran it and it kept failing (transient errors raise): Lambda's retries, then on-failure
    invoke = function["EventInvokeConfig"]
    assert invoke["MaximumRetryAttempts"] > 0
    assert invoke["DestinationConfig"]["OnFailure"] == {"Type": "SQS", "Destination": dlq_arn}
    # malformed: the function parks it there itself
    assert function["Environment"]["Variables"]["DEAD_LETTER_QUEUE_URL"] == {"Ref": "CancelEventsDLQ"}
    # and EventBridge may write to that queue (only from this rule)
    policy = resource("CancelEventsDLQPolicy")["Properties"]["PolicyDocument"]["Statement"][0]
    assert policy["Principal"] == {"Service": "events.amazonaws.com"}
    assert policy["Condition"]["ArnEquals"]["aws:SourceArn"] == {
        "Fn::GetAtt": ["CancelEventsFunctionCancelRequested", "Arn"]
    }
