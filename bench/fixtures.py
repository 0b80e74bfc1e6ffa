"""Runs seeded straight into the table, many at a time, so the rows measure cancels only.

The items have the shape runstop.runs.create_run followed by start_run (or complete_run)
leaves, written with BatchWriteItem: thousands of runs take a second, not a minute.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterable
from typing import Any

from runstop import clock
from runstop.status import RunStatus
from runstop.store import active_shard_key, serialize

BATCH = 25


def run_item(tenant_id: str, run_id: str, status: RunStatus = RunStatus.RUNNING) -> dict[str, Any]:
    """A run as the runs API stores it once it reached `status` (running, or finished)."""
    stamp = clock.iso(clock.now())
    item: dict[str, Any] = {
        "tenant_id": tenant_id,
        "run_id": run_id,
        "status": status.value,
        "created_at": stamp,
        "updated_at": stamp,
        "started_at": stamp,
        "heartbeat_at": stamp,
        "version": 2,
        "metadata": {"bench": True},
        "created_key": f"{stamp}#{run_id}",
        "tenant_status": f"{tenant_id}#{status.value}",
    }
    if status in (RunStatus.PENDING, RunStatus.RUNNING):
        item["active_pk"] = active_shard_key(status.value, tenant_id, run_id)
        item["sweep_at"] = stamp
    else:
        item["ended_at"] = stamp
        item["version"] = 3
    return item


def seed(client: Any, table: str, items: Iterable[dict[str, Any]]) -> int:
    """Write the items (BatchWriteItem, unprocessed ones retried); returns how many."""
    pending = [{"PutRequest": {"Item": {k: serialize(v) for k, v in item.items()}}} for item in items]
    total = len(pending)
    for start in range(0, total, BATCH):
        batch = pending[start : start + BATCH]
        for attempt in range(10):
            left = client.batch_write_item(RequestItems={table: batch}).get("UnprocessedItems", {}).get(table)
            if not left:
                break
            batch = left
            time.sleep(0.05 * (attempt + 1))
        else:
            raise RuntimeError("DynamoDB Local kept items unprocessed")
    return total


def seed_runs(client: Any, table: str, tenant_id: str, run_ids: Iterable[str], status: RunStatus) -> list[str]:
    ids = list(run_ids)
    seed(client, table, (run_item(tenant_id, run_id, status) for run_id in ids))
    return ids


class ApiClient:
    """One keep-alive connection to the local API, for sequential requests."""

    def __init__(self, url: str, tenant_id: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=60)
        self.headers = {"Content-Type": "application/json", "X-Tenant-Id": tenant_id}

    def post(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        self.conn.request("POST", path, body=json.dumps(body or {}).encode(), headers=self.headers)
        reply = self.conn.getresponse()
        payload = reply.read()
        return reply.status, json.loads(payload) if payload else None

    def close(self) -> None:
        self.conn.close()
