"""GET /runs over real HTTP on DynamoDB Local: every page of a tenant's runs, in order, and
never a run of another tenant, however the cursor is passed around."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from runstop.runs import create_run, start_run
from runstop.store import RunStore

pytestmark = pytest.mark.integration

MINE = 160
THEIRS = 110
STARTED_EVERY = 3


def _seed(store: RunStore, mine: str, theirs: str) -> dict[str, list[dict[str, Any]]]:
    """Runs of both tenants created interleaved (their pages overlap in time); every third started."""
    plan = [(tenant, i) for i in range(MINE) for tenant in (mine, theirs) if tenant == mine or i < THEIRS]

    def make(entry: tuple[str, int]) -> dict[str, Any]:
        tenant, i = entry
        run = create_run(store, tenant, f"run-{i:03d}", {"n": i})
        return start_run(store, tenant, run["run_id"]) if i % STARTED_EVERY == 0 else run

    with ThreadPoolExecutor(max_workers=8) as pool:
        made = list(pool.map(make, plan))
    return {tenant: [run for run in made if run["tenant_id"] == tenant] for tenant in (mine, theirs)}


def _newest_first(runs: list[dict[str, Any]]) -> list[str]:
    return [run["run_id"] for run in sorted(runs, key=lambda run: (run["created_at"], run["run_id"]), reverse=True)]


def _pages(http: httpx.Client, tenant: str, params: dict[str, Any]) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = http.get("/runs", params=query, headers={"X-Tenant-Id": tenant})
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages


def test_given_270_runs_of_two_tenants_when_paging_then_each_sees_all_its_runs_once_newest_first(
    http: httpx.Client, store: RunStore
) -> None:
    # Given
    mine, theirs = f"it-{uuid.uuid4().hex[:10]}", f"it-{uuid.uuid4().hex[:10]}"
    seeded = _seed(store, mine, theirs)
    assert (len(seeded[mine]), len(seeded[theirs])) == (MINE, THEIRS)

    for tenant, limit in [(mine, 7), (mine, 100), (theirs, 9)]:
        # When
        pages = _pages(http, tenant, {"limit": limit})
        # Then
        listed = [run["run_id"] for page in pages for run in page]
        assert listed == _newest_first(seeded[tenant]), "none missing, none repeated, newest first"
        assert {run["tenant_id"] for page in pages for run in page} == {tenant}
        assert all(len(page) == limit for page in pages[:-1])
        assert 0 < len(pages[-1]) <= limit


def test_given_runs_in_two_statuses_when_paging_one_status_then_exactly_those_runs_come(
    http: httpx.Client, store: RunStore
) -> None:
    # Given
    mine, theirs = f"it-{uuid.uuid4().hex[:10]}", f"it-{uuid.uuid4().hex[:10]}"
    seeded = _seed(store, mine, theirs)
    running = [run for run in seeded[mine] if run["status"] == "running"]
    # When
    pages = _pages(http, mine, {"status": "running", "limit": 8})
    # Then
    assert [run["run_id"] for page in pages for run in page] == _newest_first(running)
    assert {run["status"] for page in pages for run in page} == {"running"}


def test_given_a_cursor_of_one_tenant_when_another_tenant_sends_it_then_400(
    http: httpx.Client, store: RunStore
) -> None:
    # Given
    mine, theirs = f"it-{uuid.uuid4().hex[:10]}", f"it-{uuid.uuid4().hex[:10]}"
    for tenant in (mine, theirs):
        for i in range(3):
            create_run(store, tenant, f"r{i}", {})
    cursor = http.get("/runs", params={"limit": 1}, headers={"X-Tenant-Id": theirs}).json()["next_cursor"]
    # When
    response = http.get("/runs", params={"limit": 1, "cursor": cursor}, headers={"X-Tenant-Id": mine})
    # Then
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
