"""Row 3: cold init of every function in fresh processes, against the boto3 floor.

Each sample is a new interpreter of the Lambda-like environment (bench/lambda_env.py) that
imports the function's module, makes its DynamoDB client and serves one first event against
DynamoDB Local -- the real first request: signing, a connection, the HTTP exchange and
response parsing, none of which a botocore Stubber would exercise (it answers right after
serialization). The floor is the same interpreter doing
`import boto3; boto3.client("dynamodb")` (then one bare UpdateItem, for the like-for-like
figure). Candidates are interleaved (floor, cancel, runs, ..., floor, ...; the order rotates
each round) so the machine's noise falls on all of them alike; bytecode is compiled once by an untimed round first.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import lambda_env
from bench.api_rows import Tick
from bench.fixtures import seed_runs
from runstop.status import RunStatus
from runstop_dev.local_api import build_event
from runstop_dev.template import Function, function_environment, functions, http_routes, load_template

CHILD_SOURCE = (Path(__file__).with_name("_cold_child.py")).read_text()
FLOOR = "floor"


@dataclass
class Candidate:
    name: str
    mode: str  # "floor" or "function"
    function: Function | None
    env: dict[str, str]
    first: Callable[[int], tuple[str, str]]
    """Repetition -> (first event, floor call), each as JSON; "" for none."""
    first_label: str


def _event_for(fn: Function, method: str, path: str, tenant_id: str, body: bytes = b"") -> dict[str, Any]:
    for route in http_routes():
        found = route.pattern.match(path)
        if route.function.logical_id == fn.logical_id and route.method == method and found:
            headers = {"content-type": "application/json", "x-tenant-id": tenant_id}
            return build_event(route, method, path, "", headers, body, found.groupdict(), "tenant_id", "127.0.0.1")
    raise LookupError(f"{fn.logical_id} serves no {method} {path}")


def bare_cancel_params(table: str, tenant_id: str, run_id: str, stamp: str) -> dict[str, Any]:
    """The floor's first request: the conditional update a hand-written cancel sends (runstop's one request)."""
    return {
        "TableName": table,
        "Key": {"tenant_id": {"S": tenant_id}, "run_id": {"S": run_id}},
        "UpdateExpression": (
            "SET #status = :interrupted, tenant_status = :ts, updated_at = :stamp, ended_at = :stamp,"
            " #cancel = :cancel, version = version + :one REMOVE active_pk, sweep_at"
        ),
        "ConditionExpression": "#status IN (:pending, :running)",
        "ExpressionAttributeNames": {"#status": "status", "#cancel": "cancel"},
        "ExpressionAttributeValues": {
            ":interrupted": {"S": "interrupted"},
            ":ts": {"S": f"{tenant_id}#interrupted"},
            ":stamp": {"S": stamp},
            ":cancel": {"M": {"reason": {"S": "bench"}, "requested_at": {"S": stamp}, "source": {"S": "raw"}}},
            ":one": {"N": "1"},
            ":pending": {"S": "pending"},
            ":running": {"S": "running"},
        },
        "ReturnValues": "ALL_NEW",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def candidates(
    stack: Any, tenant_id: str, repeats: int, importtime_runs: int, all_functions: bool = True
) -> list[Candidate]:
    """The floor, then every function of the template with a first event where one is known."""
    client, table = stack.client(), stack.refs["RunsTable"]
    tag = f"cold-{uuid.uuid4().hex[:8]}"
    # A fresh running run for every child: the timed rounds, the warm-up round, the profiles.
    count = repeats + 1 + importtime_runs
    cancel_ids = seed_runs(client, table, tenant_id, [f"{tag}-c{i}" for i in range(count)], RunStatus.RUNNING)
    floor_ids = seed_runs(client, table, tenant_id, [f"{tag}-f{i}" for i in range(count)], RunStatus.RUNNING)
    read_id = seed_runs(client, table, tenant_id, [f"{tag}-read"], RunStatus.RUNNING)[0]
    base_env = {**stack.env, "AWS_LAMBDA_FUNCTION_NAME": FLOOR}
    # Resources with no local stand-in (queues, topics) resolve to their logical id: enough to import.
    refs = {rid: stack.refs.get(rid, rid) for rid in load_template()["Resources"]}
    stamp = "2026-01-01T00:00:00.000000Z"
    found = [
        Candidate(
            FLOOR,
            "floor",
            None,
            {**function_environment("CancelRunFunction", refs), **base_env},
            lambda i: ("", json.dumps(bare_cancel_params(table, tenant_id, floor_ids[i], stamp))),
            "one bare UpdateItem (interrupts a running run)",
        )
    ]
    for fn in functions():
        if not all_functions and fn.logical_id != "CancelRunFunction":
            continue
        env = {**function_environment(fn.logical_id, refs), **stack.env, "AWS_LAMBDA_FUNCTION_NAME": fn.logical_id}
        first: Callable[[int], tuple[str, str]]
        if fn.logical_id == "CancelRunFunction":
            body = b'{"reason":"cold start"}'

            def first(i: int, fn: Function = fn, body: bytes = body) -> tuple[str, str]:
                event = _event_for(fn, "POST", f"/runs/{cancel_ids[i]}/cancel", tenant_id, body)
                return json.dumps(event), ""

            label = "POST /runs/{run_id}/cancel of a running run (202 interrupted)"
        elif fn.logical_id == "RunsApiFunction":
            event = json.dumps(_event_for(fn, "GET", f"/runs/{read_id}", tenant_id))

            def first(i: int, event: str = event) -> tuple[str, str]:
                return event, ""

            label = "GET /runs/{run_id} (200)"
        else:

            def first(i: int) -> tuple[str, str]:
                return "", ""

            label = "none known: import and client only"
        found.append(Candidate(fn.logical_id, "function", fn, env, first, label))
    return found


def _spawn(python: Path, cand: Candidate, rep: int, importtime: bool = False) -> dict[str, Any]:
    event, call = cand.first(rep)
    fn = cand.function
    module, attribute = (fn.module, fn.attribute) if fn else ("boto3", "")
    with tempfile.NamedTemporaryFile("r", suffix=".txt", delete=False) as out:
        out_path = out.name
    args = [str(python), *(["-X", "importtime"] if importtime else []), "-c", CHILD_SOURCE]
    args += [cand.mode, module, attribute, event, out_path, call]
    env = lambda_env.child_env(cand.env, fn.code_dir if fn else None)
    started = time.perf_counter()
    proc = subprocess.Popen(
        args,
        env=env,
        cwd=str(fn.code_dir if fn else lambda_env.VENV_DIR),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    try:
        if proc.returncode != 0:
            raise RuntimeError(f"cold start of {cand.name} failed ({proc.returncode}):\n{stderr[-3000:]}")
        figures: dict[str, Any] = json.loads(Path(out_path).read_text())
    finally:
        os.unlink(out_path)
    figures.update(proc_wall_s=wall, proc_cpu_s=usage.ru_utime + usage.ru_stime, stderr=stderr if importtime else "")
    return figures


_IMPORTTIME = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def _importtime(stderr: str) -> dict[str, tuple[int, int]]:
    """module -> (self us, cumulative us) from `-X importtime` output."""
    found = {}
    for line in stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            found[match.group(4)] = (int(match.group(1)), int(match.group(2)))
    return found


def _profile(python: Path, floor: Candidate, cand: Candidate, first_rep: int, runs: int) -> dict[str, Any]:
    """What the candidate imports beyond the floor, from `-X importtime` (median of a few runs)."""
    selfs: dict[str, list[int]] = defaultdict(list)
    floor_modules: set[str] = set()
    for rep in range(first_rep, first_rep + runs):
        floor_modules |= set(_importtime(_spawn(python, floor, rep, importtime=True)["stderr"]))
        for name, (self_us, _cum) in _importtime(_spawn(python, cand, rep, importtime=True)["stderr"]).items():
            selfs[name].append(self_us)
    extra = {name: statistics.median(v) / 1000 for name, v in selfs.items() if name not in floor_modules}
    by_package: dict[str, float] = defaultdict(float)
    for name, ms in extra.items():
        by_package[name.split(".", 1)[0]] += ms
    return {
        "extra_modules": len(extra),
        "extra_ms": sum(extra.values()),
        "floor_ms": sum(statistics.median(v) / 1000 for name, v in selfs.items() if name in floor_modules),
        "by_package": sorted(by_package.items(), key=lambda kv: -kv[1])[:12],
        "top_modules": sorted(extra.items(), key=lambda kv: -kv[1])[:15],
    }


def cold_starts(
    stack: Any, tenant_id: str, repeats: int, importtime_runs: int, tick: Tick, all_functions: bool = True
) -> dict[str, Any]:
    python = lambda_env.ensure()
    cands = candidates(stack, tenant_id, repeats, importtime_runs, all_functions)
    for cand in cands:  # untimed: compiles bytecode and warms the page cache
        _spawn(python, cand, repeats)
    samples: dict[str, list[dict[str, Any]]] = {c.name: [] for c in cands}
    for rep in range(repeats):
        shift = rep % len(cands)  # rotated, so no candidate always follows the same one
        for cand in cands[shift:] + cands[:shift]:
            samples[cand.name].append(_spawn(python, cand, rep))
        tick(f"cold starts: round {rep + 1}/{repeats}")
    floor = cands[0]
    cancel = next(c for c in cands if c.name == "CancelRunFunction")
    profile = _profile(python, floor, cancel, repeats + 1, importtime_runs)
    tick("cold starts: import profile")
    return {
        "repeats": repeats,
        "python": str(python),
        "packages": lambda_env.packages(),
        "candidates": {c.name: {"first": c.first_label, "samples": samples[c.name]} for c in cands},
        "profile": profile,
    }
