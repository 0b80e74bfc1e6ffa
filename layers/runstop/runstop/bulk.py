"""Bulk cancel: every run decided by the one cancel decision, a bounded number at a time.

Pydantic-free, so any trigger (HTTP, a queue) can call it. One bad or unlucky id never fails
the batch: each id gets its own answer, in the order the ids first appear.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from runstop import clock
from runstop.cancel import TRIGGER_BULK, CancelDecision, cancel_run
from runstop.errors import InvalidInput, StoreUnavailable
from runstop.ids import RUN_ID_PATTERN, valid_run_id
from runstop.metric_names import CANCEL_CONFLICT, CANCEL_STORE_UNAVAILABLE, cancel_metric
from runstop.store import RunStore

MAX_BULK_RUNS = 100
BULK_CONCURRENCY = 16
"""Decisions in flight at once: enough to finish 100 runs in a few round trips, few enough
that the client's connection pool (see store.client_config) never has to drop connections."""


def bulk_result(decision: CancelDecision) -> dict[str, Any]:
    """One run's entry: the status code the single cancel route would give, and why."""
    if decision.accepted:
        return {
            "run_id": decision.run_id,
            "status_code": 202,
            "outcome": decision.outcome.value,
            "run_status": decision.run_status,
        }
    return {"run_id": decision.run_id, "status_code": 409, "run_status": decision.run_status}


ANSWER_MARGIN_MS = 1_500
"""Kept of the invocation to answer: decisions still open then are answered 503 per id."""


def _undecided(run_id: str) -> dict[str, Any]:
    # Nothing is known about this run's write; the caller retries just this id.
    return {"run_id": run_id, "status_code": 503, "error": "DynamoDB did not answer in time; retry this id"}


def cancel_many(
    store: RunStore,
    tenant_id: str,
    run_ids: Sequence[str],
    *,
    reason: str | None = None,
    idempotency_key: str | None = None,
    source: str = TRIGGER_BULK,
    force: bool = False,
    remaining_ms: Callable[[], int] | None = None,
) -> list[dict[str, Any]]:
    """Cancel each distinct id once; invalid ids and store failures are reported per id.

    With `remaining_ms` (the invocation's clock), the answer comes before the function's
    timeout whatever DynamoDB does: decisions not finished ANSWER_MARGIN_MS before it are
    answered 503 for their id (their write may still land; a retry then finds it).
    """
    unique = list(dict.fromkeys(run_ids))
    at = clock.now()  # one request, one requested_at on every run it cancels

    def decide(run_id: str) -> dict[str, Any]:
        try:
            decision = cancel_run(
                store,
                tenant_id,
                run_id,
                reason=reason,
                idempotency_key=idempotency_key,
                source=source,
                force=force,
                at=at,
            )
        except StoreUnavailable:
            return _undecided(run_id)
        return bulk_result(decision)

    results = {
        run_id: {"run_id": run_id, "status_code": 400, "error": f"run_id must match {RUN_ID_PATTERN}"}
        for run_id in unique
        if not valid_run_id(run_id)
    }
    valid = [run_id for run_id in unique if run_id not in results]
    if valid:
        pool = ThreadPoolExecutor(max_workers=min(BULK_CONCURRENCY, len(valid)))
        futures = {run_id: pool.submit(decide, run_id) for run_id in valid}
        budget = None if remaining_ms is None else max(0.0, (remaining_ms() - ANSWER_MARGIN_MS) / 1000)
        wait(futures.values(), timeout=budget)
        # Not waiting for stragglers: each holds one DynamoDB call that the SDK's own timeouts end.
        pool.shutdown(wait=False, cancel_futures=True)
        for run_id, future in futures.items():
            results[run_id] = future.result() if future.done() and not future.cancelled() else _undecided(run_id)
    return [results[run_id] for run_id in unique]


_METRIC_BY_STATUS = {409: CANCEL_CONFLICT, 503: CANCEL_STORE_UNAVAILABLE, 400: cancel_metric(InvalidInput.__name__)}


def metric_counts(results: Sequence[dict[str, Any]]) -> Counter[str]:
    """How many entries of a bulk answer each `Cancel.<outcome>` metric counts, as a single cancel would."""
    return Counter(
        cancel_metric(entry["outcome"])
        if entry["status_code"] == 202
        else _METRIC_BY_STATUS.get(entry["status_code"], cancel_metric(f"status_{entry['status_code']}"))
        for entry in results
    )
