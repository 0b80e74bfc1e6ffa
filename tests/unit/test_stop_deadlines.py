"""From "cancel recorded" to "work stopped": stop grace and deadline, force, pending runs stopped
at once, what the worker is told, overdue marking by the sweeper, and the stop listings."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from runstop import runs
from runstop.cancel import CancelOutcome, cancel_run
from runstop.clock import epoch_us, iso
from runstop.status import StopPhase
from runstop.sweeper import SweepPolicy, mark_overdue, sweep
from runstop_dev.pipes import emulate
from tests.helpers import api_event, body_of
from tests.unit.support import T0, TENANT, assert_problem, stored

POLICY = SweepPolicy(heartbeat_timeout=timedelta(days=1), pending_timeout=timedelta(days=1))


def _create(runs_handler: Any, run_id: str, **fields: Any) -> dict[str, Any]:
    return runs_handler(api_event("POST", "/runs", {"run_id": run_id, **fields}, tenant=TENANT))


def _running(store: Any, run_id: str, grace: int | None = None) -> None:
    runs.create_run(store, TENANT, run_id, {}, stop_grace_seconds=grace)
    runs.start_run(store, TENANT, run_id, "worker-1")


# Grace and deadline


def test_given_no_grace_when_created_then_the_stacks_default_applies(runs_handler, clock):
    assert body_of(_create(runs_handler, "g1"))["stop_grace_seconds"] == 60


@pytest.mark.parametrize("grace", [0, 3601, 1.5, "60", True])
def test_given_a_grace_out_of_range_when_created_then_422(runs_handler, clock, grace):
    assert_problem(_create(runs_handler, "g1", stop_grace_seconds=grace), 422)


def test_given_a_running_run_when_cancelled_then_the_deadline_is_requested_at_plus_its_grace(store, clock):
    _running(store, "d1", grace=90)
    decision = cancel_run(store, TENANT, "d1", at=T0)
    assert decision.run is not None
    assert decision.run["stop_deadline"] == iso(T0 + timedelta(seconds=90))
    assert decision.run.get("stopped_at") is None


def test_given_force_when_cancelled_then_the_deadline_is_requested_at(store, clock):
    _running(store, "d1", grace=90)
    decision = cancel_run(store, TENANT, "d1", at=T0, force=True)
    assert decision.run is not None
    assert decision.run["stop_deadline"] == iso(T0)
    assert decision.run["cancel"]["force"] is True


def test_given_a_pending_run_when_cancelled_then_it_is_stopped_at_once_and_never_stopping(store, aws, clock):
    runs.create_run(store, TENANT, "p1", {})
    decision = cancel_run(store, TENANT, "p1", at=T0)
    item = stored(aws, "p1")
    assert decision.outcome is CancelOutcome.INTERRUPTED
    assert item["stopped_at"] == item["ended_at"]
    assert "stop_due" not in item
    assert "stopping_pk" not in item
    assert item["tenant_stop"] == f"{TENANT}#acknowledged"


def test_given_a_pending_run_when_cancelled_with_wait_then_acknowledged_at_once(cancel_handler, store, clock, timer):
    runs.create_run(store, TENANT, "p1", {})
    response = cancel_handler(api_event("POST", "/runs/p1/cancel", tenant=TENANT, query="wait=20"))
    assert body_of(response)["stop_acknowledged"] is True
    assert timer.slept == []


def test_the_cancel_answer_carries_the_deadline(cancel_handler, store, clock):
    _running(store, "d1", grace=30)
    body = body_of(cancel_handler(api_event("POST", "/runs/d1/cancel", {"force": True}, tenant=TENANT)))
    assert body["stop_deadline"] == body["cancel"]["requested_at"]


def test_given_force_in_bulk_then_every_run_gets_no_grace(runs_handler, store, aws, clock):
    _running(store, "b1", grace=30)
    _running(store, "b2", grace=30)
    runs_handler(api_event("POST", "/runs/cancel", {"run_ids": ["b1", "b2"], "force": True}, tenant=TENANT))
    for run_id in ("b1", "b2"):
        item = stored(aws, run_id)
        assert item["stop_due"] == epoch_us(T0)


# What the worker is told


@pytest.mark.parametrize("path", ["heartbeat", "start", "complete"])
def test_given_an_interrupted_run_then_409_carries_why_and_by_when(runs_handler, store, clock, path):
    _running(store, "w1", grace=45)
    cancel_run(store, TENANT, "w1", reason="user", at=T0)
    body = {"status": "success"} if path == "complete" else None
    problem = assert_problem(runs_handler(api_event("POST", f"/runs/w1/{path}", body, tenant=TENANT)), 409)
    assert problem["run_status"] == "interrupted"
    assert problem["cancel"] == {"reason": "user", "source": "api", "requested_at": iso(T0)}
    assert problem["stop_deadline"] == iso(T0 + timedelta(seconds=45))


# Overdue runs


def test_given_a_run_past_its_deadline_when_swept_then_it_is_marked_once(store, aws, clock):
    _running(store, "o1", grace=10)
    cancel_run(store, TENANT, "o1", reason="user", at=T0)
    first = sweep(store, POLICY, now=T0 + timedelta(seconds=11))
    second = sweep(store, POLICY, now=T0 + timedelta(seconds=12))
    assert [(r.run_id, r.worker_id, r.reason, r.source) for r in first.overdue] == [("o1", "worker-1", "user", "api")]
    assert second.overdue == []
    item = stored(aws, "o1")
    assert item["stop_overdue_at"]
    assert item["tenant_stop"] == f"{TENANT}#overdue"
    assert "stopping_pk" not in item


def test_given_a_run_before_its_deadline_when_swept_then_it_is_left_alone(store, aws, clock):
    _running(store, "o1", grace=10)
    cancel_run(store, TENANT, "o1", at=T0)
    assert sweep(store, POLICY, now=T0 + timedelta(seconds=10)).overdue == []  # not yet: "before", not "at"
    assert "stop_overdue_at" not in stored(aws, "o1")


def test_given_an_acknowledged_run_when_marked_then_the_acknowledgement_stands(store, aws, clock):
    _running(store, "o1", grace=10)
    cancel_run(store, TENANT, "o1", at=T0)
    runs.acknowledge_stop(store, TENANT, "o1")
    # The sweeper read the index before the acknowledgement landed, and marks now:
    assert mark_overdue(store, TENANT, "o1", at=T0 + timedelta(seconds=11), stop_due_us=0) is None
    item = stored(aws, "o1")
    assert item["stopped_at"]
    assert "stop_overdue_at" not in item


def test_given_an_overdue_run_when_acknowledged_late_then_it_shows_both(store, aws, clock):
    _running(store, "o1", grace=10)
    cancel_run(store, TENANT, "o1", at=T0)
    sweep(store, POLICY, now=T0 + timedelta(seconds=11))
    run = runs.acknowledge_stop(store, TENANT, "o1")
    assert run["stopped_at"]
    assert run["stop_overdue_at"]
    assert stored(aws, "o1")["tenant_stop"] == f"{TENANT}#acknowledged"


def test_the_overdue_pipe_announces_the_marking_once_with_the_contract_fields(store, aws, clock):
    _running(store, "o1", grace=10)
    cancel_run(store, TENANT, "o1", reason="user", at=T0)
    before = stored(aws, "o1")
    sweep(store, POLICY, now=T0 + timedelta(seconds=11))
    after = stored(aws, "o1")
    runs.acknowledge_stop(store, TENANT, "o1")
    acknowledged = stored(aws, "o1")
    events = emulate("OverduePipe", [_record(before, after), _record(after, acknowledged)])
    assert [(e.detail_type, e.detail["run_id"], e.detail["worker_id"]) for e in events] == [
        ("Run Stop Overdue", "o1", "worker-1")
    ]
    assert events[0].detail["stop_deadline"] == iso(T0 + timedelta(seconds=10))
    assert events[0].detail["reason"] == "user"


def _record(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    from runstop.item_codec import serialize

    image = lambda item: {k: serialize(v) for k, v in item.items()}  # noqa: E731
    return {"eventName": "MODIFY", "dynamodb": {"OldImage": image(old), "NewImage": image(new)}}


# Listings


@pytest.mark.parametrize("phase", list(StopPhase))
def test_runs_can_be_listed_by_stop_phase(runs_handler, store, clock, phase):
    runs.create_run(store, TENANT, "never-started", {})
    cancel_run(store, TENANT, "never-started", at=T0)
    _running(store, "stopping", grace=10)
    cancel_run(store, TENANT, "stopping", at=T0)
    _running(store, "late", grace=1)
    cancel_run(store, TENANT, "late", at=T0)
    sweep(store, POLICY, now=T0 + timedelta(seconds=5))
    expected = {"pending": {"stopping"}, "overdue": {"late"}, "acknowledged": {"never-started"}}[phase.value]
    page = body_of(runs_handler(api_event("GET", "/runs", tenant=TENANT, query=f"stop={phase.value}")))
    assert {run["run_id"] for run in page["items"]} == expected


def test_stop_with_another_status_lists_nothing(runs_handler, store, clock):
    _running(store, "s1", grace=10)
    cancel_run(store, TENANT, "s1", at=T0)
    page = body_of(runs_handler(api_event("GET", "/runs", tenant=TENANT, query="stop=pending&status=running")))
    assert page == {"items": [], "next_cursor": None}
    page = body_of(runs_handler(api_event("GET", "/runs", tenant=TENANT, query="stop=pending&status=interrupted")))
    assert [run["run_id"] for run in page["items"]] == ["s1"]


@pytest.mark.parametrize("trigger", ["sqs", "eventbridge"])
def test_given_force_in_a_queued_or_event_cancel_then_no_grace(store, aws, clock, trigger):
    from aws_lambda_powertools import Metrics

    from runstop.messages import CancelMessage
    from runstop.triggers import decide

    _running(store, "q1", grace=30)
    message = CancelMessage(tenant_id=TENANT, run_id="q1", reason="ops", force=True)
    decision = decide(Metrics(), store, message, trigger=trigger, origin_id="m-1")
    assert decision.outcome is CancelOutcome.INTERRUPTED
    assert stored(aws, "q1")["stop_due"] == epoch_us(T0)
    assert stored(aws, "q1")["cancel"]["source"] == trigger


def test_an_integral_json_number_is_an_integer_grace(runs_handler, clock):
    assert body_of(_create(runs_handler, "g2", stop_grace_seconds=90.0))["stop_grace_seconds"] == 90
