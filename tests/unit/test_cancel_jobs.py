"""Cancel jobs on moto: the API answers 202 with the job; a worker works it in steps through the
one cancel decision; the filter selects exactly; a resumed or duplicated worker never counts a run
twice; runs created after the job started are never touched."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from runstop import jobs, runs
from runstop.cancel import cancel_run
from runstop.links import Links
from runstop.status import RunStatus
from runstop.store import RunStore
from tests.helpers import api_event, body_of
from tests.unit.conftest import Faults, throttled
from tests.unit.support import OTHER_TENANT, T0, T1, TENANT, assert_problem, seed_run, stored_run

ALL_PENDING_AND_RUNNING = {"filter": {}, "reason": "cleanup"}


def _start(runs_handler: Any, body: dict[str, Any], tenant: str = TENANT, **headers: str) -> dict[str, Any]:
    response = runs_handler(api_event("POST", "/cancel-jobs", body, tenant=tenant, headers=headers))
    assert response["statusCode"] == 202, body_of(response)
    job: dict[str, Any] = body_of(response)
    return job


def _read(runs_handler: Any, job_id: str, tenant: str = TENANT) -> dict[str, Any]:
    response = runs_handler(api_event("GET", f"/cancel-jobs/{job_id}", tenant=tenant))
    assert response["statusCode"] == 200, body_of(response)
    job: dict[str, Any] = body_of(response)
    return job


def _epoch(job_id: str, tenant: str = TENANT) -> str:
    job = jobs.job_table().get(tenant, job_id)
    assert job is not None
    return str(job["epoch"])


def _work(store: RunStore, job_id: str, tenant: str = TENANT, **kwargs: Any) -> jobs.WorkResult:
    return jobs.work(jobs.job_table(), store, tenant, job_id, _epoch(job_id, tenant), **kwargs)


def _seed_many(store: RunStore, clock: Any, prefix: str, count: int, status: str = "running", **meta: Any) -> None:
    for i in range(count):
        clock.moment = T0 + timedelta(milliseconds=i)
        runs.create_run(store, TENANT, f"{prefix}{i:03d}", dict(meta))
        if status != "pending":
            runs.start_run(store, TENANT, f"{prefix}{i:03d}")


def test_given_a_filter_when_a_job_is_posted_then_202_with_a_running_job_and_nothing_decided_yet(
    store, runs_handler, clock
):
    # Given
    seed_run(store, "r1", "running")
    clock.moment = T1
    # When
    job = _start(runs_handler, {"filter": {"metadata": {"team": "a"}}, "reason": "cleanup", "force": True})
    # Then
    assert job["state"] == "running"
    assert job["created_at"] == job["updated_at"]
    assert job["filter"] == {
        "status": ["pending", "running"],
        "created_before": None,
        "metadata": {"team": "a"},
        "concurrency_key": None,
    }
    assert (job["reason"], job["force"], job["finished_at"]) == ("cleanup", True, None)
    assert job["matched"] == 0
    assert job["counts"] == {"interrupted": 0, "already_interrupted": 0, "conflict": 0, "failed": 0}
    assert _read(runs_handler, job["job_id"]) == job
    assert stored_run(store.client, "r1")["status"] == "running"


def test_given_a_job_when_worked_then_every_matching_run_is_decided_once_and_counted(store, runs_handler, clock):
    # Given: matching runs in every status, and runs that do not match
    for run_id, status in [("p", "pending"), ("r", "running"), ("s", "success"), ("i", "interrupted")]:
        seed_run(store, run_id, status)
    runs.create_run(store, TENANT, "other-team", {"owner": "someone else"})
    seed_run(store, "other-tenant", "running", tenant=OTHER_TENANT)
    clock.moment = T1
    body = {"filter": {"status": ["pending", "running", "success", "interrupted"], "metadata": {"owner": "tests"}}}
    job = _start(runs_handler, {**body, "reason": "sweep"})
    # When
    result = _work(store, job["job_id"])
    # Then
    assert result.end is jobs.WorkEnd.DONE
    done = _read(runs_handler, job["job_id"])
    assert done["state"] == "done"
    assert done["finished_at"] is not None
    assert done["matched"] == 4
    assert done["counts"] == {"interrupted": 2, "already_interrupted": 1, "conflict": 1, "failed": 0}
    for run_id in ("p", "r"):
        cancel = stored_run(store.client, run_id)["cancel"]
        assert (cancel["source"], cancel["reason"]) == ("job", "sweep")
        assert cancel["idempotency_key"] == f"job:{job['job_id']}"
    assert stored_run(store.client, "other-team")["status"] == "pending"
    assert stored_run(store.client, "other-tenant", tenant=OTHER_TENANT)["status"] == "running"


def test_given_created_before_and_a_key_when_worked_then_only_older_runs_with_that_key(store, runs_handler, clock):
    # Given
    clock.moment = T0
    runs.create_run(store, TENANT, "old-keyed", {}, links=Links(concurrency_key="k"))
    runs.create_run(store, TENANT, "old-plain", {})
    clock.moment = T0 + timedelta(minutes=5)
    runs.create_run(store, TENANT, "new-keyed", {}, links=Links(concurrency_key="k2"))
    clock.moment = T1
    filter_ = {"created_before": "2026-03-04T05:08:00+00:00", "concurrency_key": "k"}  # T0 + ~1 min, UTC
    job = _start(runs_handler, {"filter": filter_})
    # When
    _work(store, job["job_id"])
    # Then
    assert _read(runs_handler, job["job_id"])["matched"] == 1
    assert stored_run(store.client, "old-keyed")["status"] == "interrupted"
    assert stored_run(store.client, "old-plain")["status"] == "pending"
    assert stored_run(store.client, "new-keyed")["status"] == "pending"


def test_given_runs_created_after_the_job_started_when_worked_then_they_are_not_touched(store, runs_handler, clock):
    # Given
    clock.moment = T0
    runs.create_run(store, TENANT, "before", {})
    clock.moment = T1
    job = _start(runs_handler, ALL_PENDING_AND_RUNNING)
    runs.create_run(store, TENANT, "same-moment", {})
    clock.moment = T1 + timedelta(seconds=1)
    runs.create_run(store, TENANT, "after", {})
    # When
    _work(store, job["job_id"])
    # Then
    assert stored_run(store.client, "before")["status"] == "interrupted"
    assert stored_run(store.client, "same-moment")["status"] == "pending"
    assert stored_run(store.client, "after")["status"] == "pending"


def test_given_many_pages_when_time_runs_short_then_the_job_hands_over_and_the_next_worker_finishes(
    store, runs_handler, clock, monkeypatch
):
    # Given: 7 runs, pages of 3, and a worker with time for 2 steps
    monkeypatch.setattr(jobs, "PAGE_SIZE", 3)
    _seed_many(store, clock, "r", 7)
    clock.moment = T1
    job = _start(runs_handler, ALL_PENDING_AND_RUNNING)
    budget = iter([60_000, 60_000, 0])
    # When
    first = _work(store, job["job_id"], remaining_ms=lambda: next(budget), margin_ms=1_000)
    stored = jobs.job_table().get(TENANT, job["job_id"])
    second = _work(store, job["job_id"])
    # Then
    assert (first.end, first.steps) == (jobs.WorkEnd.HANDED_OVER, 2)
    assert stored is not None
    assert stored["wake"] == stored["epoch"]  # what wakes the next worker
    assert second.end is jobs.WorkEnd.DONE
    done = _read(runs_handler, job["job_id"])
    assert (done["matched"], done["counts"]["interrupted"]) == (7, 7)


def test_given_a_worker_that_died_after_storing_a_page_when_resumed_then_each_run_counts_once(
    store, runs_handler, clock
):
    # Given: a worker stored the page, decided two of its runs, and died before storing the counts
    _seed_many(store, clock, "r", 4)
    clock.moment = T1
    job_id = _start(runs_handler, ALL_PENDING_AND_RUNNING)["job_id"]
    table = jobs.job_table()
    job = table.get(TENANT, job_id)
    assert job is not None
    page_ids, values = jobs._page(store, job, jobs.JobFilter.from_item(job["filter"]))
    assert table.advance(job, values) is not None
    for run_id in page_ids[:2]:
        cancel_run(store, TENANT, run_id, reason=None, idempotency_key=f"job:{job_id}", source="job")
    # When: the message comes back (same epoch) and another worker resumes
    result = jobs.work(table, store, TENANT, job_id, job["epoch"])
    # Then
    assert result.end is jobs.WorkEnd.DONE
    done = _read(runs_handler, job_id)
    assert done["matched"] == 4
    assert done["counts"] == {"interrupted": 4, "already_interrupted": 0, "conflict": 0, "failed": 0}


def test_given_a_stale_or_foreign_message_when_worked_then_it_does_nothing(store, runs_handler):
    # Given
    seed_run(store, "r", "running")
    job_id = _start(runs_handler, ALL_PENDING_AND_RUNNING)["job_id"]
    # When
    results = [
        jobs.work(jobs.job_table(), store, TENANT, job_id, "req:an-old-epoch"),
        jobs.work(jobs.job_table(), store, OTHER_TENANT, job_id, _epoch(job_id)),
        jobs.work(jobs.job_table(), store, TENANT, "no-such-job", "req:x"),
    ]
    # Then
    assert {r.end for r in results} == {jobs.WorkEnd.STALE}
    assert stored_run(store.client, "r")["status"] == "running"


def test_given_a_job_done_when_its_message_comes_again_then_nothing_changes(store, runs_handler):
    # Given
    seed_run(store, "r", "running")
    job_id = _start(runs_handler, ALL_PENDING_AND_RUNNING)["job_id"]
    epoch = _epoch(job_id)
    jobs.work(jobs.job_table(), store, TENANT, job_id, epoch)
    before = _read(runs_handler, job_id)
    # When
    again = jobs.work(jobs.job_table(), store, TENANT, job_id, epoch)
    # Then
    assert again.end is jobs.WorkEnd.STALE
    assert _read(runs_handler, job_id) == before


def test_given_decisions_that_keep_failing_when_worked_then_those_runs_count_as_failed(
    store, runs_handler, faults: Faults
):
    # Given
    seed_run(store, "r", "running")
    job_id = _start(runs_handler, ALL_PENDING_AND_RUNNING)["job_id"]
    faults.inject("UpdateItem", lambda request: None if b"CancelJobsTable" in request.body else throttled(request))
    # When
    _work(store, job_id)
    # Then
    counts = _read(runs_handler, job_id)
    assert counts["matched"] == 1
    assert counts["counts"]["failed"] == 1
    assert stored_run(store.client, "r")["status"] == "running"


def test_given_an_idempotency_key_when_the_job_is_posted_again_then_the_same_job(store, runs_handler):
    # When
    first = _start(runs_handler, ALL_PENDING_AND_RUNNING, **{"Idempotency-Key": "job-1"})
    repeat = _start(runs_handler, ALL_PENDING_AND_RUNNING, **{"Idempotency-Key": "job-1"})
    other_tenant = _start(runs_handler, ALL_PENDING_AND_RUNNING, tenant=OTHER_TENANT, **{"Idempotency-Key": "job-1"})
    reused = runs_handler(
        api_event(
            "POST",
            "/cancel-jobs",
            {"filter": {"status": ["pending"]}},
            tenant=TENANT,
            headers={"Idempotency-Key": "job-1"},
        )
    )
    # Then
    assert repeat == first
    assert other_tenant["job_id"] != first["job_id"]
    assert_problem(reused, 422, "idempotency-key-reused")


def test_given_another_tenants_job_when_read_then_404(store, runs_handler):
    job_id = _start(runs_handler, ALL_PENDING_AND_RUNNING)["job_id"]
    response = runs_handler(api_event("GET", f"/cancel-jobs/{job_id}", tenant=OTHER_TENANT))
    assert assert_problem(response, 404, "cancel-job-not-found")["job_id"] == job_id


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"filter": {"status": []}},
        {"filter": {"status": ["stopped"]}},
        {"filter": {"created_before": "yesterday"}},
        {"filter": {"created_before": "2026-03-04T05:06:07"}},
        {"filter": {"created_before": "0001-01-01T00:00:00+01:00"}},
        {"filter": {"metadata": {"": 1}}},
        {"filter": {"concurrency_key": ""}},
        {"filter": {}, "reason": "x" * 300},
        {"filter": {}, "force": "yes"},
        {"filter": {}, "extra": 1},
        {"filter": {"unknown": 1}},
    ],
)
def test_given_a_bad_job_request_when_posted_then_422_and_no_job(store, runs_handler, body):
    assert_problem(runs_handler(api_event("POST", "/cancel-jobs", body, tenant=TENANT)), 422, "validation")


@pytest.mark.parametrize("path", ["/cancel-jobs/bad%20id", "/cancel-jobs/-x"])
def test_given_a_bad_job_id_when_read_then_400(store, runs_handler, path):
    assert_problem(runs_handler(api_event("GET", "/cancel-jobs/placeholder", tenant=TENANT) | _path(path)), 400)


def _path(path: str) -> dict[str, Any]:
    from urllib.parse import unquote

    job_id = unquote(path.rsplit("/", 1)[1])
    return {"rawPath": path, "pathParameters": {"job_id": job_id}}


def test_given_the_job_write_is_throttled_when_posted_then_503(store, runs_handler, faults: Faults):
    faults.inject("PutItem", throttled)
    response = runs_handler(api_event("POST", "/cancel-jobs", ALL_PENDING_AND_RUNNING, tenant=TENANT))
    assert_problem(response, 503, "store-unavailable")


def test_the_filter_matches_metadata_entries_exactly():
    job_filter = jobs.JobFilter(metadata={"n": 1, "tags": ["a"], "none": None})
    assert job_filter.matches({"metadata": {"n": 1.0, "tags": ["a"], "none": None, "more": 2}})
    assert not job_filter.matches({"metadata": {"n": 1, "tags": ["a"]}})  # "none" absent is not null
    assert not job_filter.matches({"metadata": {"n": 2, "tags": ["a"], "none": None}})
    assert jobs.JobFilter(statuses=(RunStatus.RUNNING, RunStatus.PENDING)).ordered_statuses() == [
        RunStatus.PENDING,
        RunStatus.RUNNING,
    ]
