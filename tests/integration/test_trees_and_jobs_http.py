"""Trees, concurrency keys and cancel jobs through the local runner, as `make run` serves them:
the HTTP API, DynamoDB Local's streams through the template's pipes into the queue stand-ins,
and the CascadeFunction and CancelJobFunction in worker processes of their own."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from runstop import clock
from runstop.concurrency import key_locks
from runstop.status import RunStatus
from runstop.store import RunStore
from runstop_dev.seed import put_runs, run_item, tree_items
from tests.integration.support import new_run_id, running_run_over_http

pytestmark = pytest.mark.integration

TREE_SIZE = int(os.environ.get("RUNSTOP_HTTP_TREE_SIZE", "111"))
"""1 + 10 + 100 by default; RUNSTOP_HTTP_TREE_SIZE=1000 for the issue's figure (bench/trees.py measures it)."""
DEADLINE = 120.0
"""Generous: on a shared machine DynamoDB Local alone may take this long for a big tree."""


def _eventually[T](check: Callable[[], T], timeout: float = DEADLINE) -> T:
    """Poll `check` until it answers something truthy (the stream's consumers run in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def _interrupted_count(store: RunStore, tenant: str) -> int:
    total, start = 0, None
    while True:
        extra: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
        page = store.client.query(
            TableName=store.table_name,
            IndexName="ByStatus",
            KeyConditionExpression="tenant_status = :p",
            ExpressionAttributeValues={":p": {"S": f"{tenant}#interrupted"}},
            Select="COUNT",
            **extra,
        )
        total += int(page["Count"])
        start = page.get("LastEvaluatedKey")
        if not start:
            return total


def test_given_a_tree_when_its_root_is_cancelled_over_http_then_every_run_is_interrupted_soon_after_the_202(
    http: httpx.Client, store: RunStore, tenant: str
) -> None:
    # Given: a running tree, ten children per run
    root = f"tree-{uuid.uuid4().hex[:8]}"
    put_runs(store.client, store.table_name, tree_items(tenant, root, TREE_SIZE, 10, clock.now()), workers=8)
    # When
    answer = http.post(f"/runs/{root}/cancel", json={"reason": "user stop"}, headers={"X-Tenant-Id": tenant})
    accepted = time.monotonic()
    # Then
    assert answer.status_code == 202, answer.text
    assert _eventually(lambda: _interrupted_count(store, tenant) == TREE_SIZE), _interrupted_count(store, tenant)
    elapsed = time.monotonic() - accepted
    print(f"\ntree of {TREE_SIZE} runs fully interrupted {elapsed:.1f} s after the root's 202")
    for run_id in (f"{root}.1", f"{root}.{TREE_SIZE - 1}"):
        run = store.get(tenant, run_id)
        assert run is not None
        assert (run["cancel"]["source"], run["cancel"]["reason"], run["cancel"]["root_run_id"]) == (
            "cascade",
            "user stop",
            root,
        )


def test_given_a_parent_over_http_then_children_join_it_list_under_it_and_are_refused_once_it_is_cancelled(
    http: httpx.Client, tenant: str
) -> None:
    headers = {"X-Tenant-Id": tenant}
    parent = running_run_over_http(http, tenant)
    # When
    children = [http.post("/runs", json={"parent_run_id": parent}, headers=headers) for _ in range(3)]
    listed = http.get("/runs", params={"parent_run_id": parent}, headers=headers)
    http.post(f"/runs/{parent}/cancel", headers=headers)
    late = http.post("/runs", json={"parent_run_id": parent}, headers=headers)
    # Then
    assert [c.status_code for c in children] == [201, 201, 201]
    assert [r["run_id"] for r in listed.json()["items"]] == [c.json()["run_id"] for c in reversed(children)]
    assert late.status_code == 409
    assert late.headers["content-type"] == "application/problem+json"
    assert (late.json()["parent_run_id"], late.json()["run_status"]) == (parent, "interrupted")
    assert _eventually(
        lambda: all(
            http.get(f"/runs/{c.json()['run_id']}", headers=headers).json()["status"] == "interrupted" for c in children
        )
    )


def test_given_a_key_over_http_when_a_new_run_interrupts_it_and_then_ends_then_the_lock_is_gone(
    http: httpx.Client, tenant: str
) -> None:
    headers = {"X-Tenant-Id": tenant}
    first = http.post("/runs", json={"run_id": new_run_id(), "concurrency_key": "chat-1"}, headers=headers)
    refused = http.post("/runs", json={"concurrency_key": "chat-1"}, headers=headers)
    second = http.post("/runs", json={"concurrency_key": "chat-1", "on_active": "interrupt"}, headers=headers)
    assert (first.status_code, refused.status_code, second.status_code) == (201, 409, 201)
    assert refused.json()["active_run_id"] == first.json()["run_id"]
    superseded = http.get(f"/runs/{first.json()['run_id']}", headers=headers).json()
    assert superseded["cancel"]["superseded_by"] == second.json()["run_id"]
    # When the new run ends by itself
    run_id = second.json()["run_id"]
    http.post(f"/runs/{run_id}/start", headers=headers)
    http.post(f"/runs/{run_id}/complete", json={"status": "success"}, headers=headers)
    # Then the key is free at once, and the stream's consumer deletes its lock item
    assert http.post("/runs", json={"concurrency_key": "chat-2"}, headers=headers).status_code == 201
    assert _eventually(lambda: key_locks().holder_id(tenant, "chat-1") is None)


def test_given_matching_runs_when_a_cancel_job_is_posted_then_it_runs_to_done_with_its_counts(
    http: httpx.Client, store: RunStore, tenant: str
) -> None:
    # Given: 60 running runs of team a, 10 of team b, 5 of team a already finished
    at = clock.now()
    items = [run_item(tenant, f"a-{i}", RunStatus.RUNNING, at) for i in range(60)]
    items += [run_item(tenant, f"b-{i}", RunStatus.RUNNING, at) for i in range(10)]
    items += [run_item(tenant, f"done-{i}", RunStatus.SUCCESS, at) for i in range(5)]
    for item in items:
        item["metadata"] = {"team": "b" if item["run_id"].startswith("b-") else "a"}
    put_runs(store.client, store.table_name, items)
    # When
    body = {"filter": {"status": ["running", "success"], "metadata": {"team": "a"}}, "reason": "cleanup"}
    posted = http.post("/cancel-jobs", json=body, headers={"X-Tenant-Id": tenant})
    # Then
    assert posted.status_code == 202, posted.text
    job_id = posted.json()["job_id"]

    def finished() -> dict[str, Any] | None:
        job: dict[str, Any] = http.get(f"/cancel-jobs/{job_id}", headers={"X-Tenant-Id": tenant}).json()
        return job if job["state"] == "done" else None

    job = _eventually(finished)
    assert job is not None
    assert job["matched"] == 65
    assert job["counts"] == {"interrupted": 60, "already_interrupted": 0, "conflict": 5, "failed": 0}
    assert http.get(f"/cancel-jobs/{job_id}", headers={"X-Tenant-Id": "someone-else"}).status_code == 404
    assert store.get(tenant, "b-0")["status"] == "running"  # type: ignore[index]
