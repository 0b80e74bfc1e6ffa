"""The `runstop` command as installed in .venv/bin, against the local runner on DynamoDB Local.

`runstop run` is checked for what a user would notice: the exit code, the run's final state,
and that no process of the command is left behind, whichever way it ended.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import time
from collections.abc import Iterator

import pytest

from runstop_client import Client, RetryPolicy, RunConflict
from runstop_dev.ddb_local import free_port
from runstop_dev.local_api import LocalApi
from tests.integration.client_support import (
    RUNSTOP,
    LossyProxy,
    Runstop,
    eventually,
    grace,
    group_alive,
    needs_force,
    needs_stop_filter,
    runstop,
    runstops,
)
from tests.integration.support import new_run_id

pytestmark = pytest.mark.integration

FAST = ("--heartbeat-interval", "0.2")
"""A cancel reaches `runstop run` within 0.2 s (the default, 10 s, would make these tests slow)."""
IGNORES_SIGTERM = ("sh", "-c", 'trap "" TERM; sleep 600')
"""sh ignores SIGTERM, and so does its sleep, which inherits the ignored disposition."""


@pytest.fixture
def client(api: LocalApi, tenant: str) -> Iterator[Client]:
    with Client(api.url, tenant=tenant, retry=RetryPolicy(deadline=20)) as made:
        yield made


def _run_id(stderr: str) -> str:
    found = re.search(r"run (\S+) (?:started|cannot start)", stderr)
    assert found, stderr
    return found.group(1)


def test_installed_by_make_install():
    assert RUNSTOP.exists()


# ---- runstop run: the command ends by itself ------------------------------------------------


@pytest.mark.parametrize(("code", "status"), [(0, "success"), (3, "error")])
def test_run_exits_with_the_commands_code_and_completes_the_run(api, tenant, client, code, status):
    # When
    done = runstop(api.url, tenant, "run", "--", "sh", "-c", f"echo working; exit {code}")
    # Then
    assert done.returncode == code, done.stderr
    assert done.stdout == "working\n"
    assert client.get(_run_id(done.stderr)).status == status


def test_run_adopts_the_pending_run_it_is_given(api, tenant, client):
    run_id = new_run_id()
    client.create(run_id, metadata={"job": "cron"})
    done = runstop(api.url, tenant, "run", "--run-id", run_id, "--", "true")
    assert done.returncode == 0, done.stderr
    assert client.get(run_id).status == "success"


def test_run_with_a_run_id_that_does_not_exist_creates_the_run_with_that_id(api, tenant, client):
    run_id = new_run_id()
    done = runstop(api.url, tenant, "run", "--run-id", run_id, "--stop-grace", "5", "--", "true")
    assert done.returncode == 0, done.stderr
    stored = client.get(run_id)
    assert stored.status == "success"
    assert stored.raw.get("stop_grace_seconds") == 5


def test_run_with_a_finished_run_exits_conflict(api, tenant, client):
    run_id = new_run_id()
    client.create(run_id)
    client.start(run_id)
    client.complete(run_id, "success")
    done = runstop(api.url, tenant, "run", "--run-id", run_id, "--", "true")
    assert done.returncode == 3
    assert "success" in done.stderr


def test_run_of_a_missing_program_completes_the_run_error_and_exits_127(api, tenant, client):
    done = runstop(api.url, tenant, "run", "--", "no-such-program-xyz")
    assert done.returncode == 127
    assert "no-such-program-xyz" in done.stderr
    assert client.get(_run_id(done.stderr)).status == "error"


def test_a_lost_answer_on_complete_still_completes_and_exits_with_the_commands_code(api, tenant, client):
    # Given: a proxy that loses the first completion's answer after the service recorded it
    with LossyProxy(api.url, lambda method, path: path.endswith("/complete")) as proxy:
        # When
        done = runstop(proxy.url, tenant, "run", "--", "sh", "-c", "exit 4")
    # Then: the retry (same Idempotency-Key) found the completion; the command's code is kept
    assert done.returncode == 4, done.stderr
    run_id = _run_id(done.stderr)
    assert proxy.dropped == [f"POST /runs/{run_id}/complete"]
    assert client.get(run_id).status == "error"


def test_runstop_itself_terminated_passes_the_signal_on_and_leaves_nothing(api, tenant, client):
    with runstops() as started:
        process = Runstop(api.url, tenant, "run", *FAST, "--", "sleep", "600")
        started.append(process)
        process.started()
        # When: its supervisor stops runstop (docker stop, systemd)
        os.kill(process.process.pid, signal.SIGTERM)
        code = process.wait()
    # Then
    assert code == 128 + signal.SIGTERM
    assert process.pgid is not None
    assert not group_alive(process.pgid)
    assert client.get(process.run_id or "").status == "error"


# ---- runstop run: the run is cancelled -------------------------------------------------------


def test_a_cancelled_run_stops_the_whole_group_acknowledges_and_exits_130(api, tenant, client):
    with runstops() as started:
        # Given: a command with a child of its own in the background
        process = Runstop(api.url, tenant, "run", *FAST, "--", "sh", "-c", "sleep 600 & sleep 600; wait")
        started.append(process)
        process.started()
        assert process.run_id is not None
        assert process.pgid is not None
        # When: an operator cancels it from a second terminal
        cancelled = runstop(api.url, tenant, "cancel", process.run_id, "--reason", "user pressed Stop")
        code = process.wait()
    # Then
    assert cancelled.returncode == 0
    assert cancelled.stdout.split() == [process.run_id, "interrupted"]
    assert code == 130, process.stderr
    assert not group_alive(process.pgid)
    stored = client.get(process.run_id)
    assert stored.status == "interrupted"
    assert stored.stopped_at is not None
    assert "stop acknowledged" in process.stderr


def test_a_command_that_ignores_sigterm_is_killed_at_its_stop_deadline(api, tenant, client):
    # Given: a run whose stop grace is 1 s (on the service when it takes one, else runstop's own)
    run_id = new_run_id()
    client.create(run_id, stop_grace_seconds=grace(1))
    with runstops() as started:
        args = ("run", "--run-id", run_id, "--stop-grace", "1", *FAST, "--", *IGNORES_SIGTERM)
        process = Runstop(api.url, tenant, *args)
        started.append(process)
        process.started()
        assert process.pgid is not None
        # When
        client.cancel(run_id, reason="stop")
        cancelled_at = time.monotonic()
        code = process.wait()
        took = time.monotonic() - cancelled_at
    # Then: SIGTERM was ignored, so only SIGKILL (at the deadline) ended it, and nothing is left
    assert code == 130, process.stderr
    assert "SIGKILL" in process.stderr
    assert took >= 0.5
    assert not group_alive(process.pgid)
    assert client.get(run_id).stopped_at is not None


def test_a_cancel_racing_the_commands_own_exit_always_ends_consistently(api, tenant, client):
    """Whoever wins, the run and the exit code agree, and nothing is left running."""
    endings = []
    with runstops() as started:
        for offset in (0.0, 0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5):
            # Given: a command that ends by itself 0.3 s after it starts
            process = Runstop(api.url, tenant, "run", "--heartbeat-interval", "0.05", "--", "sleep", "0.3")
            started.append(process)
            process.started()
            assert process.run_id is not None
            assert process.pgid is not None
            # When: a cancel arrives around that moment
            time.sleep(offset)
            with contextlib.suppress(RunConflict):  # the completion was recorded first
                client.cancel(process.run_id, reason="race")
            code = process.wait()
            # Then
            stored = client.get(process.run_id)
            endings.append((code, stored.status))
            assert (code, stored.status) in {(0, "success"), (130, "interrupted")}, process.stderr
            if stored.status == "interrupted":
                assert stored.stopped_at is not None
            assert not group_alive(process.pgid)
    assert endings


def test_a_run_cancelled_while_pending_never_runs_its_command(api, tenant, client, tmp_path):
    run_id = new_run_id()
    client.create(run_id)
    client.cancel(run_id, reason="not today")
    marker = tmp_path / "ran"
    done = runstop(api.url, tenant, "run", "--run-id", run_id, "--", "touch", str(marker))
    assert done.returncode == 130
    assert not marker.exists()
    assert client.get(run_id).stopped_at is not None


@needs_force
def test_a_forced_cancel_kills_at_once_whatever_the_grace(api, tenant, client):
    run_id = new_run_id()
    client.create(run_id, stop_grace_seconds=grace(600))
    with runstops() as started:
        process = Runstop(api.url, tenant, "run", "--run-id", run_id, *FAST, "--", *IGNORES_SIGTERM)
        started.append(process)
        process.started()
        done = runstop(api.url, tenant, "cancel", run_id, "--force")
        code = process.wait(timeout=60)
    assert done.returncode == 0
    assert code == 130
    assert "SIGKILL" in process.stderr


# ---- operator commands ------------------------------------------------------------------------


def test_get_shows_a_run_and_its_exit_codes(api, tenant, client):
    run_id = new_run_id()
    client.create(run_id, metadata={"job": "nightly"})
    shown = runstop(api.url, tenant, "get", run_id)
    as_json = runstop(api.url, tenant, "get", run_id, "--json")
    missing = runstop(api.url, tenant, "get", new_run_id())
    invalid = runstop(api.url, tenant, "get", "not a run id!")
    assert shown.returncode == 0
    assert f"run_id          {run_id}" in shown.stdout
    assert "status          pending" in shown.stdout
    assert json.loads(as_json.stdout)["metadata"] == {"job": "nightly"}
    assert (missing.returncode, invalid.returncode) == (4, 5)


def test_ls_lists_the_tenants_runs_by_status(api, tenant, client):
    pending, running = new_run_id(), new_run_id()
    client.create(pending)
    client.create(running)
    client.start(running)
    listed = runstop(api.url, tenant, "ls", "--status", "running", "--json")
    table = runstop(api.url, tenant, "ls")
    assert listed.returncode == 0
    assert [json.loads(line)["run_id"] for line in listed.stdout.splitlines()] == [running]
    assert table.stdout.splitlines()[0].split() == ["RUN_ID", "STATUS", "STOP", "CREATED_AT"]
    assert {line.split()[0] for line in table.stdout.splitlines()[1:]} == {pending, running}


def test_cancel_answers_and_exit_codes(api, tenant, client):
    running, finished = new_run_id(), new_run_id()
    for run_id in (running, finished):
        client.create(run_id)
        client.start(run_id)
    client.complete(finished, "success")
    first = runstop(api.url, tenant, "cancel", running, "--reason", "stop")
    again = runstop(api.url, tenant, "cancel", running)
    conflict = runstop(api.url, tenant, "cancel", finished)
    invalid = runstop(api.url, tenant, "cancel", "not a run id!")
    several = runstop(api.url, tenant, "cancel", running, finished, new_run_id(), "--json")
    assert (first.returncode, first.stdout.split()) == (0, [running, "interrupted"])
    assert (again.returncode, again.stdout.split()) == (0, [running, "already_interrupted"])
    assert conflict.returncode == 3
    assert conflict.stdout.strip() == f"{finished}  conflict (the run is success)"
    assert invalid.returncode == 5
    assert several.returncode == 3
    kinds = [json.loads(line).get("outcome") or json.loads(line)["status_code"] for line in several.stdout.splitlines()]
    assert kinds == ["already_interrupted", 409, "absent"]


def test_cancel_from_a_file_sends_every_id_and_summarises(api, tenant, client, tmp_path):
    running = [new_run_id() for _ in range(3)]
    for run_id in running:
        client.create(run_id)
        client.start(run_id)
    absent = [new_run_id() for _ in range(147)]
    ids = tmp_path / "ids.txt"
    ids.write_text("# drain\n" + "\n".join(running + absent) + "\n")
    done = runstop(api.url, tenant, "cancel", "--from-file", str(ids), "--reason", "drain")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "150 runs: 3 interrupted, 147 absent"
    assert all(client.get(run_id).status == "interrupted" for run_id in running)


def test_cancel_with_wait_reports_the_workers_acknowledgement(api, tenant):
    with runstops() as started:
        worker = Runstop(api.url, tenant, "run", *FAST, "--", "sleep", "600")
        started.append(worker)
        worker.started()
        assert worker.run_id is not None
        done = runstop(api.url, tenant, "cancel", worker.run_id, "--wait", "15")
        assert worker.wait() == 130
    assert done.returncode == 0
    assert done.stdout.strip() == f"{worker.run_id}  interrupted, stop acknowledged"


def test_watch_follows_a_run_until_its_stop_is_acknowledged(api, tenant):
    with runstops() as started:
        worker = Runstop(api.url, tenant, "run", *FAST, "--", "sleep", "600")
        started.append(worker)
        worker.started()
        assert worker.run_id is not None
        watch = Runstop(api.url, tenant, "watch", worker.run_id, "--interval", "0.1")
        started.append(watch)
        eventually(lambda: watch.process.poll() is not None or _printed(watch))
        runstop(api.url, tenant, "cancel", worker.run_id)
        code = watch.wait()
        lines = watch.stdout.splitlines()
    assert code == 0
    assert lines[0].split()[1:] == [worker.run_id, "running"]
    assert lines[-1].split()[1:] == [worker.run_id, "interrupted", "(stop", "acknowledged)"]


def _printed(process: Runstop) -> bool:
    """Whether the process wrote its first line (peeked without consuming it)."""
    assert process.process.stdout is not None
    readable, _, _ = select.select([process.process.stdout], [], [], 0)
    return bool(readable)


def test_an_unreachable_service_exits_unavailable(tenant):
    done = runstop(f"http://127.0.0.1:{free_port()}", tenant, "get", "r1", env={"RUNSTOP_DEADLINE": "1"})
    assert done.returncode == 6
    assert done.stderr.startswith("runstop: ")


@needs_stop_filter
def test_ls_by_stop_state(api, tenant, client):
    run_id = new_run_id()
    client.create(run_id)
    client.start(run_id)
    client.cancel(run_id)
    pending = runstop(api.url, tenant, "ls", "--stop", "pending")
    assert [line.split()[:3] for line in pending.stdout.splitlines()[1:]] == [[run_id, "interrupted", "pending"]]
