"""The run lifecycle besides cancel: create, read, list, start, heartbeat, complete, stop acknowledged.

Each transition is one conditional update guarded by the status machine; a failed guard
answers from the item DynamoDB returns, so a late or repeated worker call can never
overwrite a cancel or revive a stopped run.
"""

from __future__ import annotations

import uuid
from typing import Any

from runstop import clock, cursor
from runstop.config import settings
from runstop.errors import RunAlreadyExists, RunNotFound, TransitionConflict
from runstop.status import FINISHED, RunStatus, sources
from runstop.store import ConditionFailed, RunStore, active_shard_key, public_view

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100

_KEYED_RUN_IDS = uuid.UUID("5b0f4f1e-7a52-4c1e-9d3e-2f6a1c0e8b74")
"""Namespace of the run ids derived from an Idempotency-Key (uuid5)."""


def create_run(store: RunStore, tenant_id: str, run_id: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """Store a new pending run; RunAlreadyExists if the id is taken in this tenant."""
    stamp = clock.iso(clock.now())
    item: dict[str, Any] = {
        "tenant_id": tenant_id,
        "run_id": run_id,
        "status": RunStatus.PENDING.value,
        "created_at": stamp,
        "updated_at": stamp,
        "version": 1,
        "metadata": metadata,
        "created_key": f"{stamp}#{run_id}",
        "tenant_status": f"{tenant_id}#{RunStatus.PENDING.value}",
        "active_pk": active_shard_key(RunStatus.PENDING.value, tenant_id, run_id),
        "sweep_at": stamp,
    }
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


def _apply(
    store: RunStore,
    tenant_id: str,
    run_id: str,
    action: str,
    set_values: dict[str, Any],
    remove: tuple[str, ...] = (),
) -> dict[str, Any]:
    try:
        run = store.transition(tenant_id, run_id, from_statuses=sources(action), set_values=set_values, remove=remove)
    except ConditionFailed as failed:
        if failed.item is None:
            raise RunNotFound(run_id) from None
        raise TransitionConflict(run_id, action, str(failed.item["status"])) from None
    return public_view(run)


def start_run(store: RunStore, tenant_id: str, run_id: str) -> dict[str, Any]:
    """pending -> running; the heartbeat clock starts now."""
    stamp = clock.iso(clock.now())
    return _apply(
        store,
        tenant_id,
        run_id,
        "start",
        {
            "status": RunStatus.RUNNING.value,
            "tenant_status": f"{tenant_id}#{RunStatus.RUNNING.value}",
            "started_at": stamp,
            "heartbeat_at": stamp,
            "updated_at": stamp,
            "active_pk": active_shard_key(RunStatus.RUNNING.value, tenant_id, run_id),
            "sweep_at": stamp,
        },
    )


def heartbeat_run(store: RunStore, tenant_id: str, run_id: str) -> dict[str, Any]:
    """Record that a running run's worker is alive; never revives a stopped run."""
    stamp = clock.iso(clock.now())
    return _apply(
        store,
        tenant_id,
        run_id,
        "heartbeat",
        {"heartbeat_at": stamp, "updated_at": stamp, "sweep_at": stamp},
    )


def acknowledge_stop(store: RunStore, tenant_id: str, run_id: str) -> dict[str, Any]:
    """The worker confirms it stopped an interrupted run: `stopped_at` is recorded once.

    Not a status transition (the run stays interrupted), so it is guarded here rather than in
    the status machine: only an interrupted run without `stopped_at` is changed, a repeat
    answers the run as it is, and any other status is a conflict.
    """
    stamp = clock.iso(clock.now())
    try:
        run = store.transition(
            tenant_id,
            run_id,
            from_statuses=(RunStatus.INTERRUPTED,),
            set_values={"stopped_at": stamp, "updated_at": stamp},
            extra_condition="attribute_not_exists(stopped_at)",
        )
    except ConditionFailed as failed:
        if failed.item is None:
            raise RunNotFound(run_id) from None
        if failed.item["status"] == RunStatus.INTERRUPTED:
            return public_view(failed.item)  # acknowledged before: the same answer again
        raise TransitionConflict(run_id, "acknowledge the stop of", str(failed.item["status"])) from None
    return public_view(run)


def complete_run(store: RunStore, tenant_id: str, run_id: str, status: RunStatus) -> dict[str, Any]:
    """running -> success/error/timeout; a completion that arrives after a cancel loses."""
    if status not in FINISHED:
        raise ValueError(f"{status} is not a completion status")
    moment = clock.now()
    stamp = clock.iso(moment)
    return _apply(
        store,
        tenant_id,
        run_id,
        "complete",
        {
            "status": status.value,
            "tenant_status": f"{tenant_id}#{status.value}",
            "ended_at": stamp,
            "updated_at": stamp,
            "expires_at": clock.expiry_epoch(moment, settings().retention_days),
        },
        remove=("active_pk", "sweep_at"),
    )
