"""Concurrency keys on moto: one active run per tenant and key; reject or interrupt the active
one; a run that ends by itself frees its key at once; the stream consumer tidies the lock."""

from __future__ import annotations

from typing import Any

import pytest

from runstop import runs
from runstop.cancel import cancel_run
from runstop.concurrency import key_locks
from runstop.status import RunStatus
from tests.helpers import api_event, body_of
from tests.unit.support import OTHER_TENANT, TENANT, assert_problem, stored_run


def _create(runs_handler: Any, run_id: str, key: str = "thread-1", tenant: str = TENANT, **extra: Any) -> Any:
    body = {"run_id": run_id, "concurrency_key": key, **extra}
    return runs_handler(api_event("POST", "/runs", body, tenant=tenant))


def _lock(aws: Any, key: str = "thread-1", tenant: str = TENANT) -> str | None:
    item = aws.get_item(
        TableName="ConcurrencyKeysTable",
        Key={"tenant_id": {"S": tenant}, "concurrency_key": {"S": key}},
        ConsistentRead=True,
    ).get("Item")
    return None if item is None else item["active_run_id"]["S"]


def test_given_a_free_key_when_a_run_is_created_with_it_then_the_run_holds_it(aws, runs_handler):
    # When
    response = _create(runs_handler, "first")
    # Then
    assert response["statusCode"] == 201, body_of(response)
    assert body_of(response)["concurrency_key"] == "thread-1"
    assert _lock(aws) == "first"


@pytest.mark.parametrize("holder_status", ["pending", "running"])
def test_given_an_active_holder_when_a_create_rejects_then_409_naming_the_active_run(
    aws, store, runs_handler, holder_status
):
    # Given
    _create(runs_handler, "first")
    if holder_status == "running":
        runs.start_run(store, TENANT, "first")
    # When
    responses = [_create(runs_handler, "second"), _create(runs_handler, "third", on_active="reject")]
    # Then
    for response in responses:
        problem = assert_problem(response, 409, "concurrency-key-held")
        assert problem["active_run_id"] == "first"
        assert problem["run_status"] == holder_status
        assert problem["concurrency_key"] == "thread-1"
    assert runs_handler(api_event("GET", "/runs/second", tenant=TENANT))["statusCode"] == 404
    assert _lock(aws) == "first"


@pytest.mark.parametrize("holder_status", ["pending", "running"])
def test_given_an_active_holder_when_a_create_interrupts_then_the_holder_is_superseded_by_the_new_run(
    aws, store, runs_handler, clock, holder_status
):
    # Given
    _create(runs_handler, "first")
    if holder_status == "running":
        runs.start_run(store, TENANT, "first")
    # When
    response = _create(runs_handler, "second", on_active="interrupt")
    # Then
    assert response["statusCode"] == 201, body_of(response)
    first = stored_run(aws, "first")
    assert first["status"] == "interrupted"
    assert first["cancel"]["source"] == "superseded"
    assert first["cancel"]["superseded_by"] == "second"
    assert first["cancel"]["requested_at"] == first["ended_at"] == body_of(response)["created_at"]
    assert "active_pk" not in first
    assert _lock(aws) == "second"


@pytest.mark.parametrize("ending", ["success", "error", "timeout", "cancel"])
def test_given_a_holder_that_ended_when_a_create_rejects_then_the_key_is_free_at_once(aws, store, runs_handler, ending):
    # Given: the holder ended; nothing has touched the lock since (no stream consumer ran)
    _create(runs_handler, "first")
    runs.start_run(store, TENANT, "first")
    if ending == "cancel":
        cancel_run(store, TENANT, "first")
    else:
        runs.complete_run(store, TENANT, "first", RunStatus(ending))
    assert _lock(aws) == "first"
    # When
    response = _create(runs_handler, "second", on_active="reject")
    # Then
    assert response["statusCode"] == 201, body_of(response)
    assert _lock(aws) == "second"
    assert stored_run(aws, "first")["status"] != "interrupted" or ending == "cancel"


def test_given_a_holder_that_ended_when_a_create_interrupts_then_nothing_is_interrupted(aws, store, runs_handler):
    # Given
    _create(runs_handler, "first")
    runs.start_run(store, TENANT, "first")
    runs.complete_run(store, TENANT, "first", RunStatus.SUCCESS)
    # When
    response = _create(runs_handler, "second", on_active="interrupt")
    # Then
    assert response["statusCode"] == 201
    first = stored_run(aws, "first")
    assert first["status"] == "success"
    assert "cancel" not in first


def test_keys_are_per_tenant_and_per_key(aws, runs_handler):
    # Given
    _create(runs_handler, "first")
    # When
    responses = [
        _create(runs_handler, "other-key", key="thread-2"),
        _create(runs_handler, "other-tenant", tenant=OTHER_TENANT),
    ]
    # Then
    assert [r["statusCode"] for r in responses] == [201, 201]
    assert stored_run(aws, "first")["status"] == "pending"


@pytest.mark.parametrize(
    "body",
    [
        {"on_active": "interrupt"},
        {"concurrency_key": "k", "on_active": "queue"},
        {"concurrency_key": ""},
        {"concurrency_key": "x" * 257},
        {"concurrency_key": "line\nbreak"},
        {"concurrency_key": 5},
    ],
)
def test_given_a_bad_key_or_strategy_when_a_run_is_created_then_422(aws, runs_handler, body):
    assert_problem(runs_handler(api_event("POST", "/runs", body, tenant=TENANT)), 422, "validation")


def test_given_a_taken_run_id_with_a_key_when_created_then_409_run_exists_and_the_holder_is_untouched(
    aws, runs_handler
):
    # Given
    _create(runs_handler, "first")
    # When
    response = _create(runs_handler, "first", on_active="interrupt")
    # Then
    assert_problem(response, 409, "run-exists")
    assert stored_run(aws, "first")["status"] == "pending"
    assert _lock(aws) == "first"


def test_given_a_final_holder_when_its_lock_is_released_then_only_its_own_lock_goes(aws, store, runs_handler):
    # Given: first ended, second took the key meanwhile
    _create(runs_handler, "first")
    cancel_run(store, TENANT, "first")
    _create(runs_handler, "second")
    # When / Then
    assert key_locks().release(TENANT, "thread-1", "first") is False
    assert _lock(aws) == "second"
    cancel_run(store, TENANT, "second")
    assert key_locks().release(TENANT, "thread-1", "second") is True
    assert _lock(aws) is None
    assert _create(runs_handler, "third")["statusCode"] == 201


def test_given_a_parent_holding_the_key_when_a_child_would_interrupt_it_then_409_and_the_parent_stays(
    aws, runs_handler
):
    # Given
    _create(runs_handler, "parent")
    # When
    response = _create(runs_handler, "child", parent_run_id="parent", on_active="interrupt")
    # Then
    assert assert_problem(response, 409, "concurrency-key-held")["active_run_id"] == "parent"
    assert stored_run(aws, "parent")["status"] == "pending"
    assert "children" not in stored_run(aws, "parent")
