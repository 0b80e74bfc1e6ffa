"""The metrics the alarms watch are really emitted, by every trigger, with the dimensions the
template's alarms name (tests/test_template.py holds the template to runstop.metric_names; this
holds the code to it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from runstop.errors import StoreUnavailable
from runstop.metric_names import (
    CANCEL_CONFLICT,
    CANCEL_STORE_UNAVAILABLE,
    CANCEL_TRIGGERS,
    SERVICE_DIMENSION,
    STOP_LATENCY,
    STOP_OVERDUE,
    STOP_TRIGGERS,
    TRIGGER_API,
    TRIGGER_BULK,
    TRIGGER_DIMENSION,
    TRIGGER_EVENTBRIDGE,
    TRIGGER_SQS,
)
from runstop.sweeper import OverdueRun
from runstop_dev.handlers import LambdaContext, load_handler, load_module
from tests.helpers import api_event
from tests.unit.conftest import throttled
from tests.unit.support import TENANT, seed_run
from tests.unit.trigger_support import cancel_body, cancel_requested, sqs_event, sqs_record, use_dead_letter_queue

RUN = "r1"


def _emitted(out: str) -> list[tuple[str, dict[str, str]]]:
    """(metric name, dimensions) of every EMF line printed, as CloudWatch would index them."""
    found = []
    for line in out.splitlines():
        if '"_aws"' not in line:
            continue
        blob = json.loads(line)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dims = {name: blob[name] for name in dimension_set}
                found.extend((metric["Name"], dims) for metric in directive["Metrics"])
    return found


def _cancel_through(trigger: str, monkeypatch: pytest.MonkeyPatch) -> Callable[[], Any]:
    """One cancel of RUN, for TENANT, through the trigger's own Lambda handler."""
    context = LambdaContext()
    if trigger == TRIGGER_API:
        handler = load_handler("CancelRunFunction")
        return lambda: handler(api_event("POST", f"/runs/{RUN}/cancel", tenant=TENANT), context)
    if trigger == TRIGGER_BULK:
        handler = load_handler("RunsApiFunction")
        return lambda: handler(api_event("POST", "/runs/cancel", {"run_ids": [RUN]}, tenant=TENANT), context)
    sqs = boto3.client("sqs", region_name="us-east-1")
    if trigger == TRIGGER_SQS:
        use_dead_letter_queue(monkeypatch, sqs, "CancelRequestsDLQ")
        handler = load_handler("CancelQueueFunction")
        return lambda: handler(sqs_event(sqs_record(cancel_body(TENANT, RUN))), context)
    assert trigger == TRIGGER_EVENTBRIDGE
    use_dead_letter_queue(monkeypatch, sqs, "CancelEventsDLQ")
    handler = load_handler("CancelEventsFunction")
    return lambda: handler(cancel_requested({"tenant_id": TENANT, "run_id": RUN}), context)


@pytest.mark.parametrize("trigger", CANCEL_TRIGGERS)
def test_given_a_finished_run_when_any_trigger_cancels_it_then_it_counts_cancel_conflict_under_its_trigger(
    aws, store, capsys, monkeypatch, trigger
):
    # Given
    seed_run(store, RUN, "success")
    cancel = _cancel_through(trigger, monkeypatch)
    capsys.readouterr()
    # When
    cancel()
    # Then
    assert (CANCEL_CONFLICT, {SERVICE_DIMENSION: "runstop", TRIGGER_DIMENSION: trigger}) in _emitted(
        capsys.readouterr().out
    )


@pytest.mark.parametrize("trigger", CANCEL_TRIGGERS)
def test_given_dynamodb_throttling_when_any_trigger_cancels_then_it_counts_store_unavailable_under_its_trigger(
    aws, store, faults, capsys, monkeypatch, trigger
):
    # Given: every attempt of the cancel's update is throttled
    seed_run(store, RUN, "running")
    cancel = _cancel_through(trigger, monkeypatch)
    faults.inject("UpdateItem", throttled)
    capsys.readouterr()
    # When: the HTTP routes answer 503, the event trigger raises so that Lambda retries it
    if trigger == TRIGGER_EVENTBRIDGE:
        with pytest.raises(StoreUnavailable):
            cancel()
    else:
        cancel()
    # Then
    assert (CANCEL_STORE_UNAVAILABLE, {SERVICE_DIMENSION: "runstop", TRIGGER_DIMENSION: trigger}) in _emitted(
        capsys.readouterr().out
    )


@pytest.mark.parametrize("trigger", CANCEL_TRIGGERS)
def test_given_a_run_cancelled_by_a_trigger_when_its_worker_acknowledges_then_stop_latency_counts_under_that_trigger(
    aws, store, capsys, monkeypatch, trigger
):
    # Given: a running run, interrupted through the trigger
    seed_run(store, RUN, "running")
    _cancel_through(trigger, monkeypatch)()
    acknowledge = load_handler("RunsApiFunction")
    capsys.readouterr()
    # When
    response = acknowledge(api_event("POST", f"/runs/{RUN}/stopped", tenant=TENANT), LambdaContext())
    # Then
    assert response["statusCode"] == 200, response
    emitted = _emitted(capsys.readouterr().out)
    assert (STOP_LATENCY, {SERVICE_DIMENSION: "runstop", TRIGGER_DIMENSION: trigger}) in emitted


@pytest.mark.parametrize("trigger", STOP_TRIGGERS)
def test_given_an_overdue_run_when_the_sweeper_marks_it_then_stop_overdue_counts_under_the_trigger_that_cancelled_it(
    capsys, trigger
):
    # Given
    sweeper = load_module("SweeperFunction")
    run = OverdueRun(TENANT, RUN, worker_id="w1", reason="x", stop_deadline="2026-01-01T00:00:00Z", source=trigger)
    # When
    sweeper._overdue(run)
    # Then
    emitted = _emitted(capsys.readouterr().out)
    assert (STOP_OVERDUE, {SERVICE_DIMENSION: "runstop", TRIGGER_DIMENSION: trigger}) in emitted


def test_given_the_cancel_functions_hand_written_line_then_it_is_the_document_powertools_would_print(capsys):
    # Given Powertools Metrics counting one cancel, with the decision as metadata (the cancel
    # function did this before runstop.emf took its place on the warm path)
    from aws_lambda_powertools import Metrics

    from runstop import emf

    metadata = {"run_id": RUN, "tenant_id": TENANT, "outcome": "interrupted"}
    powertools = Metrics()
    powertools.add_dimension(name=TRIGGER_DIMENSION, value=TRIGGER_API)
    powertools.add_metric(name="Cancel.interrupted", unit="Count", value=1)
    for key, value in metadata.items():
        powertools.add_metadata(key=key, value=value)
    powertools.flush_metrics()
    printed = json.loads(capsys.readouterr().out)
    # When runstop.emf writes the same count
    written = json.loads(emf.metric_line("Cancel.interrupted", {TRIGGER_DIMENSION: TRIGGER_API}, metadata))
    # Then both are one document, but for the moment each was written
    assert abs(written["_aws"].pop("Timestamp") - printed["_aws"].pop("Timestamp")) < 60_000
    assert written == printed
    assert _emitted(json.dumps(written)) == [
        ("Cancel.interrupted", {TRIGGER_DIMENSION: TRIGGER_API, SERVICE_DIMENSION: "runstop"})
    ]
