"""Load many runs straight into a table with BatchWriteItem, for the sweeper's tests and bench.

Going through the API would take a conditional write per run and per transition; these
items have the same attributes the domain writes (runstop.runs: create, start, complete;
an integration test compares the two), with timestamps chosen by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from runstop.item_codec import serialize
from runstop.status import COMPLETE, INTERRUPT_RUNNING, START, RunStatus, changes, new_run

BATCH = 25
"""BatchWriteItem's limit."""


def run_item(tenant_id: str, run_id: str, status: RunStatus, at: datetime, retention_days: int = 30) -> dict[str, Any]:
    """A run that reached `status` at `at` (created, and started or finished, that moment).

    Built by the status machine's own transitions, so it carries exactly the attributes the
    domain would have written.
    """
    item = new_run(
        tenant_id,
        run_id,
        at=at,
        retention_days=retention_days,
        token=f"seed:{run_id}",
        metadata={},
        stop_grace_seconds=60,
        stop_grace_us=60_000_000,
    )
    path = {
        RunStatus.PENDING: [],
        RunStatus.RUNNING: [(START, None)],
        RunStatus.INTERRUPTED: [(START, None), (INTERRUPT_RUNNING, None)],
    }.get(status, [(START, None), (COMPLETE, status)])
    for version, (transition, target) in enumerate(path, start=2):
        change = changes(
            transition,
            tenant_id=tenant_id,
            run_id=run_id,
            at=at,
            retention_days=retention_days,
            target=target,
            token=f"seed:{run_id}",
        )
        if transition is START:
            change = change.plus({"worker_id": "seeded-worker"})
        item = change.applied_to(item)
        item["version"] = version
    return item


def put_runs(client: Any, table_name: str, items: Iterable[dict[str, Any]], workers: int = 4) -> int:
    """Write the items (BatchWriteItem, unprocessed items retried); returns the number written."""
    batches: list[Sequence[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    for item in items:
        current.append(item)
        if len(current) == BATCH:
            batches.append(current)
            current = []
    if current:
        batches.append(current)

    def write(batch: Sequence[dict[str, Any]]) -> int:
        requests = [{"PutRequest": {"Item": {k: serialize(v) for k, v in item.items()}}} for item in batch]
        while requests:
            response = client.batch_write_item(RequestItems={table_name: requests})
            requests = response.get("UnprocessedItems", {}).get(table_name, [])
        return len(batch)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return sum(pool.map(write, batches))


def tree_items(
    tenant_id: str, root_id: str, size: int, fanout: int, at: datetime, status: RunStatus = RunStatus.RUNNING
) -> list[dict[str, Any]]:
    """A tree of `size` runs under `root_id`, filled breadth first with `fanout` children per run,
    each with the attributes a create under its parent writes (parent_run_id and its index key)
    and each parent counting its children, as runstop.trees's transactions leave them."""
    from runstop.status import parent_key

    items = [run_item(tenant_id, root_id, status, at)]
    for index in range(1, size):
        parent = items[(index - 1) // fanout]
        child = run_item(tenant_id, f"{root_id}.{index}", status, at)
        child.update(parent_run_id=parent["run_id"], tenant_parent=parent_key(tenant_id, parent["run_id"]))
        parent["children"] = int(parent.get("children", 0)) + 1
        items.append(child)
    return items
