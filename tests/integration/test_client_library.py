"""runstop_client against the local runner on DynamoDB Local: the client's calls and the worker helper."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from runstop.status import RunStatus
from runstop_client import (
    AsyncClient,
    Client,
    InvalidRequest,
    RetryPolicy,
    RunCancelled,
    RunConflict,
    RunNotFound,
    Unavailable,
)
from runstop_dev import seed
from runstop_dev.ddb_local import free_port
from runstop_dev.local_api import LocalApi
from tests.integration.client_support import (
    FEATURES,
    LossyProxy,
    eventually,
    grace,
    needs_force,
    needs_stop_deadline,
    needs_stop_filter,
    needs_worker_id,
)
from tests.integration.support import TABLE, new_run_id

pytestmark = pytest.mark.integration

HEARTBEAT = 0.2
"""Seconds between heartbeats in these tests, so a cancel reaches the worker in well under a second."""


@pytest.fixture
def client(api: LocalApi, tenant: str) -> Iterator[Client]:
    with Client(api.url, tenant=tenant, retry=RetryPolicy(deadline=20)) as made:
        yield made


def test_create_get_start_complete_round_trip(client):
    # Given
    run_id = new_run_id()
    created = client.create(run_id, metadata={"job": "nightly"})
    # When
    started = client.start(run_id)
    client.heartbeat(run_id)
    done = client.complete(run_id, "success")
    # Then
    assert (created.status, started.status, done.status) == ("pending", "running", "success")
    assert client.get(run_id).metadata == {"job": "nightly"}


def test_a_create_retried_with_its_key_creates_once(client):
    key = f"key-{uuid.uuid4()}"
    first = client.create(idempotency_key=key, metadata={"n": 1})
    again = client.create(idempotency_key=key, metadata={"n": 1})
    assert first.run_id == again.run_id
    assert first.created_at == again.created_at


def test_every_cancel_outcome_and_the_conflict(client):
    # Given
    running, finished = new_run_id(), new_run_id()
    for run_id in (running, finished):
        client.create(run_id)
        client.start(run_id)
    client.complete(finished, "success")
    # When
    first = client.cancel(running, reason="user pressed Stop")
    second = client.cancel(running, reason="retry")
    absent = client.cancel(new_run_id())
    # Then
    assert (first.outcome, second.outcome, absent.outcome) == ("interrupted", "already_interrupted", "absent")
    assert second.cancel is not None
    assert second.cancel.reason == "user pressed Stop"
    with pytest.raises(RunConflict) as raised:
        client.cancel(finished)
    assert raised.value.run_status == "success"


def test_a_lost_cancel_answer_retried_with_its_key_is_still_told_interrupted(api, tenant, client):
    # Given: a proxy that loses the first cancel's answer after the service applied it
    run_id = new_run_id()
    client.create(run_id)
    with LossyProxy(api.url, lambda method, path: path.endswith("/cancel")) as proxy:
        lossy = Client(proxy.url, tenant=tenant, retry=RetryPolicy(deadline=20))
        # When
        result = lossy.cancel(run_id, reason="stop")
    # Then: the retry found its own cancel (same Idempotency-Key), not someone else's
    assert proxy.dropped == [f"POST /runs/{run_id}/cancel"]
    assert result.outcome == "interrupted"


def test_problems_become_typed_exceptions(client):
    with pytest.raises(RunNotFound):
        client.get(new_run_id())
    with pytest.raises(InvalidRequest):
        client.get("not a valid id!")
    with pytest.raises(InvalidRequest):
        client.complete(new_run_id(), "finished-ish")
    run_id = new_run_id()
    client.create(run_id)
    with pytest.raises(RunConflict) as raised:
        client.create(run_id)
    assert raised.value.type == "run-exists"


def test_no_service_at_all_is_unavailable_after_the_deadline(tenant):
    nowhere = Client(f"http://127.0.0.1:{free_port()}", tenant=tenant, retry=RetryPolicy(deadline=1))
    with nowhere, pytest.raises(Unavailable):
        nowhere.get("r1")


def test_list_pages_through_a_status_and_the_tenant_is_kept_apart(api, client):
    # Given: five pending runs in this tenant, one in another
    ids = [new_run_id() for _ in range(5)]
    for run_id in ids:
        client.create(run_id)
    with Client(api.url, tenant=f"other-{uuid.uuid4().hex[:8]}") as other:
        other.create(new_run_id())
    # When
    listed = [run.run_id for run in client.list(status="pending", page_size=2)]
    # Then
    assert sorted(listed) == sorted(ids)


def test_bulk_cancel_of_205_ids_goes_in_hundreds_with_progress(stack, tenant, client):
    # Given: 195 running runs, 5 finished ones (written straight into the table), 5 that never existed
    running = [new_run_id() for _ in range(195)]
    finished = [new_run_id() for _ in range(5)]
    now = datetime.now(UTC)
    items = [seed.run_item(tenant, run_id, RunStatus.RUNNING, now) for run_id in running]
    items += [seed.run_item(tenant, run_id, RunStatus.ERROR, now) for run_id in finished]
    seed.put_runs(stack.client(), stack.refs[TABLE], items)
    absent = [new_run_id() for _ in range(5)]
    progress: list[tuple[int, int]] = []
    # When
    items = client.cancel_many(
        running + finished + absent, reason="drain", progress=lambda done, total: progress.append((done, total))
    )
    # Then
    assert progress == [(100, 205), (200, 205), (205, 205)]
    kinds = [item.kind for item in items]
    assert kinds == ["interrupted"] * 195 + ["conflict"] * 5 + ["absent"] * 5
    assert client.get(running[-1]).cancel is not None


def test_cancel_with_wait_returns_once_the_worker_acknowledged(client):
    # Given: a worker whose block ends as soon as its heartbeat learns of the cancel
    run_id = new_run_id()
    client.create(run_id)
    entered = threading.Event()

    def work() -> None:
        with client.worker(run_id, heartbeat_interval=HEARTBEAT) as run:
            entered.set()
            run.cancelled.wait(60)

    worker = threading.Thread(target=work)
    worker.start()
    entered.wait(60)
    # When
    result = client.cancel(run_id, reason="stop", wait=15)
    worker.join(60)
    # Then
    assert result.stop_acknowledged is True
    assert client.get(run_id).stopped_at is not None


def test_the_worker_completes_success_and_error(client):
    ok_id, failing_id = new_run_id(), new_run_id()
    for run_id in (ok_id, failing_id):
        client.create(run_id)
    with client.worker(ok_id, heartbeat_interval=HEARTBEAT) as run:
        run.check()
    with pytest.raises(RuntimeError), client.worker(failing_id, heartbeat_interval=HEARTBEAT):
        raise RuntimeError("the work failed")
    assert client.get(ok_id).status == "success"
    assert client.get(failing_id).status == "error"


def test_the_worker_learns_of_a_cancel_by_heartbeat_stops_and_acknowledges(client):
    # Given
    run_id = new_run_id()
    client.create(run_id)
    steps = 0
    # When: another caller cancels while the block works in small steps
    with client.worker(run_id, heartbeat_interval=HEARTBEAT) as run:
        threading.Timer(0.3, lambda: client.cancel(run_id, reason="user pressed Stop")).start()
        while True:
            run.check()
            steps += 1
            run.cancelled.wait(0.05)
    # Then
    stored = client.get(run_id)
    assert stored.status == "interrupted"
    assert stored.stopped_at is not None
    assert run.cancel is not None
    assert run.cancel.reason == "user pressed Stop"
    assert steps > 0


def test_a_worker_for_a_run_cancelled_while_pending_never_runs_its_block(client):
    run_id = new_run_id()
    client.create(run_id)
    client.cancel(run_id, reason="never mind")
    with pytest.raises(RunCancelled), client.worker(run_id, heartbeat_interval=HEARTBEAT):
        pytest.fail("the block ran")
    assert client.get(run_id).stopped_at is not None


def test_the_worker_creates_the_run_when_given_no_id(client):
    with client.worker(metadata={"job": "adhoc"}, heartbeat_interval=HEARTBEAT) as run:
        pass
    assert client.get(run.run_id).status == "success"


def test_a_lost_answer_on_complete_still_ends_with_the_run_completed(api, tenant, client):
    run_id = new_run_id()
    client.create(run_id)
    with LossyProxy(api.url, lambda method, path: path.endswith("/complete")) as proxy:
        lossy = Client(proxy.url, tenant=tenant, retry=RetryPolicy(deadline=20))
        with lossy, lossy.worker(run_id, heartbeat_interval=HEARTBEAT):
            pass
    assert proxy.dropped == [f"POST /runs/{run_id}/complete"]
    assert client.get(run_id).status == "success"


def test_the_async_worker_cancels_its_task_at_any_await_and_acknowledges(api, tenant, client):
    # Given
    run_id = new_run_id()
    client.create(run_id)
    reached: list[str] = []

    async def work() -> None:
        async with AsyncClient(api.url, tenant=tenant, retry=RetryPolicy(deadline=20)) as aclient:
            async with aclient.worker(run_id, heartbeat_interval=HEARTBEAT) as run:
                loop = asyncio.get_running_loop()
                loop.call_later(0.3, lambda: loop.run_in_executor(None, lambda: client.cancel(run_id, reason="stop")))
                await asyncio.sleep(60)  # the cancel interrupts this await
                reached.append("slept a minute")
            reached.append(f"left the block, cancelled={run.cancelled.is_set()}")

    # When
    asyncio.run(asyncio.wait_for(work(), 30))
    # Then
    assert reached == ["left the block, cancelled=True"]
    stored = client.get(run_id)
    assert stored.status == "interrupted"
    assert stored.stopped_at is not None


def test_the_async_worker_completes_success(api, tenant, client):
    run_id = new_run_id()
    client.create(run_id)

    async def work() -> None:
        async with AsyncClient(api.url, tenant=tenant) as aclient, aclient.worker(run_id, heartbeat_interval=HEARTBEAT):
            await asyncio.sleep(0.5)  # a few heartbeats

    asyncio.run(work())
    stored = client.get(run_id)
    assert stored.status == "success"
    assert stored.heartbeat_at is not None
    assert stored.started_at is not None
    assert stored.heartbeat_at > stored.started_at


# ---- what needs the stop-guarantee features (issues 9 and 10): on once openapi.json has them ----


@needs_worker_id
def test_a_given_worker_id_is_stored_and_another_worker_is_refused(client):
    run_id = new_run_id()
    client.create(run_id)
    with client.worker(run_id, worker_id="w-1", heartbeat_interval=None) as run:
        assert client.get(run_id).worker_id == "w-1"
        with pytest.raises(RunConflict) as raised:
            client.heartbeat(run_id, worker_id="w-2")
        assert raised.value.worker_id == "w-1"
        assert run.heartbeat() is True


@needs_stop_deadline
def test_the_worker_is_told_the_stop_deadline(client):
    run_id = new_run_id()
    client.create(run_id, stop_grace_seconds=grace(30))
    with client.worker(run_id, heartbeat_interval=None) as run:
        client.cancel(run_id, reason="stop")
        assert run.heartbeat() is False
    assert run.cancel is not None
    assert run.cancel.requested_at is not None
    assert run.stop_deadline is not None
    assert (run.stop_deadline - run.cancel.requested_at).total_seconds() == pytest.approx(30, abs=1)


@needs_force
def test_a_forced_cancel_has_its_deadline_now(client):
    run_id = new_run_id()
    client.create(run_id)
    client.start(run_id)
    result = client.cancel(run_id, force=True)
    assert result.stop_deadline is not None
    assert result.cancel is not None
    assert result.stop_deadline == result.cancel.requested_at


@needs_stop_filter
def test_list_by_stop_state(client):
    stopping, acknowledged = new_run_id(), new_run_id()
    for run_id in (stopping, acknowledged):
        client.create(run_id)
        client.start(run_id)
        client.cancel(run_id)
    client.stopped(acknowledged)
    pending_ids = {run.run_id for run in client.list(stop="pending")}
    acknowledged_ids = {run.run_id for run in client.list(stop="acknowledged")}
    assert stopping in pending_ids
    assert acknowledged not in pending_ids
    assert acknowledged in acknowledged_ids


def test_features_detected_from_the_contract_are_consistent():
    # The client sends these only when asked; the detection decides which tests above run.
    assert isinstance(FEATURES.worker_id, bool)
    if FEATURES.force:
        assert FEATURES.stop_deadline
    eventually(lambda: True)
