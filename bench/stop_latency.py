"""The stop-latency row (issue 11): from a cancel's 202 to `runstop run -- sleep 600`'s process group gone.

For each heartbeat interval, `trials` runs of `runstop run --heartbeat-interval I -- sleep 600`
(the installed command, as a user runs it) are started a few at a time; each is cancelled after a
random pause of up to one interval (so the cancel falls at a random phase of its heartbeat), and
the time from the cancel's 202 to the moment no process of the command's group exists is taken
by polling kill(-pgid, 0) every millisecond. Target: p99 <= interval + 1 s.

Then `sigterm_trials` runs of a command that ignores SIGTERM (`sh -c 'trap "" TERM; sleep 600'`,
whose sleep inherits the ignored signal) with a 2 s stop grace: the group must be gone within
1 s after its stop_deadline (the deadline runstop announces: the service's, or now + the grace on
a service without deadlines). Last, every process group of every trial is looked for in /proc:
orphans must be 0.

`run_stop_latency_bench(url=None, ...)` is what `make bench` calls (None: it starts DynamoDB Local
in memory and the local runner itself); alone: `python -m bench.stop_latency [--url URL]
[--trials N] [--intervals 1,5] [--small]`.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RUNSTOP = Path(sys.executable).parent / "runstop"
STARTED = re.compile(r"run (\S+) started: .* is process group (\d+)")
KILL_AT = re.compile(r"SIGKILL at (\S+)")
IGNORES_SIGTERM = ("sh", "-c", 'trap "" TERM; sleep 600')
BATCH = 5
"""Commands alive at once: their heartbeats load the service as a few workers would."""
STOP_GRACE = 2
"""Seconds of stop grace for the SIGTERM-ignoring command."""
TIMEOUT = 120.0
POLL = 0.001


def _percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank: with 20 trials, p99 is the slowest one (nothing is interpolated away)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def _gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _wait_gone(pgid: int, timeout: float = TIMEOUT) -> float:
    """The monotonic time at which the group was first seen empty."""
    end = time.monotonic() + timeout
    while not _gone(pgid):
        if time.monotonic() > end:
            raise TimeoutError(f"process group {pgid} still alive after {timeout}s")
        time.sleep(POLL)
    return time.monotonic()


def orphans(pgids: Sequence[int]) -> list[int]:
    """Pids of live processes in any of the groups (read from /proc, zombies included)."""
    wanted = set(pgids)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) in wanted:
            found.append(int(entry.name))
    return found


class _Command:
    """One `runstop run ...` process; its stderr says the run id, the group and the kill time."""

    def __init__(self, url: str, tenant: str, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNSTOP_")}
        env.update(RUNSTOP_URL=url, RUNSTOP_TENANT=tenant)
        self.process = subprocess.Popen(
            [str(RUNSTOP), "run", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.run_id = ""
        self.pgid = 0
        self._started = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip())
            found = STARTED.search(line)
            if found:
                self.run_id, self.pgid = found.group(1), int(found.group(2))
                self._started.set()
        self._started.set()

    def started(self) -> _Command:
        self._started.wait(TIMEOUT)
        if not self.pgid:
            raise RuntimeError("runstop run did not start its command:\n" + "\n".join(self.lines))
        return self

    def kill_at(self) -> datetime:
        for line in self.lines:
            found = KILL_AT.search(line)
            if found:
                return datetime.fromisoformat(found.group(1).replace("Z", "+00:00"))
        raise RuntimeError("runstop announced no SIGKILL time:\n" + "\n".join(self.lines))

    def finish(self) -> int:
        code = self.process.wait(TIMEOUT)
        time.sleep(0.05)  # let the reader take the last lines
        return code

    def kill(self) -> None:
        for pgid in (self.process.pid, self.pgid):
            if pgid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)


def _latency_trials(
    client: Any, url: str, tenant: str, interval: float, trials: int, rng: random.Random
) -> dict[str, Any]:
    latencies: list[float] = []
    codes: list[int] = []
    pgids: list[int] = []
    while len(latencies) < trials:
        batch = [
            _Command(url, tenant, "--heartbeat-interval", str(interval), "--", "sleep", "600")
            for _ in range(min(BATCH, trials - len(latencies)))
        ]
        try:
            for command in batch:
                command.started()
                pgids.append(command.pgid)
            for command in batch:
                time.sleep(rng.uniform(0, interval))
                client.cancel(command.run_id, reason="bench")
                accepted = time.monotonic()
                latencies.append(_wait_gone(command.pgid) - accepted)
                codes.append(command.finish())
        finally:
            for command in batch:
                command.kill()
    p50, p99 = _percentile(latencies, 50), _percentile(latencies, 99)
    return {
        "heartbeat_interval_s": interval,
        "trials": len(latencies),
        "p50_s": round(p50, 3),
        "p99_s": round(p99, 3),
        "max_s": round(max(latencies), 3),
        "target_s": interval + 1,
        "met": p99 <= interval + 1,
        "exit_130": sum(code == 130 for code in codes),
        "latencies_s": [round(value, 3) for value in latencies],
        "pgids": pgids,
    }


def _sigterm_trials(client: Any, url: str, tenant: str, trials: int) -> dict[str, Any]:
    after: list[float] = []
    pgids: list[int] = []
    for _ in range(trials):
        args = ("--heartbeat-interval", "1", "--stop-grace", str(STOP_GRACE), "--", *IGNORES_SIGTERM)
        command = _Command(url, tenant, *args)
        try:
            command.started()
            pgids.append(command.pgid)
            client.cancel(command.run_id, reason="bench: ignores SIGTERM")
            _wait_gone(command.pgid)
            gone = datetime.now(UTC)
            command.finish()
            after.append((gone - command.kill_at()).total_seconds())
        finally:
            command.kill()
    return {
        "trials": trials,
        "stop_grace_s": STOP_GRACE,
        "after_deadline_s": [round(value, 3) for value in after],
        "max_after_deadline_s": round(max(after), 3),
        "met": all(0 <= value <= 1 for value in after),
        "pgids": pgids,
    }


@contextlib.contextmanager
def _served() -> Iterator[str]:
    """DynamoDB Local in memory and the local runner, for a run of this module alone."""
    from runstop_dev.local_api import LocalApi
    from runstop_dev.stack import local_stack

    with local_stack() as stack, LocalApi(stack.refs, stack.env, port=0, workers=2, quiet=True) as api:
        api.warm()
        yield api.url


def run_stop_latency_bench(
    url: str | None = None,
    *,
    trials: int = 20,
    intervals: Sequence[float] = (1.0, 5.0),
    sigterm_trials: int = 5,
    small: bool = False,
    seed: int = 11,
) -> dict[str, Any]:
    """Measure against the API at `url` (None: start one); returns the row's figures and markdown."""
    if small:
        trials, intervals, sigterm_trials = 3, (1.0,), 1
    if url is None:
        with _served() as served:
            return run_stop_latency_bench(
                served, trials=trials, intervals=intervals, sigterm_trials=sigterm_trials, seed=seed
            )
    from runstop_client import Client

    tenant = f"bench-stop-{uuid.uuid4().hex[:8]}"
    rng = random.Random(seed)
    with Client(url, tenant=tenant) as client:
        rows = [_latency_trials(client, url, tenant, interval, trials, rng) for interval in intervals]
        sigterm = _sigterm_trials(client, url, tenant, sigterm_trials)
    left = orphans([pgid for row in rows for pgid in row["pgids"]] + sigterm["pgids"])
    met = all(row["met"] for row in rows) and sigterm["met"] and not left
    summary = "; ".join(
        f"interval {row['heartbeat_interval_s']:g} s: p50 {row['p50_s']:.2f} s, p99 {row['p99_s']:.2f} s"
        for row in rows
    )
    summary += f"; SIGTERM ignored: gone <= {sigterm['max_after_deadline_s']:.2f} s after the deadline"
    summary += f"; orphans {len(left)}"
    return {
        "small": small,
        "intervals": rows,
        "sigterm_ignored": sigterm,
        "orphans": len(left),
        "met": met,
        "summary": summary,
        "markdown": _markdown(rows, sigterm, len(left), met),
    }


def _markdown(rows: list[dict[str, Any]], sigterm: dict[str, Any], orphan_count: int, met: bool) -> str:
    lines = [
        "`runstop run --heartbeat-interval I -- sleep 600`, cancelled through the local runner on DynamoDB",
        f"Local at a random phase of its heartbeat, {BATCH} commands alive at a time; the time from the",
        "cancel's 202 to no process of the command's group left (kill(-pgid, 0) polled every ms).",
        "",
        "| heartbeat interval | trials | p50 | p99 (nearest rank) | target p99 | exits 130 |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['heartbeat_interval_s']:g} s | {row['trials']} | {row['p50_s']:.2f} s | {row['p99_s']:.2f} s | "
            f"<= {row['target_s']:g} s ({'met' if row['met'] else 'NOT met'}) | {row['exit_130']}/{row['trials']} |"
        )
    lines += [
        "",
        f"A command that ignores SIGTERM (stop grace {sigterm['stop_grace_s']:g} s), {sigterm['trials']} trials: "
        f"gone {', '.join(f'{v:.2f}' for v in sigterm['after_deadline_s'])} s after its stop_deadline "
        f"(target <= 1 s: {'met' if sigterm['met'] else 'NOT met'}). Orphan processes after all trials: "
        f"{orphan_count}. Overall: {'met' if met else 'NOT met'}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m bench.stop_latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running local runner (default: start DynamoDB Local and one)")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--intervals", default="1,5", help="heartbeat intervals in seconds, comma-separated")
    parser.add_argument("--sigterm-trials", type=int, default=5)
    parser.add_argument("--small", action="store_true", help="3 trials at 1 s and 1 SIGTERM trial: seconds")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    intervals = tuple(float(value) for value in args.intervals.split(","))
    result = run_stop_latency_bench(
        args.url, trials=args.trials, intervals=intervals, sigterm_trials=args.sigterm_trials, small=args.small
    )
    print(result["markdown"])
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
