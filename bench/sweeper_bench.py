"""The sweeper row: does a sweep cost the same when the table holds 100x more finished runs?

1,000 stale running runs among 1,000 runs in all, against the same 1,000 among 100,000 (the
other 99,000 finished, so absent from the sparse Active index). Each scenario gets a table of
its own on the given DynamoDB Local, made from template.yaml's definition and dropped after.
Sweeps of the two alternate, so both see the same machine noise; each sweep is timed, and
its DynamoDB requests (every HTTP attempt) and the read units of its queries are counted.
The budget: the big table's median sweep time at most 1.2x the small one's.

`run_sweeper_bench(endpoint, repeats, small=False)` is what `make bench` calls; run this
module alone with `python -m bench.sweeper_bench [--small] [--repeats N] [--endpoint URL]`
(without --endpoint it starts an in-memory DynamoDB Local of its own).
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

BUDGET = 1.2
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
NOW = LONG_AGO + timedelta(hours=2)
TENANTS = 1_000
"""Tenants the runs belong to, as in a real table (each index partition holds one tenant's runs)."""
SIZES: dict[bool, tuple[int, tuple[int, int]]] = {False: (1_000, (1_000, 100_000)), True: (100, (100, 2_000))}
"""small -> (stale runs, (total runs of the small table, of the big one))."""


def _tenant(i: int) -> str:
    return f"tenant-{i % TENANTS:04}"


@contextmanager
def _table_setting(table: str) -> Iterator[None]:
    """The domain's settings naming this scenario's table (TABLE_NAME is required; the sweep
    reads the retention from them), restored after."""
    from runstop.settings import settings

    before = os.environ.get("TABLE_NAME")
    os.environ["TABLE_NAME"] = table
    settings.cache_clear()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TABLE_NAME", None)
        else:
            os.environ["TABLE_NAME"] = before
        settings.cache_clear()


class _Scenario:
    """One table: `total` runs, of which `stale` are running and silent since LONG_AGO."""

    def __init__(self, client: Any, stale: int, total: int) -> None:
        from runstop.status import RunStatus
        from runstop_dev.seed import put_runs, run_item
        from runstop_dev.template import table_definition

        self.client, self.stale, self.total = client, stale, total
        self.table = f"bench-sweeper-{total}-{uuid.uuid4().hex[:8]}"
        definition = table_definition(self.table)
        # Without the stream: DynamoDB Local keeps every table's stream records in one unindexed
        # SQLite table, so with streams each write to the small table paid for the big table's
        # 99,000 records (measured: 85 s per sweep of the small table, 2 s of the big one).
        # DynamoDB's own streams cost a write nothing; the sweeper never reads them.
        definition.pop("StreamSpecification", None)
        client.create_table(**definition)
        client.get_waiter("table_exists").wait(TableName=self.table, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
        finished = (
            run_item(_tenant(i), f"done-{i:06}", RunStatus.SUCCESS, LONG_AGO - timedelta(seconds=i))
            for i in range(total - stale)
        )
        started = time.perf_counter()
        put_runs(client, self.table, finished, workers=8)
        self.load_seconds = time.perf_counter() - started
        self.samples: list[dict[str, Any]] = []

    def sweep_once(self, repeat: int) -> dict[str, Any]:
        """Seed `stale` silent runs, sweep, check, then delete them so the total stays exact."""
        from runstop.status import RunStatus
        from runstop.store import RunStore
        from runstop.sweeper import SweepPolicy, sweep
        from runstop_dev.seed import put_runs, run_item

        runs = [(_tenant(i), f"stale-{repeat}-{i:05}") for i in range(self.stale)]
        put_runs(self.client, self.table, (run_item(t, r, RunStatus.RUNNING, LONG_AGO) for t, r in runs))
        policy = SweepPolicy(heartbeat_timeout=timedelta(minutes=5), pending_timeout=timedelta(hours=1))
        sent: Counter[str] = Counter()

        def count(event_name: str, **_: Any) -> None:
            sent[event_name.rsplit(".", 1)[-1]] += 1

        self.client.meta.events.register("before-send.dynamodb", count)
        try:
            with _table_setting(self.table):
                started = time.perf_counter()
                summary = sweep(RunStore(self.client, self.table), policy, now=NOW)
                seconds = time.perf_counter() - started
        finally:
            self.client.meta.events.unregister("before-send.dynamodb", count)
        if summary.interrupted != self.stale or summary.stopped_early:
            raise RuntimeError(f"sweep of {self.table} stopped {summary.interrupted} of {self.stale} runs")
        self._delete(runs)
        return {
            "seconds": seconds,
            "requests": dict(sent),
            "read_units": summary.read_units,
            "pages": summary.pages,
        }

    def _delete(self, runs: list[tuple[str, str]]) -> None:
        for i in range(0, len(runs), 25):
            requests = [
                {"DeleteRequest": {"Key": {"tenant_id": {"S": t}, "run_id": {"S": r}}}} for t, r in runs[i : i + 25]
            ]
            while requests:
                response = self.client.batch_write_item(RequestItems={self.table: requests})
                requests = response.get("UnprocessedItems", {}).get(self.table, [])

    def drop(self) -> None:
        self.client.delete_table(TableName=self.table)

    def figures(self) -> dict[str, Any]:
        times = [s["seconds"] for s in self.samples]
        requests = [sum(s["requests"].values()) for s in self.samples]
        return {
            "total_runs": self.total,
            "stale_runs": self.stale,
            "sweeps": len(self.samples),
            "median_ms": round(statistics.median(times) * 1000, 1),
            "min_ms": round(min(times) * 1000, 1),
            "max_ms": round(max(times) * 1000, 1),
            "median_requests": statistics.median(requests),
            "requests_by_operation": self.samples[-1]["requests"],
            "median_read_units": statistics.median(s["read_units"] for s in self.samples),
            "pages": self.samples[-1]["pages"],
            "load_seconds": round(self.load_seconds, 1),
        }


def run_sweeper_bench(endpoint: str, repeats: int = 5, small: bool = False) -> dict[str, Any]:
    """Measure the sweeper on `endpoint` (DynamoDB Local); returns the row's figures."""
    from runstop_dev.ddb_local import local_client

    stale, totals = SIZES[small]
    repeats = max(1, repeats)
    client = local_client(endpoint, max_pool_connections=32, retries={"mode": "standard", "max_attempts": 5})
    scenarios = [_Scenario(client, stale, total) for total in totals]
    try:
        for scenario in scenarios:  # warm-up, not counted: the first sweep of a JVM is slow
            scenario.sweep_once(-1)
        for repeat in range(repeats):
            for scenario in scenarios if repeat % 2 == 0 else reversed(scenarios):
                scenario.samples.append(scenario.sweep_once(repeat))
    finally:
        for scenario in scenarios:
            scenario.drop()
    small_fig, big_fig = (s.figures() for s in scenarios)
    ratio = big_fig["median_ms"] / small_fig["median_ms"] if small_fig["median_ms"] else float("inf")
    request_ratio = big_fig["median_requests"] / small_fig["median_requests"]
    met = ratio <= BUDGET
    summary = (
        f"{stale} stale among {totals[1]:,} vs among {totals[0]:,}: {ratio:.2f}x the time "
        f"({big_fig['median_ms']:.0f} vs {small_fig['median_ms']:.0f} ms), {request_ratio:.2f}x the requests"
    )
    return {
        "small": small,
        "repeats": repeats,
        "budget": f"<= {BUDGET}x",
        "met": met,
        "ratio": round(ratio, 3),
        "request_ratio": round(request_ratio, 3),
        "scenarios": [small_fig, big_fig],
        "summary": summary,
        "markdown": _markdown(small_fig, big_fig, ratio, request_ratio, met),
    }


def _markdown(a: dict[str, Any], b: dict[str, Any], ratio: float, request_ratio: float, met: bool) -> str:
    def row(f: dict[str, Any]) -> str:
        ops = ", ".join(f"{k} {v}" for k, v in sorted(f["requests_by_operation"].items()))
        return (
            f"| {f['stale_runs']:,} among {f['total_runs']:,} | {f['median_ms']:.0f} ms "
            f"({f['min_ms']:.0f}-{f['max_ms']:.0f}) | {f['median_requests']:.0f} ({ops}) | "
            f"{f['median_read_units']:g} | {f['pages']} |"
        )

    return "\n".join(
        [
            "One sweep interrupting every stale run, on DynamoDB Local; medians over the sweeps, which",
            "alternate between the two tables. Requests are HTTP attempts (retries included); read units",
            "are those of the Active-index queries as DynamoDB Local reports them.",
            "",
            "| stale runs | sweep time, median (min-max) | DynamoDB requests | query read units | pages |",
            "|---|---|---|---|---|",
            row(a),
            row(b),
            "",
            f"Time ratio {ratio:.2f}x (budget <= {BUDGET}x: {'met' if met else 'NOT met'}); "
            f"request ratio {request_ratio:.2f}x.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m bench.sweeper_bench", description=__doc__)
    parser.add_argument("--endpoint", help="a running DynamoDB Local (default: start one in memory)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--small", action="store_true", help="100 among 100 vs 100 among 2,000: seconds, a smoke run")
    args = parser.parse_args(argv)
    if args.endpoint:
        result = run_sweeper_bench(args.endpoint, args.repeats, small=args.small)
    else:
        from runstop_dev.ddb_local import DynamoDBLocal

        with DynamoDBLocal() as ddb:
            result = run_sweeper_bench(ddb.endpoint, args.repeats, small=args.small)
    print(result.pop("markdown"))
    print(json.dumps(result, indent=2))
    return 0 if result["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
