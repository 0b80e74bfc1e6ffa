"""Failure answers are always right: every DynamoDB server error and every throttling code is
503 + Retry-After after the SDK's retries; DynamoDB refusing the caller's data is a 4xx; data
DynamoDB cannot store is refused before any write; bulk cancel answers before its timeout; a
throttled cancel of a finished run is decided by a read."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from runstop import bulk
from runstop.store import RunStore
from tests.helpers import api_event, body_of
from tests.unit.conftest import FAULT_URL, _RawBody
from tests.unit.support import TENANT, assert_problem, seed_run, stored


def dynamodb_error(status: int, code: str | None, message: str = "injected") -> Any:
    """A fault answering `status` with DynamoDB's JSON error body (none when `code` is None)."""

    def fault(request: Any) -> AWSResponse:
        request.url = FAULT_URL
        body = (
            b""
            if code is None
            else json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}).encode()
        )
        headers = {"x-amzn-RequestId": "fault", "Content-Type": "application/x-amz-json-1.0"}
        return AWSResponse(request.url, status, HTTPHeaders.from_dict(headers), _RawBody(body))

    return fault


SERVER_ERRORS = [
    pytest.param(500, "InternalServerError", id="500-InternalServerError"),
    pytest.param(500, "InternalFailure", id="500-InternalFailure"),
    pytest.param(503, "ServiceUnavailable", id="503-ServiceUnavailable"),
    pytest.param(503, "ServiceUnavailableException", id="503-ServiceUnavailableException"),
    pytest.param(500, None, id="500-no-body"),
    pytest.param(502, None, id="502-no-body"),
    pytest.param(504, None, id="504-no-body"),
    pytest.param(400, "ThrottlingException", id="400-ThrottlingException"),
    pytest.param(400, "RequestLimitExceeded", id="400-RequestLimitExceeded"),
    pytest.param(400, "ProvisionedThroughputExceededException", id="400-ProvisionedThroughputExceeded"),
]


def _is_503(response: dict[str, Any]) -> None:
    assert_problem(response, 503, "store-unavailable")
    assert response["headers"]["Retry-After"] == "1"


@pytest.mark.parametrize(("status", "code"), SERVER_ERRORS)
@pytest.mark.parametrize(
    ("operation", "path", "body", "seeded"),
    [
        ("UpdateItem", "/runs/r1/start", None, "pending"),
        ("UpdateItem", "/runs/r1/heartbeat", None, "running"),
        ("UpdateItem", "/runs/r1/complete", {"status": "success"}, "running"),
        ("PutItem", "/runs", {"run_id": "r1"}, "absent"),
        ("GetItem", "/runs/r1", None, "running"),
    ],
)
def test_given_dynamodb_fails_on_every_attempt_when_the_runs_api_writes_then_503(
    runs_handler, store, faults, clock, status, code, operation, path, body, seeded
):
    seed_run(store, "r1", seeded)
    faults.inject(operation, dynamodb_error(status, code))
    method = "GET" if operation == "GetItem" else "POST"
    _is_503(runs_handler(api_event(method, path, body, tenant=TENANT)))


@pytest.mark.parametrize(("status", "code"), SERVER_ERRORS)
def test_given_dynamodb_fails_on_every_attempt_when_cancelling_an_active_run_then_503(
    cancel_handler, store, faults, clock, status, code
):
    seed_run(store, "r1", "running")
    faults.inject("UpdateItem", dynamodb_error(status, code))
    _is_503(cancel_handler(api_event("POST", "/runs/r1/cancel", tenant=TENANT)))


def test_given_dynamodb_refuses_the_data_then_400_with_its_reason(runs_handler, store, faults, clock):
    faults.inject("PutItem", dynamodb_error(400, "ValidationException", "Item size has exceeded the maximum"))
    problem = assert_problem(runs_handler(api_event("POST", "/runs", {"run_id": "v1"}, tenant=TENANT)), 400)
    assert "Item size has exceeded" in problem["detail"]


# Data DynamoDB cannot store is refused before any write


UNSTORABLE_METADATA = [
    pytest.param({"": 1}, id="empty-key"),
    pytest.param({"a": {"": "x"}}, id="nested-empty-key"),
    pytest.param({"n": 1e300}, id="too-large"),
    pytest.param({"n": 1e-200}, id="too-small"),
    pytest.param({"n": 10**39}, id="39-digits"),
    pytest.param({"n": 123456789012345678901234567890123456789}, id="39-significant-digits"),
    pytest.param({"s": "\ud800"}, id="lone-surrogate-value"),
    pytest.param({"\udc00": 1}, id="lone-surrogate-key"),
]


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"d": value}
    return value


@pytest.mark.parametrize("metadata", [*UNSTORABLE_METADATA, pytest.param(_nested(32), id="33-levels")])
def test_given_metadata_dynamodb_cannot_store_when_creating_then_422_and_nothing_written(
    runs_handler, aws, clock, metadata
):
    raw = json.dumps({"run_id": "m1", "metadata": metadata}).encode()
    response = runs_handler(api_event("POST", "/runs", tenant=TENANT, raw_body=raw))
    assert_problem(response, 422, "validation")
    assert stored(aws, "m1") is None


def test_metadata_at_the_limits_is_stored(runs_handler, aws, clock):
    metadata = {"deep": _nested(30), "big": 9.99e125, "small": 1e-130, "digits": 10**37, "zero": 0}
    response = runs_handler(api_event("POST", "/runs", {"run_id": "m2", "metadata": metadata}, tenant=TENANT))
    assert response["statusCode"] == 201, body_of(response)
    assert body_of(response)["metadata"]["digits"] == 10**37


@pytest.mark.parametrize(
    ("handler_name", "path", "body"),
    [
        ("cancel_handler", "/runs/r1/cancel", {"reason": "\ud800"}),
        ("runs_handler", "/runs/cancel", {"run_ids": ["r1"], "reason": "\ud800"}),
    ],
)
def test_given_a_reason_with_a_lone_surrogate_when_cancelling_then_422(request, store, clock, handler_name, path, body):
    seed_run(store, "r1", "running")
    handler = request.getfixturevalue(handler_name)
    response = handler(api_event("POST", path, tenant=TENANT, raw_body=json.dumps(body).encode()))
    assert_problem(response, 422)


@pytest.mark.parametrize(("handler_name", "path"), [("cancel_handler", "/runs/r1/cancel"), ("runs_handler", "/runs")])
def test_given_json_nested_30000_deep_then_400(request, clock, handler_name, path):
    handler = request.getfixturevalue(handler_name)
    raw = b"[" * 30_000 + b"]" * 30_000
    assert_problem(handler(api_event("POST", path, tenant=TENANT, raw_body=raw)), 400)


def test_given_multipart_without_a_boundary_then_415(runs_handler, clock):
    event = api_event("POST", "/runs", tenant=TENANT, raw_body=b"x", headers={"content-type": "multipart/form-data"})
    assert_problem(runs_handler(event), 415)


# Bulk cancel answers before its timeout


class StalledStore(RunStore):
    """DynamoDB that never answers in time: every decision hangs until released."""

    def __init__(self, inner: RunStore, release: threading.Event) -> None:
        super().__init__(inner.client, inner.table_name)
        self.release = release

    def apply(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.release.wait(5)
        return super().apply(*args, **kwargs)


def test_given_dynamodb_stalled_when_bulk_cancelling_then_every_id_answered_503_before_the_timeout(store, clock):
    # Given a store that stalls, and an invocation with 1.5 s (its answer margin) left
    release = threading.Event()
    stalled = StalledStore(store, release)
    try:
        # When 100 ids are cancelled
        results = bulk.cancel_many(stalled, TENANT, [f"b{i}" for i in range(100)], remaining_ms=lambda: 1_500)
    finally:
        release.set()
    # Then every id has its own answer: 503, retry this id
    assert [r["status_code"] for r in results] == [503] * 100


# A throttled cancel is decided by a read when the run is final


@pytest.mark.parametrize(
    ("seeded", "status", "outcome"), [("interrupted", 202, "already_interrupted"), ("success", 409, None)]
)
def test_given_the_update_throttled_when_the_run_is_final_then_a_read_decides(
    cancel_handler, store, faults, clock, seeded, status, outcome
):
    seed_run(store, "t1", seeded)
    faults.inject("UpdateItem", dynamodb_error(400, "ThrottlingException"))
    response = cancel_handler(api_event("POST", "/runs/t1/cancel", tenant=TENANT))
    assert response["statusCode"] == status
    if outcome:
        assert body_of(response)["outcome"] == outcome


def test_given_the_update_throttled_when_the_run_is_active_then_503(cancel_handler, store, faults, clock):
    seed_run(store, "t1", "running")
    faults.inject("UpdateItem", dynamodb_error(400, "ThrottlingException"))
    _is_503(cancel_handler(api_event("POST", "/runs/t1/cancel", tenant=TENANT)))


def test_given_the_fallback_turned_off_when_throttled_then_503_even_for_a_final_run(
    cancel_handler, store, faults, clock, monkeypatch
):
    from runstop.settings import settings

    monkeypatch.setenv("RUNSTOP_THROTTLE_FALLBACK", "0")
    settings.cache_clear()
    seed_run(store, "t1", "success")
    faults.inject("UpdateItem", dynamodb_error(400, "ThrottlingException"))
    try:
        _is_503(cancel_handler(api_event("POST", "/runs/t1/cancel", tenant=TENANT)))
    finally:
        settings.cache_clear()
