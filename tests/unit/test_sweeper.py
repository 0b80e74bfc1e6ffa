"""The stale-run sweeper: which runs it stops, which it must leave alone, and how it pages and
stops in time. Races with real concurrency are on DynamoDB Local (tests/integration); here the
"meanwhile" is injected between the sweeper's query and its cancels."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from runstop import runs
from runstop.cancel import CancelOutcome, cancel_run
from runstop.status import RunStatus
from runstop.store import ActivePage, RunStore
from runstop.sweeper import HEARTBEAT_TIMEOUT, PENDING_TIMEOUT, SweepPolicy, sweep
from runstop_dev.handlers import LambdaContext, load_handler
from runstop_dev.template import resource
from tests.helpers import load_event
from tests.unit.support import T0, TENANT, seed_run, stored
from tests.unit.trigger_support import Throttle

HEARTBEAT = timedelta(seconds=300)
PENDING = timedelta(seconds=3600)
POLICY = SweepPolicy(heartbeat_timeout=HEARTBEAT, pending_timeout=PENDING, concurrency=4)
NOW = T0 + timedelta(hours=2)
"""When the sweep runs: runs seeded at T0 are stale on both counts."""


def iso(moment: Any) -> str:
    from runstop.clock import iso as to_iso

    return to_iso(moment)


def seed_at(clock: Any, moment: Any, store: RunStore, run_id: str, status: str) -> None:
    clock.moment = moment
    seed_run(store, run_id, status)


def statuses(aws: Any, *run_ids: str) -> dict[str, str | None]:
    return {run_id: (stored(aws, run_id) or {}).get("status") for run_id in run_ids}


class RacingStore(RunStore):
    """The real store, with something else happening right after each page is read."""

    def __init__(self, inner: RunStore, meanwhile: Any) -> None:
        super().__init__(inner.client, inner.table_name)
        self.meanwhile = meanwhile

    def active_page(self, partition: str, **kwargs: Any) -> ActivePage:
        page = super().active_page(partition, **kwargs)
        for _tenant, run_id in page.keys:
            self.meanwhile(run_id)
        return page


def test_given_runs_of_every_kind_when_swept_then_only_the_overdue_ones_are_interrupted(aws, store, clock):
    # Given
    seed_at(clock, T0, store, "silent", "running")  # last heartbeat at T0
    seed_at(clock, T0, store, "never-started", "pending")  # pending since T0
    seed_at(clock, T0, store, "finished", "success")
    seed_at(clock, T0, store, "stopped", "interrupted")
    seed_at(clock, NOW - HEARTBEAT + timedelta(seconds=5), store, "beating", "running")
    seed_at(clock, NOW - PENDING + timedelta(seconds=5), store, "queued", "pending")
    seed_at(clock, T0, store, "revived", "running")
    clock.moment = NOW - HEARTBEAT - timedelta(seconds=5)
    runs.heartbeat_run(store, TENANT, "revived")  # a heartbeat, but too long ago
    # When
    clock.moment = NOW
    summary = sweep(store, POLICY)
    # Then
    assert statuses(aws, "silent", "never-started", "revived", "beating", "queued", "finished", "stopped") == {
        "silent": "interrupted",
        "never-started": "interrupted",
        "revived": "interrupted",
        "beating": "running",
        "queued": "pending",
        "finished": "success",
        "stopped": "interrupted",
    }
    assert sorted((r.run_id, r.reason) for r in summary.stopped) == [
        ("never-started", PENDING_TIMEOUT),
        ("revived", HEARTBEAT_TIMEOUT),
        ("silent", HEARTBEAT_TIMEOUT),
    ]
    assert stored(aws, "silent")["cancel"] == {
        "reason": HEARTBEAT_TIMEOUT,
        "requested_at": iso(NOW),
        "source": "sweeper",
    }
    assert stored(aws, "never-started")["cancel"]["reason"] == PENDING_TIMEOUT
    # and the index no longer holds them, so the next tick finds nothing
    again = sweep(store, POLICY)
    assert (again.candidates, again.interrupted) == (0, 0)
    report = summary.as_dict()
    assert report["interrupted"] == 3
    assert report["interrupted_by_reason"] == {HEARTBEAT_TIMEOUT: 2, PENDING_TIMEOUT: 1}
    # 3 stale runs and the one interrupted long ago, now past its stop deadline; 8 + 8 + 8 partitions
    assert (report["candidates"], report["pages"], report["stopped_early"]) == (4, 24, False)
    assert report["overdue"] == 1


@pytest.mark.parametrize(
    ("meanwhile", "outcome", "final"),
    [
        (lambda store, run_id: runs.heartbeat_run(store, TENANT, run_id), "fresh", "running"),
        (lambda store, run_id: runs.complete_run(store, TENANT, run_id, RunStatus.SUCCESS), "conflict", "success"),
        (lambda store, run_id: cancel_run(store, TENANT, run_id, reason="user"), "already_interrupted", "interrupted"),
    ],
    ids=["heartbeat", "completed", "cancelled-by-someone"],
)
def test_given_a_stale_run_that_changes_after_the_query_when_swept_then_the_sweeper_leaves_it_be(
    aws, store, clock, meanwhile, outcome, final
):
    # Given: a silent run; right after the sweeper reads the index, its worker acts
    seed_at(clock, T0, store, "r1", "running")
    clock.moment = NOW
    before = stored(aws, "r1")
    racing = RacingStore(store, lambda run_id: meanwhile(store, run_id))
    # When
    summary = sweep(racing, POLICY)
    # Then: the cancel's own condition saw it, and the worker's change stands
    assert dict(summary.outcomes) == {outcome: 1}
    assert summary.stopped == []
    after = stored(aws, "r1")
    assert after["status"] == final
    assert after.get("cancel", {}).get("source") != "sweeper"
    assert after["version"] == before["version"] + 1  # only the worker's change


def test_given_a_pending_run_that_starts_after_the_query_when_swept_then_it_keeps_running(aws, store, clock):
    # Given
    seed_at(clock, T0, store, "r1", "pending")
    clock.moment = NOW
    racing = RacingStore(store, lambda run_id: runs.start_run(store, TENANT, run_id))
    # When
    summary = sweep(racing, POLICY)
    # Then
    assert dict(summary.outcomes) == {"fresh": 1}
    assert stored(aws, "r1")["status"] == "running"


def test_given_more_stale_runs_than_a_page_when_time_runs_out_then_the_next_tick_finishes_the_rest(aws, store, clock):
    # Given: 12 silent runs, read two at a time
    for i in range(12):
        seed_at(clock, T0, store, f"r{i:02}", "running")
    clock.moment = NOW
    policy = SweepPolicy(heartbeat_timeout=HEARTBEAT, pending_timeout=PENDING, page_size=2, concurrency=2)
    calls = 0

    def remaining_ms() -> int:
        nonlocal calls
        calls += 1
        return 60_000 if calls <= 8 else 1_000  # well inside, then within the 5 s margin

    # When
    first = sweep(store, policy, remaining_ms=remaining_ms)
    second = sweep(store, policy)
    # Then: the first stopped early, having stopped some; the second stopped the others
    assert first.stopped_early is True
    assert 0 < first.interrupted < 12
    assert second.stopped_early is False
    assert first.interrupted + second.interrupted == 12
    assert {r.run_id for r in first.stopped}.isdisjoint(r.run_id for r in second.stopped)
    assert set(statuses(aws, *(f"r{i:02}" for i in range(12))).values()) == {"interrupted"}


def test_given_no_time_left_when_the_sweep_starts_then_it_reads_nothing(aws, store, clock, ddb_calls):
    seed_at(clock, T0, store, "r1", "running")
    clock.moment = NOW
    ddb_calls.clear()
    summary = sweep(store, POLICY, remaining_ms=lambda: 4_000)
    assert (summary.stopped_early, summary.pages, ddb_calls.operations) == (True, 0, [])
    assert stored(aws, "r1")["status"] == "running"


def test_given_the_index_query_is_throttled_when_swept_then_the_sweep_stops_quietly(aws, store, clock):
    seed_at(clock, T0, store, "r1", "running")
    clock.moment = NOW
    Throttle(store.client, "Query")
    summary = sweep(store, POLICY)
    assert (summary.stopped_early, summary.errors, summary.interrupted) == (True, 1, 0)
    assert stored(aws, "r1")["status"] == "running"


def test_given_one_cancel_is_throttled_when_swept_then_the_others_go_on_and_the_next_tick_retries_it(aws, store, clock):
    # Given
    for run_id in ("a", "b", "c"):
        seed_at(clock, T0, store, run_id, "running")
    clock.moment = NOW
    throttle = Throttle(store.client, "UpdateItem", {"b"})
    # When
    first = sweep(store, POLICY)
    throttle.run_ids = set()
    second = sweep(store, POLICY)
    # Then
    assert dict(first.outcomes) == {"interrupted": 2, "unavailable": 1}
    assert [r.run_id for r in second.stopped] == ["b"]
    assert statuses(aws, "a", "b", "c") == {"a": "interrupted", "b": "interrupted", "c": "interrupted"}


def test_the_sweep_costs_the_same_whatever_the_number_of_finished_runs(aws, store, clock, ddb_calls):
    # Given: five silent runs alone, then the same next to 60 finished ones
    def cost(prefix: str, finished: int) -> list[str]:
        clock.moment = T0
        for i in range(finished):
            seed_run(store, f"{prefix}-done-{i}", "success")
        for i in range(5):
            seed_run(store, f"{prefix}-silent-{i}", "running")
        clock.moment = NOW
        ddb_calls.clear()
        summary = sweep(store, POLICY)
        assert summary.interrupted == 5
        return sorted(ddb_calls.operations)

    # When
    alone, crowded = cost("alone", 0), cost("crowded", 60)
    # Then: one Query per sparse-index partition and one UpdateItem per stale run, nothing else
    assert alone == crowded == ["Query"] * 24 + ["UpdateItem"] * 5
    queries = [params for name, params in ddb_calls.calls if name == "Query"]
    assert {q["IndexName"] for q in queries} == {"Active", "Stopping"}


def test_the_function_sweeps_with_the_template_timeouts_and_returns_its_summary(
    aws, store, clock, monkeypatch, capsys, caplog
):
    # Given: the timeouts as the template passes them
    env = resource("SweeperFunction")["Properties"]["Environment"]["Variables"]
    assert env["HEARTBEAT_TIMEOUT_SECONDS"] == {"Ref": "HeartbeatTimeout"}
    assert env["PENDING_TIMEOUT_SECONDS"] == {"Ref": "PendingTimeout"}
    monkeypatch.setenv("HEARTBEAT_TIMEOUT_SECONDS", "300")
    monkeypatch.setenv("PENDING_TIMEOUT_SECONDS", "3600")
    seed_at(clock, T0, store, "silent", "running")
    seed_at(clock, NOW - timedelta(seconds=60), store, "beating", "running")
    clock.moment = NOW
    handler = load_handler("SweeperFunction")
    # When
    result = handler(load_event("schedule-sweep.json"), LambdaContext(timeout_ms=60_000))
    # Then
    assert result["interrupted"] == 1
    assert result["interrupted_by_reason"] == {HEARTBEAT_TIMEOUT: 1}
    assert result["cutoffs"][HEARTBEAT_TIMEOUT] == iso(NOW - HEARTBEAT)
    assert statuses(aws, "silent", "beating") == {"silent": "interrupted", "beating": "running"}
    # each stopped run is logged, and the outcomes are published as metrics
    logged = [(r.getMessage(), getattr(r, "run_id", None), getattr(r, "reason", None)) for r in caplog.records]
    assert ("run interrupted", "silent", HEARTBEAT_TIMEOUT) in logged
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(line.get("Sweep.interrupted") == [1.0] and line.get("trigger") == "sweeper" for line in emf)


def test_given_a_short_invocation_when_the_function_runs_then_it_stops_before_its_timeout(aws, store, clock):
    seed_at(clock, T0, store, "silent", "running")
    clock.moment = NOW
    handler = load_handler("SweeperFunction")
    result = handler(load_event("schedule-sweep.json"), LambdaContext(timeout_ms=2_000))
    assert (result["stopped_early"], result["interrupted"]) == (True, 0)


class TestStaleBefore:
    """cancel_run's staleness guard, which only the sweeper uses."""

    def test_given_a_run_fresher_than_the_cutoff_when_cancelled_with_it_then_fresh_and_unchanged(
        self, aws, store, clock
    ):
        seed_at(clock, NOW, store, "r1", "running")
        before = stored(aws, "r1")
        decision = cancel_run(store, TENANT, "r1", reason=HEARTBEAT_TIMEOUT, stale_before=NOW - HEARTBEAT)
        assert decision.outcome is CancelOutcome.FRESH
        assert stored(aws, "r1") == before

    def test_given_the_same_run_when_cancelled_without_a_cutoff_then_interrupted_as_always(self, aws, store, clock):
        seed_at(clock, NOW, store, "r1", "running")
        decision = cancel_run(store, TENANT, "r1", reason="user")
        assert decision.outcome is CancelOutcome.INTERRUPTED
        assert stored(aws, "r1")["status"] == "interrupted"

    @pytest.mark.parametrize(
        ("seeded", "outcome"),
        [("success", CancelOutcome.CONFLICT), ("interrupted", CancelOutcome.ALREADY_INTERRUPTED), ("absent", "absent")],
    )
    def test_given_an_inactive_run_when_cancelled_with_a_cutoff_then_the_usual_answer(
        self, aws, store, clock, seeded, outcome
    ):
        seed_at(clock, T0, store, "r1", seeded)
        clock.moment = NOW
        assert cancel_run(store, TENANT, "r1", stale_before=NOW).outcome == outcome


def test_the_sweeper_may_only_read_the_active_index_and_update_runs():
    props = resource("SweeperFunction")["Properties"]
    statements = props["Policies"][0]["Statement"]
    granted = {
        action: statement["Resource"]
        for statement in statements
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    assert granted == {
        "dynamodb:Query": [
            {"Fn::Sub": "${RunsTable.Arn}/index/Active"},
            {"Fn::Sub": "${RunsTable.Arn}/index/Stopping"},
        ],
        "dynamodb:UpdateItem": {"Fn::GetAtt": ["RunsTable", "Arn"]},
        "dynamodb:GetItem": {"Fn::GetAtt": ["RunsTable", "Arn"]},
    }
    [schedule] = [e["Properties"] for e in props["Events"].values() if e["Type"] == "Schedule"]
    assert schedule["Schedule"] == {"Ref": "SweepSchedule"}
    margin = float(props["Environment"]["Variables"]["SWEEP_MARGIN_SECONDS"])
    assert 0 < margin < float(props["Timeout"])
