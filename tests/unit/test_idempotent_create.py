"""POST /runs with an Idempotency-Key: a retry gets the first answer and creates nothing."""

from __future__ import annotations

from typing import Any

import pytest

from runstop import runs
from runstop.store import RunStore
from tests.helpers import api_event, body_of
from tests.unit.conftest import throttled
from tests.unit.support import OTHER_TENANT, TENANT, assert_problem


def _create(runs_handler: Any, body: Any, key: str | None = "key-1", tenant: str = TENANT) -> dict[str, Any]:
    headers = {} if key is None else {"Idempotency-Key": key}
    return runs_handler(api_event("POST", "/runs", body, tenant=tenant, headers=headers))


def _run_ids(store: RunStore, tenant: str = TENANT) -> list[str]:
    items, _ = runs.list_runs(store, tenant, limit=100)
    return sorted(item["run_id"] for item in items)


def _table_throttled(table: str) -> Any:
    """A fault for one table only: the other table's calls on the same client go through."""
    return lambda request: throttled(request) if f'"{table}"'.encode() in request.body else None


def test_given_a_created_run_when_the_same_request_is_repeated_then_the_same_201_and_no_new_run(runs_handler, store):
    # Given
    first = _create(runs_handler, {"metadata": {"job": "nightly"}})
    # When
    second = _create(runs_handler, {"metadata": {"job": "nightly"}})
    # Then
    assert (first["statusCode"], second["statusCode"]) == (201, 201)
    assert body_of(second) == body_of(first)
    assert _run_ids(store) == [body_of(first)["run_id"]]


def test_given_a_created_run_when_the_key_comes_with_another_body_then_422_and_nothing_created(runs_handler, store):
    # Given
    first = _create(runs_handler, {"run_id": "r1"})
    # When
    second = _create(runs_handler, {"run_id": "r2"})
    # Then
    assert first["statusCode"] == 201
    assert_problem(second, 422, "idempotency-key-reused")
    assert _run_ids(store) == ["r1"]


def test_given_two_tenants_when_both_use_the_same_key_then_each_gets_its_own_run(runs_handler, store):
    # When
    mine = _create(runs_handler, {"run_id": "r1"}, tenant=TENANT)
    theirs = _create(runs_handler, {"run_id": "r1"}, tenant=OTHER_TENANT)
    # Then
    assert (mine["statusCode"], theirs["statusCode"]) == (201, 201)
    assert (body_of(mine)["tenant_id"], body_of(theirs)["tenant_id"]) == (TENANT, OTHER_TENANT)
    assert _run_ids(store, TENANT) == _run_ids(store, OTHER_TENANT) == ["r1"]


def test_given_no_key_when_the_same_request_is_repeated_then_two_runs(runs_handler, store):
    # When
    first = _create(runs_handler, {}, key=None)
    second = _create(runs_handler, {}, key=None)
    # Then
    assert (first["statusCode"], second["statusCode"]) == (201, 201)
    assert len(_run_ids(store)) == 2


def test_given_different_keys_when_the_same_body_is_sent_then_the_second_is_a_new_request(runs_handler, store):
    # Given
    _create(runs_handler, {"run_id": "r1"}, key="key-1")
    # When
    second = _create(runs_handler, {"run_id": "r1"}, key="key-2")
    # Then: not a replay, so the run id is taken
    assert_problem(second, 409, "run-exists")


@pytest.mark.parametrize("key", ["", "k" * 257])
def test_given_a_key_of_a_bad_length_when_creating_then_400_and_nothing_created(runs_handler, store, key):
    # When
    response = _create(runs_handler, {"run_id": "r1"}, key=key)
    # Then
    assert_problem(response, 400, "bad-request")
    assert _run_ids(store) == []


def test_given_the_first_request_still_running_when_a_retry_arrives_then_409_with_retry_after(
    runs_handler, store, monkeypatch
):
    # Given: the retry lands while the first request is between its record and its run
    retries: list[dict[str, Any]] = []
    original = runs.create_run

    def create_during_retry(*args: Any, **kwargs: Any) -> dict[str, Any]:
        retries.append(_create(runs_handler, {"run_id": "r1"}))
        return original(*args, **kwargs)

    monkeypatch.setattr(runs, "create_run", create_during_retry)
    # When
    first = _create(runs_handler, {"run_id": "r1"})
    # Then
    assert first["statusCode"] == 201
    problem = assert_problem(retries[0], 409, "request-in-progress")
    assert retries[0]["headers"]["Retry-After"] == "1"
    assert "run_id" not in problem or problem["run_id"] is None
    assert _run_ids(store) == ["r1"]


def test_given_the_create_failed_when_retried_with_the_same_key_then_exactly_one_run(runs_handler, store, faults):
    # Given: the runs table throttles the first try past the SDK's retries, then recovers
    throttling = {"RunsTable"}
    faults.inject("PutItem", lambda request: _table_throttled(*throttling)(request) if throttling else None)
    failed = _create(runs_handler, {"metadata": {"job": "nightly"}})
    throttling.clear()
    # When
    retried = _create(runs_handler, {"metadata": {"job": "nightly"}})
    # Then
    assert_problem(failed, 503, "store-unavailable")
    assert retried["statusCode"] == 201, body_of(retried)
    assert _run_ids(store) == [body_of(retried)["run_id"]]


def test_given_a_try_whose_write_landed_but_failed_when_retried_then_it_answers_that_run(runs_handler, store, aws):
    # Given: the run was written, but the try failed after, so its idempotency record is gone
    first = _create(runs_handler, {"metadata": {"job": "nightly"}})
    for item in aws.scan(TableName="IdempotencyTable")["Items"]:
        aws.delete_item(TableName="IdempotencyTable", Key={"id": item["id"]})
    # When
    retried = _create(runs_handler, {"metadata": {"job": "nightly"}})
    # Then
    assert retried["statusCode"] == 201, body_of(retried)
    assert body_of(retried) == body_of(first)
    assert _run_ids(store) == [body_of(first)["run_id"]]


def test_given_a_lost_record_when_the_key_comes_with_other_metadata_then_409_not_the_old_run(runs_handler, store, aws):
    # Given
    _create(runs_handler, {"metadata": {"job": "nightly"}})
    for item in aws.scan(TableName="IdempotencyTable")["Items"]:
        aws.delete_item(TableName="IdempotencyTable", Key={"id": item["id"]})
    # When
    retried = _create(runs_handler, {"metadata": {"job": "weekly"}})
    # Then
    assert_problem(retried, 409, "run-exists")
    assert len(_run_ids(store)) == 1


def test_given_the_idempotency_table_throttles_when_creating_then_503_and_nothing_created(runs_handler, store, faults):
    # Given
    faults.inject("PutItem", _table_throttled("IdempotencyTable"))
    # When
    response = _create(runs_handler, {"run_id": "r1"})
    # Then
    assert_problem(response, 503, "store-unavailable")
    assert response["headers"]["Retry-After"] == "1"
    assert _run_ids(store) == []
