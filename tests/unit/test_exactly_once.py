"""Every write answers exactly once: a retry that finds its own write (the SDK's after a lost
answer, or the caller's with the same Idempotency-Key) gets what the first attempt would have,
identified by a token stored with the write, never by comparing values. Worker identity
(`worker_id`) makes start, heartbeat, complete and stopped safe to repeat."""

from __future__ import annotations

from typing import Any

import pytest

from runstop import runs
from runstop.cancel import CancelOutcome, cancel_run
from runstop.errors import RunAlreadyExists, TransitionConflict
from runstop.status import RunStatus
from runstop.store import RunStore
from tests.helpers import api_event, body_of
from tests.unit.support import T0, TENANT, assert_problem, seed_run, stored


class LostAnswers(RunStore):
    """What the SDK meets after a lost answer: the first attempt applied, and its retry (the same
    request, token included) meets that write."""

    def apply(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        super().apply(*args, **kwargs)
        return super().apply(*args, **kwargs)

    def put_new(self, item: Any) -> None:
        super().put_new(item)
        super().put_new(item)


@pytest.fixture
def lossy(store: RunStore) -> LostAnswers:
    return LostAnswers(store.client, store.table_name)


# Lost answers: the retry answers what the first attempt would have


def test_given_a_lost_answer_when_creating_then_the_retry_gets_the_run_not_409(store, lossy, clock):
    run = runs.create_run(lossy, TENANT, "c1", {"a": 1})
    assert (run["run_id"], run["status"], run["metadata"]) == ("c1", "pending", {"a": 1})


def test_given_another_request_created_the_id_when_creating_then_409(store, clock):
    runs.create_run(store, TENANT, "c1", {"a": 1})
    with pytest.raises(RunAlreadyExists):
        runs.create_run(store, TENANT, "c1", {"a": 1})  # same values, another request: not ours


def test_given_a_lost_answer_when_creating_with_a_key_then_the_retry_gets_the_run(store, lossy, clock):
    first = runs.create_run_for_key(lossy, TENANT, "key-1", None, {})
    again = runs.create_run_for_key(store, TENANT, "key-1", None, {})  # the caller's retry, same key
    assert first["run_id"] == again["run_id"]


def test_given_a_lost_answer_when_starting_then_the_retry_gets_the_running_run(store, lossy, clock):
    seed_run(store, "s1", "pending")
    run = runs.start_run(lossy, TENANT, "s1", "w-1")
    assert (run["status"], run["worker_id"]) == ("running", "w-1")


def test_given_a_lost_answer_when_starting_without_a_worker_id_then_the_generated_one_still_matches(
    store, lossy, clock
):
    seed_run(store, "s1", "pending")
    run = runs.start_run(lossy, TENANT, "s1")
    assert run["status"] == "running"
    assert run["worker_id"]


@pytest.mark.parametrize("status", [RunStatus.SUCCESS, RunStatus.ERROR, RunStatus.TIMEOUT])
def test_given_a_lost_answer_when_completing_then_the_retry_gets_the_finished_run(store, lossy, clock, status):
    seed_run(store, "f1", "running")
    run = runs.complete_run(lossy, TENANT, "f1", status)
    assert run["status"] == status


def test_given_a_lost_answer_when_acknowledging_the_stop_then_the_retry_gets_the_run(store, lossy, clock):
    seed_run(store, "a1", "interrupted")
    run = runs.acknowledge_stop(lossy, TENANT, "a1")
    assert run["stopped_at"]


def test_given_a_lost_answer_when_heartbeating_then_the_retry_applies_again(store, lossy, clock):
    seed_run(store, "h1", "running")
    assert runs.heartbeat_run(lossy, TENANT, "h1")["status"] == "running"


# Cancel identity is the request's token, not its values


def test_given_two_requests_with_the_same_values_at_the_same_instant_then_only_the_first_interrupted(store, clock):
    # Given a running run, When two distinct requests, identical in reason and timestamp, cancel it
    seed_run(store, "x1", "running")
    first = cancel_run(store, TENANT, "x1", reason="user", at=T0)
    second = cancel_run(store, TENANT, "x1", reason="user", at=T0)
    # Then only the first is told it interrupted the run
    assert (first.outcome, second.outcome) == (CancelOutcome.INTERRUPTED, CancelOutcome.ALREADY_INTERRUPTED)


def test_given_the_same_idempotency_key_when_cancelled_again_then_interrupted_again(store, clock):
    seed_run(store, "x1", "running")
    cancel_run(store, TENANT, "x1", idempotency_key="k")
    assert cancel_run(store, TENANT, "x1", idempotency_key="k").outcome is CancelOutcome.INTERRUPTED
    assert cancel_run(store, TENANT, "x1", idempotency_key="other").outcome is CancelOutcome.ALREADY_INTERRUPTED


def test_the_token_is_never_shown_to_clients(store, clock, aws, runs_handler):
    seed_run(store, "x1", "running")
    cancel_run(store, TENANT, "x1")
    assert stored(aws, "x1")["cancel_token"]
    body = body_of(runs_handler(api_event("GET", "/runs/x1", tenant=TENANT)))
    assert not any(name.endswith("_token") for name in body)


# Worker identity over HTTP


def _post(runs_handler: Any, path: str, body: Any = None) -> dict[str, Any]:
    return runs_handler(api_event("POST", path, body, tenant=TENANT))


def test_given_a_worker_id_when_starting_then_it_is_stored_and_the_same_worker_may_repeat(runs_handler, store, clock):
    seed_run(store, "w1", "pending")
    first = _post(runs_handler, "/runs/w1/start", {"worker_id": "worker-a"})
    again = _post(runs_handler, "/runs/w1/start", {"worker_id": "worker-a"})
    assert (first["statusCode"], again["statusCode"]) == (200, 200)
    assert body_of(again)["worker_id"] == "worker-a"
    assert body_of(again)["version"] == body_of(first)["version"]


def test_given_another_worker_when_starting_then_409_names_the_holder(runs_handler, store, clock):
    seed_run(store, "w1", "pending")
    _post(runs_handler, "/runs/w1/start", {"worker_id": "worker-a"})
    problem = assert_problem(_post(runs_handler, "/runs/w1/start", {"worker_id": "worker-b"}), 409, "status-conflict")
    assert (problem["run_status"], problem["worker_id"]) == ("running", "worker-a")


def test_given_no_body_when_starting_then_a_worker_id_is_generated(runs_handler, store, clock):
    seed_run(store, "w1", "pending")
    run = body_of(_post(runs_handler, "/runs/w1/start"))
    assert run["status"] == "running"
    assert run["worker_id"]


@pytest.mark.parametrize("path", ["heartbeat", "stopped"])
def test_given_another_worker_id_when_calling_then_409(runs_handler, store, clock, path):
    seed_run(store, "w1", "pending")
    _post(runs_handler, "/runs/w1/start", {"worker_id": "worker-a"})
    if path == "stopped":
        cancel_run(store, TENANT, "w1")
    problem = assert_problem(_post(runs_handler, f"/runs/w1/{path}", {"worker_id": "worker-b"}), 409)
    assert problem["worker_id"] == "worker-a"


def test_given_the_holder_when_heartbeating_then_200(runs_handler, store, clock):
    seed_run(store, "w1", "pending")
    _post(runs_handler, "/runs/w1/start", {"worker_id": "worker-a"})
    assert _post(runs_handler, "/runs/w1/heartbeat", {"worker_id": "worker-a"})["statusCode"] == 200


def test_given_a_completed_run_when_completed_again_with_its_status_then_200_unchanged(runs_handler, store, aws, clock):
    seed_run(store, "w1", "running")
    _post(runs_handler, "/runs/w1/complete", {"status": "success"})
    before = stored(aws, "w1")
    again = _post(runs_handler, "/runs/w1/complete", {"status": "success"})
    assert again["statusCode"] == 200
    assert stored(aws, "w1") == before


def test_given_a_completed_run_when_completed_with_another_status_then_409(runs_handler, store, clock):
    seed_run(store, "w1", "running")
    _post(runs_handler, "/runs/w1/complete", {"status": "success"})
    problem = assert_problem(_post(runs_handler, "/runs/w1/complete", {"status": "error"}), 409, "status-conflict")
    assert problem["run_status"] == "success"


@pytest.mark.parametrize("path", ["heartbeat", "complete", "start"])
def test_given_an_interrupted_run_when_the_worker_calls_then_409_says_why(runs_handler, store, clock, path):
    # Given a run cancelled with a reason
    seed_run(store, "w1", "running")
    cancel_run(store, TENANT, "w1", reason="user asked")
    # When its worker calls
    body = {"status": "success"} if path == "complete" else None
    problem = assert_problem(_post(runs_handler, f"/runs/w1/{path}", body), 409, "status-conflict")
    # Then it is told the run is interrupted, and why
    assert problem["run_status"] == "interrupted"
    assert problem["cancel"]["reason"] == "user asked"
    assert problem["cancel"]["source"] == "api"


def test_a_conflict_from_the_domain_carries_the_holder():
    conflict = TransitionConflict("r", "start", {"status": "running", "worker_id": "w", "metadata": {}})
    assert conflict.details == {"worker_id": "w"}
