"""Run trees: a child exists only if its parent was active when it was created, and cancelling a
run cancels its active descendants at any depth (the cascade).

The child's create is one transaction: put the child, and on the parent (condition: pending or
running) add one to its `children` counter. A cancel of the parent and the child's create both
write the parent, so DynamoDB orders them: the child either committed first (the counter has
it) or is refused with the parent's status. Once the parent is interrupted its counter can no
longer move, so the cascade knows how many children to find; it lists them from the sparse
ByParent index and, since that index may lag behind the table, lists again (with backoff) until
it has seen every one of them. Each child is interrupted by the one cancel decision (source
cascade, the root's reason, `root_run_id`); its own interruption then cascades in turn, from
the table's stream, so a tree of any depth stops level by level without the first answer
waiting for any of it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from runstop import clock
from runstop.cancel import CancelOutcome, cancel_run
from runstop.errors import CascadeIncomplete, ParentNotActive, ParentNotFound, RunstopError
from runstop.status import ACTIVE, RunStatus, parent_key
from runstop.store import Refusal, RunStore

BY_PARENT_INDEX = "ByParent"
"""The sparse index of children (tenant_parent, created_key): only a child carries tenant_parent."""
CASCADE_SOURCE = "cascade"
CASCADE_CONCURRENCY = 16
"""Children decided at once, as in bulk cancel (the store's client keeps 16 connections)."""
PARENTS_AT_ONCE = 4
"""Runs whose children are listed at once (their decisions share the CASCADE_CONCURRENCY threads)."""
LISTING_PAGE = 500
LISTING_ROUNDS = 10
"""Listings of a parent's children before the cascade gives up for now (the queue retries it)."""


def join_parent(store: RunStore, tenant_id: str, parent_run_id: str) -> Any:
    """The transaction item that counts one more child on the parent, only while it is active."""
    active = sorted(ACTIVE)
    return {
        "Update": {
            "TableName": store.table_name,
            "Key": store.key(tenant_id, parent_run_id),
            "UpdateExpression": "ADD children :one",
            "ConditionExpression": f"#status IN ({', '.join(f':s{i}' for i in range(len(active)))})",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                ":one": {"N": "1"},
                **{f":s{i}": {"S": status.value} for i, status in enumerate(active)},
            },
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def parent_refusal(parent_run_id: str, refusal: Refusal) -> RunstopError:
    """Why the parent's condition failed: it is gone, or no longer active."""
    if refusal.item is None:
        return ParentNotFound(parent_run_id)
    return ParentNotActive(parent_run_id, str(refusal.item["status"]))


@dataclass
class CascadeResult:
    """What one cascade step did: the decisions per outcome, and the parents it went through."""

    run_id: str
    root_run_id: str | None = None
    outcomes: Counter[str] = field(default_factory=Counter)
    parents: int = 0
    listings: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "root_run_id": self.root_run_id,
            "outcomes": dict(self.outcomes),
            "parents": self.parents,
            "listings": self.listings,
        }


def children_pages(store: RunStore, tenant_id: str, parent_run_id: str) -> Iterator[list[dict[str, Any]]]:
    """Every page of the parent's children in the ByParent index (eventually consistent)."""
    start: dict[str, Any] | None = None
    while True:
        items, start, _ = store.query_page(
            BY_PARENT_INDEX,
            "tenant_parent = :parent",
            {":parent": parent_key(tenant_id, parent_run_id)},
            limit=LISTING_PAGE,
            start_key=start,
        )
        yield items
        if start is None:
            return


@dataclass(frozen=True, slots=True)
class _Parent:
    """A run whose children a cascade step goes through."""

    run: dict[str, Any]
    must: bool
    """True: only this step reaches its children (the interrupted run itself, or one that finished
    by itself), so its count is exact (read strongly consistent) and every child must be seen.
    False: interrupted by this step, so its own stream record will cascade it in any case; going
    through it now, once, only makes the tree stop sooner."""


def cascade(
    store: RunStore,
    tenant_id: str,
    run_id: str,
    *,
    run: dict[str, Any] | None = None,
    rounds: int = LISTING_ROUNDS,
    backoff: Callable[[int], float] | None = None,
    remaining_ms: Callable[[], int] | None = None,
    margin_ms: int = 10_000,
) -> CascadeResult:
    """Interrupt the active descendants of the interrupted run `run_id`, level by level, as far as
    the time allows (`remaining_ms`, the invocation's clock): each run it interrupts cascades again
    from its own stream record, so what this step leaves undone is done there. A child that had
    finished is gone through here, since nothing else would reach its children. Raises
    CascadeIncomplete if some child of such a run never showed in the index.
    `run` is the run as just read (strongly consistent), else it is read here."""
    result = CascadeResult(run_id)
    run = run or store.get(tenant_id, run_id)
    if run is None or run["status"] != RunStatus.INTERRUPTED or not run.get("children"):
        return result
    record = run.get("cancel") or {}
    root = str(record.get("root_run_id") or run_id)
    result.root_run_id = root
    reason = record.get("reason")
    force = bool(record.get("force"))  # a cancel that gave no grace gives none below either
    at = clock.now()  # one cascade step, one requested_at on every run it interrupts
    pause = backoff or _backoff
    counted = threading.Lock()

    def decide(child: dict[str, Any]) -> tuple[str, _Parent | None]:
        if child["status"] == RunStatus.INTERRUPTED:
            # Its own interruption cascades from its own stream record. The index may lag on
            # status, but never back to active: a final status in it is the last word.
            return CancelOutcome.ALREADY_INTERRUPTED.value, None
        if child["status"] in ACTIVE:
            decision = cancel_run(
                store,
                tenant_id,
                child["run_id"],
                reason=reason,
                idempotency_key=f"{CASCADE_SOURCE}:{root}",
                source=CASCADE_SOURCE,
                force=force,
                at=at,
                expect=RunStatus(child["status"]),  # as the index shows it: a guess, one write if right
                extra={"root_run_id": root},
            )
            if decision.outcome is CancelOutcome.INTERRUPTED and child.get("children"):
                return decision.outcome.value, _Parent(child, must=False)
            if decision.outcome is not CancelOutcome.CONFLICT:
                return decision.outcome.value, None
        # Finished by itself: no stream record of its own stops its children (it may have some
        # still running), so this step goes through them too. Read for the exact count.
        finished = store.get(tenant_id, child["run_id"])
        has_children = finished is not None and finished.get("children")
        return CancelOutcome.CONFLICT.value, _Parent(finished, must=True) if has_children and finished else None

    def sweep(parent: _Parent) -> list[_Parent]:
        """Decide every child of `parent`; the parents of the next level."""
        expected = int(parent.run.get("children") or 0)
        seen: set[str] = set()
        found: list[_Parent] = []
        tally: Counter[str] = Counter()
        listings = 0
        for attempt in range(rounds if parent.must else 1):
            listings += 1
            for page in children_pages(store, tenant_id, parent.run["run_id"]):
                fresh = [child for child in page if child["run_id"] not in seen]
                seen.update(child["run_id"] for child in fresh)
                for outcome, next_parent in deciders.map(decide, fresh):
                    tally[outcome] += 1
                    if next_parent is not None:
                        found.append(next_parent)
            if len(seen) >= expected or not parent.must:
                break
            if attempt + 1 < rounds:
                clock.sleep(pause(attempt))
        with counted:
            result.outcomes.update(tally)
            result.parents += 1
            result.listings += listings
        if parent.must and len(seen) < expected:
            raise CascadeIncomplete(
                f"run {parent.run['run_id']!r} counts {expected} children, the index shows {len(seen)}"
            )
        return found

    def in_time() -> bool:
        return remaining_ms is None or remaining_ms() > margin_ms

    frontier = [_Parent(run, must=True)]
    with (
        ThreadPoolExecutor(max_workers=CASCADE_CONCURRENCY, thread_name_prefix="cascade") as deciders,
        ThreadPoolExecutor(max_workers=PARENTS_AT_ONCE, thread_name_prefix="cascade-parent") as parents,
    ):
        while frontier:
            frontier = [parent for parent in frontier if parent.must or in_time()]
            frontier = [found for level in parents.map(sweep, frontier) for found in level]
    return result


def _backoff(attempt: int) -> float:
    """Seconds before listing again: the index usually catches up within a second."""
    return float(min(1.0, 0.05 * 2**attempt))
