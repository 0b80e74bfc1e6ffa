"""`python -m runstop_dev run`: the whole service on loopback, no Docker needed."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from runstop_dev.stack import local_stack
from runstop_dev.template import REPO_ROOT


def _run(args: argparse.Namespace) -> int:
    from runstop_dev.local_api import LocalApi

    data_dir = None if args.in_memory else Path(args.data_dir)
    endpoint = os.environ.get("DYNAMODB_ENDPOINT") or None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with local_stack(endpoint=endpoint, port=args.ddb_port, data_dir=data_dir) as stack:
        where = "in memory" if data_dir is None else f"data in {data_dir}"
        print(f"DynamoDB: {stack.endpoint} ({'external' if endpoint else 'DynamoDB Local, ' + where})", flush=True)
        api = LocalApi(stack.refs, stack.env, host=args.host, port=args.port, workers=args.workers, quiet=args.quiet)
        with api:
            api.warm()
            for route in api.routes:
                print(f"  {route.method:6} {api.url}{route.path}  -> {route.function.logical_id}", flush=True)
            print(
                f"runstop is serving on {api.url} (tenant from X-Tenant-Id, default 'local'); Ctrl-C stops", flush=True
            )
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait()
            print("stopping...", flush=True)
    return 0


def _schemas(args: argparse.Namespace) -> int:
    from runstop_dev.contract import write_schemas

    for path in write_schemas():
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="runstop_dev", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="serve the HTTP API on loopback against DynamoDB Local")
    run.add_argument("--host", default=os.environ.get("RUNSTOP_HOST", "127.0.0.1"))
    run.add_argument("--port", type=int, default=int(os.environ.get("RUNSTOP_PORT", "3000")))
    run.add_argument("--ddb-port", type=int, default=int(os.environ.get("DDB_PORT", "8000")))
    run.add_argument("--data-dir", default=os.environ.get("RUNSTOP_DATA_DIR", str(REPO_ROOT / ".local" / "dynamodb")))
    run.add_argument("--in-memory", action="store_true", default=os.environ.get("RUNSTOP_IN_MEMORY") == "1")
    run.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("RUNSTOP_WORKERS", "4")),
        help="execution environments per function",
    )
    run.add_argument("--quiet", action="store_true", help="hide the functions' own log lines")
    run.set_defaults(func=_run)
    sub.add_parser("schemas", help="regenerate the JSON Schemas from runstop.models").set_defaults(func=_schemas)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
