"""`python -m bench [--smoke] [--out DIR]`: every comparison of issue 3 in one run.

Starts DynamoDB Local (in memory), then measures, in this order: cold starts and warm
invocations (while nothing else runs), requests per cancel through a counting proxy, the
storms and the throughput through the local runner, and the sweeper row when
bench/sweeper_bench.py exists. Writes REPORT.md, PNG charts and raw/results.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import platform
import shlex
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from bench import api_rows, report
from bench.cold import cold_starts
from bench.config import BenchConfig
from bench.cpu import CpuMeter, find_pids
from bench.loadgen import ClientProcesses
from bench.proxy import CountingProxy
from bench.warm import warm_cost
from runstop_dev import ddb_local
from runstop_dev.local_api import ExtraFunction, LocalApi
from runstop_dev.stack import local_stack
from runstop_dev.template import REPO_ROOT, Function, HttpRoute

DEFAULT_OUT = REPO_ROOT / "bench" / "results"
TENANT = "bench"
ROWS = ("cold", "warm", "requests", "storm", "throughput", "sweeper")

BASELINE = ExtraFunction(
    HttpRoute(
        "POST",
        "/baseline/runs/{run_id}/cancel",
        Function("BaselineCancelFunction", REPO_ROOT / "bench", "baseline", "lambda_handler"),
    ),
    env_of="CancelRunFunction",
)


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(dynamodb_local: str) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "dynamodb_local": dynamodb_local,
        "commit": _git("rev-parse", "--short", "HEAD")
        + (" (with uncommitted changes)" if _git("status", "--porcelain") else ""),
    }


def _warm_runner(api: LocalApi, clients: ClientProcesses, workers: int) -> None:
    """Start every worker of both cancel routes before anything is timed (cold starts off the clock)."""
    jobs = [
        (f"{prefix}/runs/warmup-{uuid.uuid4().hex[:8]}/cancel", b"{}")
        for prefix in api_rows.DESIGNS.values()
        for _ in range(workers * 3)
    ]
    for _ in range(2):
        clients.http(api.url, jobs, workers * 2, {"X-Tenant-Id": TENANT})


def sweeper_row(endpoint: str, config: BenchConfig) -> dict[str, Any] | None:
    """The sweeper's row from bench/sweeper_bench.py, written separately; None until it exists."""
    if importlib.util.find_spec("bench.sweeper_bench") is None:
        return None
    from bench import sweeper_bench  # type: ignore[attr-defined,unused-ignore]

    run = sweeper_bench.run_sweeper_bench
    small = bool(config.smoke or config.sweeper_small)
    kwargs = {name: small for name in ("small", "smoke") if name in inspect.signature(run).parameters}
    result: dict[str, Any] = run(endpoint, config.sweeper_repeats, **kwargs)
    return result


def _steps(config: BenchConfig, rows: tuple[str, ...]) -> int:
    per_row = {
        "cold": config.cold_repeats + 1,
        "warm": 1,
        "requests": config.repeats * 2 + 2,
        "storm": 2 * config.repeats * 2,
        "throughput": config.repeats,
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
        asking = threading.Thread(target=lambda: version.append(ddb_local.version()), daemon=True)
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
    results["machine"] = machine(version[0] if version else "unknown")
    results["seconds"] = {row: round(marks[i + 1][1] - at, 1) for i, (row, at) in enumerate(marks[:-1])}
    return results


def _run_rows(
    config: BenchConfig,
    rows: tuple[str, ...],
    results: dict[str, Any],
    tick: Callable[[str], None],
    note_load: Callable[[str], None],
) -> None:
    """Every row, on one DynamoDB Local and one set of client processes, all stopped at the end."""
    with local_stack() as stack, ClientProcesses(config.client_procs) as clients:
        client, table = stack.client(), stack.refs["RunsTable"]
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
        if "requests" in rows:
            note_load("requests")
            with CountingProxy(stack.endpoint) as proxy:
                env = {**stack.env, "AWS_ENDPOINT_URL_DYNAMODB": proxy.endpoint}
                workers = min(2, config.workers)  # sequential cancels, and a few races
                with LocalApi(stack.refs, env, port=0, workers=workers, quiet=True, extra_functions=[BASELINE]) as api:
                    _warm_runner(api, clients, workers)
                    sequential = api_rows.request_counts(api.url, proxy, client, table, TENANT, config.repeats, tick)
                    racing = api_rows.concurrent_request_counts(
                        clients,
                        api.url,
                        proxy,
                        client,
                        table,
                        TENANT,
                        config.race_runs,
                        config.race_duplicates,
                        config.concurrency,
                        tick,
                    )
            results["rows"]["requests"] = {"sequential": sequential, "racing": racing}
        if "storm" in rows or "throughput" in rows:
            note_load("runner")
            with LocalApi(
                stack.refs, stack.env, port=0, workers=config.workers, quiet=True, extra_functions=[BASELINE]
            ) as api:
                _warm_runner(api, clients, config.workers)
                tick("local runner warmed")
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
                        clients, api.url, client, table, TENANT, scenarios, config.concurrency, config.repeats, tick
                    )
                if "throughput" in rows:
                    note_load("throughput")
                    port = stack.endpoint.rsplit(":", 1)[1]
                    meter = CpuMeter(
                        {
                            "load generator (client processes)": lambda: list(clients.executor._processes),
                            "local runner's HTTP server (bench process)": lambda: [os.getpid()],
                            "function workers": lambda: [
                                pid for pool in api.pools.values() for pid in pool.executor._processes
                            ],
                            "DynamoDB Local (JVM)": lambda: find_pids("LoopbackDynamoDBLocal", f"-port {port}"),
                        }
                    )
                    results["rows"]["throughput"] = api_rows.throughput(
                        clients,
                        api.url,
                        stack.endpoint,
                        client,
                        table,
                        TENANT,
                        config.throughput_requests,
                        config.concurrency,
                        config.repeats,
                        tick,
                        meter,
                    )
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
    if args.report_only:
        out_dir: Path = args.out or DEFAULT_OUT
        saved = json.loads((out_dir / "raw" / "results.json").read_text())
        path, verdicts = report.write(saved, out_dir)
        print(report.summary(verdicts, path, saved.get("duration_s", 0.0)))
        return 0
    rows = tuple(r for r in ROWS if r in set(args.rows.split(",")))
    config = (BenchConfig.smoke_sizes() if args.smoke else BenchConfig()).with_env()
    out: Path = args.out or DEFAULT_OUT
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
