"""What follows a run's end, from the tables' streams: the pipes' own filters and templates (read
from template.yaml) pick the records; the functions behind the queues cascade, free keys and work
cancel jobs, reporting only transient failures for SQS to deliver again."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runstop import jobs, runs
from runstop.cancel import cancel_run
from runstop.links import Links
from runstop.status import RunStatus
from runstop.store import RunStore
from runstop_dev.handlers import LambdaContext, load_handler
from runstop_dev.pipes import emulate
from runstop_dev.streams import Message, sqs_event
from tests.helpers import load_event
from tests.unit.support import TENANT, seed_run, stored_run


def _record(event_name: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    def image(values: dict[str, Any]) -> dict[str, Any]:
        return {name: {"N": str(value)} if isinstance(value, int) else {"S": value} for name, value in values.items()}

    dynamodb: dict[str, Any] = {"Keys": {"tenant_id": {"S": TENANT}, "run_id": {"S": "r1"}}}
    if old is not None:
        dynamodb["OldImage"] = image({"tenant_id": TENANT, "run_id": "r1", **old})
    if new is not None:
        dynamodb["NewImage"] = image({"tenant_id": TENANT, "run_id": "r1", **new})
    return {"eventName": event_name, "eventSource": "aws:dynamodb", "dynamodb": dynamodb}


RUN_RECORDS = {
    "interrupted with children": (
        _record("MODIFY", {"status": "running"}, {"status": "interrupted", "children": 2}),
        1,
    ),
    "pending interrupted with children": (
        _record("MODIFY", {"status": "pending"}, {"status": "interrupted", "children": 1}),
        1,
    ),
    "finished holding a key": (
        _record("MODIFY", {"status": "running"}, {"status": "error", "concurrency_key": "k"}),
        1,
    ),
    "superseded holding a key": (
        _record("MODIFY", {"status": "pending"}, {"status": "interrupted", "concurrency_key": "k"}),
        1,
    ),
    "interrupted, no children, no key": (_record("MODIFY", {"status": "running"}, {"status": "interrupted"}), 0),
    "finished with children, no key": (
        _record("MODIFY", {"status": "running"}, {"status": "success", "children": 3}),
        0,
    ),
    "stop acknowledged": (_record("MODIFY", {"status": "interrupted"}, {"status": "interrupted", "children": 1}), 0),
    "a child joins": (_record("MODIFY", {"status": "running", "children": 1}, {"status": "running", "children": 2}), 0),
    "created": (_record("INSERT", None, {"status": "pending", "concurrency_key": "k"}), 0),
}


@pytest.mark.parametrize("case", sorted(RUN_RECORDS))
def test_the_run_ended_pipe_passes_exactly_the_runs_that_need_a_follow_up(case):
    # Given
    record, expected = RUN_RECORDS[case]
    # When
    messages = [event.detail for event in emulate("RunEndedPipe", [record])]
    # Then
    assert messages == [{"tenant_id": TENANT, "run_id": "r1"}] * expected


def _job_record(event_name: str, new: dict[str, str]) -> dict[str, Any]:
    keys = {"tenant_id": {"S": TENANT}, "job_id": {"S": "j1"}}
    image = {**keys, **{name: {"S": value} for name, value in new.items()}}
    return {"eventName": event_name, "eventSource": "aws:dynamodb", "dynamodb": {"Keys": keys, "NewImage": image}}


@pytest.mark.parametrize(
    ("record", "wakes"),
    [
        (_job_record("INSERT", {"state": "running", "epoch": "e0", "wake": "e0"}), True),
        (_job_record("MODIFY", {"state": "running", "epoch": "e1", "wake": "e1"}), True),
        (_job_record("MODIFY", {"state": "running", "epoch": "e1"}), False),
        (_job_record("MODIFY", {"state": "done", "epoch": "e1"}), False),
    ],
)
def test_the_cancel_jobs_pipe_wakes_a_worker_only_for_a_job_waiting_for_one(record, wakes):
    messages = [event.detail for event in emulate("CancelJobsPipe", [record])]
    expected = {"tenant_id": TENANT, "job_id": "j1", "epoch": record["dynamodb"]["NewImage"]["epoch"]["S"]}
    assert messages == ([expected] if wakes else [])


def _invoke(logical_id: str, *bodies: Any) -> dict[str, Any]:
    messages = [Message(body if isinstance(body, str) else json.dumps(body)) for body in bodies]
    result: dict[str, Any] = load_handler(logical_id)(sqs_event(messages, "q"), LambdaContext(timeout_ms=60_000))
    return result


def test_given_an_interrupted_parent_when_its_message_arrives_then_its_children_are_interrupted(store, timer):
    # Given
    seed_run(store, "parent", "running")
    for child in ("a", "b"):
        runs.create_run(store, TENANT, child, {}, links=Links(parent_run_id="parent"))
    cancel_run(store, TENANT, "parent", reason="stop all")
    # When
    result = _invoke("CascadeFunction", {"tenant_id": TENANT, "run_id": "parent"})
    # Then
    assert result == {"batchItemFailures": []}
    for child in ("a", "b"):
        cancel = stored_run(store.client, child)["cancel"]
        assert (cancel["source"], cancel["reason"], cancel["root_run_id"]) == ("cascade", "stop all", "parent")


def test_given_a_finished_key_holder_when_its_message_arrives_then_its_lock_is_deleted(aws, store):
    # Given
    runs.create_run(store, TENANT, "holder", {}, links=Links(concurrency_key="k"))
    runs.start_run(store, TENANT, "holder")
    runs.complete_run(store, TENANT, "holder", RunStatus.SUCCESS)
    key = {"tenant_id": {"S": TENANT}, "concurrency_key": {"S": "k"}}
    assert "Item" in aws.get_item(TableName="ConcurrencyKeysTable", Key=key)
    # When
    result = _invoke("CascadeFunction", {"tenant_id": TENANT, "run_id": "holder"})
    # Then
    assert result == {"batchItemFailures": []}
    assert "Item" not in aws.get_item(TableName="ConcurrencyKeysTable", Key=key)


def test_given_a_cascade_whose_children_never_show_when_its_message_arrives_then_only_it_is_retried(
    store, timer, monkeypatch
):
    # Given: a parent counting a child the index does not show (as if it lagged for good)
    seed_run(store, "parent", "running")
    seed_run(store, "other", "running")
    runs.create_run(store, TENANT, "child", {}, links=Links(parent_run_id="other"))
    cancel_run(store, TENANT, "other")
    store.client.update_item(
        TableName="RunsTable",
        Key={"tenant_id": {"S": TENANT}, "run_id": {"S": "parent"}},
        UpdateExpression="SET children = :n",
        ExpressionAttributeValues={":n": {"N": "1"}},
    )
    cancel_run(store, TENANT, "parent")
    # When
    event_bodies = [{"tenant_id": TENANT, "run_id": "parent"}, {"tenant_id": TENANT, "run_id": "other"}]
    messages = [Message(json.dumps(body)) for body in event_bodies]
    result = load_handler("CascadeFunction")(sqs_event(messages, "q"), LambdaContext())
    # Then
    assert result == {"batchItemFailures": [{"itemIdentifier": messages[0].message_id}]}
    assert stored_run(store.client, "child")["status"] == "interrupted"


def test_given_a_message_that_is_not_a_run_when_it_arrives_then_it_is_reported_not_raised(store):
    result = _invoke("CascadeFunction", "{not json", {"tenant_id": TENANT})
    assert len(result["batchItemFailures"]) == 2


def test_given_a_job_wake_when_it_arrives_then_the_job_is_worked_to_its_end(store: RunStore):
    # Given
    seed_run(store, "r", "running")
    job = jobs.start_job(jobs.job_table(), TENANT, jobs.JobFilter())
    stored = jobs.job_table().get(TENANT, job["job_id"])
    assert stored is not None
    # When
    result = _invoke("CancelJobFunction", {"tenant_id": TENANT, "job_id": job["job_id"], "epoch": stored["epoch"]})
    # Then
    assert result == {"batchItemFailures": []}
    assert jobs.get_job(jobs.job_table(), TENANT, job["job_id"])["state"] == "done"
    assert stored_run(store.client, "r")["status"] == "interrupted"


@pytest.mark.parametrize(
    ("logical_id", "sample"),
    [("CascadeFunction", "sqs-run-ended.json"), ("CancelJobFunction", "sqs-cancel-job-wake.json")],
)
def test_the_sample_queue_events_are_handled_without_failures(store, logical_id, sample):
    result = load_handler(logical_id)(load_event(sample), LambdaContext())
    assert result == {"batchItemFailures": []}
