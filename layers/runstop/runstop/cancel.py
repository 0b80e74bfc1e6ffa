"""The one cancel decision, used by every trigger (HTTP, bulk, SQS, EventBridge, sweeper).

One conditional UpdateItem interrupts a pending or running run. When the condition fails,
the item DynamoDB hands back (ALL_OLD) decides: already interrupted -> accepted, finished ->
conflict. Only when no item comes back does a strongly consistent read decide (absent ->
accepted). So interrupted, already_interrupted and conflict cost one request, absent two.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from runstop import clock
from runstop.settings import settings
from runstop.status import ACTIVE, CANCEL, RunStatus, changes
from runstop.store import ConditionFailed, RunStore

MAX_REASON_LENGTH = 256

# A run that appears between the failed update and the read (created in that instant) is
# active, so the update is tried again; beyond this many tries something is badly wrong.
_MAX_ATTEMPTS = 3


class CancelOutcome(StrEnum):
    INTERRUPTED = "interrupted"
    ALREADY_INTERRUPTED = "already_interrupted"
    ABSENT = "absent"
    CONFLICT = "conflict"
    FRESH = "fresh"
    """Only with `stale_before`: the run is active but showed life since, so it was left alone."""


@dataclass(frozen=True, slots=True)
class CancelDecision:
    run_id: str
    outcome: CancelOutcome
    run: dict[str, Any] | None
    """The run as stored when the decision was made; None when absent."""

    @property
    def accepted(self) -> bool:
        """202 for everything but a finished run: cancelling is idempotent."""
        return self.outcome is not CancelOutcome.CONFLICT

    @property
    def status_code(self) -> int:
        return 202 if self.accepted else 409

    @property
    def run_status(self) -> str | None:
        return None if self.run is None else str(self.run["status"])


def cancel_run(
    store: RunStore,
    tenant_id: str,
    run_id: str,
    *,
    reason: str | None = None,
    idempotency_key: str | None = None,
    source: str = "api",
    at: datetime | None = None,
    stale_before: datetime | None = None,
) -> CancelDecision:
    """Interrupt the run if it is active; otherwise say what it already is.

    With `stale_before` (the sweeper), the run is interrupted only if it is also stale: its
    sweep_at (last heartbeat, or creation while pending) is older than that moment, checked in
    the same conditional update, so a heartbeat that lands after the sweeper's query wins.
    """
    moment = at or clock.now()
    stale = None if stale_before is None else "sweep_at < :stale_before"
    stale_values = None if stale_before is None else {":stale_before": clock.iso(stale_before)}
    stamp = clock.iso(moment)
    record: dict[str, Any] = {"reason": reason, "requested_at": stamp, "source": source}
    if idempotency_key is not None:
        record["idempotency_key"] = idempotency_key
    change = changes(
        CANCEL, tenant_id=tenant_id, run_id=run_id, at=moment, retention_days=settings().retention_days
    ).plus({"cancel": record})
    for _ in range(_MAX_ATTEMPTS):
        try:
            run = store.apply(tenant_id, run_id, CANCEL, change, condition=stale, condition_values=stale_values)
            return CancelDecision(run_id, CancelOutcome.INTERRUPTED, run)
        except ConditionFailed as failed:
            current = failed.item if failed.item is not None else store.get(tenant_id, run_id)
        if current is None:
            return CancelDecision(run_id, CancelOutcome.ABSENT, None)
        status = current["status"]
        if status == RunStatus.INTERRUPTED:
            stored = current.get("cancel") or {}
            # Our own write counts as ours: the same Idempotency-Key, or this very record, which
            # is what an SDK retry finds when the first attempt applied but its answer was lost.
            same_key = idempotency_key is not None and stored.get("idempotency_key") == idempotency_key
            mine = same_key or stored == record
            outcome = CancelOutcome.INTERRUPTED if mine else CancelOutcome.ALREADY_INTERRUPTED
            return CancelDecision(run_id, outcome, current)
        if status not in ACTIVE:
            return CancelDecision(run_id, CancelOutcome.CONFLICT, current)
        if stale_before is not None:
            return CancelDecision(run_id, CancelOutcome.FRESH, current)
    raise RuntimeError(f"run {run_id!r} stayed active through {_MAX_ATTEMPTS} cancel attempts")
