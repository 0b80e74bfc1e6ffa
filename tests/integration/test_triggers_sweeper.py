"""The sweeper on DynamoDB Local: 1,000 stale runs among 10,000, while workers finish and
heartbeat some of them at the same time. Every run a worker completed stays completed, every
heartbeat that landed keeps its run alive, and every other stale run is interrupted once.

The stale runs are dated in 2020 and the sweep's "now" follows from that, so the runs other
tests leave in the session's table are never stale to it.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runstop import runs
from runstop.errors import TransitionConflict
from runstop.status import RunStatus
from runstop.store import ActivePage, RunStore
from runstop.sweeper import HEARTBEAT_TIMEOUT, PENDING_TIMEOUT, SweepPolicy, sweep
from runstop_dev.seed import put_runs, run_item

pytestmark = pytest.mark.integration

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
NOW = LONG_AGO + timedelta(hours=2)
POLICY = SweepPolicy(heartbeat_timeout=timedelta(minutes=5), pending_timeout=timedelta(hours=1), concurrency=8)

TOTAL, STALE = 10_000, 1_000
STALE_PENDING = 200
COMPLETED_AFTER_QUERY = 100
"""Completed right after the sweeper's query returned them (deterministically between query and cancel)."""
RACING_COMPLETES, RACING_HEARTBEATS = 150, 150
"""Completed / heartbeated by worker threads running alongside the sweep."""


class WorkerBetweenQueryAndCancel(RunStore):
    """Completes chosen runs the moment the sweeper's query returns them."""

    def __init__(self, inner: RunStore, tenant: str, chosen: set[str]) -> None:
        super().__init__(inner.client, inner.table_name)
        self.tenant, self.chosen, self.completed = tenant, chosen, set[str]()
        self.lock = threading.Lock()

    def active_page(self, partition: str, **kwargs: Any) -> ActivePage:
        page = super().active_page(partition, **kwargs)
        for tenant, run_id in page.keys:
            if tenant == self.tenant and run_id in self.chosen:
                runs.complete_run(self, tenant, run_id, RunStatus.SUCCESS)
                with self.lock:
                    self.completed.add(run_id)
        return page


def test_the_seeded_runs_look_like_the_ones_the_api_makes(store, tenant, monkeypatch):
    # The bulk loader must write what create/start write, or the sweep below proves nothing.
    # (Dated after the sweep's cutoff, so that sweep never sees these two.)
    moment = NOW + timedelta(hours=1)
    monkeypatch.setattr("runstop.clock.now", lambda: moment)
    runs.create_run(store, tenant, "via-api", {})
    runs.start_run(store, tenant, "via-api")
    put_runs(store.client, store.table_name, [run_item(tenant, "seeded", RunStatus.RUNNING, moment)])
    via_api, seeded = store.get(tenant, "via-api"), store.get(tenant, "seeded")
    assert via_api is not None
    assert seeded is not None
    assert set(via_api) == set(seeded)
    assert via_api["active_pk"].split("#")[0] == seeded["active_pk"].split("#")[0] == "running"
    assert via_api["sweep_at"] == seeded["sweep_at"]


@pytest.mark.timeout(120)
def test_given_1000_stale_among_10000_when_workers_finish_some_during_the_sweep_then_none_of_those_is_interrupted(
    stack, store, tenant
):
    # Given: 800 running runs silent since 2020, 200 pending since 2020, 9,000 finished ones
    stale_running = [f"stale-r-{i:04}" for i in range(STALE - STALE_PENDING)]
    stale_pending = [f"stale-p-{i:04}" for i in range(STALE_PENDING)]
    finished = [f"done-{i:05}" for i in range(TOTAL - STALE)]
    items = [run_item(tenant, r, RunStatus.RUNNING, LONG_AGO) for r in stale_running]
    items += [run_item(tenant, r, RunStatus.PENDING, LONG_AGO) for r in stale_pending]
    items += [run_item(tenant, r, RunStatus.SUCCESS, LONG_AGO) for r in finished]
    assert put_runs(store.client, store.table_name, items, workers=8) == TOTAL
    # and workers who are alive after all: some finish right after the sweeper's query returns
    # their run, others finish or heartbeat concurrently with the sweep
    after_query = set(stale_running[:COMPLETED_AFTER_QUERY])
    racing_complete = stale_running[COMPLETED_AFTER_QUERY : COMPLETED_AFTER_QUERY + RACING_COMPLETES]
    racing_heartbeat = stale_running[-RACING_HEARTBEATS:]
    sweeper_store = WorkerBetweenQueryAndCancel(store, tenant, after_query)
    answers: dict[str, str] = {}
    start = threading.Barrier(2)

    def worker_call(action: str, run_id: str) -> None:
        try:
            if action == "complete":
                runs.complete_run(store, tenant, run_id, RunStatus.SUCCESS)
            else:
                runs.heartbeat_run(store, tenant, run_id)
            answers[run_id] = "ok"
        except TransitionConflict as conflict:
            answers[run_id] = conflict.run_status

    def workers() -> None:
        start.wait()
        calls = [("complete", r) for r in racing_complete] + [("heartbeat", r) for r in racing_heartbeat]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda call: worker_call(*call), calls))

    # When: the sweep and the workers start together
    racer = threading.Thread(target=workers)
    racer.start()
    start.wait()
    summary = sweep(sweeper_store, POLICY, now=NOW)
    racer.join(timeout=60)
    # Then: read back every stale run
    with ThreadPoolExecutor(max_workers=16) as pool:
        everyone = stale_running + stale_pending
        final = dict(zip(everyone, pool.map(lambda run_id: store.get(tenant, run_id), everyone), strict=True))
    status = {run_id: run["status"] for run_id, run in final.items() if run is not None}
    stopped = [r.run_id for r in summary.stopped if r.run_id in final]
    # the runs completed between query and cancel: all still completed, each a conflict
    assert {status[r] for r in after_query} == {"success"}
    assert sweeper_store.completed == after_query
    # the concurrent workers: their answer and the final state agree, run by run
    for run_id in racing_complete:
        expected = "success" if answers[run_id] == "ok" else "interrupted"
        assert (answers[run_id], status[run_id]) in {("ok", "success"), ("interrupted", "interrupted")}, run_id
        assert status[run_id] == expected
    for run_id in racing_heartbeat:
        assert (answers[run_id], status[run_id]) in {("ok", "running"), ("interrupted", "interrupted")}, run_id
    # nothing a worker kept alive or finished was interrupted; everything else was, once
    alive = {r for r in racing_complete + racing_heartbeat if answers[r] == "ok"} | after_query
    assert len(stopped) == len(set(stopped))
    assert set(stopped) == {r for r, s in status.items() if s == "interrupted"}
    assert set(stopped).isdisjoint(alive)
    assert set(stopped) | alive == set(stale_running) | set(stale_pending)
    for run_id in stopped:
        cancel = final[run_id]["cancel"]  # type: ignore[index]
        assert cancel["source"] == "sweeper"
        assert cancel["reason"] == (PENDING_TIMEOUT if run_id.startswith("stale-p-") else HEARTBEAT_TIMEOUT)
    # the sweep saw the stale runs (minus those finished before its query) and no finished run
    assert summary.stopped_early is False
    assert summary.candidates <= STALE
    assert summary.outcomes["conflict"] >= COMPLETED_AFTER_QUERY
    assert sum(summary.outcomes.values()) == summary.candidates
    print(
        f"\nsweep of {STALE} stale among {TOTAL}: outcomes {dict(summary.outcomes)}, pages {summary.pages}, "
        f"read units {summary.read_units}; racing workers: "
        f"{sum(a == 'ok' for a in answers.values())} won, {sum(a != 'ok' for a in answers.values())} lost"
    )
