"""When DynamoDB throttles or cannot be reached, the answer is 503 + Retry-After, never a guess.

Faults are injected below the SDK (before-send), so botocore's standard retries really run
and the 503 comes only after the last attempt.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import api_event, body_of
from tests.unit.conftest import read_timeout, throttled, unreachable
from tests.unit.support import TENANT, assert_problem, seed_run, stored, stored_run

RUN = "r1"
MAX_ATTEMPTS = 3
"""The client's configured attempts (runstop.store.client_config: DYNAMODB_MAX_ATTEMPTS, default 3)."""

FAULTS = [
    pytest.param(throttled, id="throughput-exceeded"),
    pytest.param(unreachable, id="connection-error"),
    pytest.param(read_timeout, id="read-timeout"),
]


def _assert_store_unavailable(response: dict[str, Any]) -> None:
    assert_problem(response, 503, "store-unavailable")
    assert response["headers"]["Retry-After"] == "1"


@pytest.mark.parametrize(
    ("seeded", "fault"),
    [
        *[pytest.param("running", *f.values, id=f"running-{f.id}") for f in FAULTS],
        # Throttled with the run finished, a read decides instead (test_failure_answers.py).
        *[pytest.param("success", *f.values, id=f"success-{f.id}") for f in FAULTS if f.id != "throughput-exceeded"],
    ],
)
def test_given_the_update_fails_after_retries_when_cancelling_then_503_and_the_run_is_unchanged(
    aws, store, faults, cancel_handler, fault, seeded
):
    # Given
    seed_run(store, RUN, seeded)
    before = stored(aws, RUN)
    faults.inject("UpdateItem", fault)
    # When
    response = cancel_handler(api_event("POST", f"/runs/{RUN}/cancel", {"reason": "x"}, tenant=TENANT))
    # Then: neither a 202 nor a 409 was guessed, and the SDK used all its attempts first
    _assert_store_unavailable(response)
    assert faults.attempts["UpdateItem"] == MAX_ATTEMPTS
    assert stored(aws, RUN) == before


@pytest.mark.parametrize("fault", FAULTS)
def test_given_no_run_and_the_deciding_read_fails_when_cancelling_then_503_not_absent(
    aws, faults, cancel_handler, fault
):
    # Given: the update finds nothing, and the consistent read that must confirm it fails
    faults.inject("GetItem", fault)
    # When
    response = cancel_handler(api_event("POST", f"/runs/{RUN}/cancel", tenant=TENANT))
    # Then
    _assert_store_unavailable(response)
    assert faults.attempts["GetItem"] == MAX_ATTEMPTS
    assert stored(aws, RUN) is None


@pytest.mark.parametrize("fault", FAULTS)
def test_given_the_update_fails_when_starting_a_run_then_503_and_it_stays_pending(
    aws, store, faults, runs_handler, fault
):
    # Given
    seed_run(store, RUN, "pending")
    before = stored(aws, RUN)
    faults.inject("UpdateItem", fault)
    # When
    response = runs_handler(api_event("POST", f"/runs/{RUN}/start", tenant=TENANT))
    # Then
    _assert_store_unavailable(response)
    assert faults.attempts["UpdateItem"] == MAX_ATTEMPTS
    assert stored(aws, RUN) == before


@pytest.mark.parametrize("fault", FAULTS)
def test_given_the_read_fails_when_getting_a_run_then_503_not_404(aws, store, faults, runs_handler, fault):
    # Given
    seed_run(store, RUN, "running")
    faults.inject("GetItem", fault)
    # When
    response = runs_handler(api_event("GET", f"/runs/{RUN}", tenant=TENANT))
    # Then
    _assert_store_unavailable(response)
    assert faults.attempts["GetItem"] == MAX_ATTEMPTS


def test_given_the_write_is_throttled_when_creating_then_503_and_no_run_exists(aws, faults, runs_handler):
    # Given
    faults.inject("PutItem", throttled)
    # When
    response = runs_handler(api_event("POST", "/runs", {"run_id": RUN}, tenant=TENANT))
    # Then
    _assert_store_unavailable(response)
    assert stored(aws, RUN) is None


def test_given_one_throttled_attempt_when_cancelling_then_the_sdk_retry_succeeds_with_202(
    aws, store, faults, cancel_handler
):
    # Given: the first attempt is throttled, the second goes through to the table
    seed_run(store, RUN, "running")
    faults.inject("UpdateItem", lambda request: throttled(request) if faults.attempts["UpdateItem"] == 1 else None)
    # When
    response = cancel_handler(api_event("POST", f"/runs/{RUN}/cancel", tenant=TENANT))
    # Then
    assert (response["statusCode"], body_of(response)["outcome"]) == (202, "interrupted")
    assert faults.attempts["UpdateItem"] == 2
    assert stored_run(aws, RUN)["status"] == "interrupted"
