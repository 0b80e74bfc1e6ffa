"""Races on the one cancel decision, on DynamoDB Local's real conditional writes.

Each round starts its calls together (a barrier), so they really overlap; the assertions
are exact in every round, and the tallies are printed for the record (`pytest -s`).
"""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Any

import pytest

from runstop.cancel import CancelDecision, CancelOutcome, cancel_run
from runstop.errors import TransitionConflict
from runstop.runs import complete_run
from runstop.status import RunStatus
from runstop.store import RunStore
from tests.integration.support import race, running_run

pytestmark = pytest.mark.integration

CANCELLERS = 64
CANCEL_ROUNDS = 20
COMPLETE_ROUNDS = 100
KEYED_ROUNDS = 5
COMPLETIONS = (RunStatus.SUCCESS, RunStatus.ERROR, RunStatus.TIMEOUT)


def test_given_a_running_run_when_64_cancels_arrive_at_once_then_exactly_one_interrupts_it(
    store: RunStore, tenant: str
) -> None:
    tally: Counter[str] = Counter()
    for _ in range(CANCEL_ROUNDS):
        # Given
        run_id, started_version = running_run(store, tenant)
        reasons = [f"canceller-{i}" for i in range(CANCELLERS)]

        # When
        decisions = race([partial(cancel_run, store, tenant, run_id, reason=reason) for reason in reasons])

        # Then
        outcomes = Counter(d.outcome.value for d in decisions)
        tally.update(outcomes)
        assert outcomes == {"interrupted": 1, "already_interrupted": CANCELLERS - 1}
        assert {d.status_code for d in decisions} == {202}
        (winner,) = (reason for reason, d in zip(reasons, decisions, strict=True) if d.outcome == "interrupted")
        final = store.get(tenant, run_id)
        assert final is not None
        assert final["status"] == "interrupted"
        assert final["version"] == started_version + 1, "the cancel must write exactly once"
        assert final["cancel"]["reason"] == winner
        assert all(d.run is not None and d.run["cancel"] == final["cancel"] for d in decisions)
        assert "active_pk" not in final, "an interrupted run must leave the sweeper's Active index"
    print(f"\n64 concurrent cancels x {CANCEL_ROUNDS} rounds: {dict(tally)}")


def _complete_or_conflict(store: RunStore, tenant: str, run_id: str, status: RunStatus) -> Any:
    """The worker's completion: the run it returns, or the conflict it is refused with."""
    try:
        return complete_run(store, tenant, run_id, status)
    except TransitionConflict as conflict:
        return conflict


def test_given_a_running_run_when_cancel_races_complete_then_both_answers_agree_with_the_final_state(
    store: RunStore, tenant: str
) -> None:
    tally: Counter[str] = Counter()
    for round_ in range(COMPLETE_ROUNDS):
        # Given
        run_id, started_version = running_run(store, tenant)
        completion = COMPLETIONS[round_ % len(COMPLETIONS)]

        # When
        cancel, complete = race(
            [
                partial(cancel_run, store, tenant, run_id, reason="user"),
                partial(_complete_or_conflict, store, tenant, run_id, completion),
            ]
        )

        # Then: exactly one of them wrote, and each answer says who
        assert isinstance(cancel, CancelDecision)
        final = store.get(tenant, run_id)
        assert final is not None
        assert final["version"] == started_version + 1
        if cancel.outcome is CancelOutcome.INTERRUPTED:
            tally["cancel won"] += 1
            assert isinstance(complete, TransitionConflict), f"both won in round {round_}"
            assert complete.run_status == "interrupted"
            assert final["status"] == "interrupted"
            assert cancel.run is not None
            assert final["cancel"] == cancel.run["cancel"]
        else:
            tally["complete won"] += 1
            assert cancel.outcome is CancelOutcome.CONFLICT, f"round {round_}: {cancel.outcome}"
            assert (cancel.status_code, cancel.run_status) == (409, completion.value)
            assert isinstance(complete, dict), f"neither won in round {round_}"
            assert complete["status"] == completion.value
            assert final["status"] == completion.value
            assert final.get("cancel") is None
    print(f"\ncancel vs complete x {COMPLETE_ROUNDS} rounds: {dict(tally)}")


def test_given_concurrent_keyed_cancels_when_every_key_is_repeated_then_only_the_winners_key_interrupted(
    store: RunStore, tenant: str
) -> None:
    tally: Counter[str] = Counter()
    for round_ in range(KEYED_ROUNDS):
        # Given: 64 clients cancelling at once, each with its own Idempotency-Key
        run_id, started_version = running_run(store, tenant)
        keys = [f"key-{round_}-{i}" for i in range(CANCELLERS)]
        first = race([partial(cancel_run, store, tenant, run_id, idempotency_key=key) for key in keys])
        outcomes = Counter(d.outcome.value for d in first)
        tally.update(outcomes)
        assert outcomes == {"interrupted": 1, "already_interrupted": CANCELLERS - 1}
        (winner,) = (key for key, d in zip(keys, first, strict=True) if d.outcome == "interrupted")
        recorded = store.get(tenant, run_id)
        assert recorded is not None
        assert recorded["cancel"]["idempotency_key"] == winner

        # When: every client retries with its key, again all at once
        retried = race([partial(cancel_run, store, tenant, run_id, idempotency_key=key) for key in keys])

        # Then: only the winner's retry is told it interrupted the run, and nothing was written
        for key, decision in zip(keys, retried, strict=True):
            expected = "interrupted" if key == winner else "already_interrupted"
            assert decision.outcome == expected, key
            assert decision.status_code == 202
        final = store.get(tenant, run_id)
        assert final == recorded
        assert final["version"] == started_version + 1
    print(f"\n64 keyed cancels x {KEYED_ROUNDS} rounds (first attempts): {dict(tally)}")
