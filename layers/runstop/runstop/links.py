"""Creating a run linked to others: under a parent (runstop.trees) and/or holding a concurrency
key (runstop.concurrency), each condition checked in the one transaction that puts the run.

The transaction is tried again only when what it was conditioned on moved (the key changed
hands, its holder ended meanwhile) or another transaction held one of its items at that
instant; any other refusal is the answer (the id is taken, the parent is not active, the key's
run is active and the create asked to be refused then).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from runstop import clock
from runstop.concurrency import KeyLocks, OnActive, holder, key_locks, supersede
from runstop.errors import ConcurrencyKeyHeld, InvalidBody, RunAlreadyExists, StoreUnavailable
from runstop.item_codec import serialize
from runstop.store import RunStore, TransactionRefused
from runstop.trees import join_parent, parent_refusal

MAX_TRIES = 100
"""Tries of one create: 32 creates racing on one key need up to 32 (each try one wins)."""


@dataclass(frozen=True, slots=True)
class Links:
    """What a new run is linked to: its parent, its concurrency key and what to do if it is held."""

    parent_run_id: str | None = None
    concurrency_key: str | None = None
    on_active: OnActive = OnActive.REJECT

    def __bool__(self) -> bool:
        return self.parent_run_id is not None or self.concurrency_key is not None

    def fields(self) -> dict[str, Any]:
        """What the run itself stores of its links."""
        return {"parent_run_id": self.parent_run_id, "concurrency_key": self.concurrency_key}


NO_LINKS = Links()


def check_links(run_id: str | None, links: Links) -> None:
    """Refuse what no transaction could ever satisfy (a run as its own parent) before any I/O."""
    if run_id is not None and links.parent_run_id == run_id:
        raise InvalidBody(
            "a run cannot be its own parent",
            [{"loc": ["body", "parent_run_id"], "msg": "equals run_id", "type": "value_error"}],
        )


def _backoff(attempt: int) -> float:
    return float(min(0.25, 0.004 * 2 ** min(attempt, 8)) * (0.5 + random.random()))


def put_linked(store: RunStore, item: dict[str, Any], links: Links, locks: KeyLocks | None = None) -> None:
    """Put the new run `item` with its links' conditions, in one transaction (see module doc).

    Raises RunAlreadyExists (with the run as stored), ParentNotFound, ParentNotActive or
    ConcurrencyKeyHeld; StoreUnavailable if contention outlasts MAX_TRIES.
    """
    tenant_id, run_id = str(item["tenant_id"]), str(item["run_id"])
    key = links.concurrency_key
    lock = None if key is None else (locks or key_locks())
    put = {
        "Put": {
            "TableName": store.table_name,
            "Item": {k: serialize(v) for k, v in item.items() if v is not None},
            "ConditionExpression": "attribute_not_exists(run_id)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }
    for attempt in range(MAX_TRIES):
        at = clock.now()
        items: list[Any] = [put]
        if links.parent_run_id is not None:
            items.append(join_parent(store, tenant_id, links.parent_run_id))
        if lock is not None and key is not None:
            seen = holder(lock, store, tenant_id, key)
            if seen.run_id == run_id:
                raise RunAlreadyExists(run_id, seen.run)  # the id holds the key: it is taken (or ours)
            if seen.active and seen.run is not None and seen.run_id is not None:
                # A run cannot take the key from its own parent: the parent must stay active to have it.
                if links.on_active is OnActive.REJECT or seen.run_id == links.parent_run_id:
                    raise ConcurrencyKeyHeld(key, seen.run_id, str(seen.run["status"]))
                items.append(supersede(store, tenant_id, seen.run, by=run_id, at=at))
            items.append(lock.take(tenant_id, key, run_id, seen.run_id, at))
        try:
            store.transact(items)
            return
        except TransactionRefused as error:
            refused = error
        reasons = refused.reasons
        if reasons and reasons[0].condition_failed:
            raise RunAlreadyExists(run_id, reasons[0].item)
        if links.parent_run_id is not None and len(reasons) > 1 and reasons[1].condition_failed:
            raise parent_refusal(links.parent_run_id, reasons[1])
        # The key changed hands or its holder ended: another create won, look again at once.
        # Only another transaction in flight on an item: nobody may have won, so back off.
        if refused.conflicted:
            clock.sleep(_backoff(attempt))
    raise StoreUnavailable(f"run {run_id!r}: its links kept changing through {MAX_TRIES} tries")
