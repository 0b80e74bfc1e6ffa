"""Every problem type the runs API answers becomes its typed exception; a 202 cancel never raises."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx
import pytest

from runstop_client import (
    InvalidRequest,
    RunConflict,
    RunNotFound,
    RunstopError,
    Unauthorized,
    Unavailable,
)
from tests.client.support import CANCEL, T0, FakeApi, ok, problem

DEADLINE = "2026-11-23T21:13:27.000000Z"

# (answer, exception, attributes the exception must carry)
PROBLEMS = [
    (problem(404, "run-not-found", run_id="r1"), RunNotFound, {"run_id": "r1", "type": "run-not-found"}),
    (problem(404, "no-route"), RunNotFound, {"type": "no-route"}),
    (
        problem(409, "run-finished", run_id="r1", run_status="success"),
        RunConflict,
        {"run_id": "r1", "run_status": "success", "cancel": None, "stop_deadline": None},
    ),
    (problem(409, "run-exists", run_id="r1"), RunConflict, {"type": "run-exists", "run_status": None}),
    (
        problem(409, "status-conflict", run_id="r1", run_status="interrupted", cancel=CANCEL, stop_deadline=DEADLINE),
        RunConflict,
        {"run_status": "interrupted", "stop_deadline": datetime(2026, 11, 23, 21, 13, 27, tzinfo=timezone.utc)},
    ),
    (
        problem(409, "status-conflict", run_id="r1", run_status="running", worker_id="w-other"),
        RunConflict,
        {"worker_id": "w-other"},
    ),
    (problem(400, "bad-request"), InvalidRequest, {"status": 400}),
    (problem(415, "unsupported-media-type"), InvalidRequest, {"status": 415}),
    (
        problem(422, "validation", errors=[{"loc": ["body", "reason"], "msg": "too long"}]),
        InvalidRequest,
        {"errors": [{"loc": ["body", "reason"], "msg": "too long"}]},
    ),
    (problem(422, "idempotency-key-reused"), InvalidRequest, {"type": "idempotency-key-reused"}),
    (problem(401, "unauthorized"), Unauthorized, {"status": 401}),
    (httpx.Response(403, json={"message": "Forbidden"}), Unauthorized, {"status": 403, "type": ""}),
    (problem(503, "store-unavailable", {"Retry-After": "1"}), Unavailable, {"type": "store-unavailable"}),
    (httpx.Response(502, text="Bad Gateway"), Unavailable, {"status": 502}),
]


@pytest.mark.parametrize(("answer", "kind", "attributes"), PROBLEMS, ids=lambda v: getattr(v, "__name__", None))
def test_given_a_problem_answer_then_the_typed_exception_carries_its_details(answer, kind, attributes):
    # Given
    api = FakeApi().on("POST /runs/r1/start", answer)
    # When
    with pytest.raises(kind) as raised:
        api.client(deadline=0.1).start("r1")
    # Then
    assert isinstance(raised.value, RunstopError)
    for name, value in attributes.items():
        assert getattr(raised.value, name) == value, name


def test_given_an_interrupted_conflict_then_its_cancel_says_who_why_when_and_by_when():
    # Given
    answer = problem(
        409, "status-conflict", run_id="r1", run_status="interrupted", cancel=CANCEL, stop_deadline=DEADLINE
    )
    api = FakeApi().on("POST /runs/r1/heartbeat", answer)
    # When
    with pytest.raises(RunConflict) as raised:
        api.client().heartbeat("r1")
    # Then
    cancel = raised.value.cancel
    assert cancel is not None
    assert (cancel.reason, cancel.source) == ("user pressed Stop", "api")
    assert cancel.requested_at == datetime(2026, 11, 23, 21, 12, 27, tzinfo=timezone.utc)
    assert cancel.stop_deadline == raised.value.stop_deadline


@pytest.mark.parametrize("outcome", ["interrupted", "already_interrupted", "absent"])
def test_given_a_202_cancel_then_a_result_with_its_outcome_never_an_exception(outcome):
    # Given
    body = {
        "run_id": "r1",
        "status": None if outcome == "absent" else "interrupted",
        "outcome": outcome,
        "cancel": None if outcome == "absent" else CANCEL,
        "version": None if outcome == "absent" else 3,
        "stop_deadline": None if outcome == "absent" else DEADLINE,
    }
    api = FakeApi().on("POST /runs/r1/cancel", ok(body, 202))
    # When
    result = api.client().cancel("r1")
    # Then
    assert result.outcome == outcome
    assert result.raw == body
    if outcome != "absent":
        assert result.cancel is not None
        assert result.cancel.stop_deadline == result.stop_deadline
        assert result.cancel.requested_at == datetime(2026, 11, 23, 21, 12, 27, tzinfo=timezone.utc)


def test_given_a_timestamp_with_z_then_it_parses_on_every_supported_python():
    from runstop_client.models import parse_time

    assert parse_time(T0) == datetime(2026, 11, 23, 21, 12, 27, tzinfo=timezone.utc)
    assert parse_time("2026-11-23T21:12:27+02:00") == datetime(2026, 11, 23, 19, 12, 27, tzinfo=timezone.utc)
    assert parse_time("not a time") is None
    assert parse_time(None) is None
