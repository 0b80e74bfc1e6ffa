"""Run trees on moto: a child joins only an active parent, its parent lists it, and the cascade
interrupts every active descendant, even when the index that lists children lags behind."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from runstop import runs, trees
from runstop.cancel import cancel_run
from runstop.errors import CascadeIncomplete, ParentNotActive, ParentNotFound
from runstop.links import Links
from runstop.status import RunStatus
from runstop.store import RunStore
from tests.helpers import LaggingIndex, api_event, body_of
from tests.unit.support import OTHER_TENANT, T0, TENANT, assert_problem, seed_run, stored_run


def _child(store: RunStore, run_id: str, parent: str, tenant: str = TENANT) -> dict[str, Any]:
    return runs.create_run(store, tenant, run_id, {}, links=Links(parent_run_id=parent))


def _interrupt(store: RunStore, run_id: str, reason: str = "user") -> None:
    assert cancel_run(store, TENANT, run_id, reason=reason).outcome == "interrupted"


NO_WAIT: Callable[[int], float] = lambda attempt: 0.0  # noqa: E731 - the cascade's backoff, skipped


@pytest.mark.parametrize("parent_status", ["pending", "running"])
def test_given_an_active_parent_when_a_child_is_created_under_it_then_the_child_names_it(
    store, runs_handler, parent_status
):
    # Given
    seed_run(store, "parent", parent_status)
    # When
    response = runs_handler(api_event("POST", "/runs", {"run_id": "child", "parent_run_id": "parent"}, tenant=TENANT))
    # Then
    assert response["statusCode"] == 201, body_of(response)
    assert body_of(response)["parent_run_id"] == "parent"
    assert "children" not in body_of(runs_handler(api_event("GET", "/runs/parent", tenant=TENANT)))
    assert stored_run(store.client, "parent")["children"] == 1
    assert stored_run(store.client, "child")["tenant_parent"] == f"{TENANT}#parent"


@pytest.mark.parametrize("parent_status", ["interrupted", "success", "error", "timeout"])
def test_given_a_parent_no_longer_active_when_a_child_is_created_then_409_with_the_parents_status(
    store, runs_handler, parent_status
):
    # Given
    seed_run(store, "parent", parent_status)
    # When
    response = runs_handler(api_event("POST", "/runs", {"run_id": "child", "parent_run_id": "parent"}, tenant=TENANT))
    # Then
    problem = assert_problem(response, 409, "parent-not-active")
    assert (problem["parent_run_id"], problem["run_status"]) == ("parent", parent_status)
    assert runs_handler(api_event("GET", "/runs/child", tenant=TENANT))["statusCode"] == 404
    assert "children" not in stored_run(store.client, "parent")


@pytest.mark.parametrize("tenant", [TENANT, OTHER_TENANT])
def test_given_no_such_parent_in_the_tenant_when_a_child_is_created_then_404(store, runs_handler, tenant):
    # Given: "parent" exists only in the other tenant (or nowhere)
    seed_run(store, "parent", "running", tenant=OTHER_TENANT if tenant == TENANT else TENANT)
    # When
    response = runs_handler(api_event("POST", "/runs", {"run_id": "child", "parent_run_id": "parent"}, tenant=tenant))
    # Then
    assert assert_problem(response, 404, "parent-not-found")["parent_run_id"] == "parent"


@pytest.mark.parametrize(
    "body",
    [
        {"run_id": "same", "parent_run_id": "same"},
        {"parent_run_id": "bad id"},
        {"parent_run_id": ""},
        {"parent_run_id": 7},
    ],
)
def test_given_an_impossible_parent_when_a_run_is_created_then_422(store, runs_handler, body):
    # When
    response = runs_handler(api_event("POST", "/runs", body, tenant=TENANT))
    # Then
    assert_problem(response, 422, "validation")


def test_given_an_existing_id_when_a_child_is_created_under_it_then_409_run_exists_and_the_parent_counts_nothing(
    store, runs_handler
):
    # Given
    seed_run(store, "parent", "running")
    seed_run(store, "taken", "pending")
    # When
    response = runs_handler(api_event("POST", "/runs", {"run_id": "taken", "parent_run_id": "parent"}, tenant=TENANT))
    # Then
    assert_problem(response, 409, "run-exists")
    assert "children" not in stored_run(store.client, "parent")


def test_given_a_child_created_with_an_idempotency_key_when_repeated_then_the_same_child_and_one_count(
    store, runs_handler
):
    # Given
    seed_run(store, "parent", "running")
    event = api_event("POST", "/runs", {"parent_run_id": "parent"}, tenant=TENANT, headers={"Idempotency-Key": "k1"})
    # When
    first, repeat = runs_handler(event), runs_handler(event)
    # Then
    assert (first["statusCode"], repeat["statusCode"]) == (201, 201)
    assert body_of(first) == body_of(repeat)
    assert stored_run(store.client, "parent")["children"] == 1


def test_given_children_when_listed_by_parent_then_newest_first_in_pages_and_only_that_parents(
    store, runs_handler, clock
):
    # Given
    seed_run(store, "parent", "running")
    seed_run(store, "other", "running")
    for i in range(5):
        clock.moment = T0 + timedelta(seconds=i + 1)
        _child(store, f"c{i}", "parent")
    _child(store, "not-mine", "other")
    # When
    pages, cursor = [], None
    while True:
        query = "parent_run_id=parent&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = body_of(runs_handler(api_event("GET", "/runs", tenant=TENANT, query=query)))
        pages.append([run["run_id"] for run in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # Then
    assert pages == [["c4", "c3"], ["c2", "c1"], ["c0"]]
    other_tenant = body_of(runs_handler(api_event("GET", "/runs", tenant=OTHER_TENANT, query="parent_run_id=parent")))
    assert other_tenant["items"] == []


def test_given_a_cursor_of_one_parents_children_when_used_for_another_listing_then_400(store, runs_handler):
    # Given
    seed_run(store, "parent", "running")
    for i in range(3):
        _child(store, f"c{i}", "parent")
    page = body_of(runs_handler(api_event("GET", "/runs", tenant=TENANT, query="parent_run_id=parent&limit=1")))
    # When
    elsewhere = [
        runs_handler(api_event("GET", "/runs", tenant=TENANT, query=f"parent_run_id=c0&cursor={page['next_cursor']}")),
        runs_handler(api_event("GET", "/runs", tenant=TENANT, query=f"cursor={page['next_cursor']}")),
    ]
    # Then
    for response in elsewhere:
        assert_problem(response, 400, "bad-request")


@pytest.mark.parametrize("query", ["parent_run_id=parent&status=running", "parent_run_id=bad%20id", "parent_run_id="])
def test_given_a_bad_children_listing_when_asked_then_400(store, runs_handler, query):
    assert_problem(runs_handler(api_event("GET", "/runs", tenant=TENANT, query=query)), 400, "bad-request")


def test_given_a_tree_when_the_root_is_interrupted_then_each_level_cascades_with_the_roots_reason(store, clock):
    # Given: root -> a, b (finished), c (already interrupted); a -> a1, a2; b -> b1 (still running)
    seed_run(store, "root", "running")
    for child in ("a", "b", "c"):
        _child(store, child, "root")
    _child(store, "a1", "a")
    _child(store, "a2", "a")
    runs.start_run(store, TENANT, "b")
    _child(store, "b1", "b")
    runs.start_run(store, TENANT, "b1")
    runs.complete_run(store, TENANT, "b", RunStatus.SUCCESS)
    cancel_run(store, TENANT, "c", reason="someone else")
    _interrupt(store, "root", reason="user pressed stop")
    # When: the root's cascade, then the one of a run it interrupted (as the stream delivers them)
    first = trees.cascade(store, TENANT, "root", backoff=NO_WAIT)
    second = trees.cascade(store, TENANT, "a", backoff=NO_WAIT)
    # Then: the first went through every level (a, a1, a2, b1 | b | c); the second found it done
    assert first.outcomes == {"interrupted": 4, "conflict": 1, "already_interrupted": 1}
    assert first.parents == 3  # root, a, b
    assert second.outcomes == {"already_interrupted": 2}
    for run_id in ("a", "a1", "a2", "b1"):
        run = stored_run(store.client, run_id)
        assert run["status"] == "interrupted", run_id
        assert run["cancel"]["source"] == "cascade"
        assert run["cancel"]["reason"] == "user pressed stop"
        assert run["cancel"]["root_run_id"] == "root"
    assert stored_run(store.client, "b")["status"] == "success"
    assert stored_run(store.client, "c")["cancel"]["reason"] == "someone else"


def test_given_no_time_left_when_cascading_then_only_the_first_level_is_done_and_the_stream_does_the_rest(store):
    # Given: root -> a -> a1
    seed_run(store, "root", "running")
    _child(store, "a", "root")
    _child(store, "a1", "a")
    _interrupt(store, "root")
    # When
    first = trees.cascade(store, TENANT, "root", remaining_ms=lambda: 0, backoff=NO_WAIT)
    # Then
    assert first.outcomes == {"interrupted": 1}
    assert stored_run(store.client, "a1")["status"] == "pending"
    assert trees.cascade(store, TENANT, "a", backoff=NO_WAIT).outcomes == {"interrupted": 1}
    assert stored_run(store.client, "a1")["cancel"]["root_run_id"] == "root"


def test_given_a_cascade_delivered_twice_then_the_second_changes_nothing(store):
    # Given
    seed_run(store, "root", "running")
    _child(store, "a", "root")
    _interrupt(store, "root")
    trees.cascade(store, TENANT, "root", backoff=NO_WAIT)
    before = stored_run(store.client, "a")
    # When
    again = trees.cascade(store, TENANT, "root", backoff=NO_WAIT)
    # Then
    assert again.outcomes == {"already_interrupted": 1}
    assert stored_run(store.client, "a") == before


@pytest.mark.parametrize("status", ["pending", "running", "success"])
def test_given_a_run_not_interrupted_or_childless_when_cascaded_then_nothing_is_read_of_its_children(store, status):
    # Given
    seed_run(store, "root", status)
    seed_run(store, "lonely", "interrupted")
    # When
    results = [trees.cascade(store, TENANT, "root"), trees.cascade(store, TENANT, "lonely")]
    # Then
    assert [(r.parents, r.listings) for r in results] == [(0, 0), (0, 0)]


def test_given_an_index_that_lags_when_cascading_then_it_lists_again_until_every_child_is_seen(store):
    # Given: 3 children, of which the index hides the newest 2 on the first two listings
    seed_run(store, "root", "running")
    for i in range(3):
        _child(store, f"c{i}", "root")
    _interrupt(store, "root")
    lagging = LaggingIndex(store, hidden=2, lagging=2)
    waits: list[int] = []
    # When
    result = trees.cascade(lagging, TENANT, "root", backoff=lambda attempt: waits.append(attempt) or 0.0)
    # Then
    assert result.listings == 3
    assert waits == [0, 1]
    assert result.outcomes == {"interrupted": 3}
    assert all(stored_run(store.client, f"c{i}")["status"] == "interrupted" for i in range(3))


def test_given_an_index_that_never_catches_up_when_cascading_then_it_raises_for_the_queue_to_retry(store):
    # Given
    seed_run(store, "root", "running")
    for i in range(2):
        _child(store, f"c{i}", "root")
    _interrupt(store, "root")
    # When / Then
    with pytest.raises(CascadeIncomplete):
        trees.cascade(LaggingIndex(store, hidden=1, lagging=99), TENANT, "root", rounds=3, backoff=NO_WAIT)
    # and the children it did see are interrupted already
    assert stored_run(store.client, "c0")["status"] == "interrupted"


def test_the_domain_refusals_say_which_parent_and_why(store):
    seed_run(store, "gone", "success")
    with pytest.raises(ParentNotActive) as not_active:
        _child(store, "x", "gone")
    with pytest.raises(ParentNotFound) as not_found:
        _child(store, "y", "nowhere")
    assert (not_active.value.run_id, not_active.value.run_status) == ("gone", "success")
    assert not_found.value.run_id == "nowhere"
