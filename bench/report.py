"""REPORT.md and the charts, from the results of one run; plus the short stdout summary."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import charts
from bench.api_rows import BUDGET_REQUESTS, OUTCOMES
from bench.stats import Summary, ratio

COLD_BUDGET = 1.25
WARM_BUDGET = 1.5
THROUGHPUT_BUDGET = 0.7


@dataclass(frozen=True)
class Verdict:
    row: str
    figure: str
    budget: str
    met: bool | None  # None: no budget, reported only


def _fmt(values: Sequence[float], digits: int = 1, unit: str = "") -> str:
    return Summary.of(list(values)).fmt(digits, unit)


def _med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _edge(value: float, budget: float) -> str:
    """A warning when a ratio is within 5% of its budget: then this run's noise decides the verdict."""
    return " -- within 5% of the budget, so noise decides" if abs(value - budget) <= 0.05 * budget else ""


def _mark(met: bool | None) -> str:
    return {True: "**met**", False: "**not met**", None: "reported"}[met]


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _targets(by_target: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in by_target.items()) or "none"


# Row 1 ---------------------------------------------------------------------------------------
def _requests(data: dict[str, Any], out: Path) -> tuple[list[str], Verdict]:
    seq, racing = data["sequential"], data["racing"]
    rows, met = [], True
    for outcome in OUTCOMES:
        rs, bl = seq["runstop"][outcome], seq["baseline"][outcome]
        ok = max(rs["requests"]) <= BUDGET_REQUESTS[outcome] and min(rs["requests"]) >= 1
        met &= ok
        rows.append(
            [
                outcome,
                _fmt(rs["requests"], 0),
                _targets(rs["by_target"]),
                ", ".join(rs["answers"]),
                _fmt(bl["requests"], 0),
                _targets(bl["by_target"]),
                ", ".join(bl["answers"]),
                f"{'≤' if outcome == 'absent' else ''}{BUDGET_REQUESTS[outcome]}",
                _mark(ok),
            ]
        )
    chart = charts.requests_per_cancel(seq, OUTCOMES, out / "requests_per_cancel.png")
    lines = [
        "## 1. DynamoDB requests per cancel",
        "",
        "Counted at the wire: a counting HTTP proxy (bench/proxy.py) sits between the local runner's",
        "functions and DynamoDB Local and counts each request by its `X-Amz-Target`; every cancel is",
        "sent alone and the counter read before and after it. Per outcome: a running run (interrupted),",
        "the same run again (already_interrupted), a run that finished with `success` (conflict), a run",
        "id that does not exist (absent). Figures: requests per cancel, median (min-max) over repeats.",
        "",
        *_table(
            [
                "outcome",
                "runstop requests",
                "runstop made",
                "runstop answered",
                "baseline requests",
                "baseline made",
                "baseline answered",
                "budget (runstop)",
                "",
            ],
            rows,
        ),
        "",
        "The baseline answers an already interrupted run **409** (its existence check sees a",
        "non-active status) and an absent run 404; runstop answers both 202 with the outcome.",
        "",
        f"Under concurrency (duplicates racing through the runner, {racing['runstop']['cancels']} cancels per design):",
        "",
        *_table(
            ["design", "cancels", "requests", "per cancel", "made", "answers"],
            [
                [d, r["cancels"], r["requests"], f"{r['per_cancel']:.2f}", _targets(r["by_target"]), _answers(r)]
                for d, r in racing.items()
            ],
        ),
        "",
        f"![requests per cancel]({chart.name})",
        "",
    ]
    figure = ", ".join(f"{max(seq['runstop'][o]['requests'])}" for o in OUTCOMES)
    verdict = Verdict(
        "1. requests per cancel (interrupted, already, conflict, absent)",
        f"runstop {figure}; baseline " + ", ".join(f"{max(seq['baseline'][o]['requests'])}" for o in OUTCOMES),
        "runstop 1, 1, 1, ≤2",
        met,
    )
    return lines, verdict


def _answers(entry: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(entry["answers"].items()))


# Row 2 ---------------------------------------------------------------------------------------
def _storm(data: dict[str, Any], out: Path) -> tuple[list[str], list[Verdict]]:
    lines = [
        "## 2. Storm: duplicate cancels through the local HTTP API",
        "",
        "Every cancel targets a run that is running or already interrupted, never a finished one, so",
        "**every 409 is spurious**. Clients: keep-alive `http.client` connections in separate",
        "processes (bench/loadgen.py); a run's duplicates are sent back to back so they race.",
        "p50/p99: per repeat, then median (min-max) over repeats; spurious 409: per repeat.",
        "",
    ]
    verdicts = []
    total_spurious = 0
    for name, scenario in data.items():
        rows = []
        for design, e in scenario["designs"].items():
            rows.append(
                [
                    design,
                    _fmt(e["p50"], 1, " ms"),
                    _fmt(e["p99"], 1, " ms"),
                    _fmt(e["spurious_409"], 0),
                    _fmt(e["interrupted"], 0),
                    _fmt(e["throughput"], 0, "/s"),
                    _answers(e),
                ]
            )
        runstop_spurious = sum(scenario["designs"]["runstop"]["spurious_409"])
        total_spurious += runstop_spurious
        lines += [
            f"### {name} ({scenario['concurrency']} concurrent clients)",
            "",
            *_table(
                [
                    "design",
                    "p50",
                    "p99",
                    "spurious 409 per repeat",
                    "'interrupted' answers",
                    "cancels/s",
                    "all answers",
                ],
                rows,
            ),
            "",
        ]
        bl = scenario["designs"]["baseline"]
        rs = scenario["designs"]["runstop"]
        verdicts.append(
            Verdict(
                f"2. storm {name}",
                f"spurious 409: runstop {runstop_spurious}, baseline {_med(bl['spurious_409']):.0f}/repeat; "
                f"p50 {_med(rs['p50']):.0f} vs {_med(bl['p50']):.0f} ms, "
                f"p99 {_med(rs['p99']):.0f} vs {_med(bl['p99']):.0f} ms",
                "runstop 0 spurious 409",
                runstop_spurious == 0,
            )
        )
    latency = charts.storm_latency(data, out / "storm_latency.png")
    answers = charts.storm_answers(data, out / "storm_answers.png")
    lines += [
        "Latency is what each client waited for its answer. In the one-run storm the baseline mostly",
        "reads (after the first cancel its existence check sees `interrupted` and answers 409 without",
        "writing), while every runstop cancel is a conditional write that DynamoDB Local serializes on",
        "the one item; compare the latencies with that in mind, and with the answers: the baseline's",
        "speed there is the speed of a wrong answer.",
        "",
        f"![storm latency]({latency.name})",
        "",
        f"![storm answers]({answers.name})",
        "",
    ]
    return lines, verdicts


# Row 3 ---------------------------------------------------------------------------------------
def _cold(data: dict[str, Any], out: Path) -> tuple[list[str], list[Verdict]]:
    cands = data["candidates"]

    def col(name: str, key: str) -> list[float]:
        return [s[key] * 1000 for s in cands[name]["samples"] if s.get(key) is not None]

    floor_init = _med(col("floor", "init_s"))
    floor_total = _med(col("floor", "total_s"))
    floor_init_cpu = _med(col("floor", "init_cpu_s"))
    rows = []
    for name, cand in cands.items():
        total = _med(col(name, "total_s"))
        rows.append(
            [
                name,
                cand["first"],
                _fmt(col(name, "import_s"), 0),
                _fmt(col(name, "client_s"), 0),
                _fmt(col(name, "init_s"), 0),
                _fmt(col(name, "total_s"), 0),
                _fmt(col(name, "cpu_s"), 0),
                _fmt(col(name, "proc_wall_s"), 0),
                _fmt(col(name, "proc_cpu_s"), 0),
                f"{ratio(total, floor_init):.2f}x",
            ]
        )
    cancel = "CancelRunFunction"
    c_total, c_init = _med(col(cancel, "total_s")), _med(col(cancel, "init_s"))
    c_cpu = _med(col(cancel, "cpu_s"))
    budget_ratio = ratio(c_total, floor_init)
    cpu_ratio = ratio(c_cpu, floor_init_cpu)
    paired = [
        ratio(c["total_s"], f["init_s"])
        for c, f in zip(cands[cancel]["samples"], cands["floor"]["samples"], strict=True)
    ]
    met = budget_ratio <= COLD_BUDGET
    profile = data["profile"]
    chart = charts.cold_start(data, out / "cold_start.png")
    lines = [
        "## 3. Cold init of each function",
        "",
        "Each sample is a fresh interpreter of a Lambda-like environment: a virtualenv",
        "(`.local/bench-lambda-venv`, made once by bench/lambda_env.py with uv) holding only boto3 and",
        "`layers/runstop/requirements.txt` at the uv.lock versions -- no pyopenssl or awscrt, which the",
        "dev virtualenv has (via aws-sam-cli) and which botocore/urllib3 would import -- with the",
        "function's code directory and `layers/runstop` on PYTHONPATH, as `/var/task` and `/opt/python`",
        "in Lambda. Bytecode is compiled once (PYTHONPYCACHEPREFIX) by an untimed round, as the Lambda",
        "runtime's own boto3 is. Candidates are interleaved (floor, each function, floor, ...; the order rotates).",
        "",
        "The **first invocation goes to DynamoDB Local**, not a botocore Stubber: a Stubber answers",
        "right after serialization, so signing, opening the connection, the HTTP exchange and response",
        "parsing -- first-request costs a cold Lambda pays -- would go unmeasured. The floor is `import boto3` +",
        '`boto3.client("dynamodb")`; its "+ first" column adds one bare UpdateItem on DynamoDB Local.',
        "",
        "Columns (ms, median and IQR over samples): import = the module (the floor: boto3); client =",
        "creating the DynamoDB client (`runstop.store.run_store()`, lazily made by the functions on",
        "their first request, so counted here for every candidate); init = import + client; + first =",
        "init + the first invocation; CPU = the same in-process span in CPU time; process = the whole",
        "child from the parent's view (interpreter start and exit included): wall and CPU (rusage).",
        "",
        *_table(
            [
                "candidate",
                "first invocation",
                "import",
                "client",
                "init",
                "init + first",
                "CPU (init + first)",
                "process wall",
                "process CPU",
                "(init + first) / floor init",
            ],
            rows,
        ),
        "",
        f"- **Budget** (cancel function ≤ {COLD_BUDGET}x the floor): CancelRunFunction import + client + first",
        f"  invocation / floor import + client = **{budget_ratio:.3f}x** "
        f"(per-round paired ratios {_fmt(paired, 2, 'x')}) -- {_mark(met)}{_edge(budget_ratio, COLD_BUDGET)}.",
        f"- Same in CPU time: {cpu_ratio:.2f}x (floor init CPU {floor_init_cpu:.0f} ms; CPU time is less",
        "  disturbed by other load on the machine than wall time).",
        f"- Import + client only: {ratio(c_init, floor_init):.2f}x the floor.",
        f"- Like for like (both with their first request): {ratio(c_total, floor_total):.2f}x the floor"
        " + one bare UpdateItem.",
        "",
        f"![cold start]({chart.name})",
        "",
        "### What the cancel function imports beyond the floor (`-X importtime`)",
        "",
        f"{profile['extra_modules']} modules that the floor never imports, {profile['extra_ms']:.1f} ms of import",
        f"self-time in total, against {profile['floor_ms']:.1f} ms for the modules both import (median of",
        "a few `-X importtime` runs; the floor's set includes what botocore imports for its first request).",
        "",
        *_table(["top-level package", "self time (ms)"], [[k, f"{v:.1f}"] for k, v in profile["by_package"]]),
        "",
        *_table(["module", "self time (ms)"], [[f"`{k}`", f"{v:.2f}"] for k, v in profile["top_modules"]]),
        "",
    ]
    if not met:
        allowed = COLD_BUDGET * floor_init
        lines += [
            "**What it would take.** The budget allows "
            f"{allowed:.0f} ms for import + client + first invocation; this run took {c_total:.0f} ms, "
            f"{c_total - allowed:.0f} ms too many. The imports beyond the floor account for "
            f"{profile['extra_ms']:.0f} ms; the rest is the first invocation's own work (see row 4's",
            "pieces) and the client configuration. The profile above says which imports to defer.",
            "",
        ]
    lines += [
        "Environment: " + ", ".join(f"`{p}`" for p in data["packages"]),
        "",
    ]
    verdicts = [
        Verdict(
            "3. cold init, cancel function",
            f"{budget_ratio:.3f}x floor wall ({c_total:.0f} vs {floor_init:.0f} ms), {cpu_ratio:.2f}x in CPU"
            + _edge(budget_ratio, COLD_BUDGET),
            f"≤ {COLD_BUDGET}x",
            met,
        )
    ]
    for name in cands:
        if name not in ("floor", cancel):
            verdicts.append(
                Verdict(
                    f"3. cold init, {name}",
                    f"{ratio(_med(col(name, 'total_s')), floor_init):.2f}x floor",
                    "none",
                    None,
                )
            )
    return lines, verdicts


# Row 4 ---------------------------------------------------------------------------------------
def _warm(data: dict[str, Any], out: Path) -> tuple[list[str], list[Verdict]]:
    per = data["per_call_us"]
    rows, verdicts = [], []
    for outcome, ratios in data["ratios"].items():
        handler, bare = per[f"{outcome}/handler"], per[f"{outcome}/bare"]
        r = _med(ratios)
        met = r <= WARM_BUDGET
        rows.append([outcome, _fmt(handler, 0, " µs"), _fmt(bare, 0, " µs"), _fmt(ratios, 2, "x"), _mark(met)])
        verdicts.append(
            Verdict(
                f"4. warm invocation, {outcome}",
                f"{r:.2f}x ({_med(handler):.0f} vs {_med(bare):.0f} µs){_edge(r, WARM_BUDGET)}",
                f"≤ {WARM_BUDGET}x",
                met,
            )
        )
    layers = data.get("layers_us", {})
    bare_layer = _med(next(iter(layers.values()), []))
    chart = charts.bars(
        "Warm per-call cost (stubbed DynamoDB)",
        "µs per call",
        {f"{k.split('/')[1]}\n{k.split('/')[0]}": v for k, v in per.items()},
        out / "warm_invocation.png",
    )
    lines = [
        "## 4. Warm per-invocation cost (stubbed DynamoDB)",
        "",
        "In the Lambda-like environment: the cancel function's own cached client gets a botocore",
        "Stubber (`runstop.store.dynamodb_client()`), so nothing leaves the process. The bare figure is",
        "the very same UpdateItem (parameters captured from the handler's call) on the same stub;",
        "`already_interrupted` stubs the ConditionalCheckFailed error with the item. "
        f"{data['iterations']} calls per batch, handler and bare batches alternating, {data['rounds']} rounds;",
        "per-call time per batch, then median and IQR over rounds; ratio per round. stdout (a log line",
        "and the EMF metrics per invocation) goes to /dev/null.",
        "",
        *_table(["outcome", "handler", "bare UpdateItem", "ratio", f"budget ≤ {WARM_BUDGET}x"], rows),
        "",
        f"![warm invocation]({chart.name})",
        "",
        "### Where the handler's time goes (interrupted)",
        "",
        "Layers peeled off one at a time (same method, fewer rounds):",
        "",
        *_table(
            ["layer", "µs per call", "vs bare"],
            [[k, _fmt(v, 0), f"{ratio(_med(v), bare_layer):.2f}x"] for k, v in layers.items()],
        ),
        "",
        "Pieces of the handler's own work, each timed alone:",
        "",
        *_table(["piece", "µs per call"], [[k, f"{v:.1f}"] for k, v in data.get("pieces_us", {}).items()]),
        "",
        "What removing one piece from the full handler would save (the handler timed with that piece",
        "replaced by a stand-in, against the full handler in the same round; median over rounds):",
        "",
        *_table(
            ["piece", "saves µs per call", "as a share of the bare call"],
            [[k, _fmt(v, 1), f"{_med(v) / bare_layer:.2f}x"] for k, v in data.get("saves_us", {}).items()],
        ),
        "",
        "Self time by package under cProfile (shares of the handler's time; profiling inflates",
        "call-heavy code such as botocore's parameter validation, so read shares, not durations):",
        "",
        *_table(["package", "share"], [[k, f"{v * 100:.1f}%"] for k, v in data.get("profile_shares", [])]),
        "",
    ]
    handler = _med(per["interrupted/handler"])
    bare = _med(per["interrupted/bare"])
    if handler > WARM_BUDGET * bare:
        allowed = WARM_BUDGET * bare
        lines += [
            f"**What it would take.** At {WARM_BUDGET}x the bare call the handler may spend {allowed:.0f} µs;",
            f"it spends {handler:.0f} µs, so {handler - allowed:.0f} µs of its {handler - bare:.0f} µs of own work",
            "must go.",
            "The pieces above are the candidates; the bare call itself (botocore's parameter",
            "validation and serialization) is the floor and cannot shrink.",
            "",
        ]
    return lines, verdicts


# Row 5 ---------------------------------------------------------------------------------------
def _throughput(data: dict[str, Any], config: dict[str, Any], out: Path) -> tuple[list[str], Verdict]:
    r = _med(data["ratio"])
    met = r >= THROUGHPUT_BUDGET
    chart = charts.bars(
        "Cancels per second at the same concurrency",
        "cancels/s (median, min-max)",
        {"api (local runner)": data["api_rps"], "raw UpdateItem": data["raw_rps"]},
        out / "throughput.png",
    )
    lines = [
        "## 5. Throughput at the same concurrency",
        "",
        f"{data['requests']} distinct running runs cancelled per side and repeat, {data['concurrency']}",
        "concurrent clients: through the local HTTP API (runstop's cancel route: the runner's HTTP",
        "server, a payload-2.0 event, a worker process running the handler, its UpdateItem) vs raw",
        "conditional UpdateItems with boto3 on DynamoDB Local (the same update, ALL_NEW and",
        "ALL_OLD). Sides alternate within each repeat; ratio per repeat.",
        "",
        f"Settings: local runner workers per function = {config['workers']}; clients spread over",
        f"{config['client_procs']} processes (threads inside, keep-alive http.client for the API, one boto3",
        "client per process for raw); DynamoDB Local in memory; the runner's server runs in the bench's",
        "own process. On this 2-core machine the clients, the runner, its workers and DynamoDB Local",
        "all share the same two cores. The runner's workers and the raw clients both run in the dev",
        "virtualenv (where botocore signs with awscrt), so both sides make their UpdateItem alike.",
        "",
        *_table(
            ["side", "cancels/s", "p50 latency"],
            [
                ["local HTTP API", _fmt(data["api_rps"], 0), _fmt(data["api_p50_ms"], 1, " ms")],
                ["raw UpdateItem", _fmt(data["raw_rps"], 0), _fmt(data["raw_p50_ms"], 1, " ms")],
            ],
        ),
        "",
        f"- API / raw: **{r:.2f}x** ({_fmt(data['ratio'], 2, 'x')}) -- budget ≥ {THROUGHPUT_BUDGET}x: {_mark(met)}.",
        "",
        *_cpu_table(data.get("cpu_ms_per_cancel") or {}),
        *_throughput_gap(data, met),
        f"![throughput]({chart.name})",
        "",
    ]
    verdict = Verdict(
        "5. throughput, API vs raw",
        f"{r:.2f}x ({_med(data['api_rps']):.0f} vs {_med(data['raw_rps']):.0f}/s){_edge(r, THROUGHPUT_BUDGET)}",
        f"≥ {THROUGHPUT_BUDGET}x",
        met,
    )
    return lines, verdict


def _cpu_table(cpu: dict[str, dict[str, list[float]]]) -> list[str]:
    """CPU milliseconds per cancel by component (from /proc), both sides."""
    if not cpu.get("api"):
        return []
    groups = list(cpu["api"])
    rows = [[g, _fmt(cpu["api"].get(g, []), 2), _fmt(cpu["raw"].get(g, []), 2)] for g in groups]
    api_total = sum(_med(cpu["api"].get(g, [])) for g in groups)
    raw_total = sum(_med(cpu["raw"].get(g, [])) for g in groups)
    rows.append(["**all of them**", f"{api_total:.2f}", f"{raw_total:.2f}"])
    return [
        "Where the CPU goes: CPU milliseconds per cancel, by process group (utime + stime from /proc,",
        "median over repeats). With two cores, 2,000 ms of CPU per second is all there is, so the",
        "totals bound the throughput of each side:",
        "",
        *_table(["process group", "API side (ms/cancel)", "raw side (ms/cancel)"], rows),
        "",
    ]


def _throughput_gap(data: dict[str, Any], met: bool) -> list[str]:
    cpu = data.get("cpu_ms_per_cancel") or {}
    if met or not cpu.get("api"):
        return []
    api = sum(_med(v) for v in cpu["api"].values())
    raw = sum(_med(v) for v in cpu["raw"].values())
    target = raw / THROUGHPUT_BUDGET
    return [
        "**What it would take.** When every process shares the same cores, throughput follows CPU per",
        f"cancel: raw needs {raw:.2f} ms, so {THROUGHPUT_BUDGET}x asks the API side for at most {target:.2f} ms; it",
        f"spends {api:.2f} ms, {api - target:.2f} ms too many. Of its CPU, the function workers run the handler",
        "and its own boto3 call (the same call the raw side's clients make), and the runner's server and",
        "process-pool hand-off are the local stand-in for API Gateway and the Lambda service.",
        "",
    ]


# Sweeper -------------------------------------------------------------------------------------
def _flatten(data: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(data, dict):
        items: list[tuple[str, str]] = []
        for k, v in data.items():
            items += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return items
    if isinstance(data, float):
        return [(prefix, f"{data:.4g}")]
    if isinstance(data, list) and len(data) > 12:
        return [(prefix, f"{len(data)} values, median {_med(data):.4g}")]
    return [(prefix, str(data))]


def _sweeper(data: dict[str, Any] | None) -> tuple[list[str], list[Verdict]]:
    lines = ["## Sweeper", ""]
    if data is None:
        lines += ["Not measured: bench/sweeper_bench.py (`run_sweeper_bench`) is not in this tree yet.", ""]
        return lines, [Verdict("sweeper", "not measured (bench/sweeper_bench.py absent)", "none", None)]
    if isinstance(data.get("markdown"), str):
        lines += [data["markdown"], ""]
    else:
        lines += [*_table(["figure", "value"], _flatten(data)), ""]
    met = data.get("met") if isinstance(data.get("met"), bool) else None
    summary = str(data.get("summary") or "see REPORT.md")
    return lines, [Verdict("sweeper", summary, str(data.get("budget") or "none"), met)]


# The whole report ----------------------------------------------------------------------------
def write(results: dict[str, Any], out: Path) -> tuple[Path, list[Verdict]]:
    out.mkdir(parents=True, exist_ok=True)
    rows, m, config = results["rows"], results["machine"], results["config"]
    sections: list[str] = []
    verdicts: list[Verdict] = []
    if "requests" in rows:
        lines, verdict = _requests(rows["requests"], out)
        sections += lines
        verdicts.append(verdict)
    if "storm" in rows:
        lines, more = _storm(rows["storm"], out)
        sections += lines
        verdicts += more
    if "cold" in rows:
        lines, more = _cold(rows["cold"], out)
        sections += lines
        verdicts += more
    if "warm" in rows:
        lines, more = _warm(rows["warm"], out)
        sections += lines
        verdicts += more
    if "throughput" in rows:
        lines, verdict = _throughput(rows["throughput"], config, out)
        sections += lines
        verdicts.append(verdict)
    if "sweeper" in rows:
        lines, more = _sweeper(rows["sweeper"])
        sections += lines
        verdicts += more
    load = ", ".join(f"{k} {v:.2f}" for k, v in results.get("load", {}).items())
    head = [
        "# runstop benchmark: what a cancel costs, runstop vs the naive design",
        "",
        "Generated by `make bench` (bench/); do not edit by hand. Ratios are measured side by side",
        "within this one run, because the machine is noisy; no absolute time is a goal.",
        "",
        *_table(
            ["", ""],
            [
                ["date", m["date"]],
                ["machine", f"{m['cores']} cores, {m['cpu']}, {m['platform']}"],
                ["Python", m["python"]],
                ["DynamoDB Local", m["dynamodb_local"]],
                ["commit", m["commit"]],
                ["1-minute load average at each row's start", load],
                ["duration", f"{results.get('duration_s', 0):.0f} s"],
                ["mode", "smoke (tiny sizes: figures are not meaningful)" if config["smoke"] else "full"],
                *([["interrupted", "yes: only the rows below were measured"]] if results.get("interrupted") else []),
            ],
        ),
        "",
        "Commands:",
        "",
        "```",
        "make bench            # = .venv/bin/python -m bench (BENCH_REPEATS=..., BENCH_COLD_REPEATS=... adjust sizes)",
        "make bench-smoke      # = .venv/bin/python -m bench --smoke (seconds; part of make test via its test)",
        f"{results.get('command', '')}   # this run",
        "```",
        "",
        "Sizes: " + ", ".join(f"{k}={v}" for k, v in config.items()),
        "",
        "## Summary",
        "",
        *_table(["row", "figure", "budget", ""], [[v.row, v.figure, v.budget, _mark(v.met)] for v in verdicts]),
        "",
        "The baseline (bench/baseline.py) is a faithful port of the seed design -- consistent GetItem,",
        "409 unless active, conditional UpdateItem without ReturnValuesOnConditionCheckFailure, a",
        "consistent re-read when the condition fails -- served by the same local runner on its own",
        "route (`POST /baseline/runs/{run_id}/cancel`), on the same table, with the same client,",
        "tenant handling, logging and metrics as runstop's handler.",
        "",
    ]
    path = out / "REPORT.md"
    path.write_text("\n".join(head + sections).rstrip() + "\n")
    return path, verdicts


def summary(verdicts: list[Verdict], path: Path, duration_s: float) -> str:
    width = max((len(v.row) for v in verdicts), default=10)
    lines = [f"runstop bench ({duration_s:.0f} s) -> {path}"]
    for v in verdicts:
        state = {True: "MET    ", False: "NOT MET", None: "       "}[v.met]
        lines.append(f"  {state} {v.row:<{width}}  {v.figure}  [budget: {v.budget}]")
    return "\n".join(lines)
