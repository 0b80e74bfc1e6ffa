"""`python -m runstop_dev run` as a developer uses it: a real process, stopped by a signal.

Each runner is started in a session of its own, so a failing test can still kill everything
it started (DynamoDB Local and the worker processes included) by that session's id.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runstop.store import RunStore
from runstop_dev.ddb_local import free_port
from runstop_dev.stack import LocalStack
from runstop_dev.template import REPO_ROOT
from tests.integration.support import listening

pytestmark = pytest.mark.integration

STARTUP_TIMEOUT = 180.0
"""DynamoDB Local plus two cold starts; generous, the machine is shared."""
STOP_TIMEOUT = 20.0
READY = "runstop is serving on"


class Runner:
    """One `python -m runstop_dev run` process and everything it printed."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, port: int = 0, ddb_port: int = 0) -> None:
        self.port = port or free_port()
        self.ddb_port = ddb_port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.lines: list[str] = []
        self.serving = False
        self._ready = threading.Event()
        command = [sys.executable, "-m", "runstop_dev", "run", "--port", str(self.port)]
        command += ["--ddb-port", str(self.ddb_port), "--workers", "1", "--quiet", *args]
        self.process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=_runner_env(env or {}),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        # Drained to the end: a full pipe would block the runner's own logging.
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if READY in line:
                self.serving = True
                self._ready.set()
        self._ready.set()  # exited: stop waiting

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_serving(self) -> Runner:
        self._ready.wait(STARTUP_TIMEOUT)
        assert self.serving, f"no '{READY}' within {STARTUP_TIMEOUT}s:\n{self.output}"
        assert self.process.poll() is None, f"the runner exited after starting:\n{self.output}"
        return self

    def dynamodb_local_pid(self) -> int | None:
        """The DynamoDB Local JVM this runner started, if any."""
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                command = (stat.parent / "cmdline").read_bytes()
            except (OSError, ValueError, IndexError):
                continue
            if parent == self.process.pid and b"LoopbackDynamoDBLocal" in command:
                return int(stat.parent.name)
        return None

    def stop(self, signum: signal.Signals, *, group: bool = False) -> float:
        """Send `signum` to the runner (group: to all it started, as Ctrl-C in a terminal does);
        seconds until it exited, failing after STOP_TIMEOUT."""
        started = time.monotonic()
        if group:
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the runner did not exit within {STOP_TIMEOUT}s of {signum.name}:\n{self.output}")
        self._reader.join(timeout=5)
        return time.monotonic() - started

    def kill(self) -> None:
        """Last resort for a failed test: the runner's process group, so nothing it started
        (DynamoDB Local, workers) survives even if the runner itself died first."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def _runner_env(extra: dict[str, str]) -> dict[str, str]:
    """This environment without what would redirect the runner (the tests' own endpoint included)."""
    dropped = ("AWS_ENDPOINT_URL_DYNAMODB", "DYNAMODB_ENDPOINT", "DDB_PORT")
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("RUNSTOP_")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


@pytest.fixture
def runners() -> Iterator[list[Runner]]:
    started: list[Runner] = []
    yield started
    for runner in started:
        runner.kill()


def _start(
    runners: list[Runner], *args: str, env: dict[str, str] | None = None, port: int = 0, ddb_port: int = 0
) -> Runner:
    runner = Runner(*args, env=env, port=port, ddb_port=ddb_port)
    runners.append(runner)
    return runner.wait_serving()


def _assert_stopped_cleanly(runner: Runner, elapsed: float, jvm: int | None) -> None:
    assert runner.process.returncode == 0, runner.output
    assert elapsed < STOP_TIMEOUT
    assert "stopping..." in runner.output
    assert "Traceback" not in runner.output, runner.output
    assert not listening(runner.port), "the API port is still open"
    assert not listening(runner.ddb_port), "DynamoDB Local still listens"
    if jvm is not None:
        assert not Path(f"/proc/{jvm}").exists(), f"DynamoDB Local (pid {jvm}) outlived the runner"


def test_given_a_runner_on_a_data_dir_when_stopped_and_restarted_then_it_stops_cleanly_and_the_run_survives(
    tmp_path: Path, runners: list[Runner]
) -> None:
    data_dir = tmp_path / "dynamodb"
    # Given: a runner keeping its data in data_dir, holding one run
    first = _start(runners, "--data-dir", str(data_dir))
    jvm = first.dynamodb_local_pid()
    assert jvm is not None, "the runner should have started DynamoDB Local"
    run_id = f"cli-{uuid.uuid4()}"
    created = httpx.post(f"{first.url}/runs", json={"run_id": run_id, "metadata": {"kept": True}}, timeout=60)
    assert created.status_code == 201, created.text

    # When: Ctrl-C in its terminal (every process of the group gets SIGINT)
    elapsed = first.stop(signal.SIGINT, group=True)

    # Then: everything it started is gone
    _assert_stopped_cleanly(first, elapsed, jvm)
    print(f"\nCtrl-C (SIGINT to the group) -> exit in {elapsed:.1f}s")

    # When: started again on the same data dir (and the same, now free, ports)
    second = _start(runners, "--data-dir", str(data_dir), port=first.port, ddb_port=first.ddb_port)

    # Then: the run is still there, unchanged
    read = httpx.get(f"{second.url}/runs/{run_id}", timeout=60)
    assert read.status_code == 200, read.text
    assert read.json() == created.json()
    jvm = second.dynamodb_local_pid()
    elapsed = second.stop(signal.SIGTERM)
    _assert_stopped_cleanly(second, elapsed, jvm)
    print(f"SIGTERM -> exit in {elapsed:.1f}s")


def test_given_an_in_memory_runner_when_restarted_then_its_runs_are_gone(tmp_path: Path, runners: list[Runner]) -> None:
    data_dir = tmp_path / "dynamodb"
    # Given
    first = _start(runners, "--in-memory", "--data-dir", str(data_dir))
    run_id = f"cli-{uuid.uuid4()}"
    assert httpx.post(f"{first.url}/runs", json={"run_id": run_id}, timeout=60).status_code == 201
    elapsed = first.stop(signal.SIGINT)
    _assert_stopped_cleanly(first, elapsed, None)
    print(f"\nSIGINT to the runner alone -> exit in {elapsed:.1f}s")

    # When
    second = _start(runners, "--in-memory", "--data-dir", str(data_dir))

    # Then
    read = httpx.get(f"{second.url}/runs/{run_id}", timeout=60)
    assert read.status_code == 404, read.text
    assert not data_dir.exists(), "an in-memory runner must not write to the data dir"
    _assert_stopped_cleanly(second, second.stop(signal.SIGINT), None)


def test_given_dynamodb_endpoint_when_the_runner_starts_then_it_serves_from_that_endpoint_and_starts_no_dynamodb(
    stack: LocalStack, store: RunStore, runners: list[Runner]
) -> None:
    # Given
    runner = _start(runners, env={"DYNAMODB_ENDPOINT": stack.endpoint})

    # Then: no DynamoDB Local of its own
    assert f"DynamoDB: {stack.endpoint} (external)" in runner.output
    assert runner.dynamodb_local_pid() is None
    assert not listening(runner.ddb_port)

    # When: a run is created through the runner
    tenant = f"cli-{uuid.uuid4().hex[:12]}"
    run_id = f"cli-{uuid.uuid4()}"
    created = httpx.post(f"{runner.url}/runs", json={"run_id": run_id}, headers={"X-Tenant-Id": tenant}, timeout=60)
    assert created.status_code == 201, created.text

    # Then: it is in the endpoint's table, and stopping the runner leaves that endpoint alone
    stored = store.get(tenant, run_id)
    assert stored is not None
    assert stored["status"] == "pending"
    _assert_stopped_cleanly(runner, runner.stop(signal.SIGTERM), None)
    assert store.get(tenant, run_id) == stored
