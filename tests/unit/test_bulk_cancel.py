"""POST /runs/cancel: up to 100 runs, each decided as the single cancel route decides it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import api_event, body_of
from tests.unit.conftest import throttled
from tests.unit.support import OTHER_TENANT, TENANT, assert_problem, seed_run, stored


def _bulk(runs_handler: Any, body: Any, tenant: str = TENANT, headers: dict[str, str] | None = None) -> Any:
    return runs_handler(api_event("POST", "/runs/cancel", body, tenant=tenant, headers=headers))


def test_given_runs_in_every_state_when_bulk_cancelled_then_each_gets_its_single_cancel_answer(runs_handler, store):
    # Given
    for run_id, status in [("p", "pending"), ("r", "running"), ("s", "success"), ("i", "interrupted")]:
        seed_run(store, run_id, status)
    # When
    response = _bulk(runs_handler, {"run_ids": ["p", "r", "s", "i", "gone", "bad id"], "reason": "deploy"})
    # Then
    assert response["statusCode"] == 200
    assert body_of(response)["results"] == [
        {"run_id": "p", "status_code": 202, "outcome": "interrupted", "run_status": "interrupted", "error": None},
        {"run_id": "r", "status_code": 202, "outcome": "interrupted", "run_status": "interrupted", "error": None},
        {"run_id": "s", "status_code": 409, "outcome": None, "run_status": "success", "error": None},
        {
            "run_id": "i",
            "status_code": 202,
            "outcome": "already_interrupted",
            "run_status": "interrupted",
            "error": None,
        },
        {"run_id": "gone", "status_code": 202, "outcome": "absent", "run_status": None, "error": None},
        {
            "run_id": "bad id",
            "status_code": 400,
            "outcome": None,
            "run_status": None,
            "error": "run_id must match ^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$",
        },
    ]


def test_given_active_runs_when_bulk_cancelled_then_they_are_stored_interrupted_by_bulk(runs_handler, store, aws):
    # Given
    seed_run(store, "r1", "running")
    seed_run(store, "r2", "pending")
    # When
    _bulk(runs_handler, {"run_ids": ["r1", "r2"], "reason": "deploy"})
    # Then
    for run_id in ("r1", "r2"):
        run = stored(aws, run_id)
        assert run is not None
        assert run["status"] == "interrupted"
        assert (run["cancel"]["source"], run["cancel"]["reason"]) == ("bulk", "deploy")
    assert stored(aws, "r1")["cancel"]["requested_at"] == stored(aws, "r2")["cancel"]["requested_at"]


def test_given_duplicate_ids_when_bulk_cancelled_then_each_is_answered_once_in_first_order(runs_handler, store):
    # Given
    seed_run(store, "a", "running")
    seed_run(store, "b", "running")
    # When
    response = _bulk(runs_handler, {"run_ids": ["b", "a", "b", "a", "b"]})
    # Then
    results = body_of(response)["results"]
    assert [(r["run_id"], r["outcome"]) for r in results] == [("b", "interrupted"), ("a", "interrupted")]


def test_given_another_tenants_run_when_bulk_cancelled_then_absent_and_untouched(runs_handler, store, aws):
    # Given
    seed_run(store, "theirs", "running", tenant=OTHER_TENANT)
    # When
    response = _bulk(runs_handler, {"run_ids": ["theirs"]})
    # Then
    assert body_of(response)["results"][0]["outcome"] == "absent"
    assert stored(aws, "theirs", tenant=OTHER_TENANT)["status"] == "running"


def test_given_a_bulk_with_a_key_when_repeated_then_its_own_cancels_answer_interrupted_again(runs_handler, store):
    # Given
    seed_run(store, "r1", "running")
    first = _bulk(runs_handler, {"run_ids": ["r1"]}, headers={"Idempotency-Key": "k1"})
    # When
    again = _bulk(runs_handler, {"run_ids": ["r1"]}, headers={"Idempotency-Key": "k1"})
    other = _bulk(runs_handler, {"run_ids": ["r1"]}, headers={"Idempotency-Key": "k2"})
    # Then
    outcomes = [body_of(r)["results"][0]["outcome"] for r in (first, again, other)]
    assert outcomes == ["interrupted", "interrupted", "already_interrupted"]


def test_given_only_invalid_ids_when_bulk_cancelled_then_200_with_a_400_each_and_no_dynamodb_call(
    runs_handler, store, ddb_calls
):
    # When
    response = _bulk(runs_handler, {"run_ids": ["", "-x", "a/b", "x" * 129]})
    # Then
    assert response["statusCode"] == 200
    assert [r["status_code"] for r in body_of(response)["results"]] == [400, 400, 400, 400]
    assert ddb_calls.operations == []


def test_given_the_store_throttles_one_run_when_bulk_cancelled_then_only_that_entry_is_503(runs_handler, store, faults):
    # Given
    seed_run(store, "ok", "running")
    seed_run(store, "hot", "running")
    faults.inject("UpdateItem", lambda request: throttled(request) if b'"hot"' in request.body else None)
    # When
    response = _bulk(runs_handler, {"run_ids": ["hot", "ok"]})
    # Then
    assert response["statusCode"] == 200
    results = {r["run_id"]: r for r in body_of(response)["results"]}
    assert results["hot"]["status_code"] == 503
    assert results["hot"]["error"]
    assert (results["ok"]["status_code"], results["ok"]["outcome"]) == (202, "interrupted")


def test_given_100_runs_when_bulk_cancelled_then_all_100_are_decided(runs_handler, store):
    # Given
    ids = [f"run-{i:03d}" for i in range(100)]
    for run_id in ids[::2]:
        seed_run(store, run_id, "running")
    # When
    response = _bulk(runs_handler, {"run_ids": ids})
    # Then
    results = body_of(response)["results"]
    assert [r["run_id"] for r in results] == ids
    assert [r["outcome"] for r in results] == ["interrupted", "absent"] * 50


@pytest.mark.parametrize(
    "body",
    [
        {"run_ids": []},
        {"run_ids": [f"r{i}" for i in range(101)]},
        {"run_ids": "r1"},
        {"run_ids": [1, 2]},
        {"run_ids": ["r1"], "reason": "x" * 257},
        {"run_ids": ["r1"], "forcefully": True},
        {"run_ids": ["r1"], "force": "yes"},
        {},
    ],
)
def test_given_a_body_that_breaks_the_contract_when_bulk_cancelled_then_422_and_nothing_cancelled(
    runs_handler, store, aws, body
):
    # Given
    seed_run(store, "r1", "running")
    # When
    response = _bulk(runs_handler, body)
    # Then
    assert_problem(response, 422, "validation")
    assert stored(aws, "r1")["status"] == "running"


def test_given_malformed_json_when_bulk_cancelled_then_400(runs_handler, aws):
    # When
    response = runs_handler(api_event("POST", "/runs/cancel", raw_body=b'{"run_ids": [', tenant=TENANT))
    # Then
    assert_problem(response, 400, "bad-request")


def test_given_a_run_called_cancel_when_read_then_get_still_reaches_it(runs_handler, store):
    # Given: /runs/cancel is the bulk route only for POST
    seed_run(store, "cancel", "running")
    # When
    response = runs_handler(api_event("GET", "/runs/cancel", tenant=TENANT))
    # Then
    assert (response["statusCode"], body_of(response)["run_id"]) == (200, "cancel")
