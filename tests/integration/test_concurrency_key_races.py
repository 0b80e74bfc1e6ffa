"""Concurrency keys on DynamoDB Local's real transactions: creates racing on one key. Whatever the
interleaving, at most one run of the key is active at the end, every create is accounted for
(created, or refused naming the run that held the key), and every superseded run names the run
that replaced it, each replacement exactly once.

RUNSTOP_KEY_ROUNDS sets the rounds of 32 interrupting creates (default 1).
"""

from __future__ import annotations

import os
from collections import Counter
from functools import partial
from typing import Any

import pytest

from runstop import runs
from runstop.concurrency import KeyLocks, OnActive, key_locks
from runstop.errors import ConcurrencyKeyHeld
from runstop.links import Links
from runstop.status import ACTIVE, RunStatus
from runstop.store import RunStore
from tests.integration.support import new_run_id, race

pytestmark = pytest.mark.integration

CREATORS = 32
ROUNDS = int(os.environ.get("RUNSTOP_KEY_ROUNDS", "1"))


@pytest.fixture
def locks() -> KeyLocks:
    """The lock table as the functions reach it (the environment points it at DynamoDB Local)."""
    return key_locks()


def _create(store: RunStore, tenant: str, run_id: str, key: str, on_active: OnActive) -> Any:
    try:
        return runs.create_run(store, tenant, run_id, {}, links=Links(concurrency_key=key, on_active=on_active))
    except ConcurrencyKeyHeld as held:
        return held


def test_given_an_active_run_when_32_creates_interrupt_it_at_once_then_exactly_one_is_active_and_none_lost(
    quiet_store: RunStore, locks: KeyLocks, tenant: str
) -> None:
    store = quiet_store
    for round_ in range(ROUNDS):
        # Given: the key's run is running
        key = f"thread-{round_}"
        first = new_run_id()
        runs.create_run(store, tenant, first, {}, links=Links(concurrency_key=key))
        runs.start_run(store, tenant, first)
        ids = [new_run_id() for _ in range(CREATORS)]
        # When
        answers = race([partial(_create, store, tenant, run_id, key, OnActive.INTERRUPT) for run_id in ids])
        # Then: every create succeeded
        assert all(isinstance(answer, dict) for answer in answers), answers
        stored = {run_id: store.get(tenant, run_id) for run_id in [first, *ids]}
        assert all(run is not None for run in stored.values())
        active = [run_id for run_id, run in stored.items() if run is not None and run["status"] in ACTIVE]
        assert len(active) == 1, active
        (winner,) = active
        assert locks.holder_id(tenant, key) == winner
        # and each of the others was superseded by exactly one of the new runs, each new run superseding one
        superseded = {run_id: run for run_id, run in stored.items() if run_id != winner and run is not None}
        assert {run["status"] for run in superseded.values()} == {RunStatus.INTERRUPTED}
        assert {run["cancel"]["source"] for run in superseded.values()} == {"superseded"}
        replacing = Counter(run["cancel"]["superseded_by"] for run in superseded.values())
        assert set(replacing) == set(ids)
        assert set(replacing.values()) == {1}
        # the running one got its stop deadline; the pending ones stopped at once
        assert "stop_due" in superseded[first]
        assert all("stopped_at" in run for run_id, run in superseded.items() if run_id != first)
    print(f"\n{CREATORS} concurrent on_active=interrupt creates x {ROUNDS} rounds: one active each time, none lost")


def test_given_a_free_key_when_32_creates_reject_at_once_then_one_wins_and_the_others_name_it(
    quiet_store: RunStore, locks: KeyLocks, tenant: str
) -> None:
    store = quiet_store
    # Given
    ids = [new_run_id() for _ in range(CREATORS)]
    # When
    answers = race([partial(_create, store, tenant, run_id, "solo", OnActive.REJECT) for run_id in ids])
    # Then
    created = [answer for answer in answers if isinstance(answer, dict)]
    assert len(created) == 1
    winner = created[0]["run_id"]
    refused = [answer for answer in answers if isinstance(answer, ConcurrencyKeyHeld)]
    assert len(refused) == CREATORS - 1
    assert {held.active_run_id for held in refused} == {winner}
    assert [run_id for run_id in ids if store.get(tenant, run_id) is not None] == [winner]


def test_given_a_running_holder_when_it_completes_while_creates_reject_then_never_two_active(
    quiet_store: RunStore, locks: KeyLocks, tenant: str
) -> None:
    store = quiet_store
    tally: Counter[str] = Counter()
    for round_ in range(10):
        # Given
        key = f"handover-{round_}"
        holder = new_run_id()
        runs.create_run(store, tenant, holder, {}, links=Links(concurrency_key=key))
        runs.start_run(store, tenant, holder)
        ids = [new_run_id() for _ in range(8)]
        # When: the holder finishes by itself while 8 creates ask for the key
        calls: list[Any] = [partial(runs.complete_run, store, tenant, holder, RunStatus.SUCCESS)]
        calls += [partial(_create, store, tenant, run_id, key, OnActive.REJECT) for run_id in ids]
        answers = race(calls)[1:]
        # Then: at most one create won, and only after the holder had finished
        created = [answer["run_id"] for answer in answers if isinstance(answer, dict)]
        assert len(created) <= 1
        tally["a create took the freed key" if created else "every create saw the holder active"] += 1
        active = [run_id for run_id in [holder, *ids] if (run := store.get(tenant, run_id)) and run["status"] in ACTIVE]
        assert active == created
        assert locks.holder_id(tenant, key) == (created[0] if created else holder)
    print(f"\ncomplete vs 8 rejecting creates x 10 rounds: {dict(tally)}")
