"""The worker helper without threads or timers: heartbeats are sent by the test, one at a time."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket

import httpx
import pytest

from runstop_client import RunCancelled, RunConflict
from tests.client.support import CANCEL, FakeApi, ok, problem, run_json

DEADLINE = "2026-11-23T21:13:27.000000Z"


def _interrupted(**extra: object) -> httpx.Response:
    return problem(409, "status-conflict", run_id="r1", run_status="interrupted", **extra)


def _service(**answers: object) -> FakeApi:
    api = FakeApi()
    api.on("POST /runs/r1/start", answers.get("start", ok(run_json())))
    api.on("POST /runs/r1/heartbeat", answers.get("heartbeat", ok(run_json())))
    api.on("POST /runs/r1/complete", answers.get("complete", ok(run_json(status="success"))))
    api.on("POST /runs/r1/stopped", answers.get("stopped", ok(run_json(status="interrupted"))))
    api.on("GET /runs/r1", answers.get("get", ok(run_json(status="interrupted", cancel=CANCEL))))
    return api


def _routes(api: FakeApi) -> list[str]:
    return [f"{r.method} {r.url.path.rsplit('/', 1)[-1]}" for r in api.requests]


def test_given_a_block_that_ends_when_left_then_the_run_is_started_and_completed_success():
    # Given
    api = _service()
    # When
    with api.client().worker("r1", heartbeat_interval=None) as run:
        assert run.heartbeat()
    # Then
    assert _routes(api) == ["POST start", "POST heartbeat", "POST complete"]
    assert api.bodies("POST /runs/r1/complete") == [{"status": "success", "worker_id": run.worker_id}]


def test_given_a_block_that_raises_when_left_then_the_run_completes_error_and_the_error_propagates():
    api = _service(complete=ok(run_json(status="error")))
    with pytest.raises(ZeroDivisionError), api.client().worker("r1", worker_id="w1", heartbeat_interval=None):
        _ = 1 / 0
    assert api.bodies("POST /runs/r1/complete") == [{"status": "error", "worker_id": "w1"}]


def test_given_a_cancel_when_the_heartbeat_is_refused_then_check_raises_and_the_stop_is_acknowledged():
    # Given
    api = _service(heartbeat=_interrupted(cancel=CANCEL, stop_deadline=DEADLINE))
    seen: list[str] = []
    # When
    with api.client().worker("r1", heartbeat_interval=None, on_cancel=lambda w: seen.append(w.run_id)) as run:
        assert run.heartbeat() is False
        assert run.cancelled.is_set()
        run.check()  # raises RunCancelled, which leaving the block swallows
        pytest.fail("check() did not raise")
    # Then
    assert seen == ["r1"]
    assert run.cancel is not None
    assert run.cancel.reason == "user pressed Stop"
    assert run.stop_deadline is not None
    assert run.stop_deadline.isoformat() == "2026-11-23T21:13:27+00:00"
    assert _routes(api) == ["POST start", "POST heartbeat", "POST stopped"]


def test_given_a_service_without_cancel_details_when_interrupted_then_the_run_is_read_for_them():
    api = _service(heartbeat=_interrupted())
    with api.client().worker("r1", heartbeat_interval=None) as run:
        run.heartbeat()
    assert run.cancel is not None
    assert run.cancel.source == "api"
    assert _routes(api) == ["POST start", "POST heartbeat", "GET r1", "POST stopped"]


def test_given_a_run_cancelled_while_pending_when_entered_then_runcancelled_and_the_stop_is_acknowledged():
    api = _service(start=_interrupted(cancel=CANCEL))
    with pytest.raises(RunCancelled) as raised, api.client().worker("r1", heartbeat_interval=None):
        pytest.fail("the block ran")
    assert raised.value.cancel is not None
    assert raised.value.cancel.reason == "user pressed Stop"
    assert _routes(api) == ["POST start", "POST stopped"]


def test_given_a_finished_run_when_entered_then_runconflict():
    api = _service(start=problem(409, "status-conflict", run_id="r1", run_status="success"))
    with pytest.raises(RunConflict), api.client().worker("r1", heartbeat_interval=None):
        pytest.fail("the block ran")


def test_given_a_lost_answer_on_complete_when_left_then_the_retry_finds_the_run_completed():
    # Given: the completion was applied but its answer lost; the retry (same key) is told 409 success
    already = problem(409, "status-conflict", run_id="r1", run_status="success")
    api = _service(complete=httpx.ReadTimeout("lost"), get=ok(run_json(status="success")))
    api.answers["POST /runs/r1/complete"].append(already)
    # When
    with api.client().worker("r1", heartbeat_interval=None) as run:
        pass
    # Then
    assert run.run is not None
    assert run.run.status == "success"
    keys = api.keys("POST /runs/r1/complete")
    assert len(keys) == 2
    assert keys[0] == keys[1]


def test_given_a_cancel_racing_the_end_of_the_work_when_left_then_the_stop_is_acknowledged():
    api = _service(complete=_interrupted(cancel=CANCEL))
    with api.client().worker("r1", heartbeat_interval=None) as run:
        pass
    assert run.cancelled.is_set()
    assert _routes(api) == ["POST start", "POST complete", "POST stopped"]


def test_given_an_unreachable_service_when_heartbeating_then_the_run_keeps_going():
    api = _service(heartbeat=httpx.ConnectError("refused"))
    with api.client(deadline=1).worker("r1", heartbeat_interval=0.5) as run:
        run.stop_heartbeats()  # the test sends the heartbeat itself
        assert run.heartbeat() is True
        assert not run.cancelled.is_set()


def test_given_a_run_taken_by_another_worker_when_heartbeating_then_it_stops_without_acknowledging():
    other = problem(409, "status-conflict", run_id="r1", run_status="running", worker_id="w2")
    api = _service(start=ok(run_json(worker_id="w1")), heartbeat=other)
    with api.client().worker("r1", heartbeat_interval=None) as run:
        assert run.heartbeat() is False
        with pytest.raises(RunCancelled):
            run.check()
    assert run.stopped_status == "running"
    assert _routes(api) == ["POST start", "POST heartbeat"]


def test_given_no_worker_id_then_every_call_sends_host_and_pid():
    api = _service()
    with api.client().worker("r1", heartbeat_interval=None) as run:
        run.heartbeat()
    expected = f"{socket.gethostname()}:{os.getpid()}"
    assert run.worker_id.endswith(f":{os.getpid()}")
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}", run.worker_id)
    bodies = [json.loads(r.content) for r in api.requests]
    assert bodies == [
        {"worker_id": run.worker_id},
        {"worker_id": run.worker_id},
        {"status": "success", "worker_id": run.worker_id},
    ]
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", socket.gethostname()):
        assert run.worker_id == expected


def test_given_our_own_start_answer_lost_when_retried_then_the_run_is_adopted():
    mine = problem(409, "status-conflict", run_id="r1", run_status="running", worker_id="w1")
    api = _service(start=httpx.ReadTimeout("lost"), get=ok(run_json(worker_id="w1")))
    api.answers["POST /runs/r1/start"].append(mine)
    with api.client().worker("r1", worker_id="w1", heartbeat_interval=None) as run:
        assert run.run is not None
        assert run.run.worker_id == "w1"


def test_given_no_run_id_then_the_worker_creates_the_run_first():
    api = _service()
    api.on("POST /runs", ok(run_json("r1", "pending"), 201))
    with api.client().worker(metadata={"job": "nightly"}, heartbeat_interval=None) as run:
        assert run.run_id == "r1"
    assert api.bodies("POST /runs") == [{"metadata": {"job": "nightly"}}]


# ---- async ---------------------------------------------------------------------------------


def test_given_an_async_block_when_the_run_is_interrupted_then_the_task_is_cancelled_and_the_stop_acknowledged():
    # Given: a block that waits forever; a second task sends the heartbeat that learns of the cancel
    api = _service(heartbeat=_interrupted(cancel=CANCEL))
    reached: list[str] = []

    async def work() -> None:
        async with api.async_client() as client:
            async with client.worker("r1", heartbeat_interval=None) as run:
                asyncio.get_running_loop().create_task(run.heartbeat())
                await asyncio.Event().wait()
                reached.append("after the wait")
            reached.append(f"after the block, cancelled={run.cancelled.is_set()}")

    # When
    asyncio.run(work())
    # Then: the block ended at its await; the code after the block ran normally
    assert reached == ["after the block, cancelled=True"]
    assert _routes(api) == ["POST start", "POST heartbeat", "POST stopped"]


def test_given_an_async_block_that_ends_then_success_and_one_that_raises_then_error():
    api = _service()

    async def work(fail: bool) -> None:
        async with api.async_client() as client, client.worker("r1", worker_id="w1", heartbeat_interval=None):
            if fail:
                raise ValueError("boom")

    asyncio.run(work(False))
    with pytest.raises(ValueError, match="boom"):
        asyncio.run(work(True))
    assert api.bodies("POST /runs/r1/complete") == [
        {"status": "success", "worker_id": "w1"},
        {"status": "error", "worker_id": "w1"},
    ]


def test_given_an_async_block_cancelled_by_someone_else_then_the_cancellation_propagates_and_the_run_errors():
    api = _service()

    async def work() -> None:
        async with api.async_client() as client, client.worker("r1", worker_id="w1", heartbeat_interval=None):
            await asyncio.Event().wait()

    async def main() -> None:
        task = asyncio.get_running_loop().create_task(work())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert api.bodies("POST /runs/r1/complete") == [{"status": "error", "worker_id": "w1"}]


def test_given_an_async_check_after_a_cancel_then_runcancelled_is_swallowed_by_the_block():
    api = _service(heartbeat=_interrupted(cancel=CANCEL))

    async def work() -> bool:
        async with api.async_client() as client:
            async with client.worker("r1", heartbeat_interval=None) as run:
                run._in_body = False  # as if the heartbeat came between two awaits: no task cancel
                await run.heartbeat()
                run.check()
            return run.cancelled.is_set()

    assert asyncio.run(work()) is True
    assert _routes(api) == ["POST start", "POST heartbeat", "POST stopped"]
