"""The one cancel decision, used by every trigger (HTTP, bulk, SQS, EventBridge, sweeper).

One conditional UpdateItem interrupts a pending or running run. When the condition fails,
the item DynamoDB hands back (ALL_OLD) decides: already interrupted -> accepted, finished ->
conflict. Only when no item comes back does a strongly consistent read decide (absent ->
accepted). So interrupted, already_interrupted and conflict cost one request, absent two.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from runstop import clock
from runstop.errors import StoreUnavailable
from runstop.ids import request_token
from runstop.settings import settings
from runstop.status import (
    ACTIVE,
    CANCEL_VARIANTS,
    FINAL,
    INTERRUPT_RUNNING,
    Change,
    RunStatus,
    Transition,
    changes,
    public_view,
)
from runstop.store import ConditionFailed, Offset, RunStore

MAX_REASON_LENGTH = 256

# Who asked for a cancel: stored as the cancel record's `source`, and the `trigger` dimension
# of the `Cancel.<outcome>` metric each decision is counted under. Kept here, on the cancel
# function's import path; runstop.metric_names gathers every name the template's alarms watch.
TRIGGER_DIMENSION = "trigger"
TRIGGER_API = "api"
"""POST /runs/{run_id}/cancel."""
TRIGGER_BULK = "bulk"
"""POST /runs/cancel."""
TRIGGER_SQS = "sqs"
TRIGGER_EVENTBRIDGE = "eventbridge"
TRIGGER_SWEEPER = "sweeper"

# A run that appears between the failed update and the read (created in that instant) is
# active, so the update is tried again; beyond this many tries something is badly wrong.
_MAX_ATTEMPTS = 4


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
    by_fallback_read: bool = False
    """Decided by a read after the update was throttled (counted: Cancel.fallback_read)."""

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


def cancel_metric(outcome: str) -> str:
    """`Cancel.<outcome>` for a decision (or a trigger's `malformed`), `Cancel.<error class>` for a refusal."""
    return f"Cancel.{outcome}"


def cancel_record(
    at: datetime,
    *,
    reason: str | None,
    source: str,
    idempotency_key: str | None = None,
    force: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The run's `cancel` attribute: why, when, by which trigger (and with which key, force, links)."""
    record: dict[str, Any] = {"reason": reason, "requested_at": clock.iso(at), "source": source}
    if idempotency_key is not None:
        record["idempotency_key"] = idempotency_key
    if force:
        record["force"] = True
    record.update(extra or {})
    return record


def cancel_change(
    tenant_id: str,
    run_id: str,
    status: RunStatus,
    *,
    at: datetime,
    record: Mapping[str, Any],
    token: str,
    force: bool = False,
) -> tuple[Transition, Change]:
    """The conditional write that interrupts the run from `status` (its variant of cancel): a running
    run gets `stop_due` = requested_at + its own grace, computed by DynamoDB in the update (`force`:
    no grace). Shared by cancel_run and the create that supersedes its key's run in its transaction."""
    transition = CANCEL_VARIANTS[status]
    payload: dict[str, Any] = {"cancel": dict(record)}
    if status is RunStatus.RUNNING:
        requested_us = clock.epoch_us(at)
        payload["stop_due"] = requested_us if force else Offset(requested_us, "stop_grace_us", settings().stop_grace_us)
    change = changes(
        transition, tenant_id=tenant_id, run_id=run_id, at=at, retention_days=settings().retention_days, token=token
    ).plus(payload)
    return transition, change


def cancel_run(
    store: RunStore,
    tenant_id: str,
    run_id: str,
    *,
    reason: str | None = None,
    idempotency_key: str | None = None,
    source: str = TRIGGER_API,
    force: bool = False,
    at: datetime | None = None,
    stale_before: datetime | None = None,
    expect: RunStatus = RunStatus.RUNNING,
    extra: Mapping[str, Any] | None = None,
) -> CancelDecision:
    """Interrupt the run if it is active; otherwise say what it already is.

    A running run gets `stop_deadline` = requested_at + its stop grace (`force`: no grace),
    computed by DynamoDB in the same conditional update from the run's own grace; a pending run
    has no worker to wait for and is stopped at once. Each is its own conditional write on the
    status it expects (`expect`, running unless the caller knows better), so cancelling a
    pending run costs a second write when the first guess was running.

    With `stale_before` (the sweeper), the run is interrupted only if it is also stale: its
    sweep_at (last heartbeat, or creation while pending) is older than that moment, checked in
    the same conditional update, so a heartbeat that lands after the sweeper's query wins.
    `extra` adds to the cancel record (a cascade's `root_run_id`).
    """
    moment = at or clock.now()
    stale = None if stale_before is None else "sweep_at < :stale_before"
    stale_values = None if stale_before is None else {":stale_before": clock.iso(stale_before)}
    record = cancel_record(
        moment, reason=reason, source=source, idempotency_key=idempotency_key, force=force, extra=extra
    )
    # The request's identity: a retry that finds this token on the run knows the cancel is its own.
    token = request_token(idempotency_key)
    status = expect
    for _ in range(_MAX_ATTEMPTS):
        transition, change = cancel_change(
            tenant_id, run_id, status, at=moment, record=record, token=token, force=force
        )
        try:
            run = store.apply(tenant_id, run_id, transition, change, condition=stale, condition_values=stale_values)
            return CancelDecision(run_id, CancelOutcome.INTERRUPTED, public_view(run))
        except ConditionFailed as failed:
            current = failed.item if failed.item is not None else store.get(tenant_id, run_id)
        except StoreUnavailable as unavailable:
            return _decided_by_a_read(store, tenant_id, run_id, token, unavailable)
        decision = _decided_by(run_id, current, token, transition if stale_before is not None else None)
        if decision is not None:
            return decision
        assert current is not None  # active: try the variant for the status it has now
        status = RunStatus(current["status"])
    # Appearing and vanishing under every try: say nothing rather than guess (503, retry).
    raise StoreUnavailable(f"run {run_id!r} kept changing through {_MAX_ATTEMPTS} cancel attempts")


def _decided_by(
    run_id: str, current: dict[str, Any] | None, token: str, attempted: Transition | None = None
) -> CancelDecision | None:
    """The decision a failed update leaves, from the run as it stands (None: active in another
    status than `attempted` expected, so try that status's variant). `attempted` is given only
    with a staleness guard (the sweeper), whose failure on an active run means fresh."""
    if current is None:
        return CancelDecision(run_id, CancelOutcome.ABSENT, None)
    status = current["status"]
    if status == RunStatus.INTERRUPTED:
        mine = INTERRUPT_RUNNING.wrote(current, token)  # every cancel variant keeps the same token
        outcome = CancelOutcome.INTERRUPTED if mine else CancelOutcome.ALREADY_INTERRUPTED
        return CancelDecision(run_id, outcome, public_view(current))
    if status not in ACTIVE:
        return CancelDecision(run_id, CancelOutcome.CONFLICT, public_view(current))
    if attempted is not None and status in attempted.sources:
        # The status was the one the update expected: only the staleness guard can have failed.
        return CancelDecision(run_id, CancelOutcome.FRESH, public_view(current))
    return None


def _decided_by_a_read(
    store: RunStore, tenant_id: str, run_id: str, token: str, unavailable: StoreUnavailable
) -> CancelDecision:
    """A throttled update may still be decided: any read, even an eventually consistent one, that
    shows a final status is the last word on the run (reads have capacity of their own). Only an
    active, absent or unreadable run leaves the cancel undecided (StoreUnavailable, 503)."""
    if not (unavailable.throttled and settings().throttle_fallback):
        raise unavailable
    try:
        current = store.get(tenant_id, run_id, consistent=False)
    except StoreUnavailable:
        raise unavailable from None
    if current is None or current["status"] not in FINAL:
        raise unavailable
    decision = _decided_by(run_id, current, token)
    assert decision is not None  # a final status always decides
    return CancelDecision(decision.run_id, decision.outcome, decision.run, by_fallback_read=True)
