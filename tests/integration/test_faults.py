"""Every write answered right while DynamoDB fails: the fault drill, one test per fault mode.

Clients drive runs through the local runner; between the functions and DynamoDB Local the
fault proxy throttles, answers 5xx, holds answers past the read timeout, loses answers after
the write was applied and resets connections. Afterwards the table, read directly, is the
truth every answer is judged against (see fault_judge for the rules). Sized small here;
`make faults` runs it large (FAULT_RUNS, FAULT_CLIENTS, FAULT_PROBABILITY) and prints the table.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from runstop_dev.faults import MODES, FaultPlan, FaultProxy
from runstop_dev.local_api import LocalApi
from runstop_dev.stack import LocalStack
from runstop_dev.template import REPO_ROOT, function_timeout
from tests.integration import fault_drill
from tests.integration.support import TABLE

pytestmark = [pytest.mark.integration, pytest.mark.faults]

RUNS = int(os.environ.get("FAULT_RUNS", "12"))
CLIENTS = int(os.environ.get("FAULT_CLIENTS", "4"))
PROBABILITY = float(os.environ.get("FAULT_PROBABILITY", "0.2"))
SEED = int(os.environ.get("FAULT_SEED", "9"))
READ_TIMEOUT = 0.5
"""The functions' DynamoDB read timeout in the drill; the proxy's delay outlasts it."""
DELAY = 0.8

FINDINGS_DIR = REPO_ROOT / ".local" / "fault-drill"
"""Every finding of the last run, one file per mode (the test output shows the first few)."""

RESULTS: list[fault_drill.ModeResult] = []
STALLED_BULK: list[str] = []
"""Filled by the tests, printed at the end of the session (tests/conftest.py)."""


@pytest.fixture(scope="module")
def fault_proxy(stack: LocalStack) -> Iterator[FaultProxy]:
    with FaultProxy(stack.endpoint) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def faulty_http(stack: LocalStack, fault_proxy: FaultProxy) -> Iterator[httpx.Client]:
    """The template's API whose functions reach DynamoDB through the proxy.

    One environment per client for each function, all started before the first mode: a client
    runs at most two calls at once, and a queued request waits well within the runner's limit.
    """
    env = {
        **stack.env,
        "AWS_ENDPOINT_URL_DYNAMODB": fault_proxy.endpoint,
        "DYNAMODB_READ_TIMEOUT": str(READ_TIMEOUT),
        "DYNAMODB_CONNECT_TIMEOUT": str(READ_TIMEOUT),
    }
    with LocalApi(stack.refs, env, port=0, workers=CLIENTS, quiet=True, stream_pipes=False) as api:
        api.warm(every_environment=True)
        limits = httpx.Limits(max_connections=4 * CLIENTS, max_keepalive_connections=4 * CLIENTS)
        with httpx.Client(base_url=api.url, timeout=60, limits=limits) as client:
            # Each environment's first calls make its DynamoDB client and connections: a round
            # without faults, not judged, so no mode's figures count those cold starts.
            fault_proxy.set_plan(FaultPlan())
            fault_drill.Drill(client, f"fault-warmup-{uuid.uuid4().hex[:8]}", SEED, CLIENTS).run(2 * CLIENTS)
            yield client


@pytest.mark.parametrize("mode", list(MODES))
def test_given_dynamodb_failing_when_clients_drive_runs_then_every_answer_agrees_with_the_final_state(
    mode: str, stack: LocalStack, fault_proxy: FaultProxy, faulty_http: httpx.Client
) -> None:
    # Given: DynamoDB failing in this mode, and a tenant of the mode's own
    tenant = f"fault-{mode}-{uuid.uuid4().hex[:8]}"
    probability = 0.0 if mode == "none" else PROBABILITY
    fault_proxy.set_plan(FaultPlan(mode, probability, seed=SEED, delay=DELAY))
    drill = fault_drill.Drill(faulty_http, tenant, SEED, CLIENTS)
    started = time.perf_counter()

    # When: the clients drive their runs; then every delayed write has landed
    try:
        drill.run(RUNS)
    finally:
        injected = fault_proxy.counts()
        fault_proxy.set_plan(FaultPlan())
        assert fault_proxy.wait_idle(), "a request is still held by the proxy"
    finals = fault_drill.stored_runs(stack.client(), stack.refs[TABLE], tenant)
    verdict = drill.verdict(finals)
    result = fault_drill.ModeResult(mode, drill.runs, verdict, injected, time.perf_counter() - started)
    RESULTS.append(result)
    FINDINGS_DIR.mkdir(parents=True, exist_ok=True)
    (FINDINGS_DIR / f"{mode}.txt").write_text(fault_drill.examples(result, limit=None) + "\n")

    # Then: the faults happened, and no answer contradicts the table
    if mode != "none":
        assert set(injected) - {"forwarded"}, f"no fault injected in mode {mode}: {injected}"
    report = fault_drill.table([result], probability, CLIENTS) + "\n" + fault_drill.examples(result)
    assert not verdict.server_errors, report
    assert not verdict.no_retry_after, report
    assert not verdict.wrong, report
    assert not verdict.orphans, report


STALL = 5.0
"""Seconds each stalled DynamoDB request is held: every SDK attempt times out."""
BULK_RUNS = 100


def test_given_dynamodb_stalled_when_100_runs_are_bulk_cancelled_then_the_answer_comes_within_the_function_timeout(
    stack: LocalStack, fault_proxy: FaultProxy, faulty_http: httpx.Client
) -> None:
    # Given: 100 pending runs, then every DynamoDB request held past the read timeout
    tenant = f"fault-stall-{uuid.uuid4().hex[:8]}"
    headers = {"X-Tenant-Id": tenant}
    fault_proxy.set_plan(FaultPlan())
    run_ids = [f"stall-{n}" for n in range(BULK_RUNS)]
    for run_id in run_ids:
        assert faulty_http.post("/runs", json={"run_id": run_id}, headers=headers).status_code == 201
    fault_proxy.set_plan(FaultPlan("delay", 1.0, seed=SEED, delay=STALL))

    # When
    started = time.perf_counter()
    try:
        answer = faulty_http.post("/runs/cancel", json={"run_ids": run_ids, "reason": "stalled"}, headers=headers)
    finally:
        elapsed = time.perf_counter() - started
        fault_proxy.set_plan(FaultPlan())
        assert fault_proxy.wait_idle(), "a request is still held by the proxy"

    # Then: per-id answers before the function's timeout; each 202 is true, the rest say retry (503)
    timeout = function_timeout("RunsApiFunction")
    retry = sum(entry.get("status_code") == 503 for entry in answer.json().get("results", []))
    STALLED_BULK.append(
        f"bulk cancel of {BULK_RUNS} runs with DynamoDB stalled: {answer.status_code} in {elapsed:.1f} s "
        f"(function timeout {timeout:.0f} s), {retry} ids answered 503"
    )
    assert answer.status_code == 200, answer.text
    assert elapsed < timeout
    finals = fault_drill.stored_runs(stack.client(), stack.refs[TABLE], tenant)
    for entry in answer.json()["results"]:
        assert entry["status_code"] in (202, 503), entry
        if entry["status_code"] == 202:
            assert finals[entry["run_id"]]["status"] == "interrupted", entry
