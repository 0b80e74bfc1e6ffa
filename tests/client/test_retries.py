"""Retries: which answers are retried, how long the client waits, and that a retry reuses its key."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from runstop_client import RetryPolicy, Unavailable
from runstop_client._wire import retry_after
from tests.client.support import FakeApi, ok, problem, run_json, unavailable


def test_given_503_with_retry_after_when_creating_then_it_waits_that_long_and_retries_with_the_same_key():
    # Given
    api = FakeApi().on("POST /runs", unavailable("3"), ok(run_json("r1", "pending"), 201))
    # When
    run = api.client().create("r1")
    # Then
    assert run.run_id == "r1"
    assert api.clock.sleeps == [3.0]
    first, second = api.keys("POST /runs")
    assert first
    assert first == second


def test_given_a_lost_answer_when_cancelling_then_the_retry_carries_the_same_key_and_gets_the_first_answer():
    # Given: the first attempt times out reading (it may have been applied), the second is answered
    accepted = ok({"run_id": "r1", "status": "interrupted", "outcome": "interrupted", "cancel": None}, 202)
    api = FakeApi().on("POST /runs/r1/cancel", httpx.ReadTimeout("lost"), accepted)
    # When
    result = api.client().cancel("r1", reason="stop")
    # Then
    assert result.outcome == "interrupted"
    keys = api.keys()
    assert len(keys) == 2
    assert keys[0] == keys[1]
    assert api.bodies("POST /runs/r1/cancel") == [{"reason": "stop"}] * 2


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.RemoteProtocolError("closed"), httpx.ReadError("reset")],
    ids=["connect", "disconnected", "reset"],
)
def test_given_a_connection_failure_when_calling_then_it_is_retried_with_backoff(failure):
    # Given
    api = FakeApi().on("POST /runs/r1/heartbeat", failure, failure, ok(run_json()))
    # When
    api.client().heartbeat("r1")
    # Then: backoff doubles from the base (jitter pinned to its lowest: half the backoff)
    assert api.clock.sleeps == [0.125, 0.25]
    assert len(set(api.keys())) == 1


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_given_a_throttle_or_gateway_answer_when_calling_then_it_is_retried(status):
    # Given
    api = FakeApi().on("GET /runs/r1", httpx.Response(status), ok(run_json()))
    # When
    run = api.client().get("r1")
    # Then
    assert run.status == "running"
    assert len(api.requests) == 2


def test_given_a_request_in_progress_when_creating_then_it_waits_retry_after_and_retries_with_the_same_key():
    # Given: the first request with this key is still being answered
    in_progress = problem(409, "request-in-progress", {"Retry-After": "2"})
    api = FakeApi().on("POST /runs", in_progress, ok(run_json("r1", "pending"), 201))
    # When
    api.client().create("r1", idempotency_key="k-1")
    # Then
    assert api.clock.sleeps == [2.0]
    assert api.keys() == ["k-1", "k-1"]


def test_given_503_forever_when_calling_then_it_gives_up_at_the_deadline_with_unavailable():
    # Given
    api = FakeApi().on("POST /runs/r1/complete", unavailable("10"))
    # When
    with pytest.raises(Unavailable) as raised:
        api.client(deadline=25).complete("r1", "success")
    # Then: attempts at 0, 10 and 20 s; a fourth at 30 s would pass the deadline
    assert api.clock.sleeps == [10.0, 10.0]
    assert len(api.requests) == 3
    assert raised.value.status == 503
    assert raised.value.type == "store-unavailable"


def test_given_no_connection_ever_when_calling_then_unavailable_names_the_failure():
    # Given
    api = FakeApi().on("GET /runs/r1", httpx.ConnectError("refused"))
    # When
    with pytest.raises(Unavailable, match="ConnectError"):
        api.client(deadline=3).get("r1")
    # Then: the backoff doubled until the next wait would pass the deadline
    assert api.clock.sleeps == [0.125, 0.25, 0.5, 1.0]


def test_given_a_500_when_calling_then_it_is_not_retried():
    # Given: the service promises never to answer 500; when it does, retrying blindly helps nobody
    api = FakeApi().on("GET /runs/r1", httpx.Response(500, json={"message": "Internal Server Error"}))
    # When
    with pytest.raises(Unavailable, match="Internal Server Error"):
        api.client().get("r1")
    # Then
    assert len(api.requests) == 1


def test_given_two_calls_then_each_has_its_own_key_and_a_given_key_is_sent_unchanged():
    # Given
    accepted = ok({"run_id": "r1", "status": "interrupted", "outcome": "already_interrupted"}, 202)
    api = FakeApi().on("POST /runs/r1/cancel", accepted)
    client = api.client()
    # When
    client.cancel("r1")
    client.cancel("r1")
    client.cancel("r1", idempotency_key="mine")
    # Then
    first, second, third = api.keys()
    assert first != second
    assert third == "mine"


def test_given_a_read_then_it_carries_no_idempotency_key():
    api = FakeApi().on("GET /runs/r1", ok(run_json()))
    api.client().get("r1")
    assert api.keys() == [None]


def test_given_a_token_and_a_tenant_then_every_request_carries_them():
    api = FakeApi().on("GET /runs/r1", ok(run_json()))
    api.client(token="tok", tenant="acme").get("r1")
    request = api.requests[0]
    assert request.headers["Authorization"] == "Bearer tok"
    assert request.headers["X-Tenant-Id"] == "acme"


def test_given_the_environment_then_the_client_reads_url_token_and_tenant(monkeypatch):
    monkeypatch.setenv("RUNSTOP_URL", "http://elsewhere.test:9")
    monkeypatch.setenv("RUNSTOP_TOKEN", "tok")
    monkeypatch.setenv("RUNSTOP_TENANT", "acme")
    api = FakeApi().on("GET /runs/r1", ok(run_json()))
    from runstop_client import Client

    with Client(transport=httpx.MockTransport(api.handle)) as client:
        client.get("r1")
    request = api.requests[0]
    assert str(request.url) == "http://elsewhere.test:9/runs/r1"
    assert request.headers["Authorization"] == "Bearer tok"
    assert request.headers["X-Tenant-Id"] == "acme"


def test_given_the_async_client_when_503_then_lost_answer_then_it_retries_like_the_sync_one():
    # Given
    api = FakeApi().on("POST /runs", unavailable("2"), httpx.ReadTimeout("lost"), ok(run_json("r1", "pending"), 201))

    async def create() -> str:
        async with api.async_client() as client:
            return (await client.create("r1")).run_id

    # When
    run_id = asyncio.run(create())
    # Then
    assert run_id == "r1"
    assert api.clock.sleeps == [2.0, 0.25]
    assert len(set(api.keys())) == 1


@pytest.mark.parametrize(
    ("attempt", "hint", "elapsed", "jitter", "expected"),
    [
        (1, None, 0.0, 0.0, 0.125),
        (1, None, 0.0, 0.5, 0.1875),
        (3, None, 0.0, 0.0, 0.5),
        (10, None, 0.0, 0.0, 2.5),  # capped at 5 s, half of it without jitter
        (1, 7.0, 0.0, 0.5, 7.0),  # Retry-After wins over backoff
        (1, 7.0, 24.0, 0.0, None),  # 24 + 7 > 30: give up
    ],
)
def test_retry_policy_delays(attempt, hint, elapsed, jitter, expected):
    assert RetryPolicy(deadline=30, base=0.25, cap=5).delay(attempt, hint, elapsed, jitter) == expected


def test_retry_after_reads_seconds_and_http_dates():
    from datetime import datetime, timezone

    now = datetime(2026, 11, 23, 21, 0, 0, tzinfo=timezone.utc)
    assert retry_after(httpx.Response(503, headers={"Retry-After": "4"})) == 4.0
    dated = httpx.Response(503, headers={"Retry-After": "Mon, 23 Nov 2026 21:00:09 GMT"})
    assert retry_after(dated, now) == 9.0
    assert retry_after(httpx.Response(503, headers={"Retry-After": "soon"})) is None
    assert retry_after(httpx.Response(503)) is None
