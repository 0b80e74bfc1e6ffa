"""The `runstop` command: run a command as a cancellable run, and the operator's ls/get/cancel/watch.

Configured by RUNSTOP_URL (default http://127.0.0.1:3000, the local runner), RUNSTOP_TOKEN (a
bearer token for the deployed API) and RUNSTOP_TENANT (the X-Tenant-Id header of the local
runner). Exit codes a script can branch on: see EXIT_CODES (and `runstop --help`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import httpx

from runstop_client.client import DEFAULT_HEARTBEAT_INTERVAL, Client, __version__
from runstop_client.errors import InvalidRequest, RunConflict, RunNotFound, RunstopError, Unauthorized, Unavailable
from runstop_client.models import CANCEL_OUTCOMES, BulkCancelItem, Run, parse_time
from runstop_client.runner import EXIT_CANCELLED, CommandRun, Options

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CONFLICT = 3
EXIT_NOT_FOUND = 4
EXIT_INVALID = 5
EXIT_UNAVAILABLE = 6
EXIT_UNAUTHORIZED = 7
EXIT_CODES = {
    EXIT_OK: "accepted (a cancel answered 202 for every id, the run was found, watch saw the run end)",
    EXIT_FAILURE: "an unexpected failure",
    EXIT_USAGE: "bad arguments",
    EXIT_CONFLICT: "conflict: the run had already finished (or is not in a state that allows it)",
    EXIT_NOT_FOUND: "no such run",
    EXIT_INVALID: "the service refused the request as invalid (a bad run id, reason or option)",
    EXIT_UNAVAILABLE: "the service could not be reached or answered 503 until the retry deadline",
    EXIT_UNAUTHORIZED: "no usable RUNSTOP_TOKEN / RUNSTOP_TENANT",
    EXIT_CANCELLED: "runstop run: the run was cancelled and the command stopped",
}
"""When several ids of one cancel fail differently, the highest of 3-7 is the exit code."""
KIND_EXIT = {"conflict": EXIT_CONFLICT, "invalid": EXIT_INVALID, "unavailable": EXIT_UNAVAILABLE}
STOP_FILTERS = ("pending", "overdue", "acknowledged")
STATUSES = ("pending", "running", "success", "error", "timeout", "interrupted")


def exit_code_for(error: BaseException) -> int:
    if isinstance(error, RunConflict):
        return EXIT_CONFLICT
    if isinstance(error, RunNotFound):
        return EXIT_NOT_FOUND
    if isinstance(error, InvalidRequest):
        return EXIT_INVALID
    if isinstance(error, Unauthorized):
        return EXIT_UNAUTHORIZED
    if isinstance(error, (Unavailable, httpx.HTTPError)):
        return EXIT_UNAVAILABLE
    return EXIT_FAILURE


def _stamp(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else "-"


class Output:
    """Text for people, JSON Lines for scripts (--json); messages and the progress bar on stderr."""

    def __init__(
        self,
        as_json: bool,
        out: IO[str] | None = None,
        err: IO[str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.as_json = as_json
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.sleep = sleep
        """How `watch` waits between reads (tests pass a fake)."""

    def json(self, value: Any) -> None:
        print(json.dumps(value, separators=(",", ":")), file=self.out, flush=True)

    def text(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def error(self, line: str) -> None:
        print(f"runstop: {line}", file=self.err, flush=True)

    def progress(self, label: str) -> Callable[[int, int], None] | None:
        """A one-line bar redrawn in place, only on a terminal (never in a log or a pipe)."""
        if not self.err.isatty():
            return None

        def draw(done: int, total: int) -> None:
            width = 30
            filled = width * done // max(total, 1)
            bar = "=" * filled + " " * (width - filled)
            end = "\n" if done >= total else ""
            print(f"\r{label} [{bar}] {done}/{total}", end=end, file=self.err, flush=True)

        return draw


def _run_line(run: Run) -> str:
    return f"{run.run_id:<36}  {run.status:<11}  {run.stop or '-':<12}  {_stamp(run.created_at)}"


def _run_details(run: Run) -> list[str]:
    rows: list[tuple[str, Any]] = [
        ("run_id", run.run_id),
        ("status", run.status),
        ("stop", run.stop),
        ("worker_id", run.worker_id),
        ("created_at", run.created_at and _stamp(run.created_at)),
        ("started_at", run.started_at and _stamp(run.started_at)),
        ("heartbeat_at", run.heartbeat_at and _stamp(run.heartbeat_at)),
        ("ended_at", run.ended_at and _stamp(run.ended_at)),
    ]
    if run.cancel is not None:
        reason = f": {run.cancel.reason}" if run.cancel.reason else ""
        rows.append(("cancel", f"by {run.cancel.source}{reason} at {_stamp(run.cancel.requested_at)}"))
    rows += [
        ("stop_deadline", run.stop_deadline and _stamp(run.stop_deadline)),
        ("stopped_at", run.stopped_at and _stamp(run.stopped_at)),
        ("stop_overdue_at", run.stop_overdue_at and _stamp(run.stop_overdue_at)),
    ]
    if run.metadata:
        rows.append(("metadata", json.dumps(run.metadata, separators=(",", ":"))))
    return [f"{name:<16}{value}" for name, value in rows if value]


def _cmd_ls(client: Client, args: argparse.Namespace, output: Output) -> int:
    runs = client.list(status=args.status, stop=args.stop, page_size=min(args.limit or 100, 100))
    if not output.as_json:
        output.text(f"{'RUN_ID':<36}  {'STATUS':<11}  {'STOP':<12}  CREATED_AT")
    for shown, run in enumerate(runs, start=1):
        if output.as_json:
            output.json(run.raw)
        else:
            output.text(_run_line(run))
        if args.limit and shown >= args.limit:
            break
    return EXIT_OK


def _cmd_get(client: Client, args: argparse.Namespace, output: Output) -> int:
    run = client.get(args.run_id)
    if output.as_json:
        output.json(run.raw)
    else:
        for line in _run_details(run):
            output.text(line)
    return EXIT_OK


def _read_ids(source: str) -> list[str]:
    """One id per line; blank lines and # comments ignored; `-` reads standard input."""
    text = sys.stdin.read() if source == "-" else Path(source).read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _item_line(item: BulkCancelItem) -> str:
    detail = ""
    if item.kind == "conflict":
        detail = f" (the run is {item.run_status})"
    elif item.error:
        detail = f" ({item.error})"
    return f"{item.run_id}  {item.kind}{detail}"


def _single_cancel(client: Client, run_id: str, args: argparse.Namespace) -> dict[str, Any]:
    """One id through POST /runs/{run_id}/cancel, as a bulk-shaped result (plus the wait's answer)."""
    try:
        result = client.cancel(run_id, reason=args.reason, wait=args.wait, force=args.force)
    except RunConflict as error:
        return {"run_id": run_id, "status_code": 409, "outcome": None, "run_status": error.run_status, "error": None}
    except (InvalidRequest, RunNotFound) as error:
        return {"run_id": run_id, "status_code": 400, "outcome": None, "run_status": None, "error": str(error)}
    item = {"run_id": run_id, "status_code": 202, "outcome": result.outcome, "run_status": result.status}
    item["error"] = None
    if args.wait is not None:
        item["stop_acknowledged"] = bool(result.stop_acknowledged)
    if result.stop_deadline is not None:
        item["stop_deadline"] = result.raw.get("stop_deadline")
    return item


def _cmd_cancel(client: Client, args: argparse.Namespace, output: Output) -> int:
    ids = list(args.run_ids)
    if args.from_file:
        ids += _read_ids(args.from_file)
    if not ids:
        output.error("cancel: give run ids, or --from-file FILE")
        return EXIT_USAGE
    if args.wait is not None or len(ids) == 1:
        items = [_single_cancel(client, run_id, args) for run_id in dict.fromkeys(ids)]
    else:
        progress = output.progress("cancelling") if args.from_file else None
        items = [
            item.raw or _as_json(item)
            for item in client.cancel_many(ids, reason=args.reason, force=args.force, progress=progress)
        ]
    results = [BulkCancelItem.from_json(item) for item in items]
    counts = Counter(result.kind for result in results)
    for item, result in zip(items, results, strict=True):
        if output.as_json:
            output.json(item)
        elif not args.from_file or result.kind not in CANCEL_OUTCOMES:
            line = _item_line(result)
            if "stop_acknowledged" in item:
                line += ", stop acknowledged" if item["stop_acknowledged"] else ", stop not acknowledged yet"
            output.text(line)
    if args.from_file and not output.as_json:
        order = [*CANCEL_OUTCOMES, "conflict", "invalid", "unavailable"]
        output.text(f"{len(results)} runs: " + ", ".join(f"{counts[kind]} {kind}" for kind in order if counts[kind]))
    return max((KIND_EXIT.get(kind, EXIT_OK) for kind in counts), default=EXIT_OK)


def _as_json(item: BulkCancelItem) -> dict[str, Any]:
    return {
        "run_id": item.run_id,
        "status_code": item.status_code,
        "outcome": item.outcome,
        "run_status": item.run_status,
        "error": item.error,
    }


def _cmd_watch(client: Client, args: argparse.Namespace, output: Output) -> int:
    seen: tuple[str, str | None] | None = None
    while True:
        run = client.get(args.run_id)
        state = (run.status, run.stop)
        if state != seen:
            seen = state
            if output.as_json:
                output.json(run.raw)
            else:
                stop = f" (stop {run.stop})" if run.stop else ""
                output.text(f"{_stamp(datetime_of(run))}  {run.run_id}  {run.status}{stop}")
        if run.ended:
            return EXIT_OK
        output.sleep(args.interval)


def datetime_of(run: Run) -> datetime | None:
    """When the run last changed, as the service says (updated_at)."""
    return parse_time(run.raw.get("updated_at")) or run.created_at


def _cmd_run(client: Client, args: argparse.Namespace, output: Output) -> int:
    if not args.command:
        output.error("run: give the command after --, e.g. runstop run -- sleep 600")
        return EXIT_USAGE
    options = Options(
        run_id=args.run_id,
        worker_id=args.worker_id,
        stop_grace=args.stop_grace,
        heartbeat_interval=args.heartbeat_interval,
        quiet=args.quiet,
    )
    return CommandRun(client, args.command, options, say=output.error)()


def _grace(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be 1 to 3600 seconds, not {text}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def _seconds(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    codes = "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES.items())
    parser = argparse.ArgumentParser(
        prog="runstop",
        description="Run commands as cancellable runs, and list, read, cancel and watch runs.",
        epilog="environment: RUNSTOP_URL (default http://127.0.0.1:3000), RUNSTOP_TOKEN, RUNSTOP_TENANT,\n"
        "RUNSTOP_DEADLINE (seconds a call is retried for, default 30)\n"
        f"exit codes:\n{codes}\n  (runstop run otherwise exits with the command's own code)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"runstop {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="JSON for scripts: one object per line")
    commands = parser.add_subparsers(dest="action", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run a command as a run: runstop run [options] -- CMD ARGS...")
    run.add_argument("--run-id", help="adopt this pending run (created with this id when it does not exist)")
    run.add_argument("--worker-id", help="this worker's id (default: host:pid)")
    run.add_argument(
        "--stop-grace",
        type=_grace,
        metavar="S",
        help="seconds from the cancel to SIGKILL: sent as the new run's stop_grace_seconds, and used "
        "when the service gives no stop_deadline (default 60)",
    )
    run.add_argument(
        "--heartbeat-interval",
        type=_positive,
        default=DEFAULT_HEARTBEAT_INTERVAL,
        help=f"seconds between heartbeats (default {DEFAULT_HEARTBEAT_INTERVAL:g})",
    )
    run.add_argument("-q", "--quiet", action="store_true", help="no messages on stderr")
    run.add_argument("command", nargs=argparse.REMAINDER, help="the command and its arguments, after --")
    run.set_defaults(handler=_cmd_run, json=False)

    ls = commands.add_parser("ls", parents=[common], help="list runs, newest first")
    ls.add_argument("--status", choices=STATUSES)
    ls.add_argument("--stop", choices=STOP_FILTERS, help="interrupted runs still stopping, overdue or acknowledged")
    ls.add_argument("--limit", type=int, default=100, help="at most this many runs (0: all; default 100)")
    ls.set_defaults(handler=_cmd_ls)

    get = commands.add_parser("get", parents=[common], help="show one run")
    get.add_argument("run_id", metavar="ID")
    get.set_defaults(handler=_cmd_get)

    cancel = commands.add_parser("cancel", parents=[common], help="cancel runs")
    cancel.add_argument("run_ids", nargs="*", metavar="ID")
    cancel.add_argument("--from-file", metavar="FILE", help="ids one per line (- for stdin), sent 100 at a time")
    cancel.add_argument("--reason", help="why (kept on the run, told to its worker)")
    cancel.add_argument(
        "--wait", type=_seconds, metavar="N", help="wait up to N s (at most 20) for each stop's acknowledgement"
    )
    cancel.add_argument("--force", action="store_true", help="no stop grace: the stop deadline is now")
    cancel.set_defaults(handler=_cmd_cancel)

    watch = commands.add_parser("watch", parents=[common], help="follow a run until it ends")
    watch.add_argument("run_id", metavar="ID")
    watch.add_argument("--interval", type=_positive, default=1.0, help="seconds between reads (default 1)")
    watch.set_defaults(handler=_cmd_watch)
    return parser


def _split_command(argv: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """`run [options] -- CMD ARGS`: everything after the first -- is CMD, untouched by argparse."""
    args = list(argv)
    if args[:1] == ["run"] and "--" in args:
        cut = args.index("--")
        return args[:cut], args[cut + 1 :]
    return args, None


def main(
    argv: Sequence[str] | None = None, client: Client | None = None, sleep: Callable[[float], None] = time.sleep
) -> int:
    """The command line; `client` and `sleep` are for tests (the default reads the environment)."""
    args_in, command = _split_command(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(args_in)
    if command is not None:
        args.command = command
    output = Output(args.json, sleep=sleep)
    handler: Callable[[Client, argparse.Namespace, Output], int] = args.handler
    try:
        if client is not None:
            return handler(client, args, output)
        with Client() as owned:
            return handler(owned, args, output)
    except RunstopError as error:
        output.error(str(error))
        return exit_code_for(error)
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        output.error(f"cannot reach the service: {error}")
        return EXIT_UNAVAILABLE
    except (OSError, ValueError) as error:
        output.error(str(error))
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_CANCELLED


if __name__ == "__main__":
    sys.exit(main())
