"""The operator commands against a scripted service: output, --json, and exit codes scripts branch on."""

from __future__ import annotations

import json

import httpx
import pytest

from runstop_client import cli
from tests.client.support import CANCEL, T1, FakeApi, ok, problem, run_json, unavailable


def _run(api: FakeApi, capsys: pytest.CaptureFixture[str], *argv: str, deadline: float = 30) -> tuple[int, str, str]:
    code = cli.main(list(argv), client=api.client(deadline=deadline), sleep=api.clock.sleep)
    out, err = capsys.readouterr()
    return code, out, err


def _accepted(run_id: str, outcome: str = "interrupted", **extra: object) -> httpx.Response:
    return ok({"run_id": run_id, "status": "interrupted", "outcome": outcome, "cancel": CANCEL, **extra}, 202)


def test_get_shows_the_run_and_json_gives_it_unchanged(capsys):
    body = run_json("r1", "interrupted", cancel=CANCEL, stopped_at=T1)
    api = FakeApi().on("GET /runs/r1", ok(body))
    code, out, _ = _run(api, capsys, "get", "r1")
    assert code == cli.EXIT_OK
    assert "status          interrupted" in out
    assert "stop            acknowledged" in out
    assert "cancel          by api: user pressed Stop at 2026-11-23T21:12:27Z" in out
    code, out, _ = _run(api, capsys, "get", "r1", "--json")
    assert json.loads(out) == body


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (problem(404, "run-not-found", run_id="r1"), cli.EXIT_NOT_FOUND),
        (problem(400, "bad-request"), cli.EXIT_INVALID),
        (problem(401, "unauthorized"), cli.EXIT_UNAUTHORIZED),
        (unavailable("1"), cli.EXIT_UNAVAILABLE),
        (httpx.ConnectError("refused"), cli.EXIT_UNAVAILABLE),
    ],
)
def test_get_failures_have_distinct_exit_codes_and_a_message_on_stderr(capsys, answer, code):
    api = FakeApi().on("GET /runs/r1", answer)
    got, out, err = _run(api, capsys, "get", "r1", deadline=2)
    assert got == code
    assert out == ""
    assert err.startswith("runstop: ")


def test_ls_lists_with_filters_and_stops_at_the_limit(capsys):
    items = [run_json(f"r{n}", "interrupted", cancel=CANCEL) for n in range(3)]
    api = FakeApi().on("GET /runs", ok({"items": items, "next_cursor": "more"}))
    code, out, _ = _run(api, capsys, "ls", "--stop", "pending", "--limit", "2")
    assert code == cli.EXIT_OK
    lines = out.splitlines()
    assert lines[0].split() == ["RUN_ID", "STATUS", "STOP", "CREATED_AT"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["r0", "interrupted", "pending"],
        ["r1", "interrupted", "pending"],
    ]
    assert dict(api.requests[0].url.params) == {"stop": "pending", "limit": "2"}


def test_ls_json_is_one_run_per_line(capsys):
    api = FakeApi().on("GET /runs", ok({"items": [run_json("r0"), run_json("r1")], "next_cursor": None}))
    code, out, _ = _run(api, capsys, "ls", "--json", "--status", "running")
    assert code == cli.EXIT_OK
    assert [json.loads(line)["run_id"] for line in out.splitlines()] == ["r0", "r1"]


@pytest.mark.parametrize(
    ("answer", "line", "code"),
    [
        (_accepted("r1"), "r1  interrupted", cli.EXIT_OK),
        (_accepted("r1", "already_interrupted"), "r1  already_interrupted", cli.EXIT_OK),
        (ok({"run_id": "r1", "status": None, "outcome": "absent"}, 202), "r1  absent", cli.EXIT_OK),
        (
            problem(409, "run-finished", run_id="r1", run_status="success"),
            "r1  conflict (the run is success)",
            cli.EXIT_CONFLICT,
        ),
        (problem(400, "bad-request"), "r1  invalid (400: bad-request)", cli.EXIT_INVALID),
    ],
)
def test_cancel_one_run_prints_its_outcome_and_exits_by_it(capsys, answer, line, code):
    api = FakeApi().on("POST /runs/r1/cancel", answer)
    got, out, _ = _run(api, capsys, "cancel", "r1", "--reason", "why")
    assert (got, out.strip()) == (code, line)
    assert api.bodies("POST /runs/r1/cancel") == [{"reason": "why"}]


def test_cancel_unavailable_until_the_deadline_exits_6(capsys):
    api = FakeApi().on("POST /runs/r1/cancel", unavailable("1"))
    code, _, err = _run(api, capsys, "cancel", "r1", deadline=2)
    assert code == cli.EXIT_UNAVAILABLE
    assert "503" in err


def test_cancel_with_wait_and_force_reports_the_acknowledgement(capsys):
    api = FakeApi().on("POST /runs/r1/cancel", _accepted("r1", stop_acknowledged=True))
    code, out, _ = _run(api, capsys, "cancel", "r1", "--wait", "5", "--force")
    assert (code, out.strip()) == (0, "r1  interrupted, stop acknowledged")
    assert dict(api.requests[0].url.params) == {"wait": "5"}
    assert api.bodies("POST /runs/r1/cancel") == [{"force": True}]


def test_cancel_several_ids_goes_in_bulk_and_the_highest_failure_code_wins(capsys):
    results = [
        {"run_id": "a", "status_code": 202, "outcome": "interrupted"},
        {"run_id": "b", "status_code": 409, "run_status": "error"},
        {"run_id": "c", "status_code": 400, "error": "invalid run_id"},
    ]
    api = FakeApi().on("POST /runs/cancel", ok({"results": results}))
    code, out, _ = _run(api, capsys, "cancel", "a", "b", "c", "--json")
    assert code == cli.EXIT_INVALID
    assert [json.loads(line) for line in out.splitlines()] == results


def test_cancel_from_file_sends_hundreds_and_prints_a_summary_with_the_failures(capsys, tmp_path):
    ids = [f"r{n}" for n in range(150)]
    (tmp_path / "ids.txt").write_text("# to cancel\n" + "\n".join(ids) + "\n\n")

    def answer(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)["run_ids"]
        return ok(
            {
                "results": [
                    {"run_id": i, "status_code": 409, "run_status": "success"}
                    if i == "r7"
                    else {"run_id": i, "status_code": 202, "outcome": "interrupted"}
                    for i in sent
                ]
            }
        )

    api = FakeApi().on("POST /runs/cancel", answer)
    code, out, err = _run(api, capsys, "cancel", "--from-file", str(tmp_path / "ids.txt"), "--reason", "drain")
    assert code == cli.EXIT_CONFLICT
    assert out.splitlines() == ["r7  conflict (the run is success)", "150 runs: 149 interrupted, 1 conflict"]
    assert err == ""  # no progress bar when stderr is not a terminal
    assert [len(body["run_ids"]) for body in api.bodies("POST /runs/cancel")] == [100, 50]


def test_cancel_without_ids_is_a_usage_error(capsys):
    code, _, err = _run(FakeApi(), capsys, "cancel")
    assert code == cli.EXIT_USAGE
    assert "give run ids" in err


def test_watch_prints_each_change_until_the_run_has_ended(capsys):
    # Given: running, running, interrupted (stop pending), then acknowledged
    api = FakeApi().on(
        "GET /runs/r1",
        ok(run_json("r1", "running")),
        ok(run_json("r1", "running")),
        ok(run_json("r1", "interrupted", cancel=CANCEL)),
        ok(run_json("r1", "interrupted", cancel=CANCEL, stopped_at=T1)),
    )
    # When
    code, out, _ = _run(api, capsys, "watch", "r1", "--interval", "2")
    # Then
    assert code == cli.EXIT_OK
    assert [line.split()[1:] for line in out.splitlines()] == [
        ["r1", "running"],
        ["r1", "interrupted", "(stop", "pending)"],
        ["r1", "interrupted", "(stop", "acknowledged)"],
    ]
    assert api.clock.sleeps == [2.0, 2.0, 2.0]


def test_watch_of_a_run_cancelled_before_it_started_ends_at_once(capsys):
    api = FakeApi().on("GET /runs/r1", ok(run_json("r1", "interrupted", cancel=CANCEL, started_at=None)))
    code, out, _ = _run(api, capsys, "watch", "r1", "--json")
    assert code == cli.EXIT_OK
    assert json.loads(out)["status"] == "interrupted"


def test_run_without_a_command_is_a_usage_error(capsys):
    code, _, err = _run(FakeApi(), capsys, "run", "--")
    assert code == cli.EXIT_USAGE
    assert "give the command after --" in err


def test_run_splits_its_options_from_the_command_at_the_first_double_dash():
    args, command = cli._split_command(["run", "--run-id", "x", "--", "sh", "-c", "echo -- --run-id"])
    assert args == ["run", "--run-id", "x"]
    assert command == ["sh", "-c", "echo -- --run-id"]
    assert cli._split_command(["cancel", "--", "a"]) == (["cancel", "--", "a"], None)


def test_exit_code_of_a_command_killed_by_a_signal_follows_the_shell():
    from runstop_client.runner import exit_code

    assert exit_code(0) == 0
    assert exit_code(3) == 3
    assert exit_code(-15) == 143
    assert exit_code(-9) == 137


def test_run_with_a_stop_grace_on_a_service_without_stop_deadlines_keeps_the_grace_local():
    from runstop_client.runner import CommandRun, Options

    unknown = {"loc": ["body", "stop_grace_seconds"], "msg": "Extra inputs", "type": "extra_forbidden"}
    refused = problem(422, "validation", errors=[unknown])
    api = FakeApi().on("POST /runs", refused, ok(run_json("r1", "pending"), 201))
    said: list[str] = []
    command = CommandRun(api.client(), ["true"], Options(stop_grace=5), say=said.append)
    assert command._create(None).run_id == "r1"
    assert api.bodies("POST /runs") == [{"stop_grace_seconds": 5}, {}]
    assert "stop_grace_seconds" in said[0]


def test_run_with_a_stop_grace_the_service_refuses_for_another_reason_fails():
    from runstop_client import InvalidRequest
    from runstop_client.runner import CommandRun, Options

    too_big = {"loc": ["body", "stop_grace_seconds"], "msg": "less than or equal to 3600", "type": "less_than_equal"}
    api = FakeApi().on("POST /runs", problem(422, "validation", errors=[too_big]))
    command = CommandRun(api.client(), ["true"], Options(stop_grace=5), say=lambda _: None)
    with pytest.raises(InvalidRequest):
        command._create(None)


def test_run_with_a_stop_grace_sends_it_to_a_service_that_takes_it():
    from runstop_client.runner import CommandRun, Options

    api = FakeApi().on("POST /runs", ok(run_json("r1", "pending", stop_grace_seconds=5), 201))
    command = CommandRun(api.client(), ["true"], Options(stop_grace=5), say=lambda _: None)
    assert command._create(None).run_id == "r1"
    assert api.bodies("POST /runs") == [{"stop_grace_seconds": 5}]
