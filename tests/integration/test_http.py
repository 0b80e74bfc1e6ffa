"""The same guarantees through the local runner: real HTTP on loopback, the template's routes,
the handlers in worker processes like Lambda environments, DynamoDB Local behind them."""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Any

import httpx
import pytest

from tests.integration.support import race, running_run_over_http

pytestmark = pytest.mark.integration

CONCURRENT = 32
CANCEL_ROUNDS = 5
COMPLETE_ROUNDS = 20
COMPLETIONS = ("success", "error", "timeout")


def _record(cancel: dict[str, Any]) -> tuple[Any, ...]:
    return cancel["reason"], cancel["requested_at"], cancel["source"]


def test_given_a_run_when_a_worker_drives_it_and_a_user_cancels_then_every_answer_tells_the_worker_to_stop(
    http: httpx.Client, tenant: str
) -> None:
    headers = {"X-Tenant-Id": tenant}
    # Given: a run created, started and alive
    created = http.post("/runs", json={"metadata": {"job": "lifecycle"}}, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "pending"
    run_id = created.json()["run_id"]
    assert http.post(f"/runs/{run_id}/start", headers=headers).json()["status"] == "running"
    alive = http.post(f"/runs/{run_id}/heartbeat", headers=headers)
    assert (alive.status_code, alive.json()["status"]) == (200, "running")

    # When: the user cancels
    cancel = http.post(f"/runs/{run_id}/cancel", json={"reason": "user"}, headers=headers)

    # Then: the cancel is accepted and the worker's next calls are refused with the reason
    assert cancel.status_code == 202, cancel.text
    assert (cancel.json()["outcome"], cancel.json()["status"]) == ("interrupted", "interrupted")
    heartbeat = http.post(f"/runs/{run_id}/heartbeat", headers=headers)
    assert heartbeat.status_code == 409, heartbeat.text
    assert heartbeat.headers["content-type"] == "application/problem+json"
    assert heartbeat.json()["run_status"] == "interrupted"
    complete = http.post(f"/runs/{run_id}/complete", json={"status": "success"}, headers=headers)
    assert (complete.status_code, complete.json()["run_status"]) == (409, "interrupted")
    read = http.get(f"/runs/{run_id}", headers=headers).json()
    assert (read["status"], read["cancel"]["reason"]) == ("interrupted", "user")


def test_given_a_running_run_when_32_clients_cancel_it_at_once_over_http_then_exactly_one_interrupts_it(
    http: httpx.Client, tenant: str
) -> None:
    headers = {"X-Tenant-Id": tenant}
    tally: Counter[tuple[int, str]] = Counter()
    for _ in range(CANCEL_ROUNDS):
        # Given
        run_id = running_run_over_http(http, tenant)
        reasons = [f"client-{i}" for i in range(CONCURRENT)]

        # When
        answers = race(
            [partial(http.post, f"/runs/{run_id}/cancel", json={"reason": r}, headers=headers) for r in reasons]
        )

        # Then
        seen = Counter((a.status_code, a.json().get("outcome", "")) for a in answers)
        tally.update(seen)
        assert seen == {(202, "interrupted"): 1, (202, "already_interrupted"): CONCURRENT - 1}
        (winner,) = (r for r, a in zip(reasons, answers, strict=True) if a.json()["outcome"] == "interrupted")
        read = http.get(f"/runs/{run_id}", headers=headers).json()
        assert (read["status"], read["cancel"]["reason"], read["version"]) == ("interrupted", winner, 3)
        # Every answer reports the one cancel that took effect: the winner's.
        assert {_record(a.json()["cancel"]) for a in answers} == {_record(read["cancel"])}
    print(f"\n{CONCURRENT} concurrent HTTP cancels x {CANCEL_ROUNDS} rounds: {dict(tally)}")


def test_given_a_running_run_when_cancel_races_complete_over_http_then_the_answers_agree_with_the_final_state(
    http: httpx.Client, tenant: str
) -> None:
    headers = {"X-Tenant-Id": tenant}
    tally: Counter[str] = Counter()
    for round_ in range(COMPLETE_ROUNDS):
        # Given
        run_id = running_run_over_http(http, tenant)
        completion = COMPLETIONS[round_ % len(COMPLETIONS)]

        # When
        cancel, complete = race(
            [
                partial(http.post, f"/runs/{run_id}/cancel", headers=headers),
                partial(http.post, f"/runs/{run_id}/complete", json={"status": completion}, headers=headers),
            ]
        )

        # Then
        final = http.get(f"/runs/{run_id}", headers=headers).json()
        assert final["version"] == 3, "exactly one of them must have written"
        if cancel.status_code == 202:
            tally["cancel won"] += 1
            assert cancel.json()["outcome"] == "interrupted"
            assert (complete.status_code, complete.json()["run_status"]) == (409, "interrupted")
            assert final["status"] == "interrupted"
        else:
            tally["complete won"] += 1
            assert (cancel.status_code, cancel.json()["run_status"]) == (409, completion), cancel.text
            assert (complete.status_code, complete.json()["status"]) == (200, completion), complete.text
            assert (final["status"], final["cancel"]) == (completion, None)
    print(f"\ncancel vs complete over HTTP x {COMPLETE_ROUNDS} rounds: {dict(tally)}")
