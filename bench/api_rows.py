"""Rows 1 and 2: cancels through the local HTTP API on DynamoDB Local, every design side by side.

The designs (bench/designs: runstop, read_first, seed_fix, pre_fix) are served by one local
runner on one table, behind one counting proxy (bench/proxy.py), so requests and capacity
units are counted at the wire; every comparison alternates between the designs within one run,
so they all see the same machine noise.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from bench.designs import Design
from bench.fixtures import ApiClient, seed_runs
from bench.loadgen import ClientProcesses, LoadResult
from bench.proxy import DynamoProxy
from bench.stats import percentile
from runstop.status import RunStatus

OUTCOMES = ("interrupted", "already_interrupted", "conflict", "absent")
BUDGET_REQUESTS = {"interrupted": 1, "already_interrupted": 1, "conflict": 1, "absent": 2}

Tick = Callable[[str], None]


def _answer(status: int, body: Any) -> str:
    outcome = body.get("outcome") if isinstance(body, dict) else None
    return f"{status} {outcome}" if outcome else str(status)


def wire(stats: dict[str, Any]) -> dict[str, Any]:
    """The proxy's counters as the rows keep them: requests, by operation and result, units."""
    units = stats.get("units", {})
    return {
        "requests": sum(stats.get("requests", {}).values()),
        "by_operation": dict(sorted(stats.get("requests", {}).items())),
        "by_result": dict(sorted(stats.get("results", {}).items())),
        "read_units": float(units.get("read", 0.0)),
        "write_units": float(units.get("write", 0.0)),
    }


def request_counts(
    api_url: str,
    proxy: DynamoProxy,
    client: Any,
    table: str,
    tenant_id: str,
    designs: Sequence[Design],
    repeats: int,
    runs: int,
    tick: Tick,
) -> dict[str, Any]:
    """Row 1: per outcome and design, the DynamoDB requests, capacity units and latency of one
    cancel sent alone (the proxy's counters read before and after each)."""
    api = ApiClient(api_url, tenant_id)
    result: dict[str, Any] = {
        d.name: {o: {"requests": [], "read_units": [], "write_units": [], "ms": [], "by_operation": Counter(),
                     "answers": Counter()} for o in OUTCOMES}
        for d in designs
    }  # fmt: skip
    try:
        for rep in range(repeats):
            order = list(designs) if rep % 2 == 0 else list(reversed(designs))
            for design in order:
                tag = f"req-{design.name}-{rep}-{uuid.uuid4().hex[:8]}"
                running = seed_runs(client, table, tenant_id, [f"{tag}-r{i}" for i in range(runs)], RunStatus.RUNNING)
                finished = seed_runs(client, table, tenant_id, [f"{tag}-f{i}" for i in range(runs)], RunStatus.SUCCESS)
                for i in range(runs):
                    targets = {
                        "interrupted": running[i],
                        "already_interrupted": running[i],
                        "conflict": finished[i],
                        "absent": f"{tag}-absent-{i}",
                    }
                    for outcome in OUTCOMES:
                        proxy.reset()
                        started = time.perf_counter()
                        status, body = api.post(design.cancel_path(targets[outcome]), {"reason": "bench"})
                        elapsed = time.perf_counter() - started
                        made = wire(proxy.stats())
                        entry = result[design.name][outcome]
                        entry["requests"].append(made["requests"])
                        entry["read_units"].append(made["read_units"])
                        entry["write_units"].append(made["write_units"])
                        entry["ms"].append(elapsed * 1000)
                        entry["by_operation"] += Counter(made["by_operation"])
                        entry["answers"][_answer(status, body)] += 1
                tick(f"requests per cancel: {design.name} repeat {rep + 1}/{repeats}")
    finally:
        api.close()
    for per_design in result.values():
        for entry in per_design.values():
            n = len(entry["requests"]) or 1
            entry["by_operation"] = {k: v / n for k, v in sorted(entry["by_operation"].items())}
            entry["answers"] = dict(entry["answers"])
    return result


def _storm_once(
    clients: ClientProcesses,
    api_url: str,
    client: Any,
    table: str,
    tenant_id: str,
    design: Design,
    runs: int,
    duplicates: int,
    concurrency: int,
) -> LoadResult:
    tag = f"storm-{design.name}-{uuid.uuid4().hex[:8]}"
    ids = seed_runs(client, table, tenant_id, [f"{tag}-{i}" for i in range(runs)], RunStatus.RUNNING)
    # A run's duplicates are consecutive, so they are in flight together and really race.
    body = json.dumps({"reason": "storm"}).encode()
    jobs = [(design.cancel_path(run_id), body) for run_id in ids for _ in range(duplicates)]
    return clients.http(api_url, jobs, concurrency, {"X-Tenant-Id": tenant_id})


def storm(
    clients: ClientProcesses,
    api_url: str,
    proxy: DynamoProxy,
    client: Any,
    table: str,
    tenant_id: str,
    designs: Sequence[Design],
    scenarios: dict[str, tuple[int, int]],
    concurrency: int,
    repeats: int,
    tick: Tick,
) -> dict[str, Any]:
    """Row 2: duplicate cancels of running runs; every 409 is spurious (no run had finished).
    Latency per design, and what the storm cost at the wire (requests, units) per cancel."""
    result: dict[str, Any] = {}
    for design in designs:  # untimed: the JVM's JIT and the workers' first real cancels
        _storm_once(clients, api_url, client, table, tenant_id, design, 4, 25, concurrency)
    for name, (runs, duplicates) in scenarios.items():
        keys = ("p50", "p99", "spurious_409", "interrupted", "throughput", "requests", "read_units", "write_units")
        per: dict[str, dict[str, Any]] = {d.name: {k: [] for k in keys} | {"latencies_ms": []} for d in designs}
        outcomes: dict[str, Counter[str]] = {d.name: Counter() for d in designs}
        operations: dict[str, Counter[str]] = {d.name: Counter() for d in designs}
        for rep in range(repeats):
            shift = rep % len(designs)  # rotated, so no design always follows the same one
            for design in list(designs[shift:]) + list(designs[:shift]):
                proxy.reset()
                load = _storm_once(clients, api_url, client, table, tenant_id, design, runs, duplicates, concurrency)
                made = wire(proxy.stats())
                cancels = len(load.samples)
                lat = load.latencies_ms
                entry = per[design.name]
                entry["p50"].append(percentile(lat, 50))
                entry["p99"].append(percentile(lat, 99))
                entry["spurious_409"].append(load.statuses.get(409, 0))
                entry["interrupted"].append(load.outcomes.get("interrupted", 0))
                entry["throughput"].append(load.throughput)
                entry["requests"].append(made["requests"] / cancels)
                entry["read_units"].append(made["read_units"] / cancels)
                entry["write_units"].append(made["write_units"] / cancels)
                entry["latencies_ms"].extend(lat)
                outcomes[design.name] += load.outcomes
                operations[design.name] += Counter(made["by_result"])
                tick(f"storm {name}: {design.name} repeat {rep + 1}/{repeats}")
        for design in designs:
            per[design.name]["answers"] = dict(outcomes[design.name])
            total = runs * duplicates * repeats
            per[design.name]["by_result"] = {k: v / total for k, v in sorted(operations[design.name].items())}
        result[name] = {"runs": runs, "duplicates": duplicates, "concurrency": concurrency, "designs": per}
    return result


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")
