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

from runstop import clock
from runstop.status import ACTIVE, RunStatus
from runstop.store import active_shard_key, serialize

BATCH = 25
"""BatchWriteItem's limit."""


def run_item(tenant_id: str, run_id: str, status: RunStatus, at: datetime, retention_days: int = 30) -> dict[str, Any]:
    """A run that reached `status` at `at` (created, and started or finished, that moment)."""
    stamp = clock.iso(at)
    item: dict[str, Any] = {
        "tenant_id": tenant_id,
        "run_id": run_id,
        "status": status.value,
        "created_at": stamp,
        "updated_at": stamp,
        "version": 1,
        "metadata": {},
        "created_key": f"{stamp}#{run_id}",
        "tenant_status": f"{tenant_id}#{status.value}",
    }
    if status is not RunStatus.PENDING:
        item.update(started_at=stamp, heartbeat_at=stamp, version=2)
    if status in ACTIVE:
        item.update(active_pk=active_shard_key(status.value, tenant_id, run_id), sweep_at=stamp)
    else:
        item.update(ended_at=stamp, version=3, expires_at=clock.expiry_epoch(at, retention_days))
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
