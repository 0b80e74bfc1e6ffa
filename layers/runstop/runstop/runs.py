"""The run lifecycle besides cancel: create, read, list, start, heartbeat, complete, stop acknowledged.

Each transition is one conditional update guarded by the status machine; a failed guard
answers from the item DynamoDB returns, so a late or repeated worker call can never
overwrite a cancel or revive a stopped run.
"""

from __future__ import annotations

import uuid
from typing import Any

from runstop import clock, cursor
from runstop.errors import RunAlreadyExists, RunNotFound, RunstopError, TransitionConflict
from runstop.settings import settings
from runstop.status import (
    ACKNOWLEDGE_STOP,
    COMPLETE,
    FINISHED,
    HEARTBEAT,
    START,
    Change,
    RunStatus,
    Transition,
    changes,
    new_run,
    public_view,
)
from runstop.store import ConditionFailed, RunStore

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100

_KEYED_RUN_IDS = uuid.UUID("5b0f4f1e-7a52-4c1e-9d3e-2f6a1c0e8b74")
"""Namespace of the run ids derived from an Idempotency-Key (uuid5)."""


def create_run(store: RunStore, tenant_id: str, run_id: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """Store a new pending run; RunAlreadyExists if the id is taken in this tenant."""
    item = new_run(tenant_id, run_id, at=clock.now(), retention_days=settings().retention_days, metadata=metadata)
    store.put_new(item)
    return public_view(item)


def create_run_for_key(
    store: RunStore, tenant_id: str, key: str, run_id: str | None, metadata: dict[str, Any]
) -> dict[str, Any]:
    """Create a run for a request with an Idempotency-Key (runstop.idempotency runs this once).

    Without a run_id the id derives from tenant and key, not from chance: when DynamoDB applied
    the first try's write but its answer was lost, that try failed and left no idempotency
    record, and the retry must find the run it made rather than make a second one.
    """
    if run_id is not None:
        return create_run(store, tenant_id, run_id, metadata)
    derived = str(uuid.uuid5(_KEYED_RUN_IDS, f"{tenant_id}\n{key}"))
    try:
        return create_run(store, tenant_id, derived, metadata)
    except RunAlreadyExists:
        existing = store.get(tenant_id, derived)
        if existing is None or existing.get("metadata") != metadata:
            raise
        return public_view(existing)


def get_run(store: RunStore, tenant_id: str, run_id: str) -> dict[str, Any]:
    run = store.get(tenant_id, run_id)
    if run is None:
        raise RunNotFound(run_id)
    return public_view(run)


def list_runs(
    store: RunStore,
    tenant_id: str,
    *,
    status: RunStatus | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    after: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the tenant's runs, newest first, and the cursor of the next page (None: last page).

    One Query on ByCreated, or on ByStatus for one status. It asks for one run more than the
    page holds, so a next cursor is only given when a next page really has runs.
    """
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be 1..{MAX_PAGE_SIZE}")
    wanted = None if status is None else status.value
    if wanted is None:
        index, partition = "ByCreated", ("tenant_id", tenant_id)
    else:
        index, partition = "ByStatus", ("tenant_status", f"{tenant_id}#{wanted}")
    start = None if after is None else cursor.decode(after, tenant_id, wanted)
    items, truncated = store.query_newest_first(index, partition, limit=limit + 1, start_after=start)
    page = items[:limit]
    more = len(items) > limit or truncated
    next_cursor = cursor.encode(page[-1], tenant_id, wanted) if more and page else None
    return [public_view(item) for item in page], next_cursor


def _change(
    transition: Transition,
    tenant_id: str,
    run_id: str,
    *,
    target: RunStatus | None = None,
    stays: RunStatus | None = None,
) -> Change:
    return changes(
        transition,
        tenant_id=tenant_id,
        run_id=run_id,
        at=clock.now(),
        retention_days=settings().retention_days,
        target=target,
        stays=stays,
    )


def _refused(run_id: str, transition: Transition, current: dict[str, Any] | None) -> RunstopError:
    """Why a transition's condition failed, from the run as DynamoDB handed it back."""
    if current is None:
        return RunNotFound(run_id)
    return TransitionConflict(run_id, transition.action, str(current["status"]))


def _apply(store: RunStore, tenant_id: str, run_id: str, transition: Transition, change: Change) -> dict[str, Any]:
    try:
        return public_view(store.apply(tenant_id, run_id, transition, change))
    except ConditionFailed as failed:
        raise _refused(run_id, transition, failed.item) from None


def start_run(store: RunStore, tenant_id: str, run_id: str) -> dict[str, Any]:
    """pending -> running; the heartbeat clock starts now."""
    return _apply(store, tenant_id, run_id, START, _change(START, tenant_id, run_id))


def heartbeat_run(store: RunStore, tenant_id: str, run_id: str) -> dict[str, Any]:
    """Record that a running run's worker is alive; never revives a stopped run."""
    return _apply(store, tenant_id, run_id, HEARTBEAT, _change(HEARTBEAT, tenant_id, run_id, stays=RunStatus.RUNNING))


def acknowledge_stop(store: RunStore, tenant_id: str, run_id: str) -> dict[str, Any]:
    """The worker confirms it stopped an interrupted run: `stopped_at` is recorded once.

    A repeat answers the run as it is (acknowledged before: the same answer again); any
    other status is a conflict.
    """
    change = _change(ACKNOWLEDGE_STOP, tenant_id, run_id, stays=RunStatus.INTERRUPTED)
    try:
        return public_view(store.apply(tenant_id, run_id, ACKNOWLEDGE_STOP, change))
    except ConditionFailed as failed:
        if failed.item is not None and failed.item["status"] == RunStatus.INTERRUPTED:
            return public_view(failed.item)
        raise _refused(run_id, ACKNOWLEDGE_STOP, failed.item) from None


def complete_run(store: RunStore, tenant_id: str, run_id: str, status: RunStatus) -> dict[str, Any]:
    """running -> success/error/timeout; a completion that arrives after a cancel loses."""
    if status not in FINISHED:
        raise ValueError(f"{status} is not a completion status")
    return _apply(store, tenant_id, run_id, COMPLETE, _change(COMPLETE, tenant_id, run_id, target=status))
