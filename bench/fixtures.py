"""Runs seeded straight into the table, many at a time, so the rows measure cancels only.

The items have the shape runstop.runs.create_run followed by start_run (or complete_run)
leaves, written with BatchWriteItem: thousands of runs take a second, not a minute.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterable
from typing import Any

from runstop import clock
from runstop.status import RunStatus
from runstop_dev import seed


def run_item(tenant_id: str, run_id: str, status: RunStatus = RunStatus.RUNNING) -> dict[str, Any]:
    """A run as the domain stores it once it reached `status`, as of now."""
    return seed.run_item(tenant_id, run_id, status, clock.now())


def seed_runs(client: Any, table: str, tenant_id: str, run_ids: Iterable[str], status: RunStatus) -> list[str]:
    """Write runs in `status` straight into the table (BatchWriteItem); returns their ids."""
    ids = list(run_ids)
    seed.put_runs(client, table, (run_item(tenant_id, run_id, status) for run_id in ids))
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
