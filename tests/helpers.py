"""Helpers shared by unit and integration tests: events built like the local runner's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runstop import trees
from runstop.store import RunStore
from runstop_dev.local_api import build_event
from runstop_dev.template import REPO_ROOT, HttpRoute, http_routes

EVENTS_DIR = REPO_ROOT / "events"


def route_for(method: str, path: str) -> tuple[HttpRoute, dict[str, str]]:
    for route in http_routes():
        found = route.pattern.match(path)
        if route.method == method and found:
            return route, found.groupdict()
    raise LookupError(f"no template route for {method} {path}")


def api_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    tenant: str | None = "local",
    headers: dict[str, str] | None = None,
    raw_body: bytes | None = None,
    query: str = "",
) -> dict[str, Any]:
    """A payload-2.0 event for `method path`, as API Gateway (or the local runner) sends it."""
    route, params = route_for(method, path)
    all_headers = {"content-type": "application/json", **(headers or {})}
    if tenant is not None:
        all_headers["x-tenant-id"] = tenant
    payload = raw_body if raw_body is not None else (b"" if body is None else json.dumps(body).encode())
    event = build_event(route, method, path, query, all_headers, payload, params, "tenant_id", "127.0.0.1")
    if tenant is None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": {}, "scopes": None}}
    return event


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / name).read_text())


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"]) if response.get("body") else None


def events_dir() -> Path:
    return EVENTS_DIR


class LaggingIndex(RunStore):
    """The store with a ByParent index that hides the newest `hidden` children of each of the
    first `lagging` listings, as a global secondary index that has not caught up yet."""

    def __init__(self, inner: RunStore, hidden: int, lagging: int) -> None:
        super().__init__(inner.client, inner.table_name)
        self.hidden = hidden
        self.lagging = lagging
        self.listings = 0

    def query_page(self, index_name: str, *args: Any, **kwargs: Any) -> Any:
        items, next_key, units = super().query_page(index_name, *args, **kwargs)
        if index_name == trees.BY_PARENT_INDEX:
            self.listings += 1
            if self.listings <= self.lagging:
                items = sorted(items, key=lambda item: item["created_key"])[: max(0, len(items) - self.hidden)]
        return items, next_key, units
