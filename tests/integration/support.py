"""Helpers for the integration tests: starting calls together, fresh runs, wire counting."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx

from runstop.runs import create_run, start_run
from runstop.store import RunStore

TABLE = "RunsTable"
"""The template's table; locally every table is named after its logical id."""

RACE_TIMEOUT = 60.0
"""Generous: a round takes well under a second, but the machine is shared."""


def race[T](calls: Sequence[Callable[[], T]], timeout: float = RACE_TIMEOUT) -> list[T]:
    """Run each call on its own thread, all released at once by a barrier; results in order.

    Without the barrier the first threads would finish before the last ones start, and the
    calls would not overlap at all. An exception in a call fails the test with it.
    """
    barrier = threading.Barrier(len(calls), timeout=timeout)

    def released(call: Callable[[], T]) -> T:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="race") as pool:
        futures = [pool.submit(released, call) for call in calls]
        return [future.result(timeout=timeout) for future in futures]


def new_run_id() -> str:
    return f"it-{uuid.uuid4()}"


def running_run(store: RunStore, tenant: str) -> tuple[str, int]:
    """A fresh run, created and started; returns its id and its version after the start."""
    run_id = new_run_id()
    create_run(store, tenant, run_id, {"test": "integration"})
    started = start_run(store, tenant, run_id)
    assert started["status"] == "running"
    return run_id, int(started["version"])


def running_run_over_http(http: httpx.Client, tenant: str) -> str:
    """A fresh run created and started through the API."""
    run_id = new_run_id()
    headers = {"X-Tenant-Id": tenant}
    created = http.post("/runs", json={"run_id": run_id}, headers=headers)
    assert created.status_code == 201, created.text
    started = http.post(f"/runs/{run_id}/start", headers=headers)
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "running"
    return run_id


@contextmanager
def wire_requests(client: Any) -> Iterator[list[str]]:
    """The operation names of the DynamoDB requests `client` sends (retries included) meanwhile.

    botocore emits before-send once per HTTP attempt, so this counts what reaches the wire.
    """
    sent: list[str] = []

    def record(event_name: str, **_: Any) -> None:
        sent.append(event_name.rsplit(".", 1)[-1])

    client.meta.events.register("before-send.dynamodb", record)
    try:
        yield sent
    finally:
        client.meta.events.unregister("before-send.dynamodb", record)


def listening(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
