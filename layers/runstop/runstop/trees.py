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


def cascade(
    store: RunStore,
    tenant_id: str,
    run_id: str,
    *,
    run: dict[str, Any] | None = None,
    rounds: int = LISTING_ROUNDS,
    backoff: Callable[[int], float] | None = None,
) -> CascadeResult:
    """Interrupt the active children of the interrupted run `run_id` (for their own children, their
    interruption cascades in turn). A child that had finished is gone through here, since its own
    children may still run. Raises CascadeIncomplete if some child never showed in the index.
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
    work = [run]
    with ThreadPoolExecutor(max_workers=CASCADE_CONCURRENCY, thread_name_prefix="cascade") as pool:

        def decide(child: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
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
                if decision.outcome is not CancelOutcome.CONFLICT:
                    return decision.outcome.value, None
            # Finished by itself: no stream record of its own stops its children (it may have
            # some still running), so this step goes through them too. Read for the exact count.
            finished = store.get(tenant_id, child["run_id"])
            return CancelOutcome.CONFLICT.value, finished if finished is not None and finished.get("children") else None

        while work:
            parent = work.pop()
            result.parents += 1
            expected = int(parent.get("children") or 0)
            seen: set[str] = set()
            for attempt in range(rounds):
                result.listings += 1
                for page in children_pages(store, tenant_id, parent["run_id"]):
                    fresh = [child for child in page if child["run_id"] not in seen]
                    seen.update(child["run_id"] for child in fresh)
                    for outcome, finished in pool.map(decide, fresh):
                        result.outcomes[outcome] += 1
                        if finished is not None:
                            work.append(finished)
                if len(seen) >= expected:
                    break
                if attempt + 1 < rounds:
                    clock.sleep(pause(attempt))
            else:
                raise CascadeIncomplete(
                    f"run {parent['run_id']!r} counts {expected} children, the index shows {len(seen)}"
                )
    return result


def _backoff(attempt: int) -> float:
    """Seconds before listing again: the index usually catches up within a second."""
    return float(min(1.0, 0.05 * 2**attempt))
