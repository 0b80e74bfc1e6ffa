"""Stop notifications: the template's pipe turns each pending/running -> interrupted change in
the table's stream, and nothing else, into a "Run Interrupted" event.

The filter pattern and the input template are read from template.yaml and evaluated with an
EventBridge pattern matcher against the stream records in events/ (recorded from DynamoDB
Local, see tests/integration/test_triggers_notifications.py for live ones).
"""

from __future__ import annotations

import copy
from typing import Any

from runstop.messages import RUN_INTERRUPTED
from runstop_dev.pipes import emulate, filter_patterns, matches
from runstop_dev.template import resource
from tests.helpers import load_event

PIPE = "InterruptedPipe"


def records() -> list[dict[str, Any]]:
    return list(load_event("dynamodb-stream-interrupted.json")["Records"])


def transition(record: dict[str, Any]) -> tuple[str, str | None, str | None]:
    images = record["dynamodb"]
    return (
        record["eventName"],
        images.get("OldImage", {}).get("status", {}).get("S"),
        images.get("NewImage", {}).get("status", {}).get("S"),
    )


def test_the_sample_stream_holds_every_kind_of_change():
    # A guard on the sample itself: the filter test below means little without these.
    assert sorted(transition(r) for r in records()) == [
        ("INSERT", None, "pending"),
        ("MODIFY", "pending", "interrupted"),
        ("MODIFY", "running", "interrupted"),
        ("MODIFY", "running", "running"),
        ("MODIFY", "running", "success"),
        ("REMOVE", "interrupted", None),
    ]


def test_given_the_sample_stream_when_filtered_then_only_the_two_interruptions_pass():
    patterns = filter_patterns(PIPE)
    passed = [transition(r) for r in records() if matches(r, patterns)]
    assert passed == [("MODIFY", "running", "interrupted"), ("MODIFY", "pending", "interrupted")]


def test_given_a_later_change_to_an_interrupted_run_when_filtered_then_no_second_notification():
    # e.g. a metadata fix on an interrupted run: still interrupted, not a new interruption
    [interrupted, *_] = [r for r in records() if transition(r)[2] == "interrupted"]
    again = copy.deepcopy(interrupted)
    again["dynamodb"]["OldImage"] = copy.deepcopy(again["dynamodb"]["NewImage"])
    assert not matches(again, filter_patterns(PIPE))


def test_given_the_interruptions_when_transformed_then_each_event_carries_who_what_why_and_when():
    events = emulate(PIPE, records())
    assert [(e.source, e.detail_type) for e in events] == [("runstop", RUN_INTERRUPTED)] * 2
    by_run = {e.detail["run_id"]: e.detail for e in events}
    assert by_run == {
        "run-1": {
            "tenant_id": "local",
            "run_id": "run-1",
            "reason": "user pressed stop",
            "source": "api",
            "interrupted_at": "2026-11-23T21:37:51.879842Z",
        },
        "run-2": {
            "tenant_id": "local",
            "run_id": "run-2",
            "reason": "",
            "source": "sqs",
            "interrupted_at": "2026-11-23T21:37:52.048830Z",
        },
    }


def test_the_pipe_reads_the_table_stream_and_puts_on_the_configured_bus():
    props = resource(PIPE)["Properties"]
    bus_arn = {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}"}
    assert props["Source"] == {"Fn::GetAtt": ["RunsTable", "StreamArn"]}
    assert props["Target"] == bus_arn
    stream = resource("RunsTable")["Properties"]["StreamSpecification"]
    assert stream["StreamViewType"] == "NEW_AND_OLD_IMAGES"  # the filter needs both images
    source = props["SourceParameters"]["DynamoDBStreamParameters"]
    assert source["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["NotificationsDLQ", "Arn"]}}
    role = resource("InterruptedPipeRole")["Properties"]
    statements = role["Policies"][0]["PolicyDocument"]["Statement"]
    resources = {
        action: s["Resource"]
        for s in statements
        for action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert resources["events:PutEvents"] == bus_arn
    assert resources["dynamodb:GetRecords"] == props["Source"]
    assert resources["sqs:SendMessage"] == {"Fn::GetAtt": ["NotificationsDLQ", "Arn"]}
