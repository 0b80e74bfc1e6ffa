"""The run lifecycle besides cancel: create, read, list, start, heartbeat, complete, stop acknowledged.

Each transition is one conditional update guarded by the status machine; a failed guard
answers from the item DynamoDB returns, so a late or repeated worker call can never
overwrite a cancel or revive a stopped run.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

from runstop import clock, cursor
from runstop.errors import InvalidInput, RunAlreadyExists, RunNotFound, RunstopError, TransitionConflict
from runstop.ids import request_token
from runstop.links import NO_LINKS, Links, check_links, put_linked
from runstop.settings import settings
from runstop.status import (
    ACKNOWLEDGE_STOP,
    COMPLETE,
    CREATE,
    FINISHED,
    HEARTBEAT,
    START,
    Change,
    RunStatus,
    StopPhase,
    Transition,
    changes,
    new_run,
    parent_key,
    public_view,
)
from runstop.store import ConditionFailed, RunStore
from runstop.trees import BY_PARENT_INDEX

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100

_KEYED_RUN_IDS = uuid.UUID("5b0f4f1e-7a52-4c1e-9d3e-2f6a1c0e8b74")
"""Namespace of the run ids derived from an Idempotency-Key (uuid5)."""


def create_run(
    store: RunStore,
    tenant_id: str,
    run_id: str,
    metadata: dict[str, Any],
    *,
    token: str | None = None,
    stop_grace_seconds: int | None = None,
    links: Links = NO_LINKS,
) -> dict[str, Any]:
    """Store a new pending run; RunAlreadyExists if the id is taken in this tenant by another request.

    The request's token is stored with the run, so a retry of this very request (the SDK's,
    after DynamoDB applied the write but its answer was lost) gets the run, not a 409. A run
    with links (a parent, a concurrency key) is put in one transaction with their conditions.
    """
    check_links(run_id, links)
    token = token or request_token()
    grace = stop_grace_seconds or settings().stop_grace_seconds
    item = new_run(
        tenant_id,
        run_id,
        at=clock.now(),
        retention_days=settings().retention_days,
        token=token,
        metadata=metadata,
        stop_grace_seconds=grace,
        stop_grace_us=grace * 1_000_000,  # what a cancel adds to its requested_at, inside its update
        **links.fields(),
    )
    try:
        if links:
            put_linked(store, item, links)
        else:
            store.put_new(item)
    except RunAlreadyExists as exists:
        if exists.existing is not None and CREATE.wrote(exists.existing, token):
            return public_view(exists.existing)
        raise
    return public_view(item)


def create_run_for_key(
    store: RunStore,
    tenant_id: str,
    key: str,
    run_id: str | None,
    metadata: dict[str, Any],
    *,
    stop_grace_seconds: int | None = None,
    links: Links = NO_LINKS,
) -> dict[str, Any]:
    """Create a run for a request with an Idempotency-Key (runstop.idempotency runs this once).

    Without a run_id the id derives from tenant and key, not from chance, and the key is the
    write's token: when DynamoDB applied a first try whose answer was lost, that try left no
    idempotency record, and the caller's retry must find the run it made, not make a second one.
    """
    derived = run_id or str(uuid.uuid5(_KEYED_RUN_IDS, f"{tenant_id}\n{key}"))
    # The key and the request it came with: the key reused with another request is not this write.
    fields: dict[str, Any] = {"run_id": run_id, "metadata": metadata, "stop_grace_seconds": stop_grace_seconds}
    if links:  # only then: the tokens of runs created without links stay what they were
        fields.update(links.fields(), on_active=links.on_active.value)
    request = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    token = f"{request_token(key)}#{hashlib.sha256(request.encode()).hexdigest()}"
    return create_run(
        store, tenant_id, derived, metadata, token=token, stop_grace_seconds=stop_grace_seconds, links=links
    )


def get_run(store: RunStore, tenant_id: str, run_id: str) -> dict[str, Any]:
    run = store.get(tenant_id, run_id)
    if run is None:
        raise RunNotFound(run_id)
    return public_view(run)


def listing(
    tenant_id: str,
    *,
    status: RunStatus | None = None,
    stop: StopPhase | None = None,
    parent_run_id: str | None = None,
) -> cursor.Listing:
    """Which index partition serves a filter: ByParent for a run's children, ByStop for a stop
    phase, ByStatus for a status, else ByCreated; each a tenant's own partition, newest first."""
    if parent_run_id is not None:
        if status is not None or stop is not None:
            raise InvalidInput("parent_run_id lists a run's children only; leave status and stop out")
        return cursor.Listing(tenant_id, BY_PARENT_INDEX, "tenant_parent", parent_key(tenant_id, parent_run_id))
    if stop is not None:
        return cursor.Listing(tenant_id, "ByStop", "tenant_stop", f"{tenant_id}#{stop.value}")
    if status is not None:
        return cursor.Listing(tenant_id, "ByStatus", "tenant_status", f"{tenant_id}#{status.value}")
    return cursor.Listing(tenant_id, "ByCreated", "tenant_id", tenant_id)


def list_runs(
    store: RunStore,
    tenant_id: str,
    *,
    status: RunStatus | None = None,
    stop: StopPhase | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    after: str | None = None,
    parent_run_id: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the tenant's runs, newest first, and the cursor of the next page (None: last page).

    One Query on the filter's index (see `listing`). It asks for one run more than the page
    holds, so a next cursor is only given when a next page really has runs.
    """
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be 1..{MAX_PAGE_SIZE}")
    if stop is not None and parent_run_id is None and status not in (None, RunStatus.INTERRUPTED):
        return [], None  # only interrupted runs have a stop phase: no run is in both
    chosen = listing(tenant_id, status=status, stop=stop, parent_run_id=parent_run_id)
    start = None if after is None else cursor.decode(after, chosen)
    items, truncated = store.query_newest_first(
        chosen.index, (chosen.attribute, chosen.value), limit=limit + 1, start_after=start
    )
    page = items[:limit]
    more = len(items) > limit or truncated
    next_cursor = cursor.encode(page[-1], chosen) if more and page else None
    return [public_view(item) for item in page], next_cursor


def _change(
    transition: Transition,
    tenant_id: str,
    run_id: str,
    *,
    target: RunStatus | None = None,
    stays: RunStatus | None = None,
    token: str | None = None,
) -> Change:
    return changes(
        transition,
        tenant_id=tenant_id,
        run_id=run_id,
        at=clock.now(),
        retention_days=settings().retention_days,
        target=target,
        stays=stays,
        token=token,
    )


def _refused(run_id: str, transition: Transition, current: dict[str, Any] | None) -> RunstopError:
    """Why a transition's condition failed, from the run as DynamoDB handed it back."""
    if current is None:
        return RunNotFound(run_id)
    return TransitionConflict(run_id, transition.action, public_view(current))


def _held_by(worker_id: str | None) -> tuple[str | None, dict[str, Any] | None]:
    """The condition that the run is held by `worker_id` (None: any worker may call)."""
    if worker_id is None:
        return None, None
    return "(attribute_not_exists(worker_id) OR worker_id = :worker)", {":worker": worker_id}


def _other_holder(current: dict[str, Any], worker_id: str | None) -> bool:
    return worker_id is not None and current.get("worker_id") not in (None, worker_id)


def _holder_conflict(run_id: str, transition: Transition, current: dict[str, Any]) -> TransitionConflict:
    holder = current.get("worker_id")
    reason = f"cannot {transition.action} run {run_id!r}: worker {holder!r} holds it"
    return TransitionConflict(run_id, transition.action, public_view(current), reason)


def _apply(
    store: RunStore,
    tenant_id: str,
    run_id: str,
    transition: Transition,
    change: Change,
    *,
    worker_id: str | None = None,
    already: Callable[[dict[str, Any]], bool] = lambda current: False,
    applied: Callable[[dict[str, Any]], dict[str, Any]] = lambda run: run,
) -> dict[str, Any]:
    """One conditional update; on refusal, `already(current)` says the request's own effect is
    already there (a repeat, or a retry after a lost answer), which answers like success."""
    condition, values = _held_by(worker_id)
    try:
        return applied(
            public_view(
                store.apply(tenant_id, run_id, transition, change, condition=condition, condition_values=values)
            )
        )
    except ConditionFailed as failed:
        current = failed.item
    if current is not None and _other_holder(current, worker_id):
        raise _holder_conflict(run_id, transition, current)
    if current is not None and already(current):
        return public_view(current)
    raise _refused(run_id, transition, current)


def start_run(store: RunStore, tenant_id: str, run_id: str, worker_id: str | None = None) -> dict[str, Any]:
    """pending -> running, held by `worker_id` (generated when absent); the heartbeat clock starts now.

    The worker id is the start's identity: the same worker starting again (or the SDK retrying
    after a lost answer) gets the run; another worker gets 409 naming the holder.
    """
    worker = worker_id or request_token()
    change = _change(START, tenant_id, run_id).plus({"worker_id": worker})
    return _apply(
        store,
        tenant_id,
        run_id,
        START,
        change,
        already=lambda current: current["status"] == RunStatus.RUNNING and current.get("worker_id") == worker,
    )


def heartbeat_run(store: RunStore, tenant_id: str, run_id: str, worker_id: str | None = None) -> dict[str, Any]:
    """Record that a running run's worker is alive; never revives a stopped run.

    Repeating it is harmless (it only moves heartbeat_at), so a retry after a lost answer
    simply applies again.
    """
    change = _change(HEARTBEAT, tenant_id, run_id, stays=RunStatus.RUNNING)
    return _apply(store, tenant_id, run_id, HEARTBEAT, change, worker_id=worker_id)


def acknowledge_stop(
    store: RunStore,
    tenant_id: str,
    run_id: str,
    worker_id: str | None = None,
    *,
    on_recorded: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """The worker confirms it stopped an interrupted run: `stopped_at` is recorded once (also
    after the run was marked overdue: it then shows both).

    A repeat answers the run as it is (acknowledged before: the same answer again); any
    other status is a conflict. `on_recorded` sees the run only when this call recorded it.
    """
    change = _change(ACKNOWLEDGE_STOP, tenant_id, run_id, stays=RunStatus.INTERRUPTED)
    recorded: list[dict[str, Any]] = []

    def record(run: dict[str, Any]) -> dict[str, Any]:
        recorded.append(run)
        return run

    run = _apply(
        store,
        tenant_id,
        run_id,
        ACKNOWLEDGE_STOP,
        change,
        worker_id=worker_id,
        already=lambda current: current["status"] == RunStatus.INTERRUPTED,
        applied=record,
    )
    if recorded and on_recorded is not None:
        on_recorded(run)
    return run


def stop_latency_ms(run: dict[str, Any]) -> float | None:
    """Milliseconds from the interruption (ended_at) to the acknowledgement (stopped_at)."""
    if not run.get("ended_at") or not run.get("stopped_at"):
        return None
    return (clock.epoch_us(clock.parse(run["stopped_at"])) - clock.epoch_us(clock.parse(run["ended_at"]))) / 1000


def complete_run(
    store: RunStore,
    tenant_id: str,
    run_id: str,
    status: RunStatus,
    worker_id: str | None = None,
    *,
    token: str | None = None,
) -> dict[str, Any]:
    """running -> success/error/timeout; a completion that arrives after a cancel loses.

    Completing again with the status the run already has answers the run, unchanged (so does
    the SDK's retry of this very request, found by its token); anything else is a conflict.
    """
    if status not in FINISHED:
        raise ValueError(f"{status} is not a completion status")
    token = token or request_token()
    change = _change(COMPLETE, tenant_id, run_id, target=status, token=token)
    return _apply(
        store,
        tenant_id,
        run_id,
        COMPLETE,
        change,
        worker_id=worker_id,
        already=lambda current: COMPLETE.wrote(current, token) or current["status"] == status,
    )
