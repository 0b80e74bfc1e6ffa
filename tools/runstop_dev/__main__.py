"""`python -m runstop_dev run`: the whole service on loopback, no Docker needed."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from runstop_dev.stack import local_stack
from runstop_dev.template import REPO_ROOT


def _run(args: argparse.Namespace) -> int:
    from runstop_dev.contract import docs_routes
    from runstop_dev.jwt_auth import LocalIssuer
    from runstop_dev.local_api import LocalApi

    data_dir = None if args.in_memory else Path(args.data_dir)
    endpoint = os.environ.get("DYNAMODB_ENDPOINT") or None
    # SIGTERM stops like Ctrl-C, also during startup; the context managers unwind either way,
    # so DynamoDB Local and the worker processes never outlive the runner.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    stack_cm = local_stack(endpoint=endpoint, port=args.ddb_port, data_dir=data_dir)
    with contextlib.suppress(KeyboardInterrupt), stack_cm as stack:
        where = "in memory" if data_dir is None else f"data in {data_dir}"
        print(f"DynamoDB: {stack.endpoint} ({'external' if endpoint else 'DynamoDB Local, ' + where})", flush=True)
        api = LocalApi(
            stack.refs,
            stack.env,
            host=args.host,
            port=args.port,
            workers=args.workers,
            quiet=args.quiet,
            extra_routes=docs_routes(),
            issuer=LocalIssuer() if args.auth == "jwt" else None,
        )
        with api, _announced(api.url, stack.endpoint):
            api.warm()
            for route in api.routes:
                print(f"  {route.method:6} {api.url}{route.path}  -> {route.function.logical_id}", flush=True)
            print(f"  GET    {api.url}/openapi.json and {api.url}/docs (Swagger UI)", flush=True)
            for stream in api.stream_routes:
                print(
                    f"  stream {stream.table_id} -> {stream.pipe_id} -> {stream.queue_id} -> {stream.function_id}",
                    flush=True,
                )
            if api.issuer is not None:
                print(f"  GET    {api.url}/.well-known/jwks.json (the local issuer's keys)", flush=True)
                tenant_from = "tenant from a Bearer token; get one: .venv/bin/python -m runstop_dev token --tenant acme"
            else:
                tenant_from = "tenant from X-Tenant-Id, default 'local'"
            print(f"runstop is serving on {api.url} ({tenant_from}); Ctrl-C stops", flush=True)
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                print("stopping...", flush=True)
    return 0


def _token(args: argparse.Namespace) -> int:
    from runstop_dev.jwt_auth import LocalIssuer

    print(LocalIssuer().token(args.tenant, ttl=args.ttl))
    return 0


@contextlib.contextmanager
def _announced(url: str, endpoint: str) -> Iterator[None]:
    """Tell `make sweep` / `make invoke` where this runner's DynamoDB is, while it runs."""
    from runstop_dev.invoke import RUNNING_FILE

    RUNNING_FILE.parent.mkdir(parents=True, exist_ok=True)
    RUNNING_FILE.write_text(json.dumps({"api": url, "dynamodb": endpoint, "pid": os.getpid()}))
    try:
        yield
    finally:
        RUNNING_FILE.unlink(missing_ok=True)


def _schemas(args: argparse.Namespace) -> int:
    from runstop_dev.contract import write_schemas

    for path in write_schemas():
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0


def _openapi(args: argparse.Namespace) -> int:
    from runstop_dev.contract import OPENAPI_PATH, write_openapi

    changed = write_openapi()
    print(f"{'wrote' if changed else 'unchanged:'} {OPENAPI_PATH.relative_to(REPO_ROOT)}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from runstop_dev.invoke import sweep_once

    summary = sweep_once(args.endpoint, args.heartbeat_timeout, args.pending_timeout)
    print(json.dumps(summary, indent=2))
    return 0


def _invoke(args: argparse.Namespace) -> int:
    from runstop_dev.invoke import invoke

    print(json.dumps(invoke(args.logical_id, Path(args.event), args.endpoint), indent=2, default=str))
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
    run.add_argument(
        "--auth",
        choices=["header", "jwt"],
        default=os.environ.get("RUNSTOP_AUTH") or "header",
        help="header: the tenant is X-Tenant-Id; jwt: a Bearer token checked as API Gateway's JWT authorizer would",
    )
    run.set_defaults(func=_run)
    token = sub.add_parser("token", help="print a token of the local issuer (for RUNSTOP_AUTH=jwt make run)")
    token.add_argument("--tenant", required=True, help="the tenant claim's value")
    token.add_argument("--ttl", type=int, default=3600, help="seconds the token stays valid (default 3600)")
    token.set_defaults(func=_token)
    sub.add_parser("schemas", help="regenerate the JSON Schemas from runstop.models").set_defaults(func=_schemas)
    sub.add_parser("openapi", help="regenerate openapi.json from the routes and models").set_defaults(func=_openapi)
    from runstop_dev.invoke import default_endpoint

    endpoint = default_endpoint()
    sweep = sub.add_parser("sweep", help="run the stale-run sweeper once against the local table")
    sweep.add_argument("--endpoint", default=endpoint, help="DynamoDB endpoint (a running `make run` by default)")
    sweep.add_argument("--heartbeat-timeout", type=float, help="seconds; default: the template's HeartbeatTimeout")
    sweep.add_argument("--pending-timeout", type=float, help="seconds; default: the template's PendingTimeout")
    sweep.set_defaults(func=_sweep)
    inv = sub.add_parser("invoke", help="feed a sample event to a function (or pipe) of the template")
    inv.add_argument("logical_id", help="e.g. CancelQueueFunction, CancelEventsFunction, SweeperFunction")
    inv.add_argument("-e", "--event", required=True, help="event file, e.g. events/sqs-cancel-requests.json")
    inv.add_argument("--endpoint", default=endpoint, help="DynamoDB endpoint (a running `make run` by default)")
    inv.set_defaults(func=_invoke)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
