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

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from runstop import clock
from runstop.cancel import CancelOutcome, cancel_run
from runstop.errors import StoreUnavailable
from runstop.settings import Settings
from runstop.status import ACTIVE_SHARDS, RunStatus
from runstop.store import RunStore

HEARTBEAT_TIMEOUT = "heartbeat_timeout"
PENDING_TIMEOUT = "pending_timeout"
SOURCE = "sweeper"

DEFERRED = "deferred"
"""A candidate not tried because the sweep ran out of time (the next tick sees it again)."""
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
        }
        if include_runs:
            summary["stopped"] = [
                {"tenant_id": r.tenant_id, "run_id": r.run_id, "reason": r.reason} for r in self.stopped
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
) -> SweepSummary:
    """Interrupt every stale run the time allows; `remaining_ms` is the Lambda context's clock."""
    moment = now or clock.now()
    plan = targets(policy, moment)
    summary = SweepSummary(clock.iso(moment), {t.reason: clock.iso(t.cutoff) for t in plan})
    margin_ms = policy.margin.total_seconds() * 1000

    def out_of_time() -> bool:
        return remaining_ms is not None and remaining_ms() < margin_ms

    def decide(target: Target, key: tuple[str, str]) -> str:
        if out_of_time():
            return DEFERRED
        tenant_id, run_id = key
        try:
            decision = cancel_run(
                store, tenant_id, run_id, reason=target.reason, source=SOURCE, stale_before=target.cutoff
            )
        except StoreUnavailable:
            return UNAVAILABLE
        if decision.outcome is CancelOutcome.INTERRUPTED:
            stopped = StoppedRun(tenant_id, run_id, target.reason)
            summary.stopped.append(stopped)  # list.append is atomic; order is completion order
            if on_stopped is not None:
                on_stopped(stopped)
        return decision.outcome.value

    with ThreadPoolExecutor(max_workers=max(1, policy.concurrency), thread_name_prefix="sweep") as pool:
        for target in plan:
            for partition in target.partitions():
                start_key = None
                while True:
                    if out_of_time():
                        summary.stopped_early = True
                        return summary
                    try:
                        page = store.active_page(
                            partition, before=clock.iso(target.cutoff), limit=policy.page_size, start_key=start_key
                        )
                    except StoreUnavailable:
                        # The index cannot be read now; the next tick starts over.
                        summary.errors += 1
                        summary.stopped_early = True
                        return summary
                    summary.pages += 1
                    summary.read_units += page.read_units
                    summary.candidates += len(page.keys)
                    summary.outcomes.update(pool.map(lambda key, t=target: decide(t, key), page.keys))
                    if summary.outcomes[DEFERRED]:
                        summary.stopped_early = True
                        return summary
                    if page.next_key is None:
                        break
                    start_key = page.next_key
    return summary
