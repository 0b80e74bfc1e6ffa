"""What each client method sends: list pages, bulk cancel in hundreds, cancel options, worker bodies."""

from __future__ import annotations

import asyncio
import json

import httpx

from tests.client.support import FakeApi, ok, run_json


def _page(request: httpx.Request) -> httpx.Response:
    """Three pages of two runs: cursors c1 and c2."""
    cursor = request.url.params.get("cursor")
    index = {None: 0, "c1": 1, "c2": 2}[cursor]
    items = [run_json(f"r{2 * index + n}", "interrupted") for n in range(2)]
    return ok({"items": items, "next_cursor": [None, "c1", "c2", None][index + 1]})


def test_given_three_pages_when_listing_then_runs_follow_the_cursors_lazily():
    # Given
    api = FakeApi().on("GET /runs", _page)
    # When
    runs = api.client().list(status="interrupted", stop="overdue", page_size=2)
    first = next(runs)
    # Then: only the first page was fetched so far
    assert first.run_id == "r0"
    assert len(api.requests) == 1
    assert [run.run_id for run in runs] == ["r1", "r2", "r3", "r4", "r5"]
    params = [dict(request.url.params) for request in api.requests]
    assert params == [
        {"status": "interrupted", "stop": "overdue", "limit": "2"},
        {"status": "interrupted", "stop": "overdue", "limit": "2", "cursor": "c1"},
        {"status": "interrupted", "stop": "overdue", "limit": "2", "cursor": "c2"},
    ]


def test_given_the_async_client_when_listing_then_the_same_runs_arrive():
    api = FakeApi().on("GET /runs", _page)

    async def collect() -> list[str]:
        async with api.async_client() as client:
            return [run.run_id async for run in client.list()]

    assert asyncio.run(collect()) == ["r0", "r1", "r2", "r3", "r4", "r5"]


def _bulk(request: httpx.Request) -> httpx.Response:
    ids = json.loads(request.content)["run_ids"]
    return ok({"results": [{"run_id": i, "status_code": 202, "outcome": "interrupted"} for i in ids]})


def test_given_250_ids_with_duplicates_when_bulk_cancelling_then_100_per_request_and_progress_after_each():
    # Given
    ids = [f"r{n}" for n in range(250)] + ["r0", "r1"]
    api = FakeApi().on("POST /runs/cancel", _bulk)
    progress: list[tuple[int, int]] = []
    # When
    items = api.client().cancel_many(ids, reason="drain", progress=lambda done, total: progress.append((done, total)))
    # Then
    bodies = api.bodies("POST /runs/cancel")
    assert [len(body["run_ids"]) for body in bodies] == [100, 100, 50]
    assert all(body["reason"] == "drain" and "force" not in body for body in bodies)
    assert progress == [(100, 250), (200, 250), (250, 250)]
    assert [item.run_id for item in items] == [f"r{n}" for n in range(250)]
    assert len(set(api.keys())) == 3


def test_given_ids_answered_503_when_bulk_cancelling_then_only_those_are_sent_again():
    # Given: r2 was not decided the first time
    first = ok(
        {
            "results": [
                {"run_id": "r1", "status_code": 202, "outcome": "interrupted"},
                {"run_id": "r2", "status_code": 503, "error": "store unavailable"},
                {"run_id": "r3", "status_code": 409, "run_status": "success"},
            ]
        }
    )
    second = ok({"results": [{"run_id": "r2", "status_code": 202, "outcome": "already_interrupted"}]})
    api = FakeApi().on("POST /runs/cancel", first, second)
    # When
    items = api.client().cancel_many(["r1", "r2", "r3"], force=True)
    # Then
    assert [body["run_ids"] for body in api.bodies("POST /runs/cancel")] == [["r1", "r2", "r3"], ["r2"]]
    assert api.bodies("POST /runs/cancel")[0]["force"] is True
    assert [item.kind for item in items] == ["interrupted", "already_interrupted", "conflict"]
    assert api.clock.sleeps == [0.125]


def test_given_ids_answered_503_until_the_deadline_then_they_are_reported_unavailable():
    always = ok({"results": [{"run_id": "r1", "status_code": 503, "error": "store unavailable"}]})
    api = FakeApi().on("POST /runs/cancel", always)
    items = api.client(deadline=1).cancel_many(["r1"])
    assert [item.kind for item in items] == ["unavailable"]
    assert len(api.requests) == 4  # at 0, 0.125, 0.375, 0.875 s; the next wait (1 s) would pass the deadline


def test_given_the_async_client_when_bulk_cancelling_then_100_per_request():
    api = FakeApi().on("POST /runs/cancel", _bulk)

    async def cancel() -> int:
        async with api.async_client() as client:
            return len(await client.cancel_many(f"r{n}" for n in range(150)))

    assert asyncio.run(cancel()) == 150
    assert [len(body["run_ids"]) for body in api.bodies("POST /runs/cancel")] == [100, 50]


def test_given_cancel_options_then_reason_force_and_wait_are_sent_and_the_read_waits_longer():
    # Given
    body = {"run_id": "r1", "status": "interrupted", "outcome": "interrupted", "stop_acknowledged": True}
    timeouts: list[float | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"]["read"])
        return ok(body, 202)

    api = FakeApi().on("POST /runs/r1/cancel", answer)
    client = api.client(timeout=10)
    # When
    result = client.cancel("r1", reason="why", wait=5, force=True)
    client.cancel("r1")
    # Then
    assert result.stop_acknowledged is True
    assert api.bodies("POST /runs/r1/cancel") == [{"reason": "why", "force": True}, {}]
    assert [dict(r.url.params) for r in api.requests] == [{"wait": "5"}, {}]
    assert timeouts == [15.0, 10.0]


def test_given_worker_calls_then_worker_id_is_sent_only_when_known():
    # Given
    api = FakeApi()
    for route in ("start", "heartbeat", "complete", "stopped"):
        api.on(f"POST /runs/r1/{route}", ok(run_json()))
    client = api.client()
    # When
    client.start("r1")
    client.heartbeat("r1", worker_id="w1")
    client.complete("r1", "error", worker_id="w1")
    client.complete("r1", "success")
    client.stopped("r1", worker_id="w1")
    # Then
    assert [json.loads(r.content) if r.content else None for r in api.requests] == [
        None,
        {"worker_id": "w1"},
        {"status": "error", "worker_id": "w1"},
        {"status": "success"},
        {"worker_id": "w1"},
    ]
    assert all(r.headers.get("Idempotency-Key") for r in api.requests)


def test_given_a_create_then_grace_and_metadata_are_sent_only_when_given():
    api = FakeApi().on("POST /runs", ok(run_json("r1", "pending"), 201))
    client = api.client()
    client.create()
    client.create("r1", metadata={"job": "x"}, stop_grace_seconds=5)
    assert api.bodies("POST /runs") == [{}, {"run_id": "r1", "metadata": {"job": "x"}, "stop_grace_seconds": 5}]
