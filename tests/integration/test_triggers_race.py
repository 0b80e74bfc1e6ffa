"""The queue and event triggers racing HTTP cancels and the worker's completion, on DynamoDB Local.

For each run, at the same moment: a CancelRequests message (in batches of ten, as the SQS
event source delivers them), a Run Cancel Requested event, POST /cancel and POST /complete
over HTTP through the local runner. Each function runs in its own processes. Whatever the
interleaving, every answer must agree with the run's final state: exactly one cancel says
`interrupted` and its trigger is the one recorded on the run, or the completion won and
every cancel answers conflict (409).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest

from tests.integration._trigger_fixtures import TriggerPool
from tests.integration.support import race, running_run_over_http
from tests.unit.trigger_support import cancel_requested, sqs_event, sqs_record

pytestmark = pytest.mark.integration

RUNS_PER_ROUND = 40
ROUNDS = 3
BATCH = 10


@pytest.fixture(scope="module")
def queue_function(stack):
    with TriggerPool(stack, "CancelQueueFunction") as pool:
        pool.warm()
        yield pool


@pytest.fixture(scope="module")
def events_function(stack):
    with TriggerPool(stack, "CancelEventsFunction") as pool:
        pool.warm()
        yield pool


class Round:
    """One round's runs, the calls that race on them, and every answer they got."""

    def __init__(self, http: Any, tenant: str, queue_function: TriggerPool, events_function: TriggerPool) -> None:
        self.http, self.tenant = http, tenant
        self.queue_function, self.events_function = queue_function, events_function
        self.headers = {"X-Tenant-Id": tenant}
        with ThreadPoolExecutor(max_workers=8) as pool:
            self.run_ids = list(pool.map(lambda _: running_run_over_http(http, tenant), range(RUNS_PER_ROUND)))
        self.answers: dict[str, dict[str, str]] = {"sqs": {}, "eventbridge": {}, "api": {}}
        self.completions: dict[str, int] = {}

    def calls(self) -> list[Callable[[], None]]:
        batches = [self.run_ids[i : i + BATCH] for i in range(0, len(self.run_ids), BATCH)]
        calls = [partial(self.sqs_batch, batch) for batch in batches]
        for run_id in self.run_ids:
            calls += [partial(self.event, run_id), partial(self.http_cancel, run_id), partial(self.complete, run_id)]
        return calls

    def sqs_batch(self, batch: list[str]) -> None:
        records = [sqs_record(json.dumps({"tenant_id": self.tenant, "run_id": run_id})) for run_id in batch]
        result, decisions = self.queue_function.invoke(sqs_event(*records))
        assert result == {"batchItemFailures": []}
        for decision in decisions:
            self.answers["sqs"][decision["run_id"]] = decision["outcome"]

    def event(self, run_id: str) -> None:
        result, _ = self.events_function.invoke(cancel_requested({"tenant_id": self.tenant, "run_id": run_id}))
        self.answers["eventbridge"][run_id] = result["outcome"]

    def http_cancel(self, run_id: str) -> None:
        response = self.http.post(f"/runs/{run_id}/cancel", headers=self.headers)
        body = response.json()
        self.answers["api"][run_id] = body["outcome"] if response.status_code == 202 else "conflict"
        if response.status_code == 409:
            assert body["run_status"] == "success"

    def complete(self, run_id: str) -> None:
        response = self.http.post(f"/runs/{run_id}/complete", json={"status": "success"}, headers=self.headers)
        self.completions[run_id] = response.status_code

    def cancels_of(self, run_id: str) -> dict[str, str]:
        """trigger -> outcome ("conflict" for a 409) of each cancel of this run."""
        return {trigger: by_run[run_id] for trigger, by_run in self.answers.items() if run_id in by_run}


@pytest.mark.timeout(240)
def test_given_runs_cancelled_by_queue_events_and_http_while_completing_then_every_answer_agrees(
    http, store, tenant, queue_function, events_function
):
    tally: Counter[str] = Counter()
    for _ in range(ROUNDS):
        # Given: running runs, made through the API
        round_ = Round(http, tenant, queue_function, events_function)
        # When: a queue message, an event, an HTTP cancel and the completion of each, all at once
        race(round_.calls())
        # Then: run by run, the answers and the final state tell the same story
        for run_id in round_.run_ids:
            final = store.get(tenant, run_id)
            assert final is not None
            cancels = round_.cancels_of(run_id)
            assert set(cancels) == {"sqs", "eventbridge", "api"}, run_id
            if final["status"] == "interrupted":
                winners = [trigger for trigger, outcome in cancels.items() if outcome == "interrupted"]
                assert len(winners) == 1, (run_id, cancels)
                assert sorted(cancels.values()) == ["already_interrupted", "already_interrupted", "interrupted"]
                assert final["cancel"]["source"] == winners[0]
                assert round_.completions[run_id] == 409
                tally[f"{winners[0]} interrupted"] += 1
            else:
                assert final["status"] == "success", (run_id, final["status"])
                assert round_.completions[run_id] == 200
                assert set(cancels.values()) == {"conflict"}, (run_id, cancels)
                assert "cancel" not in final
                tally["completion won"] += 1
    # Every run was decided, and not always by the completion (the interleaving decides the rest)
    assert sum(tally.values()) == ROUNDS * RUNS_PER_ROUND
    assert tally["completion won"] < ROUNDS * RUNS_PER_ROUND
    print(f"\ntrigger race, {ROUNDS} x {RUNS_PER_ROUND} runs: {dict(tally)}")
