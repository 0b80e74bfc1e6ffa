"""POST /runs with an Idempotency-Key, retried concurrently over real HTTP on DynamoDB Local:
exactly one run is created, and every successful answer is the same."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from functools import partial
from typing import Any

import httpx
import pytest

from runstop import idempotency, runs
from runstop.errors import RequestInProgress, RunstopError
from runstop.store import RunStore, run_store
from tests.integration.support import race

pytestmark = pytest.mark.integration

RETRIES = 12
ROUNDS = 2
DOMAIN_RETRIES = 16
DOMAIN_ROUNDS = 10
MAX_ATTEMPTS = 50


def _create_until_answered(http: httpx.Client, tenant: str, key: str, body: dict[str, object]) -> list[httpx.Response]:
    """A client that retries while the first request is in progress (409 + Retry-After), as told."""
    answers = []
    for _ in range(MAX_ATTEMPTS):
        response = http.post("/runs", json=body, headers={"X-Tenant-Id": tenant, "Idempotency-Key": key})
        answers.append(response)
        if response.status_code != 409:
            return answers
        assert response.json()["type"] == "urn:runstop:problem:request-in-progress", response.text
        assert response.headers["retry-after"] == "1"
        time.sleep(0.05)  # shorter than Retry-After, to meet the in-progress window more often
    raise AssertionError(f"still in progress after {MAX_ATTEMPTS} attempts")


def test_given_a_create_retried_12_times_at_once_when_all_settle_then_exactly_one_run_and_one_answer(
    http: httpx.Client, tenant: str
) -> None:
    tally: Counter[int] = Counter()
    for round_ in range(ROUNDS):
        # Given: no run_id, so a second creation would show up as a second run
        key = f"key-{uuid.uuid4()}"
        body = {"metadata": {"round": round_}}

        # When
        clients = race([partial(_create_until_answered, http, tenant, key, body) for _ in range(RETRIES)])

        # Then
        tally.update(response.status_code for answers in clients for response in answers)
        finals = [answers[-1] for answers in clients]
        assert {response.status_code for response in finals} == {201}
        assert len({response.text for response in finals}) == 1, "every successful answer is the same"
        created = finals[0].json()
        listed = http.get("/runs", params={"limit": 100}, headers={"X-Tenant-Id": tenant}).json()["items"]
        assert [run["run_id"] for run in listed if run["metadata"] == body["metadata"]] == [created["run_id"]]
    print(f"\n{RETRIES} concurrent retries x {ROUNDS} rounds, answers by status: {dict(tally)}")


def test_given_a_key_in_use_when_another_body_races_the_first_then_one_run_and_a_422(
    http: httpx.Client, tenant: str
) -> None:
    # Given
    key = f"key-{uuid.uuid4()}"
    headers = {"X-Tenant-Id": tenant, "Idempotency-Key": key}
    # When
    first, other = race(
        [
            partial(http.post, "/runs", json={"metadata": {"body": "a"}}, headers=headers),
            partial(http.post, "/runs", json={"metadata": {"body": "b"}}, headers=headers),
        ]
    )
    # Then: one of them created; the other was refused as reuse, even while the first was in progress
    assert sorted([first.status_code, other.status_code]) == [201, 422], (first.text, other.text)
    listed = http.get("/runs", headers={"X-Tenant-Id": tenant}).json()["items"]
    assert len(listed) == 1


def _create_once(store: RunStore, tenant: str, key: str, metadata: dict[str, Any]) -> dict[str, Any] | RunstopError:
    """What the route does with a key, minus HTTP: the run, or the domain error it answers with."""
    try:
        return idempotency.once(
            "create_run",
            tenant,
            key,
            {"run_id": None, "metadata": metadata},
            lambda: runs.create_run_for_key(store, tenant, key, None, metadata),
        )
    except RunstopError as error:
        return error


def test_given_16_threads_creating_with_one_key_when_they_overlap_then_one_run_and_the_rest_wait_or_replay(
    tenant: str,
) -> None:
    # Given: the handlers' own store (their client and its idempotency layer) on DynamoDB Local
    store = run_store()
    tally: Counter[str] = Counter()
    for round_ in range(DOMAIN_ROUNDS):
        key, metadata = f"key-{uuid.uuid4()}", {"round": round_}
        # When
        answers = race([partial(_create_once, store, tenant, key, metadata) for _ in range(DOMAIN_RETRIES)])
        # Then
        runs_made = [a for a in answers if isinstance(a, dict)]
        refused = [a for a in answers if not isinstance(a, dict)]
        assert all(isinstance(a, RequestInProgress) for a in refused), refused
        assert len({a["run_id"] for a in runs_made}) == 1
        assert all(a == runs_made[0] for a in runs_made)
        tally.update({"created or replayed": len(runs_made), "in progress": len(refused)})
    listed, _ = runs.list_runs(store, tenant, limit=100)
    assert len(listed) == DOMAIN_ROUNDS, "exactly one run per key"
    print(f"\n{DOMAIN_RETRIES} threads x {DOMAIN_ROUNDS} keys: {dict(tally)}")
