"""GET /runs: newest first, one status or all, pages joined by an opaque cursor that only
works for the listing that issued it."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest

from runstop import runs
from runstop.cancel import cancel_run
from runstop.status import INTERNAL_ATTRIBUTES
from runstop.store import RunStore
from tests.helpers import api_event, body_of
from tests.unit.support import OTHER_TENANT, T0, TENANT, assert_problem


def _seed(store: RunStore, clock: Any, tenant: str, count: int, prefix: str = "r") -> list[str]:
    """`count` runs created one millisecond apart; returns their ids oldest first."""
    ids = []
    for i in range(count):
        clock.moment = T0 + timedelta(milliseconds=i)
        run_id = f"{prefix}{i:03d}"
        runs.create_run(store, tenant, run_id, {"n": i})
        ids.append(run_id)
    return ids


def _list(runs_handler: Any, query: str = "", tenant: str = TENANT) -> dict[str, Any]:
    return runs_handler(api_event("GET", "/runs", tenant=tenant, query=query))


def _all_pages(runs_handler: Any, query: str, tenant: str = TENANT) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        suffix = f"&cursor={cursor}" if cursor else ""
        response = _list(runs_handler, query + suffix, tenant)
        assert response["statusCode"] == 200, body_of(response)
        page = body_of(response)
        pages.append([run["run_id"] for run in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages


def _cursor_of(response: dict[str, Any]) -> str:
    cursor = body_of(response)["next_cursor"]
    assert isinstance(cursor, str)
    return cursor


def _forge(cursor: str, **changes: str) -> str:
    key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    key.update(changes)
    return base64.urlsafe_b64encode(json.dumps(key).encode()).rstrip(b"=").decode()


def test_given_runs_of_two_tenants_when_paging_then_every_own_run_comes_once_newest_first(runs_handler, store, clock):
    # Given
    mine = _seed(store, clock, TENANT, 7)
    _seed(store, clock, OTHER_TENANT, 5, prefix="theirs")
    # When
    pages = _all_pages(runs_handler, "limit=3")
    # Then
    assert pages == [mine[::-1][0:3], mine[::-1][3:6], mine[::-1][6:7]]


def test_given_exactly_a_full_page_when_listing_then_no_cursor_points_at_an_empty_page(runs_handler, store, clock):
    # Given
    _seed(store, clock, TENANT, 4)
    # When
    page = body_of(_list(runs_handler, "limit=4"))
    # Then
    assert len(page["items"]) == 4
    assert page["next_cursor"] is None


def test_given_runs_in_several_statuses_when_filtering_then_only_that_status_comes(runs_handler, store, clock):
    # Given
    ids = _seed(store, clock, TENANT, 6)
    for run_id in ids[:4]:
        runs.start_run(store, TENANT, run_id)
    cancel_run(store, TENANT, ids[1])
    # When
    pages = _all_pages(runs_handler, "status=running&limit=2")
    # Then
    assert pages == [[ids[3], ids[2]], [ids[0]]]
    assert _all_pages(runs_handler, "status=interrupted") == [[ids[1]]]
    assert _all_pages(runs_handler, "status=success") == [[]]


def test_given_runs_when_listing_then_each_item_is_the_public_run_as_get_returns_it(runs_handler, store, clock):
    # Given
    _seed(store, clock, TENANT, 1)
    # When
    item = body_of(_list(runs_handler))["items"][0]
    # Then
    assert not INTERNAL_ATTRIBUTES & set(item)
    assert item == body_of(runs_handler(api_event("GET", "/runs/r000", tenant=TENANT)))


def test_given_no_limit_when_listing_then_a_page_holds_25_runs(runs_handler, store, clock):
    # Given
    _seed(store, clock, TENANT, 26)
    # When
    page = body_of(_list(runs_handler))
    # Then
    assert len(page["items"]) == 25
    assert page["next_cursor"] is not None


def test_when_listing_then_one_query_on_the_matching_index_serves_the_page(runs_handler, store, clock, ddb_calls):
    # Given
    _seed(store, clock, TENANT, 3)
    ddb_calls.clear()
    queries: list[dict[str, Any]] = []
    store.client.meta.events.register(
        "provide-client-params.dynamodb.Query", lambda params, **_: queries.append(dict(params))
    )
    # When
    _list(runs_handler, "limit=2")
    _list(runs_handler, "status=pending&limit=2")
    # Then
    assert ddb_calls.operations == ["Query", "Query"]
    assert [(q["IndexName"], q["ScanIndexForward"]) for q in queries] == [("ByCreated", False), ("ByStatus", False)]


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=ten", "limit=1&limit=2", "status=paused"])
def test_given_a_bad_parameter_when_listing_then_400(runs_handler, aws, query):
    # When
    response = _list(runs_handler, query)
    # Then
    assert_problem(response, 400, "bad-request")


def test_given_another_tenants_cursor_when_listing_then_400_and_nothing_of_theirs(runs_handler, store, clock):
    # Given
    _seed(store, clock, OTHER_TENANT, 3)
    _seed(store, clock, TENANT, 3)
    theirs = _cursor_of(_list(runs_handler, "limit=1", tenant=OTHER_TENANT))
    # When
    response = _list(runs_handler, f"limit=1&cursor={theirs}")
    # Then
    assert_problem(response, 400, "bad-request")


def test_given_a_cursor_rewritten_to_another_tenant_when_listing_then_400(runs_handler, store, clock):
    # Given
    _seed(store, clock, OTHER_TENANT, 3)
    _seed(store, clock, TENANT, 3)
    mine = _cursor_of(_list(runs_handler, "limit=1"))
    forged = _forge(mine, tenant_id=OTHER_TENANT)
    # When
    response = _list(runs_handler, f"limit=1&cursor={forged}", tenant=TENANT)
    # Then
    assert_problem(response, 400, "bad-request")


@pytest.mark.parametrize(
    ("issued_with", "used_with"),
    [("status=pending&", ""), ("", "status=pending&"), ("status=pending&", "status=running&")],
)
def test_given_a_cursor_of_another_filter_when_listing_then_400(runs_handler, store, clock, issued_with, used_with):
    # Given
    _seed(store, clock, TENANT, 3)
    cursor = _cursor_of(_list(runs_handler, f"{issued_with}limit=1"))
    # When
    response = _list(runs_handler, f"{used_with}limit=1&cursor={cursor}")
    # Then
    assert_problem(response, 400, "bad-request")


@pytest.mark.parametrize(
    "cursor",
    [
        "not-base64!",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'{"tenant_id": "acme"}').decode(),
        base64.urlsafe_b64encode(b'{"tenant_id": "acme", "run_id": "../x", "created_key": "k#../x"}').decode(),
        base64.urlsafe_b64encode(b'{"tenant_id": "acme", "run_id": 1, "created_key": "k#1"}').decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        "x" * 1025,
    ],
)
def test_given_a_garbled_cursor_when_listing_then_400(runs_handler, aws, cursor):
    # When
    response = _list(runs_handler, f"cursor={cursor}")
    # Then
    assert_problem(response, 400, "bad-request")


def test_given_a_tenant_without_runs_when_listing_then_an_empty_last_page(runs_handler, store, clock):
    # Given
    _seed(store, clock, OTHER_TENANT, 2)
    # When
    response = _list(runs_handler)
    # Then
    assert response["statusCode"] == 200
    assert body_of(response) == {"items": [], "next_cursor": None}


def test_given_no_tenant_claim_when_listing_then_401(runs_handler, aws):
    # When
    response = runs_handler(api_event("GET", "/runs", tenant=None))
    # Then
    assert_problem(response, 401, "unauthorized")
