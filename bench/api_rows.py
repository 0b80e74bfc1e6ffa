"""Rows 1, 2 and 5: cancels through the local HTTP API on DynamoDB Local, both designs.

runstop's cancel route (POST /runs/{run_id}/cancel, the template's CancelRunFunction) and the
naive baseline (POST /baseline/runs/{run_id}/cancel, bench/baseline.py) are served by the
same local runner on the same table, and every comparison alternates between them within
one run, so both see the same machine noise.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from bench.cpu import CpuMeter
from bench.fixtures import ApiClient, seed_runs
from bench.loadgen import ClientProcesses, LoadResult
from bench.proxy import CountingProxy
from bench.stats import percentile
from runstop.status import RunStatus

DESIGNS = {"runstop": "", "baseline": "/baseline"}
"""Design -> path prefix of its cancel route on the local runner."""

OUTCOMES = ("interrupted", "already_interrupted", "conflict", "absent")
BUDGET_REQUESTS = {"interrupted": 1, "already_interrupted": 1, "conflict": 1, "absent": 2}

Tick = Callable[[str], None]


def _cancel_path(design: str, run_id: str) -> str:
    return f"{DESIGNS[design]}/runs/{run_id}/cancel"


def _answer(status: int, body: Any) -> str:
    outcome = body.get("outcome") if isinstance(body, dict) else None
    return f"{status} {outcome}" if outcome else str(status)


def request_counts(
    api_url: str, proxy: CountingProxy, client: Any, table: str, tenant_id: str, repeats: int, tick: Tick
) -> dict[str, Any]:
    """Row 1: DynamoDB requests each cancel makes, per outcome, counted by the proxy."""
    api = ApiClient(api_url, tenant_id)
    result: dict[str, Any] = {
        d: {o: {"requests": [], "by_target": Counter(), "answers": Counter()} for o in OUTCOMES} for d in DESIGNS
    }
    try:
        for rep in range(repeats):
            for design in DESIGNS:
                tag = f"req-{design}-{rep}-{uuid.uuid4().hex[:8]}"
                running, finished = f"{tag}-running", f"{tag}-finished"
                seed_runs(client, table, tenant_id, [running], RunStatus.RUNNING)
                seed_runs(client, table, tenant_id, [finished], RunStatus.SUCCESS)
                targets = {
                    "interrupted": running,
                    "already_interrupted": running,
                    "conflict": finished,
                    "absent": f"{tag}-absent",
                }
                for outcome in OUTCOMES:
                    before = proxy.snapshot()
                    status, body = api.post(_cancel_path(design, targets[outcome]), {"reason": "bench"})
                    made = proxy.snapshot() - before
                    entry = result[design][outcome]
                    entry["requests"].append(sum(made.values()))
                    entry["by_target"] += made
                    entry["answers"][_answer(status, body)] += 1
                tick(f"requests per cancel: {design} repeat {rep + 1}/{repeats}")
    finally:
        api.close()
    for design in DESIGNS:
        for outcome in OUTCOMES:
            entry = result[design][outcome]
            entry["by_target"] = {k: v / repeats for k, v in sorted(entry["by_target"].items())}
            entry["answers"] = dict(entry["answers"])
    return result


def concurrent_request_counts(
    clients: ClientProcesses,
    api_url: str,
    proxy: CountingProxy,
    client: Any,
    table: str,
    tenant_id: str,
    runs: int,
    duplicates: int,
    concurrency: int,
    tick: Tick,
) -> dict[str, Any]:
    """Requests per cancel when duplicates race (runs x duplicates at `concurrency`)."""
    result: dict[str, Any] = {}
    for design in DESIGNS:
        tag = f"creq-{design}-{uuid.uuid4().hex[:8]}"
        ids = seed_runs(client, table, tenant_id, [f"{tag}-{i}" for i in range(runs)], RunStatus.RUNNING)
        jobs = [(_cancel_path(design, run_id), b"{}") for run_id in ids for _ in range(duplicates)]
        before = proxy.snapshot()
        load = clients.http(api_url, jobs, concurrency, {"X-Tenant-Id": tenant_id})
        made = proxy.snapshot() - before
        total = sum(made.values())
        result[design] = {
            "cancels": len(jobs),
            "requests": total,
            "per_cancel": total / len(jobs),
            "by_target": dict(sorted(made.items())),
            "answers": dict(load.outcomes),
        }
        tick(f"requests under concurrency: {design}")
    return result


def _storm_once(
    clients: ClientProcesses,
    api_url: str,
    client: Any,
    table: str,
    tenant_id: str,
    design: str,
    runs: int,
    duplicates: int,
    concurrency: int,
) -> LoadResult:
    tag = f"storm-{design}-{uuid.uuid4().hex[:8]}"
    ids = seed_runs(client, table, tenant_id, [f"{tag}-{i}" for i in range(runs)], RunStatus.RUNNING)
    # A run's duplicates are consecutive, so they are in flight together and really race.
    body = json.dumps({"reason": "storm"}).encode()
    jobs = [(_cancel_path(design, run_id), body) for run_id in ids for _ in range(duplicates)]
    return clients.http(api_url, jobs, concurrency, {"X-Tenant-Id": tenant_id})


def storm(
    clients: ClientProcesses,
    api_url: str,
    client: Any,
    table: str,
    tenant_id: str,
    scenarios: dict[str, tuple[int, int]],
    concurrency: int,
    repeats: int,
    tick: Tick,
) -> dict[str, Any]:
    """Row 2: duplicate cancels of running runs; every 409 is spurious (no run had finished)."""
    result: dict[str, Any] = {}
    for design in DESIGNS:  # untimed: the JVM's JIT and the workers' first real cancels
        _storm_once(clients, api_url, client, table, tenant_id, design, 4, 25, concurrency)
    for name, (runs, duplicates) in scenarios.items():
        per: dict[str, Any] = {
            d: {"p50": [], "p99": [], "spurious_409": [], "interrupted": [], "throughput": [], "latencies_ms": []}
            for d in DESIGNS
        }
        outcomes: dict[str, Counter[str]] = {d: Counter() for d in DESIGNS}
        for rep in range(repeats):
            order = list(DESIGNS) if rep % 2 == 0 else list(reversed(DESIGNS))
            for design in order:
                load = _storm_once(clients, api_url, client, table, tenant_id, design, runs, duplicates, concurrency)
                lat = load.latencies_ms
                entry = per[design]
                entry["p50"].append(percentile(lat, 50))
                entry["p99"].append(percentile(lat, 99))
                entry["spurious_409"].append(load.statuses.get(409, 0))
                entry["interrupted"].append(load.outcomes.get("interrupted", 0))
                entry["throughput"].append(load.throughput)
                entry["latencies_ms"].extend(lat)
                outcomes[design] += load.outcomes
                tick(f"storm {name}: {design} repeat {rep + 1}/{repeats}")
        for design in DESIGNS:
            per[design]["answers"] = dict(outcomes[design])
        result[name] = {"runs": runs, "duplicates": duplicates, "concurrency": concurrency, "designs": per}
    return result


def throughput(
    clients: ClientProcesses,
    api_url: str,
    endpoint: str,
    client: Any,
    table: str,
    tenant_id: str,
    requests: int,
    concurrency: int,
    repeats: int,
    tick: Tick,
    meter: CpuMeter | None = None,
) -> dict[str, Any]:
    """Row 5: cancels of distinct running runs per second, local API vs raw conditional updates."""
    cpu: dict[str, dict[str, list[float]]] = {"api": defaultdict(list), "raw": defaultdict(list)}
    api_rates: list[float] = []
    raw_rates: list[float] = []
    ratios: list[float] = []
    api_p50: list[float] = []
    raw_p50: list[float] = []
    # Untimed: both sides once, so neither pays the JIT or a first connection in the figures.
    tag = f"tput-warmup-{uuid.uuid4().hex[:8]}"
    warm = min(requests, 300)
    ids = seed_runs(client, table, tenant_id, [f"{tag}-{i}" for i in range(2 * warm)], RunStatus.RUNNING)
    clients.http(
        api_url, [(_cancel_path("runstop", r), b"{}") for r in ids[:warm]], concurrency, {"X-Tenant-Id": tenant_id}
    )
    clients.raw_updates(endpoint, table, tenant_id, ids[warm:], concurrency)
    for rep in range(repeats):
        tag = f"tput-{rep}-{uuid.uuid4().hex[:8]}"
        api_ids = seed_runs(client, table, tenant_id, [f"{tag}-api-{i}" for i in range(requests)], RunStatus.RUNNING)
        raw_ids = seed_runs(client, table, tenant_id, [f"{tag}-raw-{i}" for i in range(requests)], RunStatus.RUNNING)
        body = json.dumps({"reason": "throughput"}).encode()
        first_api = rep % 2 == 0
        loads: dict[str, LoadResult] = {}
        for which in ("api", "raw") if first_api else ("raw", "api"):
            before = meter.snapshot() if meter else {}
            if which == "api":
                jobs = [(_cancel_path("runstop", run_id), body) for run_id in api_ids]
                loads["api"] = clients.http(api_url, jobs, concurrency, {"X-Tenant-Id": tenant_id})
            else:
                loads["raw"] = clients.raw_updates(endpoint, table, tenant_id, raw_ids, concurrency)
            if meter:
                for group, seconds in meter.delta(before, meter.snapshot()).items():
                    cpu[which][group].append(seconds * 1000 / requests)
        for which, load in loads.items():
            bad = len(load.samples) - load.outcomes.get("interrupted", 0)
            if bad:
                raise RuntimeError(f"throughput {which}: {bad} cancels did not interrupt ({load.outcomes})")
        api_rates.append(loads["api"].throughput)
        raw_rates.append(loads["raw"].throughput)
        ratios.append(loads["api"].throughput / loads["raw"].throughput)
        api_p50.append(percentile(loads["api"].latencies_ms, 50))
        raw_p50.append(percentile(loads["raw"].latencies_ms, 50))
        tick(f"throughput repeat {rep + 1}/{repeats}")
    return {
        "requests": requests,
        "concurrency": concurrency,
        "api_rps": api_rates,
        "raw_rps": raw_rates,
        "ratio": ratios,
        "api_p50_ms": api_p50,
        "raw_p50_ms": raw_p50,
        "cpu_ms_per_cancel": {side: dict(groups) for side, groups in cpu.items()},
    }
