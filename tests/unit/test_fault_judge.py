"""The fault drill's judge: which answers it calls wrong against a run's final state.

A judge that let a wrong answer through would make the fault drill pass for a broken service,
so each rule is pinned here on recorded answers, without DynamoDB.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.fault_judge import Attempt, Call, judge

RUN = "r-1"
RA = "1"


def _run(status: str, **extra: Any) -> dict[str, Any]:
    return {"run_id": RUN, "status": status, "version": 3, "metadata": {"plan": 0}, **extra}


def _problem(slug: str, **extra: Any) -> dict[str, Any]:
    return {"type": f"urn:runstop:problem:{slug}", "status": 409, **extra}


def _call(route: str, *attempts: Attempt, **params: Any) -> Call:
    return Call(route, RUN, params, list(attempts))


CASES = [
    # (what, call, final state of RUN, wrong?)
    (
        "start 200 to the worker that holds the run",
        _call("start", Attempt(200, _run("running", worker_id="w1")), worker_id="w1"),
        _run("running", worker_id="w1"),
        False,
    ),
    (
        "start 409 to the worker whose own start applied (the lost-answer retry)",
        _call("start", Attempt(409, _problem("status-conflict", run_status="running")), worker_id="w1"),
        _run("running", worker_id="w1"),
        True,
    ),
    (
        "start 409 to a rival, naming the holder",
        _call("start", Attempt(409, _problem("status-conflict", run_status="running", worker_id="w1")), worker_id="w2"),
        _run("running", worker_id="w1"),
        False,
    ),
    (
        "start 409 to a rival without the holder's worker_id",
        _call("start", Attempt(409, _problem("status-conflict", run_status="running")), worker_id="w2"),
        _run("running", worker_id="w1"),
        True,
    ),
    (
        "start 200 that never became the run's worker",
        _call("start", Attempt(200, _run("running", worker_id="w2")), worker_id="w2"),
        _run("running", worker_id="w1"),
        True,
    ),
    (
        "create 409 exists for its own keyed write",
        _call(
            "create",
            Attempt(503, retry_after=RA),
            Attempt(409, _problem("run-exists", run_id=RUN)),
            run_id=RUN,
            key="k",
            metadata={"plan": 0},
        ),
        _run("pending"),
        True,
    ),
    (
        "create 409 exists after a lost first attempt, without a key",
        _call(
            "create",
            Attempt(503, retry_after=RA),
            Attempt(409, _problem("run-exists", run_id=RUN)),
            run_id=RUN,
            key=None,
            metadata={"plan": 0},
        ),
        _run("pending"),
        False,
    ),
    (
        "create 409 exists for its own write in one request (the SDK's retry)",
        _call("create", Attempt(409, _problem("run-exists", run_id=RUN)), run_id=RUN, key=None, metadata={"plan": 0}),
        _run("pending"),
        True,
    ),
    (
        "complete repeated with the run's own status, unchanged",
        _call(
            "complete",
            Attempt(200, _run("success", worker_id="w1", ended_at="t")),
            worker_id="w1",
            status="success",
        ),
        _run("success", worker_id="w1", ended_at="t"),
        False,
    ),
    (
        "complete 409 when the run has the status asked for",
        _call(
            "complete",
            Attempt(409, _problem("status-conflict", run_status="success")),
            worker_id="w1",
            status="success",
        ),
        _run("success", worker_id="w1"),
        True,
    ),
    (
        "complete 409 after a cancel won",
        _call(
            "complete",
            Attempt(409, _problem("status-conflict", run_status="interrupted")),
            worker_id="w1",
            status="error",
        ),
        _run("interrupted", worker_id="w1"),
        False,
    ),
    (
        "heartbeat 409 naming a status the run never ended in",
        _call("heartbeat", Attempt(409, _problem("status-conflict", run_status="interrupted")), worker_id="w1"),
        _run("running", worker_id="w1"),
        True,
    ),
    (
        "stopped 200 with the stored stopped_at",
        _call("stopped", Attempt(200, _run("interrupted", worker_id="w1", stopped_at="t")), worker_id="w1"),
        _run("interrupted", worker_id="w1", stopped_at="t"),
        False,
    ),
    (
        "stopped 409 for an interrupted run",
        _call("stopped", Attempt(409, _problem("status-conflict", run_status="interrupted")), worker_id="w1"),
        _run("interrupted", worker_id="w1"),
        True,
    ),
    (
        "cancel already_interrupted when the stored cancel is this keyed request's",
        _call("cancel", Attempt(202, {"outcome": "already_interrupted"}), reason="a", key="k"),
        _run("interrupted", cancel={"reason": "a", "idempotency_key": "k"}),
        True,
    ),
    (
        "cancel interrupted when another request's cancel is stored",
        _call("cancel", Attempt(202, {"outcome": "interrupted"}), reason="a", key=None),
        _run("interrupted", cancel={"reason": "b"}),
        True,
    ),
    (
        "cancel 409 naming the finished status",
        _call("cancel", Attempt(409, _problem("run-finished", run_status="error")), reason="a", key=None),
        _run("error"),
        False,
    ),
    (
        "cancel absent for a run that exists",
        _call("cancel", Attempt(202, {"outcome": "absent"}), reason="a", key=None),
        _run("interrupted", cancel={"reason": "a"}),
        True,
    ),
]


@pytest.mark.parametrize(("call", "final", "wrong"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_the_judge_calls_an_answer_wrong_exactly_when_it_contradicts_the_final_state(
    call: Call, final: dict[str, Any], wrong: bool
):
    # When
    verdict = judge([call], {RUN: final})
    # Then
    assert bool(verdict.wrong) == wrong, verdict.wrong
    assert verdict.judged == 1


def test_every_500_and_every_503_without_retry_after_is_counted_even_when_a_retry_succeeded():
    # Given
    call = _call(
        "heartbeat",
        Attempt(500, {"status": 500}),
        Attempt(503, {"status": 503}),
        Attempt(503, {"status": 503}, retry_after=RA),
        Attempt(200, _run("running", worker_id="w1")),
        worker_id="w1",
    )
    # When
    verdict = judge([call], {RUN: _run("running", worker_id="w1")})
    # Then
    assert (len(verdict.server_errors), len(verdict.no_retry_after), len(verdict.wrong)) == (1, 1, 0)
    assert verdict.answers == 4


def test_a_503_that_outlasts_the_clients_retries_is_unknown_not_wrong():
    # Given
    call = _call("start", *[Attempt(503, retry_after=RA)] * 3, worker_id="w1")
    # When
    verdict = judge([call], {RUN: _run("running", worker_id="w1")})
    # Then
    assert (verdict.inconclusive, verdict.wrong) == (1, [])


def test_a_run_no_client_knows_is_an_orphan_unless_its_create_never_learned_its_outcome():
    # Given: plan 0 was told 201 for r-1 but also left r-2; plan 1's create never got an answer
    told = Call("create", None, {"run_id": None, "key": None, "metadata": {"plan": 0}}, [Attempt(201, _run("pending"))])
    unknown = Call(
        "create", None, {"run_id": None, "key": "k", "metadata": {"plan": 1}}, [Attempt(503, retry_after=RA)]
    )
    finals = {
        RUN: _run("pending"),
        "r-2": {**_run("pending"), "run_id": "r-2"},
        "r-3": {**_run("pending"), "run_id": "r-3"},
    }
    # When
    verdict = judge(
        [told, unknown], finals, created_by={RUN: 0, "r-2": 0, "r-3": 1}, create_calls={0: told, 1: unknown}
    )
    # Then
    assert verdict.orphans == ["r-2"]


def test_a_bulk_cancel_is_judged_entry_by_entry():
    # Given
    entries = [
        {"run_id": RUN, "status_code": 202, "outcome": "interrupted", "run_status": "interrupted"},
        {"run_id": "r-2", "status_code": 400, "error": "bad"},
        {"run_id": "r-3", "status_code": 503, "error": "retry"},
        {"run_id": "-bad", "status_code": 400, "error": "bad"},
    ]
    call = Call(
        "bulk",
        None,
        {"run_ids": [RUN, "r-2", "r-3", RUN, "-bad"], "reason": "b", "key": None},
        [Attempt(200, {"results": entries})],
    )
    finals = {RUN: _run("interrupted", cancel={"reason": "b"}), "r-2": _run("pending"), "r-3": _run("pending")}
    # When
    verdict = judge([call], finals, invalid_ids=("-bad",))
    # Then
    assert [finding.run_id for finding in verdict.wrong] == ["r-2"]
    assert (verdict.judged, verdict.inconclusive) == (4, 1)
