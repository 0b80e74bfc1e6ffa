"""Cancel jobs on DynamoDB Local: a job racing new runs and completions, worked by two workers at
once (a duplicated delivery), and one whose worker dies mid-page. The counts always equal what
happened to the runs: each matching run is decided once and counted once, runs created after
the job started are never touched, and runs that do not match are left alone."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest

from runstop import jobs, runs
from runstop.errors import StoreUnavailable, TransitionConflict
from runstop.status import RunStatus
from runstop.store import RunStore
from tests.integration.support import new_run_id, race

pytestmark = pytest.mark.integration

SEEDED = 120
COMPLETERS = 30
CREATORS = 30


def _running(store: RunStore, tenant: str, team: str) -> str:
    run_id = new_run_id()
    runs.create_run(store, tenant, run_id, {"team": team})
    runs.start_run(store, tenant, run_id)
    return run_id


def _complete(store: RunStore, tenant: str, run_id: str) -> str:
    try:
        runs.complete_run(store, tenant, run_id, RunStatus.SUCCESS)
    except TransitionConflict:
        return "lost to the job"
    return "completed"


def _work(table: jobs.JobTable, store: RunStore, tenant: str, job_id: str, epoch: str) -> jobs.WorkEnd:
    return jobs.work(table, store, tenant, job_id, epoch).end


def _job_outcomes(store: RunStore, tenant: str, run_ids: list[str], job_id: str) -> Counter[str]:
    """What happened to each run, as the runs themselves tell it."""
    seen: Counter[str] = Counter()
    for run_id in run_ids:
        run = store.get(tenant, run_id)
        assert run is not None
        if run["status"] == "interrupted":
            assert run["cancel"]["idempotency_key"] == f"job:{job_id}"
            seen["interrupted by the job"] += 1
        else:
            seen[str(run["status"])] += 1
    return seen


def test_given_a_job_racing_creates_and_completions_when_two_workers_work_it_then_counts_match_the_runs(
    quiet_store: RunStore, tenant: str
) -> None:
    store = quiet_store
    # Given: running runs of team a (the filter) and of team b
    with ThreadPoolExecutor(max_workers=16) as pool:
        team_a = list(pool.map(lambda _: _running(store, tenant, "a"), range(SEEDED)))
        team_b = list(pool.map(lambda _: _running(store, tenant, "b"), range(20)))
    table = jobs.job_table()
    job = jobs.start_job(table, tenant, jobs.JobFilter(metadata={"team": "a"}), reason="race")
    stored = table.get(tenant, job["job_id"])
    assert stored is not None
    # When: two workers (one message delivered twice) work the job while runs finish and new ones start
    work = partial(_work, table, store, tenant, job["job_id"], stored["epoch"])
    calls: list[Any] = [work, work]
    calls += [partial(_complete, store, tenant, run_id) for run_id in team_a[:COMPLETERS]]
    calls += [partial(_running, store, tenant, "a") for _ in range(CREATORS)]
    answers = race(calls)
    newcomers = [answer for answer in answers[2 + COMPLETERS :] if isinstance(answer, str)]
    # Then
    assert jobs.WorkEnd.DONE in answers[:2]  # the other stopped at the first step it lost (or also saw done)
    done = jobs.get_job(table, tenant, job["job_id"])
    assert done["state"] == "done"
    happened = _job_outcomes(store, tenant, team_a, job["job_id"])
    counts = done["counts"]
    assert counts["interrupted"] == happened["interrupted by the job"]
    assert counts["already_interrupted"] == 0
    assert counts["failed"] == 0
    assert done["matched"] == counts["interrupted"] + counts["conflict"]
    # a run that finished by itself was either met finished (conflict) or not met at all
    assert happened["success"] >= counts["conflict"]
    assert happened["interrupted by the job"] + happened["success"] == SEEDED
    assert {str(run["status"]) for run in (store.get(tenant, r) for r in newcomers) if run} == {"running"}
    assert {str(run["status"]) for run in (store.get(tenant, r) for r in team_b) if run} == {"running"}
    print(
        f"\nfilter job vs {COMPLETERS} completions and {CREATORS} creates, 2 workers: "
        f"{done['counts']}, {dict(happened)}"
    )


class DiesAfter(RunStore):
    """The store of a worker that dies after `decisions` cancel decisions (its Lambda timed out)."""

    def __init__(self, inner: RunStore, decisions: int) -> None:
        super().__init__(inner.client, inner.table_name)
        self.left = decisions

    def apply(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.left -= 1
        if self.left < 0:
            raise KeyboardInterrupt("the worker died")  # not a store failure: nothing catches it
        return super().apply(*args, **kwargs)


def test_given_a_worker_that_dies_mid_page_when_the_message_comes_back_then_each_run_counts_once(
    quiet_store: RunStore, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = quiet_store
    # Given: 30 running runs, pages of 10, a worker that dies after 15 decisions
    monkeypatch.setattr(jobs, "PAGE_SIZE", 10)
    monkeypatch.setattr(jobs, "DECIDE_CONCURRENCY", 1)
    with ThreadPoolExecutor(max_workers=16) as pool:
        seeded = list(pool.map(lambda _: _running(store, tenant, "a"), range(30)))
    table = jobs.job_table()
    job = jobs.start_job(table, tenant, jobs.JobFilter(), reason="resume")
    stored = table.get(tenant, job["job_id"])
    assert stored is not None
    with pytest.raises(KeyboardInterrupt):
        jobs.work(table, DiesAfter(store, 15), tenant, job["job_id"], stored["epoch"])
    # When: SQS delivers the message again
    end = jobs.work(table, store, tenant, job["job_id"], stored["epoch"]).end
    # Then
    assert end is jobs.WorkEnd.DONE
    done = jobs.get_job(table, tenant, job["job_id"])
    assert done["matched"] == 30
    assert done["counts"] == {"interrupted": 30, "already_interrupted": 0, "conflict": 0, "failed": 0}
    assert _job_outcomes(store, tenant, seeded, job["job_id"]) == {"interrupted by the job": 30}


def test_given_a_store_failing_mid_job_when_retried_then_the_job_resumes_where_it_stopped(
    quiet_store: RunStore, tenant: str
) -> None:
    store = quiet_store
    # Given: a worker whose store fails while reading (the message is then delivered again)
    seeded = [_running(store, tenant, "a") for _ in range(5)]
    table = jobs.job_table()
    job = jobs.start_job(table, tenant, jobs.JobFilter(statuses=(RunStatus.RUNNING,)))
    stored = table.get(tenant, job["job_id"])
    assert stored is not None

    class Unreadable(RunStore):
        def query_page(self, *args: Any, **kwargs: Any) -> Any:
            raise StoreUnavailable("throttled")

    with pytest.raises(StoreUnavailable):
        jobs.work(table, Unreadable(store.client, store.table_name), tenant, job["job_id"], stored["epoch"])
    # When
    jobs.work(table, store, tenant, job["job_id"], stored["epoch"])
    # Then
    assert jobs.get_job(table, tenant, job["job_id"])["counts"]["interrupted"] == 5
    assert _job_outcomes(store, tenant, seeded, job["job_id"]) == {"interrupted by the job": 5}
