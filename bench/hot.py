"""Row 5: a hot run -- duplicate cancels of one already-interrupted run beyond its item's write capacity.

DynamoDB takes about 1,000 write units a second on one item (and 3,000 read units), and a
failed conditional write still costs a write unit, so duplicate cancels of one run beyond that
rate are throttled. Here the proxy (bench/proxy.py) caps every item at a scaled-down
`write_units_per_s` (reads at three times that, DynamoDB's ratio) and answers DynamoDB's own
throttling error beyond it; a paced storm then sends `storm_factor` times that rate of cancels
at one run that is already interrupted, so every answer is known in advance: 202
already_interrupted. Counted: 503s (a throttled cancel that outlasted the SDK's retries),
latency, what reached DynamoDB (first tries, retries, throttled) -- per configuration:

- runstop with the fallback off (RUNSTOP_THROTTLE_FALLBACK=0): throttled past retries -> 503;
- runstop as configured by default: with issue 14's fallback, a throttled cancel is answered
  from an eventually consistent read (a final state decides); without it, the same as off;
- read_first: reads first, so duplicates of a finished cancel never write at all.

Every configuration gets `workers` execution environments of its own, enough that a request
never waits for a free one (backoffs keep throttled requests in flight for seconds); the report
shows the first-try rate the proxy actually saw, so a saturated runner would show.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

from bench.api_rows import Tick, wire
from bench.designs import FALLBACK_FLAG, Design
from bench.fixtures import run_item
from bench.loadgen import ClientProcesses
from bench.proxy import DynamoProxy, Limits
from bench.stats import percentile
from runstop.status import RunStatus
from runstop_dev.seed import put_runs


def _interrupted_run(client: Any, table: str, tenant_id: str, run_id: str) -> None:
    """A run some earlier cancel interrupted (its cancel record stored)."""
    item = run_item(tenant_id, run_id, RunStatus.INTERRUPTED)
    item["cancel"] = {"reason": "first", "requested_at": item["updated_at"], "source": "api"}
    put_runs(client, table, [item])


def hot_run(
    clients: ClientProcesses,
    api_url: str,
    proxy: DynamoProxy,
    client: Any,
    table: str,
    tenant_id: str,
    configs: Sequence[Design],
    write_units_per_s: float,
    storm_factor: float,
    duration_s: float,
    concurrency: int,
    repeats: int,
    tick: Tick,
) -> dict[str, Any]:
    """Paced storms at `storm_factor` x the cap on one interrupted run, configurations alternating."""
    rate = write_units_per_s * storm_factor
    cancels = max(1, round(rate * duration_s))
    keys = ("p50", "p99", "max", "503", "first_try_rate", "late_p99_ms", "requests", "read_units", "write_units")
    per: dict[str, dict[str, Any]] = {d.name: {k: [] for k in keys} | {"latencies_ms": []} for d in configs}
    answers: dict[str, Counter[str]] = {d.name: Counter() for d in configs}
    results: dict[str, Counter[str]] = {d.name: Counter() for d in configs}
    limits = Limits.scaled(write_units_per_s)
    try:
        for rep in range(repeats):
            order = list(configs) if rep % 2 == 0 else list(reversed(configs))
            for design in order:
                run_id = f"hot-{design.name}-{uuid.uuid4().hex[:8]}"
                _interrupted_run(client, table, tenant_id, run_id)
                body = json.dumps({"reason": "duplicate"}).encode()
                jobs = [(design.cancel_path(run_id), body)] * cancels
                proxy.set_limits(limits)
                proxy.reset(timeline=True)
                load = clients.http(api_url, jobs, concurrency, {"X-Tenant-Id": tenant_id}, rate=rate)
                stats = proxy.stats()
                proxy.set_limits(Limits())
                made = wire(stats)
                # The first request of each cancel, first try: the proxy saw the storm at this rate.
                opening = "GetItem" if design.name == "read_first" else "UpdateItem"
                first_tries = [t for t, op, _, attempt in stats["timeline"] if attempt == 1 and op == opening]
                span = (max(first_tries) - min(first_tries)) if len(first_tries) > 1 else 0.0
                lat = load.latencies_ms
                entry = per[design.name]
                entry["p50"].append(percentile(lat, 50))
                entry["p99"].append(percentile(lat, 99))
                entry["max"].append(max(lat, default=float("nan")))
                entry["503"].append(load.statuses.get(503, 0))
                entry["first_try_rate"].append((len(first_tries) - 1) / span if span else float("nan"))
                entry["late_p99_ms"].append(percentile(load.late_ms, 99))
                entry["requests"].append(made["requests"] / cancels)
                entry["read_units"].append(made["read_units"] / cancels)
                entry["write_units"].append(made["write_units"] / cancels)
                entry["latencies_ms"].extend(lat)
                answers[design.name] += load.outcomes
                results[design.name] += Counter(made["by_result"])
                tick(f"hot run: {design.name} repeat {rep + 1}/{repeats}")
    finally:
        proxy.set_limits(Limits())
    for design in configs:
        per[design.name]["answers"] = dict(answers[design.name])
        per[design.name]["by_result"] = {k: v / (cancels * repeats) for k, v in sorted(results[design.name].items())}
        per[design.name]["env"] = design.env
    return {
        "write_units_per_s": write_units_per_s,
        "read_units_per_s": limits.read_units_per_s,
        "storm_factor": storm_factor,
        "rate_per_s": rate,
        "cancels": cancels,
        "duration_s": duration_s,
        "concurrency": concurrency,
        "repeats": repeats,
        "error": limits.error,
        "fallback_flag": FALLBACK_FLAG,
        "configs": per,
    }
