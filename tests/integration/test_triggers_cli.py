"""`python -m runstop_dev invoke` and `sweep` against DynamoDB Local, as a developer runs them
next to `make run` (here: the session's DynamoDB Local)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runstop import clock
from runstop.status import RunStatus
from runstop_dev.invoke import invoke, sweep_once
from runstop_dev.seed import put_runs, run_item
from tests.helpers import events_dir, load_event
from tests.integration.support import running_run

pytestmark = pytest.mark.integration


def test_given_the_sqs_sample_when_invoked_then_its_runs_stop_and_the_malformed_messages_are_printed(
    stack, store, tenant, tmp_path
):
    # Given: the sample batch, aimed at two runs of this test's own tenant
    run_ids = [running_run(store, tenant)[0] for _ in range(2)]
    event = load_event("sqs-cancel-requests.json")
    for record, run_id in zip(event["Records"][:2], run_ids, strict=True):
        record["body"] = json.dumps({**json.loads(record["body"]), "tenant_id": tenant, "run_id": run_id})
    sample = tmp_path / "batch.json"
    sample.write_text(json.dumps(event))
    # When
    report = invoke("CancelQueueFunction", sample, stack.endpoint)
    # Then
    assert report["result"] == {"batchItemFailures": []}
    assert [m["body"] for m in report["dead_lettered"]["CancelRequestsDLQ"]] == [
        r["body"] for r in event["Records"][2:]
    ]
    for run_id in run_ids:
        run = store.get(tenant, run_id)
        assert run is not None
        assert (run["status"], run["cancel"]["source"]) == ("interrupted", "sqs")


def test_given_the_stream_sample_when_the_pipe_is_invoked_then_it_prints_the_two_notifications(stack):
    report = invoke("InterruptedPipe", events_dir() / "dynamodb-stream-interrupted.json", stack.endpoint)
    assert [(e["DetailType"], e["Detail"]["run_id"]) for e in report["events"]] == [
        ("Run Interrupted", "run-1"),
        ("Run Interrupted", "run-2"),
    ]


def test_given_a_run_silent_since_2019_when_swept_from_the_command_line_then_it_is_stopped_and_printed(
    stack, store, tenant, capsys
):
    # Given: a run silent since 2019; the timeout is chosen so that only 2019 is stale
    # (the session's table holds other tests' runs, which this sweep must not touch)
    silent_since = datetime(2019, 1, 1, tzinfo=UTC)
    put_runs(store.client, store.table_name, [run_item(tenant, "silent", RunStatus.RUNNING, silent_since)])
    timeout = (clock.now() - datetime(2019, 6, 1, tzinfo=UTC)).total_seconds()
    # When
    summary = sweep_once(stack.endpoint, heartbeat_timeout=timeout, pending_timeout=timeout)
    # Then
    assert summary["interrupted_by_reason"] == {"heartbeat_timeout": 1}
    assert f"stopped {tenant}/silent (heartbeat_timeout)" in capsys.readouterr().err  # stdout: the summary only
    stopped = store.get(tenant, "silent")
    assert stopped is not None
    assert stopped["status"] == "interrupted"


def test_every_trigger_sample_is_valid_json_with_what_its_source_sends():
    samples = {path.name: json.loads(path.read_text()) for path in Path(events_dir()).glob("*.json")}
    assert {r["eventSource"] for r in samples["sqs-cancel-requests.json"]["Records"]} == {"aws:sqs"}
    assert samples["eventbridge-cancel-requested.json"]["detail-type"] == "Run Cancel Requested"
    assert samples["schedule-sweep.json"]["detail-type"] == "Scheduled Event"
    assert {r["eventSource"] for r in samples["dynamodb-stream-interrupted.json"]["Records"]} == {"aws:dynamodb"}
