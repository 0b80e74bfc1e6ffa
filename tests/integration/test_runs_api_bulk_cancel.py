"""POST /runs/cancel over real HTTP on DynamoDB Local, raced by a duplicate bulk call: every
run's two answers agree with its final state, and each active run is interrupted once."""

from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import httpx
import pytest

from runstop.cancel import cancel_run
from runstop.runs import complete_run, create_run, start_run
from runstop.status import RunStatus
from runstop.store import RunStore
from tests.integration.support import race

pytestmark = pytest.mark.integration

ROUNDS = 3
# 100 runs per round, by the state they start in.
MIX = {"running": 40, "pending": 20, "success": 10, "error": 5, "interrupted": 10, "absent": 15}


def _seed(store: RunStore, tenant: str, round_: int) -> dict[str, str]:
    """run id -> starting state, 100 runs in the MIX."""
    plan = {f"b{round_}-{state}-{i:02d}": state for state, count in MIX.items() for i in range(count)}

    def make(item: tuple[str, str]) -> None:
        run_id, state = item
        if state == "absent":
            return
        create_run(store, tenant, run_id, {})
        if state == "pending":
            return
        start_run(store, tenant, run_id)
        if state == "interrupted":
            cancel_run(store, tenant, run_id, reason="earlier")
        elif state != "running":
            complete_run(store, tenant, run_id, RunStatus(state))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(make, plan.items()))
    return plan


def _bulk(http: httpx.Client, tenant: str, run_ids: list[str], reason: str) -> dict[str, dict[str, Any]]:
    response = http.post("/runs/cancel", json={"run_ids": run_ids, "reason": reason}, headers={"X-Tenant-Id": tenant})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["run_id"] for r in results] == list(dict.fromkeys(run_ids)), "one answer per id, in first order"
    return {r["run_id"]: r for r in results}


def test_given_100_runs_in_mixed_states_when_two_bulk_cancels_race_then_answers_match_final_states(
    http: httpx.Client, store: RunStore, tenant: str
) -> None:
    tally: Counter[str] = Counter()
    for round_ in range(ROUNDS):
        # Given
        plan = _seed(store, tenant, round_)
        ids = list(plan)
        shuffled = random.sample(ids, len(ids))  # the same runs, decided in another order

        # When
        first, second = race(
            [partial(_bulk, http, tenant, ids, "first"), partial(_bulk, http, tenant, shuffled, "second")]
        )

        # Then
        for run_id, state in plan.items():
            answers = [first[run_id], second[run_id]]
            final = store.get(tenant, run_id)
            if state in ("running", "pending"):
                assert final is not None
                assert final["status"] == "interrupted"
                outcomes = sorted(a["outcome"] for a in answers)
                assert outcomes == ["already_interrupted", "interrupted"], (run_id, answers)
                winner = "first" if first[run_id]["outcome"] == "interrupted" else "second"
                assert final["cancel"]["reason"] == winner
                assert final["cancel"]["source"] == "bulk"
                assert all(a["status_code"] == 202 and a["run_status"] == "interrupted" for a in answers)
                tally[f"interrupted by {winner}"] += 1
            elif state == "interrupted":
                assert final is not None
                assert final["cancel"]["reason"] == "earlier"
                assert [a["outcome"] for a in answers] == ["already_interrupted"] * 2
            elif state == "absent":
                assert final is None
                assert [a["outcome"] for a in answers] == ["absent"] * 2
            else:
                assert final is not None
                assert final["status"] == state
                assert [(a["status_code"], a["run_status"]) for a in answers] == [(409, state)] * 2
    print(f"\nbulk cancel races, {ROUNDS} rounds x {MIX['running'] + MIX['pending']} active runs: {dict(tally)}")
