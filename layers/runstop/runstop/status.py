"""The run status machine: the one place that says, for each transition, where it may start
and which attributes it sets and removes.

Besides the status itself, a run carries attributes that exist only for indexes and
housekeeping (`tenant_status` for ByStatus, `active_pk`/`sweep_at` for the sparse Active
index, `expires_at` for TTL). They follow from the status, so they are derived here and
nowhere else: create, start, heartbeat, complete, cancel and the seeder all ask `changes()`.
A new status is a change to this module (and its tests).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from runstop import clock


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    ERROR = "error"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"


ACTIVE: frozenset[RunStatus] = frozenset({RunStatus.PENDING, RunStatus.RUNNING})
"""A cancel may interrupt only these; they are also the only ones the sweeper sees."""

FINISHED: frozenset[RunStatus] = frozenset({RunStatus.SUCCESS, RunStatus.ERROR, RunStatus.TIMEOUT})
"""Terminal states a worker reports itself; cancelling one of these is a conflict."""

FINAL: frozenset[RunStatus] = FINISHED | {RunStatus.INTERRUPTED}
"""No transition leaves these: any read that shows one is the last word on the run."""

ACTIVE_SHARDS = 8
"""Partitions of the sparse active-runs index, so the sweeper's reads spread out."""

INTERNAL_ATTRIBUTES = frozenset(
    {
        "created_key",
        "tenant_status",
        "active_pk",
        "sweep_at",
        "expires_at",
        "create_token",
        "complete_token",
        "cancel_token",
        "tenant_parent",
        "children",
    }
)
"""Attributes that exist only for indexes, housekeeping and write identity, never shown to clients."""


class StopPhase(StrEnum):
    """Where an interrupted run stands on its way from "cancel recorded" to "work stopped"."""

    PENDING = "pending"
    """Its worker has until stop_deadline to acknowledge (the sparse Stopping index holds it)."""
    OVERDUE = "overdue"
    """Past stop_deadline without an acknowledgement: announced once (stop_overdue_at)."""
    ACKNOWLEDGED = "acknowledged"
    """stopped_at is recorded (by the worker, or at once for a run that never started)."""


@dataclass(frozen=True, slots=True)
class Transition:
    """An action on a run: the statuses it may start from, where it may lead, what it stamps."""

    action: str
    sources: frozenset[RunStatus]
    """The condition of its conditional write (empty: the run must not exist yet)."""
    targets: frozenset[RunStatus]
    """The statuses it may lead to (empty: the status stays as it is)."""
    stamps: tuple[str, ...] = ()
    """Timestamp attributes set to the moment of the transition."""
    guard: str | None = field(default=None)
    """A further condition on the stored run, beyond its status."""
    token: str | None = None
    """The attribute that keeps the request token of the write that made this transition, so a
    retry of that very request (the SDK's after a lost answer, or the caller's with the same
    Idempotency-Key) recognises its own write; None where the run's history needs no such proof."""

    stop_phase: StopPhase | None = None
    """The stop phase the run enters (GET /runs?stop=), for transitions on the way to stopped."""

    def wrote(self, item: Mapping[str, Any] | None, token: str | None) -> bool:
        """Whether `item` carries this transition as made by the request holding `token`."""
        return bool(self.token and token and item is not None and item.get(self.token) == token)


CREATE = Transition("create", frozenset(), frozenset({RunStatus.PENDING}), ("created_at",), token="create_token")
START = Transition(
    "start", frozenset({RunStatus.PENDING}), frozenset({RunStatus.RUNNING}), ("started_at", "heartbeat_at")
)
HEARTBEAT = Transition("heartbeat", frozenset({RunStatus.RUNNING}), frozenset(), ("heartbeat_at",))
COMPLETE = Transition("complete", frozenset({RunStatus.RUNNING}), FINISHED, ("ended_at",), token="complete_token")
INTERRUPT_RUNNING = Transition(
    "cancel",
    frozenset({RunStatus.RUNNING}),
    frozenset({RunStatus.INTERRUPTED}),
    ("ended_at",),
    token="cancel_token",
    stop_phase=StopPhase.PENDING,
)
"""A worker is running it: it has until the stop deadline (set by the cancel) to acknowledge."""
INTERRUPT_PENDING = Transition(
    "cancel",
    frozenset({RunStatus.PENDING}),
    frozenset({RunStatus.INTERRUPTED}),
    ("ended_at", "stopped_at"),
    token="cancel_token",
    stop_phase=StopPhase.ACKNOWLEDGED,
)
"""No worker ever started it: there is nothing to wait for, it is stopped at once."""
ACKNOWLEDGE_STOP = Transition(
    "acknowledge the stop of",
    frozenset({RunStatus.INTERRUPTED}),
    frozenset(),
    ("stopped_at",),
    guard="attribute_not_exists(stopped_at)",
    stop_phase=StopPhase.ACKNOWLEDGED,
)
"""Not a change of status: the worker confirms it stopped an interrupted run, once."""
MARK_OVERDUE = Transition(
    "mark overdue",
    frozenset({RunStatus.INTERRUPTED}),
    frozenset(),
    ("stop_overdue_at",),
    # Never over an acknowledgement, never twice: a late acknowledgement racing the sweeper wins.
    guard="attribute_not_exists(stopped_at) AND attribute_not_exists(stop_overdue_at)",
    stop_phase=StopPhase.OVERDUE,
)
"""The sweeper's note that an interrupted run is past its stop deadline without acknowledgement."""

CANCEL_VARIANTS: dict[RunStatus, Transition] = {
    RunStatus.RUNNING: INTERRUPT_RUNNING,
    RunStatus.PENDING: INTERRUPT_PENDING,
}
"""Cancel is one action with a variant per active status, each one conditional write on it."""

TRANSITIONS: Mapping[str, tuple[Transition, ...]] = {
    "create": (CREATE,),
    "start": (START,),
    "heartbeat": (HEARTBEAT,),
    "complete": (COMPLETE,),
    "cancel": (INTERRUPT_RUNNING, INTERRUPT_PENDING),
    "acknowledge": (ACKNOWLEDGE_STOP,),
    "mark overdue": (MARK_OVERDUE,),
}


def sources(action: str) -> frozenset[RunStatus]:
    """Every status the action may start from, whichever variant."""
    return frozenset().union(*(t.sources for t in TRANSITIONS[action]))


@dataclass(frozen=True, slots=True)
class Change:
    """What one transition writes: attributes to set and attributes to remove."""

    set: dict[str, Any]
    remove: tuple[str, ...] = ()

    def plus(self, values: Mapping[str, Any]) -> Change:
        """The same change, setting `values` too (a transition's own payload, e.g. the cancel record)."""
        return Change({**self.set, **values}, self.remove)

    def applied_to(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """The item as it stands after the change (what DynamoDB's update would leave)."""
        after = {k: v for k, v in item.items() if k not in self.remove}
        after.update(self.set)
        return after


def active_shard_key(status: str, tenant_id: str, run_id: str) -> str:
    """Sparse-index partition for an active run; absent once the run is no longer active."""
    shard = zlib.crc32(f"{tenant_id}/{run_id}".encode()) % ACTIVE_SHARDS
    return f"{status}#{shard}"


STOPPING = "stopping"


def stopping_shard_key(tenant_id: str, run_id: str) -> str:
    """Sparse Stopping-index partition of an interrupted run whose worker has yet to acknowledge."""
    return active_shard_key(STOPPING, tenant_id, run_id)


def stopping_partitions() -> list[str]:
    return [f"{STOPPING}#{shard}" for shard in range(ACTIVE_SHARDS)]


def changes(
    transition: Transition,
    *,
    tenant_id: str,
    run_id: str,
    at: datetime,
    retention_days: int,
    target: RunStatus | None = None,
    stays: RunStatus | None = None,
    token: str | None = None,
) -> Change:
    """The attributes `transition` sets and removes when it happens at `at`.

    `target` picks among several targets (complete); `stays` names the status a transition
    without a target keeps, so a heartbeat on an active run also moves its `sweep_at`;
    `token` is the request's own, kept where the transition keeps its token.
    """
    if target is None and len(transition.targets) == 1:
        (target,) = transition.targets
    if target is not None and target not in transition.targets:
        raise ValueError(f"{transition.action} cannot lead to {target}")
    if target is None and transition.targets:
        raise ValueError(f"{transition.action} needs a target, one of {sorted(transition.targets)}")
    stamp = clock.iso(at)
    values: dict[str, Any] = {"updated_at": stamp, **dict.fromkeys(transition.stamps, stamp)}
    if transition.token and token:
        values[transition.token] = token
    removed: tuple[str, ...] = ()
    status = target or stays
    if target is not None:
        values["status"] = target.value
        values["tenant_status"] = f"{tenant_id}#{target.value}"
    if status in ACTIVE:
        values["sweep_at"] = stamp
        if target is not None:
            values["active_pk"] = active_shard_key(target.value, tenant_id, run_id)
    elif target is not None:
        values["expires_at"] = clock.expiry_epoch(at, retention_days)
        removed = ("active_pk", "sweep_at")
    if transition.stop_phase is not None:
        values["tenant_stop"] = f"{tenant_id}#{transition.stop_phase.value}"
        if transition.stop_phase is StopPhase.PENDING:
            values["stopping_pk"] = stopping_shard_key(tenant_id, run_id)
        else:
            removed = (*removed, "stopping_pk")
    return Change(values, removed)


def parent_key(tenant_id: str, parent_run_id: str) -> str:
    """The ByParent index partition of a run's children (only children carry it: a sparse index)."""
    return f"{tenant_id}#{parent_run_id}"


def new_run(
    tenant_id: str, run_id: str, *, at: datetime, retention_days: int, token: str | None = None, **fields: Any
) -> dict[str, Any]:
    """The item of a run just created (pending), with every index attribute it needs."""
    stamp = clock.iso(at)
    item: dict[str, Any] = {
        "tenant_id": tenant_id,
        "run_id": run_id,
        "version": 1,
        "metadata": {},
        "created_key": f"{stamp}#{run_id}",
        **{name: value for name, value in fields.items() if value is not None},
    }
    if item.get("parent_run_id"):
        item["tenant_parent"] = parent_key(tenant_id, item["parent_run_id"])
    change = changes(CREATE, tenant_id=tenant_id, run_id=run_id, at=at, retention_days=retention_days, token=token)
    return change.applied_to(item)


def public_view(item: Mapping[str, Any]) -> dict[str, Any]:
    """The run as clients see it: index and housekeeping attributes removed.

    The stop deadline is kept as epoch microseconds (`stop_due`), because the cancel computes it
    inside its one update from the run's own grace (`requested_at + stop_grace_us`); clients see
    it as a timestamp like every other.
    """
    view = {k: v for k, v in item.items() if k not in INTERNAL_ATTRIBUTES}
    if item.get("stop_due") is not None:
        view.setdefault("stop_deadline", clock.iso_from_epoch_us(int(item["stop_due"])))
    return view
