"""Every starting status x every route: the answer, and the run as stored afterwards.

The expectations are written out below as a table a reviewer can check at a glance; one
extra test makes sure that table and runstop.status still describe the same machine.
"""

from __future__ import annotations

from typing import Any

import pytest

from runstop.status import INTERNAL_ATTRIBUTES, RunStatus, sources
from tests.helpers import api_event, body_of
from tests.unit.support import (
    T0_ISO,
    T1,
    T1_EXPIRES_AT,
    T1_ISO,
    TENANT,
    Handler,
    assert_cancel_accepted,
    assert_problem,
    seed_run,
    stored,
)

RUN = "run-2026.03:matrix"

# A status name: the request succeeds (200, cancel 202) and the run is now in that status.
# 409 / 404: a problem answer and the run exactly as before (or still absent).
# already_interrupted / absent: a 202 cancel outcome that changes nothing.
# unchanged: 200 with the run as it is (completing again with the status it already has).
MATRIX_TEXT = """
from \\ route  start    heartbeat  complete=success  complete=error  complete=timeout  cancel
pending       running  409        409               409             409               interrupted
running       409      running    success           error           timeout           interrupted
success       409      409        unchanged         409             409               409
error         409      409        409               unchanged       409               409
timeout       409      409        409               409             unchanged         409
interrupted   409      409        409               409             409               already_interrupted
absent        404      404        404               404             404               absent
"""


def _parse(text: str) -> dict[tuple[str, str], str]:
    header, *rows = [line.split() for line in text.strip().splitlines()]
    routes = header[3:]  # after "from \ route"
    return {(row[0], route): cell for row in rows for route, cell in zip(routes, row[1:], strict=True)}


MATRIX = _parse(MATRIX_TEXT)
STARTING = ["pending", "running", "success", "error", "timeout", "interrupted", "absent"]
ROUTES = ["start", "heartbeat", "complete=success", "complete=error", "complete=timeout", "cancel"]

# The version each seeded status has: one increment per transition from creation (1).
SEEDED_VERSION = {"pending": 1, "running": 2, "success": 3, "error": 3, "timeout": 3, "interrupted": 3}

ABSENT = object()
"""The attribute must not be stored at all."""


class Prefix(str):
    """The attribute must start with this text (the shard suffix is the store's business)."""


# What a successful route leaves on the stored item besides status, version and updated_at.
STORED_AFTER_CHANGE: dict[str, dict[str, Any]] = {
    "start": {
        "started_at": T1_ISO,
        "heartbeat_at": T1_ISO,
        "sweep_at": T1_ISO,
        "active_pk": Prefix("running#"),
        "tenant_status": f"{TENANT}#running",
        "ended_at": ABSENT,
        "cancel": ABSENT,
    },
    "heartbeat": {
        "started_at": T0_ISO,
        "heartbeat_at": T1_ISO,
        "sweep_at": T1_ISO,
        "active_pk": Prefix("running#"),
        "tenant_status": f"{TENANT}#running",
        "ended_at": ABSENT,
    },
    **{
        f"complete={status}": {
            "started_at": T0_ISO,
            "heartbeat_at": T0_ISO,
            "ended_at": T1_ISO,
            "expires_at": T1_EXPIRES_AT,
            "tenant_status": f"{TENANT}#{status}",
            "active_pk": ABSENT,
            "sweep_at": ABSENT,
            "cancel": ABSENT,
        }
        for status in ("success", "error", "timeout")
    },
    "cancel": {
        "ended_at": T1_ISO,
        "expires_at": T1_EXPIRES_AT,
        "tenant_status": f"{TENANT}#interrupted",
        "active_pk": ABSENT,
        "sweep_at": ABSENT,
        "cancel": {"reason": "stop it", "requested_at": T1_ISO, "source": "api"},
    },
}


def _send(route: str, runs_handler: Handler, cancel_handler: Handler) -> dict[str, Any]:
    if route == "cancel":
        return cancel_handler(api_event("POST", f"/runs/{RUN}/cancel", {"reason": "stop it"}, tenant=TENANT))
    action, _, status = route.partition("=")
    body = {"status": status} if status else None
    return runs_handler(api_event("POST", f"/runs/{RUN}/{action}", body, tenant=TENANT))


def _assert_fields(item: dict[str, Any], expected: dict[str, Any]) -> None:
    for name, value in expected.items():
        if value is ABSENT:
            assert name not in item, f"{name} should be gone: {item.get(name)!r}"
        elif isinstance(value, Prefix):
            assert str(item[name]).startswith(value), (name, item[name])
        else:
            assert item[name] == value, name


CASES = [
    pytest.param(start, route, MATRIX[start, route], id=f"{start}-{route}->{MATRIX[start, route]}")
    for start in STARTING
    for route in ROUTES
]


@pytest.mark.parametrize(("start", "route", "expected"), CASES)
def test_given_a_run_in_a_status_when_a_route_is_called_then_answer_and_stored_run_match_the_matrix(
    start, route, expected, aws, store, clock, runs_handler, cancel_handler
):
    # Given a run brought to `start` at T0 (or no run at all)
    seed_run(store, RUN, start)
    before = stored(aws, RUN)

    # When the request arrives at T1
    clock.moment = T1
    response = _send(route, runs_handler, cancel_handler)

    # Then
    after = stored(aws, RUN)
    body = body_of(response)
    if expected == "404":
        assert_problem(response, 404, "run-not-found")
        assert body["run_id"] == RUN
        assert after is None
    elif expected == "409":
        slug = "run-finished" if route == "cancel" else "status-conflict"
        document = assert_problem(response, 409, slug)
        assert (document["run_id"], document["run_status"]) == (RUN, start)
        assert after == before, "a refused request must not touch the run"
    elif expected == "unchanged":
        assert response["statusCode"] == 200
        assert body["status"] == start
        assert after == before, "a repeated completion must not touch the run"
    elif expected == "absent":
        assert_cancel_accepted(response, run_id=RUN, status=None, outcome="absent", cancel=None, version=None)
        assert after is None, "cancelling an absent run must not create it"
    elif expected == "already_interrupted":
        seeded = {"reason": "seeded cancel", "requested_at": T0_ISO, "source": "api", "idempotency_key": "seed-key"}
        assert_cancel_accepted(
            response,
            run_id=RUN,
            status="interrupted",
            outcome="already_interrupted",
            cancel=seeded,
            version=SEEDED_VERSION[start],
        )
        assert after == before, "a second cancel must not touch the run"
    else:
        assert response["statusCode"] == (202 if route == "cancel" else 200)
        assert response["headers"]["Content-Type"] == "application/json"
        assert after is not None
        assert after["status"] == expected
        assert after["version"] == SEEDED_VERSION[start] + 1
        assert after["updated_at"] == T1_ISO
        assert after["created_at"] == T0_ISO
        assert after["metadata"] == {"owner": "tests"}
        _assert_fields(after, STORED_AFTER_CHANGE[route])
        assert body["status"] == expected
        assert body["version"] == SEEDED_VERSION[start] + 1
        if route == "cancel":
            assert body["outcome"] == "interrupted"
            assert body["cancel"] == STORED_AFTER_CHANGE["cancel"]["cancel"]
        else:
            assert not INTERNAL_ATTRIBUTES & set(body), "index attributes must not leak to clients"
            assert body["updated_at"] == T1_ISO


@pytest.mark.parametrize("action", ["start", "heartbeat", "complete", "cancel"])
def test_the_matrix_and_the_status_machine_agree_on_which_statuses_each_action_changes(action):
    # Given the matrix's columns for this action
    columns = [route for route in ROUTES if route.partition("=")[0] == action]
    # When we collect the starting statuses whose cells say the run changes
    changing = {
        start
        for start in STARTING
        for route in columns
        if MATRIX[start, route] in {status.value for status in RunStatus}
    }
    # Then they are exactly the statuses runstop.status lets the action start from
    assert changing == {str(status) for status in sources(action)}


def test_given_an_interrupted_run_when_cancelled_again_with_another_reason_then_the_first_cancel_record_stays(
    aws, store, clock, cancel_handler
):
    # Given a running run cancelled at T0 for a first reason
    seed_run(store, RUN, "running")
    first = cancel_handler(
        api_event("POST", f"/runs/{RUN}/cancel", {"reason": "first"}, tenant=TENANT, headers={"Idempotency-Key": "k1"})
    )
    assert body_of(first)["outcome"] == "interrupted"
    before = stored(aws, RUN)

    # When someone else cancels at T1 with another reason and key
    clock.moment = T1
    second = cancel_handler(
        api_event("POST", f"/runs/{RUN}/cancel", {"reason": "second"}, tenant=TENANT, headers={"Idempotency-Key": "k2"})
    )

    # Then the answer and the stored run both keep the first cancel
    first_record = {"reason": "first", "requested_at": T0_ISO, "source": "api", "idempotency_key": "k1"}
    assert (second["statusCode"], body_of(second)["outcome"]) == (202, "already_interrupted")
    assert body_of(second)["cancel"] == first_record
    assert stored(aws, RUN) == before
    assert before is not None
    assert before["cancel"] == first_record


def test_given_a_cancelled_run_when_its_worker_completes_late_then_409_and_the_cancel_stands(
    aws, store, clock, runs_handler, cancel_handler
):
    # Given a running run that a user cancelled
    seed_run(store, RUN, "running")
    cancel_handler(api_event("POST", f"/runs/{RUN}/cancel", {"reason": "user"}, tenant=TENANT))
    before = stored(aws, RUN)

    # When its worker, unaware, heartbeats and then reports success
    clock.moment = T1
    heartbeat = runs_handler(api_event("POST", f"/runs/{RUN}/heartbeat", tenant=TENANT))
    complete = runs_handler(api_event("POST", f"/runs/{RUN}/complete", {"status": "success"}, tenant=TENANT))

    # Then both are told the run is interrupted, and nothing about it changed
    assert assert_problem(heartbeat, 409, "status-conflict")["run_status"] == "interrupted"
    assert assert_problem(complete, 409, "status-conflict")["run_status"] == "interrupted"
    assert stored(aws, RUN) == before
