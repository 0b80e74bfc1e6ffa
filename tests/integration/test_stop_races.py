"""Races on the way from "cancel recorded" to "work stopped", on DynamoDB Local's real
conditional writes: acknowledgement against overdue marking, force against a normal cancel,
the cancel of a pending run against its start, and sweeper ticks overlapping. Every round's
final run must carry exactly the fields its history allows; tallies print with `pytest -s`."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from functools import partial
from typing import Any

import pytest

from runstop import clock, runs
from runstop.cancel import cancel_run
from runstop.errors import TransitionConflict
from runstop.store import RunStore
from runstop.sweeper import SweepPolicy, mark_overdue, sweep
from tests.integration.support import race

pytestmark = pytest.mark.integration

ROUNDS = 60
POLICY = SweepPolicy(heartbeat_timeout=timedelta(days=1), pending_timeout=timedelta(days=1), concurrency=4)


def _interrupted_past_deadline(store: RunStore, tenant: str, grace: int = 1) -> tuple[str, Any]:
    run_id = f"stop-{uuid.uuid4().hex[:10]}"
    runs.create_run(store, tenant, run_id, {}, stop_grace_seconds=grace)
    runs.start_run(store, tenant, run_id, "worker-1")
    at = clock.now() - timedelta(seconds=grace + 5)
    decision = cancel_run(store, tenant, run_id, reason="race", at=at)
    assert decision.run is not None
    return run_id, decision.run


def _outcome(call: Any) -> Any:
    try:
        return call()
    except TransitionConflict as conflict:
        return conflict


def test_given_an_acknowledgement_racing_the_overdue_mark_then_no_acknowledgement_is_lost(
    store: RunStore, tenant: str
) -> None:
    tally: Counter[str] = Counter()
    for _ in range(ROUNDS):
        # Given a run past its deadline, When its worker acknowledges as the sweeper marks it
        run_id, run = _interrupted_past_deadline(store, tenant)
        due = clock.epoch_us(clock.parse(run["stop_deadline"]))
        acknowledged, marked = race(
            [
                partial(runs.acknowledge_stop, store, tenant, run_id),
                partial(mark_overdue, store, tenant, run_id, at=clock.now(), stop_due_us=due),
            ]
        )
        final = store.get(tenant, run_id)
        assert final is not None
        # Then the acknowledgement always stands, and overdue only if the mark came first
        assert acknowledged["stopped_at"] == final["stopped_at"]
        assert final["tenant_stop"] == f"{tenant}#acknowledged"
        assert "stopping_pk" not in final
        if marked is None:
            assert "stop_overdue_at" not in final
            tally["acknowledged first"] += 1
        else:
            assert final["stop_overdue_at"] <= final["stopped_at"]
            tally["marked first, then acknowledged"] += 1
    print(f"\nacknowledgement vs overdue mark x {ROUNDS}: {dict(tally)}")


def test_given_force_racing_a_normal_cancel_then_one_wins_and_the_deadline_is_the_winners(
    store: RunStore, tenant: str
) -> None:
    tally: Counter[str] = Counter()
    for _ in range(ROUNDS):
        run_id = f"force-{uuid.uuid4().hex[:10]}"
        runs.create_run(store, tenant, run_id, {}, stop_grace_seconds=120)
        runs.start_run(store, tenant, run_id)
        normal, forced = race(
            [
                partial(cancel_run, store, tenant, run_id, reason="normal"),
                partial(cancel_run, store, tenant, run_id, reason="force", force=True),
            ]
        )
        final = store.get(tenant, run_id)
        assert final is not None
        assert sorted([normal.outcome.value, forced.outcome.value]) == ["already_interrupted", "interrupted"]
        requested = clock.epoch_us(clock.parse(final["cancel"]["requested_at"]))
        grace = 0 if final["cancel"]["reason"] == "force" else 120_000_000
        assert final["stop_due"] == requested + grace
        tally[f"{final['cancel']['reason']} won"] += 1
    print(f"\nforce vs normal cancel x {ROUNDS}: {dict(tally)}")


def test_given_the_cancel_of_a_pending_run_racing_its_start_then_the_history_decides_the_fields(
    store: RunStore, tenant: str
) -> None:
    tally: Counter[str] = Counter()
    for _ in range(ROUNDS):
        run_id = f"pend-{uuid.uuid4().hex[:10]}"
        runs.create_run(store, tenant, run_id, {})
        cancelled, started = race(
            [
                partial(cancel_run, store, tenant, run_id),
                partial(_outcome, partial(runs.start_run, store, tenant, run_id)),
            ]
        )
        final = store.get(tenant, run_id)
        assert final is not None
        assert final["status"] == "interrupted"
        assert cancelled.outcome.value == "interrupted"
        if isinstance(started, TransitionConflict):
            # Cancelled while pending: stopped at once, nothing to wait for, never started.
            assert final["stopped_at"] == final["ended_at"]
            assert "started_at" not in final
            assert "stop_due" not in final
            tally["cancel first"] += 1
        else:
            # Started first: a worker holds it, and has until the deadline to stop.
            assert "stopped_at" not in final
            assert final["stop_due"] > 0
            assert final["worker_id"] == started["worker_id"]
            tally["start first"] += 1
    print(f"\npending cancel vs start x {ROUNDS}: {dict(tally)}")


def test_given_two_sweeps_overlapping_then_every_overdue_run_is_marked_exactly_once(
    store: RunStore, tenant: str
) -> None:
    run_ids = {_interrupted_past_deadline(store, tenant)[0] for _ in range(40)}
    first, second = race([partial(sweep, store, POLICY), partial(sweep, store, POLICY)])
    marked = [r.run_id for r in (*first.overdue, *second.overdue) if r.tenant_id == tenant]
    assert sorted(marked) == sorted(run_ids)
    print(f"\ntwo overlapping sweeps: {len(marked)} overdue runs of this test marked, each once")
