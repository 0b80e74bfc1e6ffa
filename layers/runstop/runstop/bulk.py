"""Bulk cancel: every run decided by the one cancel decision, a bounded number at a time.

Pydantic-free, so any trigger (HTTP, a queue) can call it. One bad or unlucky id never fails
the batch: each id gets its own answer, in the order the ids first appear.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from runstop import clock
from runstop.cancel import CancelDecision, cancel_run
from runstop.errors import StoreUnavailable
from runstop.ids import RUN_ID_PATTERN, valid_run_id
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


def cancel_many(
    store: RunStore,
    tenant_id: str,
    run_ids: Sequence[str],
    *,
    reason: str | None = None,
    idempotency_key: str | None = None,
    source: str = "bulk",
) -> list[dict[str, Any]]:
    """Cancel each distinct id once; invalid ids and store failures are reported per id."""
    unique = list(dict.fromkeys(run_ids))
    at = clock.now()  # one request, one requested_at on every run it cancels

    def decide(run_id: str) -> dict[str, Any]:
        try:
            decision = cancel_run(
                store, tenant_id, run_id, reason=reason, idempotency_key=idempotency_key, source=source, at=at
            )
        except StoreUnavailable:
            # Nothing is known about this run's write; the caller retries just this id.
            return {"run_id": run_id, "status_code": 503, "error": "DynamoDB did not answer in time; retry this id"}
        return bulk_result(decision)

    results = {
        run_id: {"run_id": run_id, "status_code": 400, "error": f"run_id must match {RUN_ID_PATTERN}"}
        for run_id in unique
        if not valid_run_id(run_id)
    }
    valid = [run_id for run_id in unique if run_id not in results]
    if valid:
        with ThreadPoolExecutor(max_workers=min(BULK_CONCURRENCY, len(valid))) as pool:
            results.update(zip(valid, pool.map(decide, valid), strict=True))
    return [results[run_id] for run_id in unique]
