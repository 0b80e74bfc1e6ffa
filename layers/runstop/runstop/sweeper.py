"""The stale-run sweeper: interrupt runs whose worker went silent or never started.

Candidates come from the sparse Active index (only pending and running runs carry its key,
spread over ACTIVE_SHARDS partitions per status), queried with `sweep_at < cutoff`, so a
sweep reads what is stale and nothing else: its cost follows the active runs, not the table.
Each candidate then goes through the one cancel decision with `stale_before=cutoff`, so:

- a run that finished a moment ago answers conflict and is left alone;
- a run whose heartbeat (or start) landed after the query answers fresh and is left alone;
- a run someone else cancelled meanwhile answers already_interrupted.

The sweep stops before the Lambda timeout; there is no cursor to save, because every run it
interrupts leaves the index and the next tick simply queries again.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from runstop import clock
from runstop.cancel import TRIGGER_SWEEPER, CancelOutcome, cancel_run
from runstop.errors import StoreUnavailable
from runstop.settings import Settings, settings
from runstop.status import ACTIVE_SHARDS, MARK_OVERDUE, RunStatus, changes, public_view, stopping_partitions
from runstop.store import ActivePage, ConditionFailed, RunStore

HEARTBEAT_TIMEOUT = "heartbeat_timeout"
PENDING_TIMEOUT = "pending_timeout"
SOURCE = TRIGGER_SWEEPER

DEFERRED = "deferred"
"""A candidate not tried because the sweep ran out of time (the next tick sees it again)."""
OVERDUE = "overdue"
"""A run the sweep found past its stop deadline and marked (stop_overdue_at, Run Stop Overdue)."""
UNAVAILABLE = "unavailable"
"""A candidate whose cancel hit a transient store failure (the next tick tries it again)."""


@dataclass(frozen=True, slots=True)
class SweepPolicy:
    heartbeat_timeout: timedelta
    """A running run whose last heartbeat is older than this is interrupted."""
    pending_timeout: timedelta
    """A pending run created longer ago than this (and never started) is interrupted."""
    page_size: int = 100
    concurrency: int = 8
    """Cancels in flight at once (the store's client keeps more connections than this)."""
    margin: timedelta = timedelta(seconds=5)
    """Stop starting new work when less than this is left before the function's timeout."""

    @classmethod
    def from_settings(cls, config: Settings) -> SweepPolicy:
        """The template passes HeartbeatTimeout / PendingTimeout (seconds) as environment."""
        return cls(
            heartbeat_timeout=timedelta(seconds=config.heartbeat_timeout_seconds),
            pending_timeout=timedelta(seconds=config.pending_timeout_seconds),
            page_size=config.sweep_page_size,
            concurrency=config.sweep_concurrency,
            margin=timedelta(seconds=config.sweep_margin_seconds),
        )


@dataclass(frozen=True, slots=True)
class Target:
    """One kind of staleness: which partitions to read, from when, and the reason to give."""

    status: RunStatus
    cutoff: datetime
    reason: str

    def partitions(self) -> list[str]:
        return [f"{self.status.value}#{shard}" for shard in range(ACTIVE_SHARDS)]


@dataclass(frozen=True, slots=True)
class StoppedRun:
    tenant_id: str
    run_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class OverdueRun:
    """An interrupted run found past its stop deadline without acknowledgement, marked once."""

    tenant_id: str
    run_id: str
    worker_id: str | None
    reason: str | None
    stop_deadline: str | None
    source: str
    """The trigger that interrupted it (the stop metrics' `trigger` dimension)."""

    @classmethod
    def of(cls, run: dict[str, Any]) -> OverdueRun:
        cancel = run.get("cancel") or {}
        return cls(
            run["tenant_id"],
            run["run_id"],
            run.get("worker_id"),
            cancel.get("reason"),
            run.get("stop_deadline"),
            str(cancel.get("source") or "unknown"),
        )


def mark_overdue(store: RunStore, tenant_id: str, run_id: str, *, at: datetime, stop_due_us: int) -> OverdueRun | None:
    """Note once that the run is past its stop deadline (None: acknowledged meanwhile, already
    noted, or gone): one conditional update, so a late acknowledgement is never overwritten."""
    change = changes(
        MARK_OVERDUE,
        tenant_id=tenant_id,
        run_id=run_id,
        at=at,
        retention_days=settings().retention_days,
        stays=RunStatus.INTERRUPTED,
    ).plus({"stop_deadline": clock.iso_from_epoch_us(stop_due_us)})
    try:
        run = store.apply(tenant_id, run_id, MARK_OVERDUE, change)
    except ConditionFailed:
        return None
    return OverdueRun.of(public_view(run))


@dataclass
class SweepSummary:
    """What one sweep did; returned by the function and logged."""

    started_at: str
    cutoffs: dict[str, str]
    outcomes: Counter[str] = field(default_factory=Counter)
    stopped: list[StoppedRun] = field(default_factory=list)
    candidates: int = 0
    pages: int = 0
    read_units: float = 0.0
    stopped_early: bool = False
    errors: int = 0
    overdue: list[OverdueRun] = field(default_factory=list)

    @property
    def interrupted(self) -> int:
        return self.outcomes[CancelOutcome.INTERRUPTED.value]

    def as_dict(self, *, include_runs: bool = False) -> dict[str, Any]:
        by_reason = Counter(run.reason for run in self.stopped)
        summary: dict[str, Any] = {
            "started_at": self.started_at,
            "cutoffs": self.cutoffs,
            "interrupted": self.interrupted,
            "interrupted_by_reason": dict(by_reason),
            "outcomes": dict(self.outcomes),
            "candidates": self.candidates,
            "pages": self.pages,
            "read_units": self.read_units,
            "stopped_early": self.stopped_early,
            "errors": self.errors,
            "overdue": len(self.overdue),
        }
        if include_runs:
            summary["stopped"] = [
                {"tenant_id": r.tenant_id, "run_id": r.run_id, "reason": r.reason} for r in self.stopped
            ]
            summary["overdue_runs"] = [
                {
                    "tenant_id": r.tenant_id,
                    "run_id": r.run_id,
                    "worker_id": r.worker_id,
                    "reason": r.reason,
                    "stop_deadline": r.stop_deadline,
                }
                for r in self.overdue
            ]
        return summary


def targets(policy: SweepPolicy, now: datetime) -> list[Target]:
    return [
        Target(RunStatus.RUNNING, now - policy.heartbeat_timeout, HEARTBEAT_TIMEOUT),
        Target(RunStatus.PENDING, now - policy.pending_timeout, PENDING_TIMEOUT),
    ]


def sweep(
    store: RunStore,
    policy: SweepPolicy,
    *,
    now: datetime | None = None,
    remaining_ms: Callable[[], int] | None = None,
    on_stopped: Callable[[StoppedRun], None] | None = None,
    on_overdue: Callable[[OverdueRun], None] | None = None,
) -> SweepSummary:
    """Interrupt every stale run, then mark every run past its stop deadline, as far as the time
    allows; `remaining_ms` is the Lambda context's clock. Both passes read sparse indexes only."""
    moment = now or clock.now()
    plan = targets(policy, moment)
    summary = SweepSummary(clock.iso(moment), {t.reason: clock.iso(t.cutoff) for t in plan})
    margin_ms = policy.margin.total_seconds() * 1000

    def out_of_time() -> bool:
        return remaining_ms is not None and remaining_ms() < margin_ms

    def interrupt(target: Target, key: tuple[str, str], _: str) -> str:
        if out_of_time():
            return DEFERRED
        tenant_id, run_id = key
        try:
            decision = cancel_run(
                store,
                tenant_id,
                run_id,
                reason=target.reason,
                source=SOURCE,
                stale_before=target.cutoff,
                expect=target.status,
            )
        except StoreUnavailable:
            return UNAVAILABLE
        if decision.outcome is CancelOutcome.INTERRUPTED:
            stopped = StoppedRun(tenant_id, run_id, target.reason)
            summary.stopped.append(stopped)  # list.append is atomic; order is completion order
            if on_stopped is not None:
                on_stopped(stopped)
        return decision.outcome.value

    def overdue(key: tuple[str, str], stop_due: str) -> str:
        if out_of_time():
            return DEFERRED
        try:
            marked = mark_overdue(store, *key, at=moment, stop_due_us=int(stop_due))
        except StoreUnavailable:
            return UNAVAILABLE
        if marked is None:
            return "acknowledged_or_marked"
        summary.overdue.append(marked)
        if on_overdue is not None:
            on_overdue(marked)
        return OVERDUE

    with ThreadPoolExecutor(max_workers=max(1, policy.concurrency), thread_name_prefix="sweep") as pool:

        def drain(partitions: list[str], fetch: Callable[..., ActivePage], act: Callable[..., str]) -> bool:
            """Every page of these partitions, acted on; False when the sweep must stop here."""
            for partition in partitions:
                start_key = None
                while True:
                    if out_of_time():
                        summary.stopped_early = True
                        return False
                    try:
                        page = fetch(partition, limit=policy.page_size, start_key=start_key)
                    except StoreUnavailable:
                        # The index cannot be read now; the next tick starts over.
                        summary.errors += 1
                        summary.stopped_early = True
                        return False
                    summary.pages += 1
                    summary.read_units += page.read_units
                    summary.candidates += len(page.keys)
                    positions = page.positions or [""] * len(page.keys)  # pages built by hand (tests)
                    summary.outcomes.update(pool.map(act, page.keys, positions))
                    if summary.outcomes[DEFERRED]:
                        summary.stopped_early = True
                        return False
                    if page.next_key is None:
                        break
                    start_key = page.next_key
            return True

        for target in plan:
            before = clock.iso(target.cutoff)
            fetch = functools.partial(store.active_page, before=before)
            if not drain(target.partitions(), fetch, functools.partial(interrupt, target)):
                return summary
        fetch = functools.partial(store.stopping_page, before_us=clock.epoch_us(moment))
        drain(stopping_partitions(), fetch, overdue)
    return summary
