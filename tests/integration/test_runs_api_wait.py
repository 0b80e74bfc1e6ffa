"""POST /runs/{run_id}/cancel?wait=N over real HTTP on DynamoDB Local, with a worker that
acknowledges its stop and one that never does."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.integration.support import running_run_over_http

pytestmark = pytest.mark.integration

HEARTBEAT_SECONDS = 0.2


def _worker(http: httpx.Client, tenant: str, run_id: str, stopped: threading.Event) -> None:
    """A well-behaved worker: heartbeats until told the run is interrupted, then acknowledges."""
    headers = {"X-Tenant-Id": tenant}
    while not stopped.is_set():
        beat = http.post(f"/runs/{run_id}/heartbeat", headers=headers)
        if beat.status_code == 409 and beat.json()["run_status"] == "interrupted":
            ack = http.post(f"/runs/{run_id}/stopped", headers=headers)
            assert ack.status_code == 200, ack.text
            stopped.set()
            return
        assert beat.status_code == 200, beat.text
        time.sleep(HEARTBEAT_SECONDS)


def test_given_a_worker_that_acknowledges_when_cancelled_with_wait_then_stop_acknowledged_well_before_n(
    http: httpx.Client, tenant: str
) -> None:
    # Given
    run_id = running_run_over_http(http, tenant)
    stopped = threading.Event()
    worker = threading.Thread(target=_worker, args=(http, tenant, run_id, stopped), daemon=True)
    worker.start()
    # When
    started = time.monotonic()
    response = http.post(f"/runs/{run_id}/cancel", params={"wait": 10}, headers={"X-Tenant-Id": tenant})
    elapsed = time.monotonic() - started
    worker.join(timeout=10)
    # Then
    assert response.status_code == 202, response.text
    assert (response.json()["outcome"], response.json()["stop_acknowledged"]) == ("interrupted", True)
    assert stopped.is_set()
    assert elapsed < 3, f"answered after {elapsed:.1f}s; the worker acknowledged within a heartbeat"
    run = http.get(f"/runs/{run_id}", headers={"X-Tenant-Id": tenant}).json()
    assert run["stopped_at"] is not None


def test_given_a_worker_that_never_acknowledges_when_cancelled_with_wait_then_false_after_n(
    http: httpx.Client, tenant: str
) -> None:
    # Given
    run_id = running_run_over_http(http, tenant)
    # When
    started = time.monotonic()
    response = http.post(f"/runs/{run_id}/cancel", params={"wait": 2}, headers={"X-Tenant-Id": tenant})
    elapsed = time.monotonic() - started
    # Then
    assert response.status_code == 202, response.text
    assert (response.json()["outcome"], response.json()["stop_acknowledged"]) == ("interrupted", False)
    assert 2 <= elapsed < 4, f"answered after {elapsed:.1f}s"
    run = http.get(f"/runs/{run_id}", headers={"X-Tenant-Id": tenant}).json()
    assert (run["status"], run["stopped_at"]) == ("interrupted", None)
