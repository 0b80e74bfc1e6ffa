"""`python -m bench [--smoke] [--rows ...] [--out DIR]`: every comparison in one run (bench/README.md).

Starts DynamoDB Local (in memory), then measures, in this order: cold starts and warm
invocations (while nothing else runs), then -- behind one counting proxy, on one local runner
serving every design -- requests, capacity units and latency per cancel and the duplicate
storms, then the hot run beyond its item's write capacity (its own runner, the proxy capping),
and the sweeper row. Writes REPORT.md, PNG charts and raw/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from bench import api_rows, report
from bench.cold import cold_starts
from bench.config import BenchConfig
from bench.designs import COMPARED, designs, fallback_available
from bench.hot import hot_run
from bench.loadgen import ClientProcesses
from bench.machine import describe, dynamodb_local_version
from bench.proxy import DynamoProxy
from bench.runner import DesignApi
from bench.warm import warm_cost
from runstop_dev.stack import LocalStack, local_stack
from runstop_dev.template import REPO_ROOT

DEFAULT_OUT = REPO_ROOT / "bench" / "results"
TENANT = "bench"
ROWS = ("cold", "warm", "requests", "storm", "hot", "sweeper")
"""Row names for --rows. The cost row is computed from requests and storm."""

Tick = Callable[[str], None]


def sweeper_row(endpoint: str, config: BenchConfig) -> dict[str, Any]:
    from bench.sweeper_bench import run_sweeper_bench

    return run_sweeper_bench(endpoint, config.sweeper_repeats, small=bool(config.smoke or config.sweeper_small))


def hot_configs() -> list[str]:
    """Row 5's configurations: runstop without the fallback, with it (once the domain has it), read_first."""
    return ["runstop_no_fallback", *(["runstop"] if fallback_available() else []), "read_first"]


def _steps(config: BenchConfig, rows: tuple[str, ...]) -> int:
    per_row = {
        "cold": config.cold_repeats + 2,
        "warm": 1,
        "requests": config.repeats * len(COMPARED),
        "storm": 2 * config.repeats * len(COMPARED),
        "hot": config.repeats * len(hot_configs()) + 1,
        "sweeper": 1,
    }
    return 3 + sum(per_row[r] for r in rows)


def run(config: BenchConfig, rows: tuple[str, ...], console: Console) -> dict[str, Any]:
    results: dict[str, Any] = {"config": config.as_dict(), "rows": {}, "load": {}}
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("describing the machine", total=_steps(config, rows))

        def tick(description: str) -> None:
            progress.update(task, advance=1, description=description)

        marks: list[tuple[str, float]] = []

        def note_load(row: str) -> None:
            """Record the load average as a row starts (noise shows there) and when it started."""
            results["load"][row] = os.getloadavg()[0]
            marks.append((row, time.perf_counter()))

        note_load("setup")
        version: list[str] = []  # asking the jar starts a JVM: done beside the run, not before it
        asking = threading.Thread(target=lambda: version.append(dynamodb_local_version()), daemon=True)
        asking.start()
        tick("starting DynamoDB Local")
        try:
            _run_rows(config, rows, results, tick, note_load)
        except KeyboardInterrupt:  # Ctrl-C: everything started is stopped; report what was measured
            results["interrupted"] = True
            console.print("[yellow]interrupted: writing the report of the rows measured so far[/yellow]")
        progress.update(task, description="done", completed=progress.tasks[0].total)
    note_load("end")
    asking.join(timeout=120)
    results["machine"] = describe(version[0] if version else "unknown")
    results["seconds"] = {row: round(marks[i + 1][1] - at, 1) for i, (row, at) in enumerate(marks[:-1])}
    return results


def _api_rows(
    stack: LocalStack,
    proxy: DynamoProxy,
    clients: ClientProcesses,
    config: BenchConfig,
    rows: tuple[str, ...],
    results: dict[str, Any],
    tick: Tick,
    note_load: Callable[[str], None],
) -> None:
    """Rows 1 and 2: every compared design on one runner, behind the (uncapped) proxy."""
    client, table = stack.client(), stack.refs["RunsTable"]
    compared = [designs()[name] for name in COMPARED]
    env = {**stack.env, "AWS_ENDPOINT_URL_DYNAMODB": proxy.endpoint}
    with DesignApi(stack.refs, env, compared, {d.name: config.workers for d in compared}) as api:
        api.start_workers()
        tick("local runner started")
        if "requests" in rows:
            note_load("requests")
            results["rows"]["requests"] = api_rows.request_counts(
                api.url, proxy, client, table, TENANT, compared, config.repeats, config.request_runs, tick
            )
        if "storm" in rows:
            note_load("storm")
            scenarios = {
                f"1 run x {config.storm_duplicates}": (1, config.storm_duplicates),
                f"{config.storm_runs} runs x {config.storm_runs_duplicates}": (
                    config.storm_runs,
                    config.storm_runs_duplicates,
                ),
            }
            results["rows"]["storm"] = api_rows.storm(
                clients, api.url, proxy, client, table, TENANT, compared, scenarios, config.concurrency,
                config.repeats, tick,
            )  # fmt: skip


def _hot_row(
    stack: LocalStack, proxy: DynamoProxy, clients: ClientProcesses, config: BenchConfig, tick: Tick
) -> dict[str, Any]:
    """Row 5: its own runner, with enough environments per configuration for the backoffs."""
    configs = [designs()[name] for name in hot_configs()]
    workers = {
        d.name: config.hot_workers if d.name != "read_first" else max(1, config.hot_workers // 4) for d in configs
    }
    env = {**stack.env, "AWS_ENDPOINT_URL_DYNAMODB": proxy.endpoint}
    with DesignApi(stack.refs, env, configs, workers) as api:
        api.start_workers()
        tick(f"hot run: {sum(workers.values())} environments started")
        result = hot_run(
            clients, api.url, proxy, stack.client(), stack.refs["RunsTable"], TENANT, configs,
            config.hot_write_units, config.hot_storm_factor, config.hot_seconds, config.hot_concurrency,
            config.repeats, tick,
        )  # fmt: skip
    result["fallback_available"] = fallback_available()
    result["workers"] = workers
    return result


def _run_rows(
    config: BenchConfig,
    rows: tuple[str, ...],
    results: dict[str, Any],
    tick: Tick,
    note_load: Callable[[str], None],
) -> None:
    """Every row, on one DynamoDB Local, one proxy and one set of client processes, all stopped at the end."""
    with local_stack() as stack, DynamoProxy(stack.endpoint) as proxy, ClientProcesses(config.client_procs) as clients:
        tick("DynamoDB Local is up")
        if "cold" in rows:
            note_load("cold")
            results["rows"]["cold"] = cold_starts(
                stack, TENANT, config.cold_repeats, config.importtime_runs, tick, bool(config.cold_all_functions)
            )
        if "warm" in rows:
            note_load("warm")
            results["rows"]["warm"] = warm_cost(TENANT, config.warm_iterations, config.warm_rounds, tick)
        note_load("runners")
        clients.warm()
        if "requests" in rows or "storm" in rows:
            _api_rows(stack, proxy, clients, config, rows, results, tick, note_load)
        if "hot" in rows:
            note_load("hot")
            results["rows"]["hot"] = _hot_row(stack, proxy, clients, config, tick)
        if "sweeper" in rows:
            note_load("sweeper")
            results["rows"]["sweeper"] = sweeper_row(stack.endpoint, config)
            tick("sweeper")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run with tiny sizes (tests use it)")
    parser.add_argument("--out", type=Path, default=None, help=f"where REPORT.md and the charts go ({DEFAULT_OUT})")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated subset of {','.join(ROWS)}")
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite REPORT.md and the charts from OUT/raw/results.json"
    )
    args = parser.parse_args(argv)
    out: Path = args.out or DEFAULT_OUT
    if args.report_only:
        saved = json.loads((out / "raw" / "results.json").read_text())
        path, verdicts = report.write(saved, out)
        print(report.summary(verdicts, path, saved.get("duration_s", 0.0)))
        return 0
    asked = {r.strip() for r in args.rows.split(",") if r.strip()}
    unknown = asked - set(ROWS)
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}; choose from {','.join(ROWS)}")
    rows = tuple(r for r in ROWS if r in asked)
    config = (BenchConfig.smoke_sizes() if args.smoke else BenchConfig()).with_env()
    console = Console(stderr=True)
    started = time.perf_counter()
    results = run(config, rows, console)
    results["duration_s"] = time.perf_counter() - started
    argv_used = sys.argv[1:] if argv is None else argv
    knobs = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("BENCH_"))
    results["command"] = " ".join(filter(None, [knobs, ".venv/bin/python -m bench", shlex.join(argv_used)]))
    out.mkdir(parents=True, exist_ok=True)
    (out / "raw").mkdir(exist_ok=True)
    (out / "raw" / "results.json").write_text(json.dumps(results, indent=1, default=str))
    path, verdicts = report.write(results, out)
    print(report.summary(verdicts, path, results["duration_s"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
