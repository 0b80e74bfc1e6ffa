"""Builders and checks shared by the unit tests (events for any run id, seeded runs, problems)."""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import boto3
import botocore.session
import pytest
from moto import mock_aws

from runstop import runs
from runstop.cancel import cancel_run
from runstop.item_codec import deserialize_item
from runstop.status import RunStatus
from runstop.store import RunStore, reset_caches
from runstop_dev.ddb_local import ensure_tables
from runstop_dev.stack import local_refs
from tests.helpers import api_event, body_of

Handler = Callable[..., dict[str, Any]]
"""A loaded Lambda handler: (event) or (event, context) -> its proxy answer."""

TENANT = "acme"
OTHER_TENANT = "globex"

T0 = datetime(2026, 3, 4, 5, 6, 7, 8, tzinfo=UTC)
"""When seeded runs were created and moved to their starting status."""
T0_ISO = "2026-03-04T05:06:07.000008Z"
T1 = datetime(2026, 3, 4, 5, 7, 9, 10, tzinfo=UTC)
"""When the request under test arrives."""
T1_ISO = "2026-03-04T05:07:09.000010Z"
T1_EXPIRES_AT = int(datetime(2026, 4, 3, 5, 7, 9, tzinfo=UTC).timestamp())
"""T1 plus the 30 retention days, as the TTL attribute stores it (whole seconds)."""

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "urn:runstop:problem:"

# (method, path suffix after /runs/{run_id}, body) of every route that takes a run id.
RUN_ROUTES: dict[str, tuple[str, str, Any]] = {
    "get": ("GET", "", None),
    "start": ("POST", "/start", None),
    "heartbeat": ("POST", "/heartbeat", None),
    "complete": ("POST", "/complete", {"status": "success"}),
    "cancel": ("POST", "/cancel", None),
}


@functools.cache
def _shared_botocore_session() -> botocore.session.Session:
    return botocore.session.get_session()


def share_botocore_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every new boto3 session reuse one botocore session for the rest of the test.

    Each new session parses botocore's service models again (~0.1 s a client, twice a test);
    clients, and the event hooks tests register on them, stay separate.
    """
    shared = _shared_botocore_session()
    monkeypatch.setattr(boto3.session, "Session", functools.partial(boto3.session.Session, botocore_session=shared))


@contextmanager
def moto_tables() -> Iterator[Any]:
    """A moto account holding every table of the template; yields a low-level client.

    The process's cached client and settings are forgotten on both sides, so the handlers
    make theirs inside the mock.
    """
    reset_caches()
    try:
        with mock_aws():
            client = boto3.session.Session().client("dynamodb", region_name="us-east-1")
            ensure_tables(client, local_refs())
            yield client
    finally:
        reset_caches()


def run_event(
    route: str,
    run_id: str,
    body: Any = None,
    *,
    tenant: str | None = TENANT,
    headers: dict[str, str] | None = None,
    raw_body: bytes | None = None,
    encode_path: bool = False,
) -> dict[str, Any]:
    """A payload-2.0 event for a run route with any run id, valid or not.

    HTTP APIs deliver rawPath and pathParameters decoded; encode_path=True percent-encodes
    rawPath instead (what the local runner passes on).
    """
    method, suffix, default_body = RUN_ROUTES[route]
    event = api_event(
        method,
        f"/runs/placeholder{suffix}",
        default_body if body is None and raw_body is None else body,
        tenant=tenant,
        headers=headers,
        raw_body=raw_body,
    )
    raw_path = f"/runs/{quote(run_id, safe='') if encode_path else run_id}{suffix}"
    event["rawPath"] = raw_path
    event["requestContext"]["http"]["path"] = raw_path
    event["pathParameters"] = {"run_id": run_id}
    return event


def base64_event(event: dict[str, Any], raw: bytes) -> dict[str, Any]:
    """The same event with its body sent base64-encoded, as API Gateway does for binary types."""
    return {**event, "body": base64.b64encode(raw).decode(), "isBase64Encoded": True}


def seed_run(store: RunStore, run_id: str, status: str, tenant: str = TENANT) -> None:
    """A run brought to `status` through the real transitions (pending -> running -> ...)."""
    if status == "absent":
        return
    runs.create_run(store, tenant, run_id, {"owner": "tests"})
    if status == RunStatus.PENDING:
        return
    runs.start_run(store, tenant, run_id)
    if status == RunStatus.RUNNING:
        return
    if status == RunStatus.INTERRUPTED:
        cancel_run(store, tenant, run_id, reason="seeded cancel", idempotency_key="seed-key")
    else:
        runs.complete_run(store, tenant, run_id, RunStatus(status))


def stored(client: Any, run_id: str, tenant: str = TENANT) -> dict[str, Any] | None:
    """The item exactly as DynamoDB holds it, index attributes included (read past the handlers)."""
    item = client.get_item(
        TableName="RunsTable",
        Key={"tenant_id": {"S": tenant}, "run_id": {"S": run_id}},
        ConsistentRead=True,
    ).get("Item")
    return deserialize_item(item) if item else None


def stored_run(client: Any, run_id: str, tenant: str = TENANT) -> dict[str, Any]:
    """Like stored(), for a run that must exist."""
    item = stored(client, run_id, tenant)
    assert item is not None, f"run {run_id!r} is not stored"
    return item


def assert_problem(response: dict[str, Any], status: int, slug: str | None = None) -> dict[str, Any]:
    """An RFC 9457 answer with this status; returns the document for further checks."""
    assert response["statusCode"] == status, body_of(response)
    assert response["headers"]["Content-Type"] == PROBLEM_JSON
    document: dict[str, Any] = body_of(response)
    assert {"type", "title", "status", "detail"} <= set(document)
    assert document["status"] == status
    assert document["type"].startswith(PROBLEM_BASE)
    assert document["title"]
    assert document["detail"]
    if slug is not None:
        assert document["type"] == PROBLEM_BASE + slug
    return document


def assert_cancel_accepted(response: dict[str, Any], **expected: Any) -> dict[str, Any]:
    """A 202 cancel answer whose members named in `expected` have exactly those values."""
    assert response["statusCode"] == 202, body_of(response)
    assert response["headers"]["Content-Type"] == "application/json"
    document: dict[str, Any] = body_of(response)
    assert {name: document.get(name, "<missing>") for name in expected} == expected
    return document
