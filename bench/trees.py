"""The rows of issue 12: how fast a tree stops, and what a cancel job costs per run.

Cascade: trees of 10, 100 and 1,000 running runs (ten children per run, filled breadth first,
seeded straight into the table), the root cancelled through the local runner as `make run` serves
it (HTTP API, DynamoDB Local's stream through the template's RunEndedPipe, the CascadeFunction in
its own worker processes, every environment warmed first). Timed from the root's 202 to the last
run of the tree interrupted (a COUNT query on the tenant's interrupted partition every 50 ms).
The issue's budget: a tree of 1,000 within 10 s.

Filter job: 10,000 running runs that match among 100,000 (the other 90,000 finished, in other
status partitions), and for comparison the same 10,000 among 10,000; one job cancels the matching
runs in-process (runstop.jobs.work, as the CancelJobFunction does), timed, with every DynamoDB
request counted (each HTTP attempt). The claim: the cost follows the runs in the selected
statuses, so requests per run are the same in both tables (one cancel decision each, plus a Query
and two job writes per page of 100). The tables have no stream: DynamoDB Local keeps all stream
records in one unindexed table (see bench/sweeper_bench.py), while DynamoDB's streams cost a write
nothing, and the job never reads them.

`run_cascade_bench(endpoint, sizes, repeats)` and `run_filter_job_bench(endpoint, matching,
totals)` are what a report calls; alone: `python -m bench.trees [--small] [--sizes 10,100,1000]
[--repeats 3] [--matching 10000] [--totals 100000,10000] [--endpoint URL] [--out FILE]` (without
--endpoint it starts an in-memory DynamoDB Local of its own). `--small` is a seconds-long smoke.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

CASCADE_BUDGET_SECONDS = 10.0
"""The issue's: a tree of 1,000 fully interrupted within 10 s of the root's 202."""
FANOUT = 10
POLL_SECONDS = 0.05
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


@contextlib.contextmanager
def _stack(endpoint: str | None) -> Iterator[Any]:
    from runstop_dev.stack import local_stack

    with local_stack(endpoint=endpoint) as stack:
        yield stack


def _interrupted(client: Any, table: str, tenant: str) -> int:
    total, start = 0, None
    while True:
        extra: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
        page = client.query(
            TableName=table,
            IndexName="ByStatus",
            KeyConditionExpression="tenant_status = :p",
            ExpressionAttributeValues={":p": {"S": f"{tenant}#interrupted"}},
            Select="COUNT",
            **extra,
        )
        total += int(page["Count"])
        start = page.get("LastEvaluatedKey")
        if not start:
            return total


def _one_cascade(http: Any, client: Any, table: str, size: int, timeout: float) -> float:
    """Seed a tree of `size` in a fresh tenant, cancel its root, time until all are interrupted."""
    from runstop import clock
    from runstop_dev.seed import put_runs, tree_items

    tenant = f"bench-tree-{uuid.uuid4().hex[:10]}"
    put_runs(client, table, tree_items(tenant, "root", size, FANOUT, clock.now()), workers=8)
    answer = http.post("/runs/root/cancel", json={"reason": "bench"}, headers={"X-Tenant-Id": tenant})
    accepted = time.perf_counter()
    if answer.status_code != 202:
        raise RuntimeError(f"cancel answered {answer.status_code}: {answer.text}")
    deadline = accepted + timeout
    while (done := _interrupted(client, table, tenant)) < size:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"tree of {size}: {done} interrupted after {timeout:g} s")
        time.sleep(POLL_SECONDS)
    return time.perf_counter() - accepted


def run_cascade_bench(
    endpoint: str | None = None, sizes: Sequence[int] = (10, 100, 1_000), repeats: int = 3, timeout: float = 300.0
) -> dict[str, Any]:
    """Cascade time per tree size through the local runner (see the module doc)."""
    import httpx

    from runstop_dev.local_api import LocalApi

    with _stack(endpoint) as stack:
        client = stack.client(max_pool_connections=32)
        table = stack.refs["RunsTable"]
        with LocalApi(stack.refs, stack.env, port=0, workers=2, quiet=True) as api:
            api.warm(every_environment=True)
            with httpx.Client(base_url=api.url, timeout=60) as http:
                _one_cascade(http, client, table, FANOUT + 1, timeout)  # warm-up: not timed
                rows = []
                for size in sizes:
                    seconds = [_one_cascade(http, client, table, size, timeout) for _ in range(repeats)]
                    rows.append(
                        {
                            "runs": size,
                            "repeats": repeats,
                            "median_s": round(statistics.median(seconds), 2),
                            "min_s": round(min(seconds), 2),
                            "max_s": round(max(seconds), 2),
                        }
                    )
    big = [row for row in rows if row["runs"] >= 1_000]
    return {
        "rows": rows,
        "budget_s": CASCADE_BUDGET_SECONDS,
        "within_budget": all(row["median_s"] <= CASCADE_BUDGET_SECONDS for row in big) if big else None,
        "load_average": os.getloadavg(),
    }


def _job_table(client: Any, name: str, logical_id: str) -> str:
    from runstop_dev.template import table_definition

    definition = table_definition(name, logical_id)
    definition.pop("StreamSpecification", None)
    client.create_table(**definition)
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    return name


@contextlib.contextmanager
def _settings(**env: str) -> Iterator[None]:
    from runstop.store import reset_caches

    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    reset_caches()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reset_caches()


def _one_job(client: Any, matching: int, total: int) -> dict[str, Any]:
    """A runs table of `total` runs, `matching` of them running with the filter's metadata."""
    from runstop import jobs
    from runstop.status import RunStatus
    from runstop.store import RunStore
    from runstop_dev.seed import put_runs, run_item

    suffix = uuid.uuid4().hex[:8]
    runs_table = _job_table(client, f"bench-job-runs-{total}-{suffix}", "RunsTable")
    jobs_table = _job_table(client, f"bench-job-jobs-{suffix}", "CancelJobsTable")
    tenant = "bench-tenant"

    def items() -> Iterator[dict[str, Any]]:
        for i in range(total):
            if i < matching:
                item = run_item(tenant, f"match-{i:06}", RunStatus.RUNNING, LONG_AGO + timedelta(seconds=i))
                item["metadata"] = {"team": "etl"}
            else:
                item = run_item(tenant, f"done-{i:06}", RunStatus.SUCCESS, LONG_AGO + timedelta(seconds=i))
                item["metadata"] = {"team": "etl"}  # same metadata: only the status keeps them out
            yield item

    started = time.perf_counter()
    put_runs(client, runs_table, items(), workers=8)
    seed_seconds = time.perf_counter() - started
    sent: Counter[str] = Counter()

    def count(event_name: str, **_: Any) -> None:
        sent[event_name.rsplit(".", 1)[-1]] += 1

    try:
        with _settings(TABLE_NAME=runs_table, CANCEL_JOBS_TABLE=jobs_table):
            store = RunStore(client, runs_table)
            table = jobs.JobTable(client, jobs_table)
            client.meta.events.register("before-send.dynamodb", count)
            try:
                started = time.perf_counter()
                job = jobs.start_job(table, tenant, jobs.JobFilter(metadata={"team": "etl"}), reason="bench")
                epoch = str((table.get(tenant, job["job_id"]) or {})["epoch"])
                result = jobs.work(table, store, tenant, job["job_id"], epoch)
                seconds = time.perf_counter() - started
            finally:
                client.meta.events.unregister("before-send.dynamodb", count)
            done = jobs.get_job(table, tenant, job["job_id"])
    finally:
        for name in (runs_table, jobs_table):
            client.delete_table(TableName=name)
    if done["state"] != "done" or done["counts"]["interrupted"] != matching:
        raise RuntimeError(f"job over {total}: {done} ({result})")
    requests = sum(sent.values())
    return {
        "total_runs": total,
        "matching_runs": matching,
        "seconds": round(seconds, 2),
        "runs_per_second": round(matching / seconds, 1),
        "requests": dict(sent),
        "requests_per_run": round(requests / matching, 4),
        "counts": done["counts"],
        "seed_seconds": round(seed_seconds, 1),
    }


def run_filter_job_bench(
    endpoint: str | None = None, matching: int = 10_000, totals: Sequence[int] = (100_000, 10_000)
) -> dict[str, Any]:
    """One job per table size (see the module doc)."""
    with _stack(endpoint) as stack:
        client = stack.client(max_pool_connections=32)
        rows = [_one_job(client, matching, total) for total in totals]
    return {"rows": rows, "load_average": os.getloadavg()}


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.trees", description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", help="a running DynamoDB Local (default: start one in memory)")
    parser.add_argument("--small", action="store_true", help="seconds-long sizes, for a smoke run")
    parser.add_argument("--sizes", type=_ints, default=None, help="tree sizes (default 10,100,1000)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--matching", type=int, default=None, help="matching runs of the job (default 10000)")
    parser.add_argument("--totals", type=_ints, default=None, help="table sizes of the job (default 100000,10000)")
    parser.add_argument("--skip", choices=["cascade", "job"], action="append", default=[])
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args(argv)
    sizes = args.sizes or ([10, 30] if args.small else [10, 100, 1_000])
    matching = args.matching or (200 if args.small else 10_000)
    totals = args.totals or ([2_000, 200] if args.small else [100_000, 10_000])
    repeats = 1 if args.small else args.repeats
    figures: dict[str, Any] = {}
    if "cascade" not in args.skip:
        figures["cascade"] = run_cascade_bench(args.endpoint, sizes, repeats)
        print(json.dumps({"cascade": figures["cascade"]}, indent=2), flush=True)
    if "job" not in args.skip:
        figures["filter_job"] = run_filter_job_bench(args.endpoint, matching, totals)
        print(json.dumps({"filter_job": figures["filter_job"]}, indent=2), flush=True)
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
