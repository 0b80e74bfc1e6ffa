"""The worker's stop acknowledgement (POST /runs/{run_id}/stopped) and cancel ?wait=N."""

from __future__ import annotations

from typing import Any

import pytest

from runstop import runs
from runstop_dev.handlers import LambdaContext
from tests.helpers import api_event, body_of
from tests.unit.conftest import FakeTimer, throttled
from tests.unit.support import OTHER_TENANT, TENANT, assert_cancel_accepted, assert_problem, seed_run, stored


def _stopped(runs_handler: Any, run_id: str, tenant: str = TENANT) -> dict[str, Any]:
    return runs_handler(api_event("POST", f"/runs/{run_id}/stopped", tenant=tenant))


def _cancel(cancel_handler: Any, run_id: str, query: str = "", context: Any = None) -> dict[str, Any]:
    return cancel_handler(api_event("POST", f"/runs/{run_id}/cancel", tenant=TENANT, query=query), context)


def _timed_cancel(cancel_handler: Any, timer: FakeTimer, run_id: str, query: str, timeout_ms: int = 10_000):
    """The cancel's answer and how long it took on the fake timer (the invocation's clock too)."""
    context = LambdaContext(timeout_ms=timeout_ms, clock=timer.monotonic)
    start = timer.now
    response = _cancel(cancel_handler, run_id, query, context)
    return response, timer.elapsed_since(start)


def _acknowledge_on_first_read(store: Any, run_id: str) -> list[str]:
    """The worker acknowledges while the cancel waits: just before the wait's first read."""
    reads: list[str] = []

    def acknowledge(**_: Any) -> None:
        reads.append(run_id)
        if len(reads) == 1:
            runs.acknowledge_stop(store, TENANT, run_id)

    store.client.meta.events.register("before-call.dynamodb.GetItem", acknowledge)
    return reads


# POST /runs/{run_id}/stopped


def test_given_an_interrupted_run_when_the_worker_acknowledges_then_stopped_at_is_recorded(runs_handler, store, aws):
    # Given
    seed_run(store, "r1", "interrupted")
    before = stored(aws, "r1")
    # When
    response = _stopped(runs_handler, "r1")
    # Then
    assert response["statusCode"] == 200, body_of(response)
    run = body_of(response)
    assert run["status"] == "interrupted"
    assert run["stopped_at"] == run["updated_at"]
    assert run["version"] == before["version"] + 1
    assert stored(aws, "r1")["stopped_at"] == run["stopped_at"]


def test_given_an_acknowledged_run_when_acknowledged_again_then_the_same_answer_and_no_change(runs_handler, store, aws):
    # Given
    seed_run(store, "r1", "interrupted")
    first = _stopped(runs_handler, "r1")
    # When
    again = _stopped(runs_handler, "r1")
    # Then
    assert again["statusCode"] == 200
    assert body_of(again) == body_of(first)
    assert stored(aws, "r1")["version"] == body_of(first)["version"]


@pytest.mark.parametrize("status", ["pending", "running", "success", "error", "timeout"])
def test_given_a_run_that_is_not_interrupted_when_acknowledged_then_409_and_unchanged(runs_handler, store, aws, status):
    # Given
    seed_run(store, "r1", status)
    before = stored(aws, "r1")
    # When
    response = _stopped(runs_handler, "r1")
    # Then
    problem = assert_problem(response, 409, "status-conflict")
    assert problem["run_status"] == status
    assert stored(aws, "r1") == before


def test_given_another_tenants_run_when_acknowledged_then_404_and_unchanged(runs_handler, store, aws):
    # Given
    seed_run(store, "r1", "interrupted", tenant=OTHER_TENANT)
    # When
    response = _stopped(runs_handler, "r1")
    # Then
    assert_problem(response, 404, "run-not-found")
    assert "stopped_at" not in stored(aws, "r1", tenant=OTHER_TENANT)


def test_given_a_bad_run_id_when_acknowledged_then_400(runs_handler, aws):
    # When
    response = _stopped(runs_handler, "-bad")
    # Then
    assert_problem(response, 400, "bad-request")


# POST /runs/{run_id}/cancel?wait=N


def test_given_no_wait_when_cancelled_then_the_answer_says_nothing_about_the_stop(cancel_handler, store):
    # Given
    seed_run(store, "r1", "running")
    # When
    body = body_of(_cancel(cancel_handler, "r1"))
    # Then
    assert "stop_acknowledged" not in body


def test_given_a_worker_that_acknowledges_when_cancelled_with_wait_then_true_well_before_n(
    cancel_handler, store, timer
):
    # Given a worker that acknowledges just before the wait's first read
    seed_run(store, "r1", "running")
    reads = _acknowledge_on_first_read(store, "r1")
    # When
    response, elapsed = _timed_cancel(cancel_handler, timer, "r1", "wait=5")
    # Then one short pause and one read found the acknowledgement
    assert_cancel_accepted(response, outcome="interrupted", stop_acknowledged=True)
    assert elapsed == pytest.approx(0.05)
    assert len(reads) == 1


def test_given_a_worker_that_never_acknowledges_when_cancelled_with_wait_then_false_after_n(
    cancel_handler, store, timer
):
    # Given
    seed_run(store, "r1", "running")
    # When
    response, elapsed = _timed_cancel(cancel_handler, timer, "r1", "wait=1")
    # Then the wait lasted exactly N seconds, with backoff between reads
    assert_cancel_accepted(response, outcome="interrupted", stop_acknowledged=False)
    assert elapsed == pytest.approx(1.0)
    assert timer.slept[:4] == pytest.approx([0.05, 0.1, 0.2, 0.4])


def test_given_little_time_left_in_the_invocation_when_waiting_then_the_answer_comes_before_the_timeout(
    cancel_handler, store, timer
):
    # Given: 1.5 s left, of which 1 s is kept to answer
    seed_run(store, "r1", "running")
    # When
    response, elapsed = _timed_cancel(cancel_handler, timer, "r1", "wait=20", timeout_ms=1500)
    # Then it waited only the 0.5 s it could spare
    assert_cancel_accepted(response, outcome="interrupted", stop_acknowledged=False)
    assert elapsed == pytest.approx(0.5)


def test_given_an_acknowledged_run_when_cancelled_with_wait_then_true_at_once(
    cancel_handler, runs_handler, store, timer
):
    # Given
    seed_run(store, "r1", "interrupted")
    _stopped(runs_handler, "r1")
    # When
    response, elapsed = _timed_cancel(cancel_handler, timer, "r1", "wait=20")
    # Then
    assert_cancel_accepted(response, outcome="already_interrupted", stop_acknowledged=True)
    assert elapsed == 0


@pytest.mark.parametrize(("status", "answer"), [("absent", 202), ("success", 409)])
def test_given_no_worker_to_wait_for_when_cancelled_with_wait_then_the_usual_answer_at_once(
    cancel_handler, store, timer, status, answer
):
    # Given
    seed_run(store, "r1", status)
    # When
    response, elapsed = _timed_cancel(cancel_handler, timer, "r1", "wait=20")
    # Then
    assert response["statusCode"] == answer
    assert elapsed == 0
    if answer == 202:
        assert_cancel_accepted(response, outcome="absent", stop_acknowledged=False)
    else:
        assert "stop_acknowledged" not in assert_problem(response, 409, "run-finished")


def test_given_wait_0_when_cancelled_then_the_answer_says_whether_the_stop_is_acknowledged_now(cancel_handler, store):
    # Given
    seed_run(store, "r1", "running")
    # When
    response = _cancel(cancel_handler, "r1", "wait=0")
    # Then
    assert_cancel_accepted(response, outcome="interrupted", stop_acknowledged=False)


@pytest.mark.parametrize("query", ["wait=21", "wait=-1", "wait=1.5", "wait=", "wait=soon", "wait=1&wait=2", "wait=007"])
def test_given_a_bad_wait_when_cancelled_then_400_and_the_run_is_not_cancelled(cancel_handler, store, aws, query):
    # Given
    seed_run(store, "r1", "running")
    # When
    response = _cancel(cancel_handler, "r1", query)
    # Then
    assert_problem(response, 400, "bad-request")
    assert stored(aws, "r1")["status"] == "running"


def test_given_reads_fail_while_waiting_when_cancelled_then_202_with_false_not_503(
    cancel_handler, store, faults, timer
):
    # Given
    seed_run(store, "r1", "running")
    faults.inject("GetItem", throttled)
    # When
    response, elapsed = _timed_cancel(cancel_handler, timer, "r1", "wait=5")
    # Then the first failed read ends the wait
    assert_cancel_accepted(response, outcome="interrupted", stop_acknowledged=False)
    assert elapsed == pytest.approx(0.05)
