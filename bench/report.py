"""REPORT.md and the charts, from the results of one run; plus the short stdout summary."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import charts
from bench.api_rows import BUDGET_REQUESTS, OUTCOMES
from bench.stats import Summary, median_ci, ratio

COLD_BUDGET = 1.25
WARM_BUDGET = 1.5


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


def _noise(values: Sequence[float], budget: float) -> str:
    """Whether the budget lies within the noise of a median ratio: inside its 95% interval."""
    low, high = median_ci(values)
    where = f"95% interval of the median {low:.3f}-{high:.3f}x over {len(values)} paired samples"
    if low <= budget <= high:
        return f"**within its noise** of the budget ({where}): this run cannot tell met from not met"
    return f"clear of its noise ({where})"


def _mark(met: bool | None) -> str:
    return {True: "**met**", False: "**not met**", None: "reported"}[met]


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _targets(by_target: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in by_target.items()) or "none"


# Row 1 ---------------------------------------------------------------------------------------
def _units(entry: dict[str, Any]) -> str:
    return f"{_med(entry['read_units']):g} / {_med(entry['write_units']):g}"


def _requests(data: dict[str, Any], out: Path) -> tuple[list[str], Verdict]:
    rows, met = [], True
    runstop = data["runstop"]
    for outcome in OUTCOMES:
        for design, per in data.items():
            e = per[outcome]
            rows.append(
                [
                    outcome,
                    design,
                    _fmt(e["requests"], 0),
                    _targets(e["by_operation"]),
                    _units(e),
                    _fmt(e["ms"], 1, " ms"),
                    ", ".join(f"{k} ({v})" for k, v in e["answers"].items()),
                ]
            )
        counts = runstop[outcome]["requests"]
        met &= bool(counts) and max(counts) <= BUDGET_REQUESTS[outcome] and min(counts) >= 1
    chart = charts.per_cancel(data, OUTCOMES, out / "requests_per_cancel.png")
    n = len(runstop["interrupted"]["requests"])
    lines = [
        "## 1. DynamoDB requests and capacity units per cancel",
        "",
        "Counted at the wire: a proxy (bench/proxy.py) sits between the local runner's functions and",
        "DynamoDB Local, counts every request (retries included) by its `X-Amz-Target`, adds",
        "`ReturnConsumedCapacity: TOTAL` to it and adds up the capacity units DynamoDB Local reports.",
        "A failed conditional write comes back without a figure although DynamoDB charges it (write",
        "units for the item's size, at least one): the proxy charges it by that rule (every run here",
        "is under 1 KB). Every cancel is sent alone and the counters read before and after it. Per",
        "outcome: a running run (interrupted), the same run again (already_interrupted), a run that",
        "finished with `success` (conflict), a run id that does not exist (absent).",
        f"Figures per cancel: median (min-max) over {n} cancels; units are read / write; latency is",
        "one client's round trip through the local runner, so it shows the requests' cost, not a",
        "Lambda's.",
        "",
        *_table(["outcome", "design", "requests", "made (mean)", "units (read / write)", "latency", "answers"], rows),
        "",
        "Write units of a successful interrupt include the indexes the update changes (DynamoDB",
        "Local's figure, as TOTAL reports); every design makes that same update, so the designs differ",
        "by their reads and failed writes only. The seed's designs answer an absent run 404 (their",
        "existence check); pre_fix answers an already interrupted run **409**.",
        "",
        f"![requests and capacity units per cancel]({chart.name})",
        "",
    ]
    figure = ", ".join(f"{max(runstop[o]['requests'])}" for o in OUTCOMES)
    others = "; ".join(
        f"{d} " + ", ".join(f"{max(per[o]['requests'])}" for o in OUTCOMES) for d, per in data.items() if d != "runstop"
    )
    verdict = Verdict(
        "1. requests per cancel (interrupted, already, conflict, absent)",
        f"runstop {figure}; {others}",
        "runstop 1, 1, 1, ≤2",
        met,
    )
    return lines, verdict


def _answers(entry: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(entry["answers"].items()))


# Row 2 ---------------------------------------------------------------------------------------
def _storm(data: dict[str, Any], out: Path) -> tuple[list[str], list[Verdict]]:
    lines = [
        "## 2. Storms: duplicate cancels through the local HTTP API",
        "",
        "Every cancel targets a run that is running or already interrupted, never a finished one, so",
        "**every 409 is spurious**. Clients: keep-alive `http.client` connections in separate",
        "processes (bench/loadgen.py); a run's duplicates are sent back to back so they race. All",
        "designs go through the same counting proxy, which adds the same hop to each.",
        "p50/p99: per repeat, then median (min-max) over repeats; spurious 409: per repeat;",
        "requests and units (read / write): per cancel, over the whole storm.",
        "",
    ]
    verdicts = []
    for name, scenario in data.items():
        rows = []
        for design, e in scenario["designs"].items():
            rows.append(
                [
                    design,
                    _fmt(e["p50"], 1, " ms"),
                    _fmt(e["p99"], 1, " ms"),
                    _fmt(e["spurious_409"], 0),
                    f"{_med(e['requests']):.2f}",
                    f"{_med(e['read_units']):.2f} / {_med(e['write_units']):.2f}",
                    _fmt(e["throughput"], 0, "/s"),
                    _answers(e),
                ]
            )
        rs = scenario["designs"]["runstop"]
        runstop_spurious = sum(rs["spurious_409"])
        lines += [
            f"### {name} ({scenario['concurrency']} concurrent clients)",
            "",
            *_table(["design", "p50", "p99", "spurious 409", "requests", "units", "cancels/s", "all answers"], rows),
            "",
        ]
        others = ", ".join(
            f"{d} {_med(e['p50']):.0f}/{_med(e['p99']):.0f} ms ({_med(e['spurious_409']):.0f} x 409)"
            for d, e in scenario["designs"].items()
            if d != "runstop"
        )
        verdicts.append(
            Verdict(
                f"2. storm {name}",
                f"runstop {_med(rs['p50']):.0f}/{_med(rs['p99']):.0f} ms p50/p99, {runstop_spurious} x 409; {others}",
                "runstop 0 spurious 409",
                runstop_spurious == 0,
            )
        )
    latency = charts.storm_latency(data, out / "storm_latency.png")
    answers = charts.storm_answers(data, out / "storm_answers.png")
    lines += [
        "Latency is what each client waited for its answer. Once a run is interrupted, pre_fix and",
        "read_first answer its duplicates from a read, runstop from a conditional write that fails,",
        "seed_fix from a read, a failed write and a read; DynamoDB Local serialises writes to one item,",
        "so in the one-run storm the designs that write queue behind each other. pre_fix's speed is",
        "the speed of a wrong answer (409).",
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
    paired_median = _med(paired)
    met = paired_median <= COLD_BUDGET
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
        f"  invocation / floor import + client, per round (the two ran side by side): **{paired_median:.3f}x**",
        f"  median ({_fmt(paired, 3, 'x')}) -- {_mark(met)}; {_noise(paired, COLD_BUDGET)}.",
        f"  The ratio of the medians: {budget_ratio:.3f}x.",
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
            f"{paired_median:.3f}x floor wall ({c_total:.0f} vs {floor_init:.0f} ms), {cpu_ratio:.2f}x in CPU; "
            + _noise(paired, COLD_BUDGET).replace("**", ""),
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
        noise = _noise(ratios, WARM_BUDGET)
        rows.append([outcome, _fmt(handler, 0, " µs"), _fmt(bare, 0, " µs"), _fmt(ratios, 2, "x"), _mark(met), noise])
        verdicts.append(
            Verdict(
                f"4. warm invocation, {outcome}",
                f"{r:.2f}x ({_med(handler):.0f} vs {_med(bare):.0f} µs); " + noise.replace("**", ""),
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
        *_table(["outcome", "handler", "bare UpdateItem", "ratio", f"budget ≤ {WARM_BUDGET}x", "noise"], rows),
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
def _hot(data: dict[str, Any], out: Path) -> tuple[list[str], list[Verdict]]:
    configs = data["configs"]
    total = data["cancels"] * data["repeats"]
    rows = []
    for name, e in configs.items():
        rows.append(
            [
                name,
                f"{sum(e['503'])} of {total}",
                _fmt(e["p50"], 0, " ms"),
                _fmt(e["p99"], 0, " ms"),
                _fmt(e["max"], 0, " ms"),
                _fmt(e["first_try_rate"], 1, "/s"),
                _fmt(e["late_p99_ms"], 0, " ms"),
                f"{_med(e['requests']):.2f}",
                f"{_med(e['read_units']):.2f} / {_med(e['write_units']):.2f}",
                _answers(e),
            ]
        )
    chart = charts.hot_run(data, out / "hot_run.png")
    flag = data["fallback_flag"]
    available = data["fallback_available"]
    lines = [
        "## 5. A hot run: duplicate cancels beyond one item's write capacity",
        "",
        "DynamoDB takes about 1,000 write units a second on one item, and a failed conditional write",
        "still costs one, so duplicate cancels of one run beyond that rate are throttled. Scaled down:",
        f"the proxy caps every item at **{data['write_units_per_s']:g} write units a second** (and reads at",
        f"{data['read_units_per_s']:g} read units, DynamoDB's 1:3 ratio), a token bucket holding one second's",
        f"worth, and answers `{data['error']}` (HTTP 400, `ThrottlingReasons`",
        "`TableWriteKeyRangeThroughputExceeded`, the body DynamoDB sends for a hot key) beyond it;",
        "botocore retries it as it would the real one (standard mode, 3 attempts, backoff up to 1 s",
        f"then 2 s). A paced storm sends **{data['rate_per_s']:g} cancels a second ({data['storm_factor']:g}x the cap)"
        f" for {data['duration_s']:g} s**",
        f"({data['cancels']} cancels, {data['concurrency']} client threads) at one run that is already",
        "interrupted, so every right answer is 202 `already_interrupted`; configurations alternate",
        f"over {data['repeats']} repeats. Environments per configuration: "
        + ", ".join(f"{k} {v}" for k, v in data["workers"].items())
        + " (sized so that at the full sizes no request waits for one; the first tries the proxy saw"
        " show whether that held).",
        "",
        *_table(
            [
                "configuration",
                "503 (all repeats)",
                "p50",
                "p99",
                "max",
                "first tries seen/s",
                "client late p99",
                "requests",
                "units",
                "answers",
            ],
            rows,
        ),
        "",
        '"first tries seen/s" is the rate at which the proxy saw each cancel\'s first request (the',
        'storm\'s rate when the runner kept up); "client late" is how late the load generator sent',
        "(0 when it kept its pace). Requests and units are per cancel, throttled attempts included",
        "in requests (a throttled request costs no capacity).",
        "",
    ]
    if not available:
        lines += [
            f"**The fallback is missing on this tree**: the domain does not read `{flag}` yet (issue 14",
            'item 1 adds it), so runstop has only its "without" figures here: every cancel throttled',
            'past its retries is a 503. The row measures "with" as soon as the domain has it.',
            "",
        ]
    lines += [f"![hot run]({chart.name})", ""]
    if available and "runstop" in configs:
        with_503 = sum(configs["runstop"]["503"])
        verdict = Verdict(
            "5. hot run, runstop with the fallback",
            f"{with_503} x 503 of {total} (without: {sum(configs['runstop_no_fallback']['503'])})",
            "0 x 503",
            with_503 == 0,
        )
    else:
        verdict = Verdict(
            "5. hot run (fallback missing)",
            f"without the fallback {sum(configs['runstop_no_fallback']['503'])} x 503 of {total}",
            "0 x 503 with the fallback",
            None,
        )
    read_first = configs.get("read_first")
    verdicts = [verdict]
    if read_first is not None:
        verdicts.append(
            Verdict(
                "5. hot run, read_first",
                f"{sum(read_first['503'])} x 503 of {total}, p99 {_med(read_first['p99']):.0f} ms",
                "none",
                None,
            )
        )
    return lines, verdicts


# Row 6 ---------------------------------------------------------------------------------------
def _usd(read_units: float, write_units: float, config: dict[str, Any]) -> float:
    """USD per million cancels that each consume these units (on-demand: units = request units)."""
    return read_units * config["read_usd_per_million"] + write_units * config["write_usd_per_million"]


def _outcome_usd(entry: dict[str, Any], config: dict[str, Any]) -> float:
    return _usd(_med(entry["read_units"]), _med(entry["write_units"]), config)


def _storm_usd(entry: dict[str, Any], config: dict[str, Any]) -> float:
    return _usd(_med(entry["read_units"]), _med(entry["write_units"]), config)


def _cost(results: dict[str, Any], config: dict[str, Any]) -> tuple[list[str], list[Verdict]]:
    requests = results["requests"]
    storms = results.get("storm") or {}
    designs = list(requests)
    price = f"${config['write_usd_per_million']:g} / ${config['read_usd_per_million']:g}"
    lines = [
        "## 6. What a million cancels cost (on-demand)",
        "",
        f"Prices: {price} per million write / read request units (on-demand, us-east-1, Standard",
        "table class; set BENCH_WRITE_USD_PER_MILLION and BENCH_READ_USD_PER_MILLION for others). One",
        "request unit per capacity unit measured in rows 1 and 2: a write of up to 1 KB is one write",
        "unit (per index it changes, too), a consistent read of up to 4 KB one read unit, an eventually",
        "consistent read half of one. Storage, streams and data transfer are left out.",
        "",
        "Per outcome (row 1's units, USD per million cancels):",
        "",
        *_table(
            ["outcome", *designs],
            [[o, *(f"${_outcome_usd(requests[d][o], config):.3f}" for d in designs)] for o in OUTCOMES],
        ),
        "",
    ]
    if storms:
        lines += [
            "Under the storms (row 2's units per cancel, USD per million cancels):",
            "",
            *_table(
                ["storm", *designs],
                [
                    [
                        name,
                        *(f"${_storm_usd(s['designs'][d], config):.3f}" for d in designs if d in s["designs"]),
                    ]
                    for name, s in storms.items()
                ],
            ),
            "",
        ]
    first = {d: _outcome_usd(requests[d]["interrupted"], config) for d in designs}
    dup = {d: _outcome_usd(requests[d]["already_interrupted"], config) for d in designs}
    mixes = (0, 1, 10, 1000)
    lines += [
        "Common traffic, one cancel per run plus `d` duplicates of it (the first interrupts, the rest",
        "find it interrupted): USD per million runs cancelled = first + d x duplicate.",
        "",
        *_table(
            ["design", *(f"d = {d}" for d in mixes)],
            [[d, *(f"${first[d] + m * dup[d]:,.2f}" for m in mixes)] for d in designs],
        ),
        "",
    ]
    verdicts: list[Verdict] = []
    if "read_first" in first and "runstop" in first:
        lines += _reading(results, first, dup)
        extra, saved = first["read_first"] - first["runstop"], dup["runstop"] - dup["read_first"]
        even = extra / saved if saved > 0 else float("inf")
        verdicts.append(
            Verdict(
                "6. cost per million cancels",
                f"first cancel: runstop ${first['runstop']:.3f}, read_first ${first['read_first']:.3f}; "
                f"duplicate: ${dup['runstop']:.3f} vs ${dup['read_first']:.3f}; read_first cheaper beyond "
                f"{even:.2f} duplicates per run",
                "none",
                None,
            )
        )
    return lines, verdicts


def _compare(what: str, update_first: float, read_first: float, show: Callable[[float], str]) -> str:
    """`update-first is 3.1 ms faster`, `read-first is $0.563 cheaper`: worded from two figures."""
    if update_first == read_first:
        return f"both are the same ({show(update_first)})"
    winner = "update-first" if update_first < read_first else "read-first"
    return f"{winner} is {show(abs(update_first - read_first))} {what}"


def _verdict_text(
    first: dict[str, float],
    dup: dict[str, float],
    first_ms: tuple[float, float],
    dup_ms: tuple[float, float],
    even: float,
) -> list[str]:
    """The reading, worded from the figures (so a rerun that turns them around says so)."""

    def usd(value: float) -> str:
        return f"${value:.3f} per million"

    def ms(value: float) -> str:
        return f"{value:.1f} ms"

    once = (
        f"a run cancelled exactly once: {_compare('cheaper', first['runstop'], first['read_first'], usd)}, and"
        f" {_compare('faster', *first_ms, ms)} in this run's round trips (one request against two)."
    )
    dupe = (
        f"A duplicate: {_compare('cheaper', dup['runstop'], dup['read_first'], usd)}, and"
        f" {_compare('faster', *dup_ms, ms)}; update-first's duplicate also spends the item's write capacity,"
        " which is what a hot run runs out of."
    )
    mix = f"Read-first costs less overall beyond {even:.2f} duplicates per run; below that, update-first does."
    return [f"On these figures, {once} {dupe} {mix}"]


def _reading(results: dict[str, Any], first: dict[str, float], dup: dict[str, float]) -> list[str]:
    """Which of update-first (runstop) and read-first the figures favour, and why -- from the figures."""
    requests = results["requests"]
    rs_first, rf_first = (
        _med(requests["runstop"]["interrupted"]["ms"]),
        _med(requests["read_first"]["interrupted"]["ms"]),
    )
    rs_dup, rf_dup = (_med(requests[d]["already_interrupted"]["ms"]) for d in ("runstop", "read_first"))
    extra, saved = first["read_first"] - first["runstop"], dup["runstop"] - dup["read_first"]
    even = extra / saved if saved > 0 else float("inf")
    lines = [
        "### Update first or read first?",
        "",
        "- **One cancel per run**: update-first (runstop) makes 1 request; read-first 2 (an eventually",
        f"  consistent read, then the update). Round trip here: {rs_first:.1f} vs {rf_first:.1f} ms; per million:",
        f"  ${first['runstop']:.3f} vs ${first['read_first']:.3f} (+{ratio(extra, first['runstop']) * 100:.0f}%).",
        f"- **A duplicate**: update-first pays a failed write (${dup['runstop']:.3f}/M, from the write capacity",
        f"  the hot item is short of); read-first half a read unit (${dup['read_first']:.3f}/M). Round trip:",
        f"  {rs_dup:.1f} vs {rf_dup:.1f} ms.",
        f"- **Break-even**: read-first costs less once more than **{even:.2f} duplicates per run** arrive on",
        "  average (one run in" + (f" {1 / even:.0f}" if 0 < even < 1 else " every") + " getting one duplicate).",
    ]
    storms = results.get("storm") or {}
    for name, scenario in storms.items():
        d = scenario["designs"]
        if "runstop" in d and "read_first" in d:
            rs, rf = d["runstop"], d["read_first"]
            lines.append(
                f"- **Storm {name}**: p50/p99 {_med(rs['p50']):.0f}/{_med(rs['p99']):.0f} ms update-first vs"
                f" {_med(rf['p50']):.0f}/{_med(rf['p99']):.0f} ms read-first; write units per cancel"
                f" {_med(rs['write_units']):.2f} vs {_med(rf['write_units']):.2f}."
            )
    hot = results.get("hot")
    if hot and "read_first" in hot["configs"]:
        configs = hot["configs"]
        total = hot["cancels"] * hot["repeats"]
        lines.append(
            f"- **A hot run** (row 5): read-first {sum(configs['read_first']['503'])} x 503 of {total} without any"
            f" fallback (its duplicates only read), update-first without the fallback"
            f" {sum(configs['runstop_no_fallback']['503'])} x 503"
            + (
                f", with it {sum(configs['runstop']['503'])}"
                if "runstop" in configs and hot.get("fallback_available")
                else " (the fallback is not in this tree yet)"
            )
            + "."
        )
    lines += ["", *_verdict_text(first, dup, (rs_first, rf_first), (rs_dup, rf_dup), even), ""]
    return lines


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
def _load_note(results: dict[str, Any]) -> list[str]:
    """Say so when the machine was busy: the lead reruns such a report on a quiet machine."""
    cores = results["machine"].get("cores") or 1
    load = results.get("load", {})
    busy = {row: value for row, value in load.items() if value > 0.75 * cores}
    if not busy:
        return []
    worst = max(busy.values())
    return [
        f"> **Measured on a busy machine**: the 1-minute load average reached {worst:.1f} on {cores} cores"
        f" ({', '.join(f'{k} {v:.1f}' for k, v in busy.items())}). Other work competed for the CPU, so",
        "> absolute times are inflated and spreads are wide; ratios measured side by side are less",
        "> affected, but figures near a budget need a rerun on a quiet machine before they decide anything.",
        "",
    ]


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
    if "hot" in rows:
        lines, more = _hot(rows["hot"], out)
        sections += lines
        verdicts += more
    if "requests" in rows:
        lines, more = _cost(rows, config)
        sections += lines
        verdicts += more
    if "sweeper" in rows:
        lines, more = _sweeper(rows["sweeper"])
        sections += lines
        verdicts += more
    load = ", ".join(f"{k} {v:.2f}" for k, v in results.get("load", {}).items())
    head = [
        "# runstop benchmark: what a cancel costs, next to the seed's designs",
        "",
        "Generated by `make bench` (bench/; bench/README.md explains every row and how to rerun it",
        "alone); do not edit by hand. Ratios are measured side by side within this one run, because",
        "the machine is noisy; no absolute time is a goal.",
        "",
        *_load_note(results),
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
        "make bench ROWS=hot   # one row alone (rows: cold, warm, requests, storm, hot, sweeper)",
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
        "The designs (bench/designs/), all served by the same local runner on the same table, with the",
        "same client, tenant handling, logging and metrics:",
        "",
        "- **runstop**: the template's cancel function as it is: one conditional update, decided by the",
        "  item it returns when the condition fails;",
        "- **read_first**: the same handler deciding from an eventually consistent read first; only an",
        "  active or absent run goes on to runstop's update (a variant under test, not runstop's default);",
        "- **seed_fix**: the seed's fix: consistent existence check (404 when absent), conditional update,",
        "  consistent re-read when it fails; 202 when interrupted or gone, 409 otherwise;",
        "- **pre_fix**: the seed before its fix: the check also refuses any run that is not active (409),",
        "  so an already interrupted run is refused.",
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
