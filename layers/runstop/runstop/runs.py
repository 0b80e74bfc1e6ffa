"""The run lifecycle besides cancel: create, read, start, heartbeat, complete.

Each transition is one conditional update guarded by the status machine; a failed guard
answers from the item DynamoDB returns, so a late or repeated worker call can never
overwrite a cancel or revive a stopped run.
"""

from __future__ import annotations

from typing import Any

from runstop import clock
from runstop.config import settings
from runstop.errors import RunNotFound, TransitionConflict
from runstop.status import FINISHED, RunStatus, sources
from runstop.store import ConditionFailed, RunStore, active_shard_key, public_view


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


def get_run(store: RunStore, tenant_id: str, run_id: str) -> dict[str, Any]:
    run = store.get(tenant_id, run_id)
    if run is None:
        raise RunNotFound(run_id)
    return public_view(run)


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
