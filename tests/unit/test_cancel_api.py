"""POST /runs/{run_id}/cancel: every answer it gives, Idempotency-Key, and what each costs in DynamoDB calls."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import api_event, body_of
from tests.unit.support import (
    T0_ISO,
    T1,
    T1_ISO,
    TENANT,
    Handler,
    assert_cancel_accepted,
    assert_problem,
    seed_run,
    stored,
    stored_run,
)

RUN = "run-42"


def _cancel(cancel_handler: Handler, body: Any = None, key: str | None = None, run_id: str = RUN) -> dict[str, Any]:
    headers = {} if key is None else {"Idempotency-Key": key}
    return cancel_handler(api_event("POST", f"/runs/{run_id}/cancel", body, tenant=TENANT, headers=headers))


def test_given_a_running_run_when_cancelled_then_202_interrupted_with_the_cancel_record(
    aws, store, clock, cancel_handler
):
    # Given
    seed_run(store, RUN, "running")
    clock.moment = T1
    # When
    response = _cancel(cancel_handler, {"reason": "user pressed stop"})
    # Then
    record = {"reason": "user pressed stop", "requested_at": T1_ISO, "source": "api"}
    assert_cancel_accepted(response, run_id=RUN, status="interrupted", outcome="interrupted", cancel=record, version=3)
    assert stored_run(aws, RUN)["cancel"] == record


def test_given_no_body_when_cancelled_then_the_cancel_record_has_no_reason(aws, store, clock, cancel_handler):
    # Given
    seed_run(store, RUN, "pending")
    # When
    response = _cancel(cancel_handler)
    # Then
    assert_cancel_accepted(
        response, outcome="interrupted", cancel={"reason": None, "requested_at": T0_ISO, "source": "api"}
    )


def test_given_an_interrupted_run_when_cancelled_then_202_already_interrupted_with_the_first_record(
    aws, store, clock, cancel_handler
):
    # Given
    seed_run(store, RUN, "running")
    _cancel(cancel_handler, {"reason": "first"})
    before = stored(aws, RUN)
    # When
    clock.moment = T1
    response = _cancel(cancel_handler, {"reason": "second"})
    # Then
    assert_cancel_accepted(
        response,
        status="interrupted",
        outcome="already_interrupted",
        cancel={"reason": "first", "requested_at": T0_ISO, "source": "api"},
        version=3,
    )
    assert stored(aws, RUN) == before


def test_given_no_such_run_when_cancelled_then_202_absent_and_no_run_is_created(aws, store, cancel_handler):
    # When
    response = _cancel(cancel_handler, {"reason": "just in case"})
    # Then
    assert_cancel_accepted(response, run_id=RUN, status=None, outcome="absent", cancel=None, version=None)
    assert stored(aws, RUN) is None


@pytest.mark.parametrize("finished", ["success", "error", "timeout"])
def test_given_a_finished_run_when_cancelled_then_409_problem_with_its_status(aws, store, cancel_handler, finished):
    # Given
    seed_run(store, RUN, finished)
    before = stored(aws, RUN)
    # When
    response = _cancel(cancel_handler, {"reason": "too late"})
    # Then
    document = assert_problem(response, 409, "run-finished")
    assert set(document) == {"type", "title", "status", "detail", "run_id", "run_status"}
    assert (document["run_id"], document["run_status"]) == (RUN, finished)
    assert stored(aws, RUN) == before


class TestIdempotencyKey:
    """A client that retries with its Idempotency-Key learns it was the one that stopped the run."""

    def test_given_a_cancel_with_a_key_when_repeated_with_that_key_then_interrupted_again_and_nothing_changes(
        self, aws, store, clock, cancel_handler
    ):
        # Given
        seed_run(store, RUN, "running")
        first = _cancel(cancel_handler, {"reason": "deploy"}, key="k-123")
        before = stored(aws, RUN)
        # When the client retries (its first answer was lost)
        clock.moment = T1
        repeat = _cancel(cancel_handler, {"reason": "deploy"}, key="k-123")
        # Then
        record = {"reason": "deploy", "requested_at": T0_ISO, "source": "api", "idempotency_key": "k-123"}
        assert_cancel_accepted(first, outcome="interrupted", cancel=record, version=3)
        assert_cancel_accepted(repeat, outcome="interrupted", cancel=record, version=3)
        assert stored(aws, RUN) == before

    @pytest.mark.parametrize("second_key", ["k-other", None], ids=["another-key", "no-key"])
    def test_given_a_cancel_with_a_key_when_cancelled_without_that_key_then_already_interrupted(
        self, aws, store, cancel_handler, second_key
    ):
        # Given
        seed_run(store, RUN, "running")
        _cancel(cancel_handler, key="k-123")
        # When
        response = _cancel(cancel_handler, key=second_key)
        # Then
        document = assert_cancel_accepted(response, outcome="already_interrupted")
        assert document["cancel"]["idempotency_key"] == "k-123"

    def test_given_a_cancel_without_a_key_when_a_keyed_cancel_follows_then_already_interrupted(
        self, aws, store, cancel_handler
    ):
        # Given
        seed_run(store, RUN, "running")
        _cancel(cancel_handler)
        # When
        response = _cancel(cancel_handler, key="k-late")
        # Then
        assert_cancel_accepted(response, outcome="already_interrupted")

    def test_given_a_key_of_256_characters_when_cancelling_then_it_is_accepted_and_recorded(
        self, aws, store, cancel_handler
    ):
        # Given
        seed_run(store, RUN, "running")
        # When
        response = _cancel(cancel_handler, key="k" * 256)
        # Then
        assert_cancel_accepted(response, outcome="interrupted")
        assert stored_run(aws, RUN)["cancel"]["idempotency_key"] == "k" * 256

    @pytest.mark.parametrize("key", ["k" * 257, ""], ids=["257-chars", "empty"])
    def test_given_a_key_of_a_bad_length_when_cancelling_then_400_and_the_run_keeps_running(
        self, aws, store, cancel_handler, key
    ):
        # Given
        seed_run(store, RUN, "running")
        before = stored(aws, RUN)
        # When
        response = _cancel(cancel_handler, key=key)
        # Then
        assert "Idempotency-Key" in assert_problem(response, 400, "bad-request")["detail"]
        assert stored(aws, RUN) == before


class TestDynamoDBCalls:
    """Each outcome's cost: one UpdateItem decides, except for an absent run (then one consistent read)."""

    @pytest.mark.parametrize(
        ("seeded", "outcome", "calls"),
        [
            pytest.param("running", "interrupted", ["UpdateItem"], id="interrupted"),
            pytest.param("interrupted", "already_interrupted", ["UpdateItem"], id="already_interrupted"),
            pytest.param("success", "conflict", ["UpdateItem"], id="conflict"),
            pytest.param("absent", "absent", ["UpdateItem", "GetItem"], id="absent"),
        ],
    )
    def test_given_a_run_when_cancelled_then_the_outcome_costs_the_expected_requests(
        self, store, ddb_calls, cancel_handler, seeded, outcome, calls
    ):
        # Given
        seed_run(store, RUN, seeded)
        ddb_calls.clear()
        # When
        response = _cancel(cancel_handler, {"reason": "count"})
        # Then
        assert response["statusCode"] == (409 if outcome == "conflict" else 202)
        if outcome != "conflict":
            assert body_of(response)["outcome"] == outcome
        assert ddb_calls.operations == calls
        update = ddb_calls.calls[0][1]
        assert update["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"
        assert "ConditionExpression" in update
        if outcome == "absent":
            assert ddb_calls.calls[1][1]["ConsistentRead"] is True
