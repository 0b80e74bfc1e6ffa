"""Serve the template's HttpApi routes on loopback without Docker.

Each HTTP request becomes an API Gateway payload-2.0 event for the very handler the
template names. Every function gets a pool of worker processes, each one like a Lambda
execution environment: it imports the handler once (its cold start) and handles one event
at a time, so module state behaves as it does in Lambda while requests run in parallel.
"""

from __future__ import annotations

import atexit
import base64
import json
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from runstop_dev.handlers import LambdaContext, load_function_module
from runstop_dev.template import Function, HttpRoute, function, function_environment, function_timeout, http_routes

log = logging.getLogger("runstop.local")

DEFAULT_TENANT = "local"
TENANT_HEADER = "x-tenant-id"
MAX_BODY_BYTES = 10 * 1024 * 1024  # HTTP API's own payload limit
TEXT_TYPES = ("application/json", "application/problem+json", "text/", "application/x-www-form-urlencoded")

# Extra routes served by the runner itself (e.g. the OpenAPI document): path -> (status, content type, body)
ExtraRoute = Callable[[], tuple[int, str, bytes]]

_handler: Callable[[dict[str, Any], Any], Any] | None = None
_function_name = ""
_timeout_ms = 10_000
EXTRA_FUNCTION_TIMEOUT = 10.0


@dataclass(frozen=True)
class ExtraFunction:
    """A handler outside the template, served on its own route beside the template's.

    For designs that exist only to be compared with (the benchmark's naive baseline): it runs
    with the environment of the template function `env_of`, so it sees the same table and
    tenant handling, in worker processes of its own.
    """

    route: HttpRoute
    env_of: str


def _load_source(source: Function) -> Callable[[dict[str, Any], Any], Any]:
    """Import the function's module by path under a name of its own (every function has an app.py)."""
    handler: Callable[[dict[str, Any], Any], Any] = getattr(load_function_module(source, fresh=True), source.attribute)
    return handler


def _init_worker(logical_id: str, env: dict[str, str], quiet: bool, source: Function, timeout: float) -> None:
    """Runs once in each worker process: the environment, then the handler's cold start.

    The parent has already read the template: parsing it again here (cfn-lint) would more
    than double every worker's cold start.
    """
    global _handler, _function_name, _timeout_ms
    # Ctrl-C reaches the whole process group; the parent shuts the pool down in order, so a
    # worker must not die mid-request (or print a KeyboardInterrupt trace) on its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    atexit.register(_discard)
    os.environ.update(env)
    if quiet:
        devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the worker
        sys.stdout = devnull
        os.dup2(devnull.fileno(), 1)
    _function_name = logical_id
    _timeout_ms = int(timeout * 1000)
    _handler = _load_source(source)


def _discard() -> None:
    """Lambda discards an environment, it never finalises one: tearing down an interpreter
    that holds boto3 and Powertools costs about a second of CPU per worker on every stop."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _invoke(event: dict[str, Any]) -> Any:
    assert _handler is not None
    context = LambdaContext(function_name=_function_name, timeout_ms=_timeout_ms)
    return _handler(event, context)


def _warm() -> int:
    return os.getpid()


class FunctionPool:
    """A function's execution environments: worker processes that each import it once."""

    def __init__(
        self, logical_id: str, env: dict[str, str], workers: int, quiet: bool, source: Function | None = None
    ) -> None:
        self.logical_id = logical_id
        self.timeout = function_timeout(logical_id) if source is None else EXTRA_FUNCTION_TIMEOUT
        initargs = (logical_id, env, quiet, source or function(logical_id), self.timeout)
        # spawn, not fork: the parent runs server threads, and a forked lock may be held.
        context = multiprocessing.get_context("spawn")
        self.executor = ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_init_worker, initargs=initargs
        )

    def invoke(self, event: dict[str, Any]) -> Any:
        return self.executor.submit(_invoke, event).result(timeout=self.timeout + 5)

    def warm(self) -> Future[int]:
        return self.executor.submit(_warm)

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def build_event(
    route: HttpRoute,
    method: str,
    raw_path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    path_params: dict[str, str],
    tenant_claim: str,
    source_ip: str,
) -> dict[str, Any]:
    """An API Gateway HTTP API payload-2.0 event, with the JWT claims the authorizer would add."""
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    tenant = lowered.get(TENANT_HEADER, DEFAULT_TENANT)
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": lowered,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "authorizer": {"jwt": {"claims": {tenant_claim: tenant}, "scopes": None}},
            "domainName": lowered.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route.route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if query:
        params: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    if path_params:
        event["pathParameters"] = path_params
    if body:
        content_type = lowered.get("content-type", "")
        try:
            text = body.decode("utf-8")
            textual = not content_type or content_type.startswith(TEXT_TYPES)
        except UnicodeDecodeError:
            textual = False
        if textual:
            event["body"] = text
        else:
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
    return event


def to_http(result: Any) -> tuple[int, dict[str, str], bytes]:
    """A Lambda proxy result as status, headers and body (payload 2.0 rules)."""
    if not isinstance(result, dict) or "statusCode" not in result:
        return 200, {"Content-Type": "application/json"}, json.dumps(result).encode()
    headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name] = ",".join(map(str, values))
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    return int(result["statusCode"]), headers, raw


class LocalApi:
    """The HTTP front end plus one pool per routed function; a context manager."""

    def __init__(
        self,
        refs: dict[str, str],
        extra_env: dict[str, str],
        host: str = "127.0.0.1",
        port: int = 3000,
        workers: int = 4,
        quiet: bool = False,
        extra_routes: dict[str, ExtraRoute] | None = None,
        extra_functions: Sequence[ExtraFunction] = (),
    ) -> None:
        self.routes = http_routes()
        self.tenant_claim = "tenant_id"
        self.extra_routes = extra_routes or {}
        self.pools: dict[str, FunctionPool] = {}
        for route in self.routes:
            logical_id = route.function.logical_id
            if logical_id not in self.pools:
                env = {**function_environment(logical_id, refs), **extra_env, "AWS_LAMBDA_FUNCTION_NAME": logical_id}
                self.tenant_claim = env.get("TENANT_CLAIM", self.tenant_claim)
                self.pools[logical_id] = FunctionPool(logical_id, env, workers, quiet)
        for extra in extra_functions:
            fn = extra.route.function
            env = {**function_environment(extra.env_of, refs), **extra_env, "AWS_LAMBDA_FUNCTION_NAME": fn.logical_id}
            self.pools[fn.logical_id] = FunctionPool(fn.logical_id, env, workers, quiet, source=fn)
            self.routes.insert(0, extra.route)
        self.server = _Server((host, port), _RequestHandler)
        self.server.api = self
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = str(self.server.server_address[0]), int(self.server.server_address[1])
        return f"http://{host}:{port}"

    def warm(self) -> None:
        """Start one environment per function now rather than on the first request.

        All pools start together: each cold start is CPU-bound imports, one per core.
        """
        for started in [pool.warm() for pool in self.pools.values()]:
            started.result(timeout=120)

    def match(self, method: str, path: str) -> tuple[HttpRoute, dict[str, str]] | None:
        for route in self.routes:
            if route.method not in (method, "ANY"):
                continue
            found = route.pattern.match(path)
            if found:
                return route, {k: unquote(v) for k, v in found.groupdict().items()}
        return None

    def start(self) -> LocalApi:
        self.thread = threading.Thread(target=self.server.serve_forever, name="runstop-local-api", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.thread is not None:  # shutdown() waits forever for a loop that never started
            self.server.shutdown()
        self.server.server_close()
        for pool in self.pools.values():
            pool.close()

    def __enter__(self) -> LocalApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    api: LocalApi


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients of API Gateway get
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _message(self, status: HTTPStatus, message: str) -> None:
        self._send(status.value, {"Content-Type": "application/json"}, json.dumps({"message": message}).encode())

    def _dispatch(self) -> None:
        api = self.server.api
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._message(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Request Entity Too Large")
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        extra = api.extra_routes.get(split.path)
        if extra is not None and self.command == "GET":
            status, content_type, payload = extra()
            self._send(status, {"Content-Type": content_type}, payload)
            return
        matched = api.match(self.command, split.path)
        if matched is None:
            self._message(HTTPStatus.NOT_FOUND, "Not Found")
            return
        route, params = matched
        event = build_event(
            route,
            self.command,
            split.path,
            split.query,
            dict(self.headers.items()),
            body,
            params,
            api.tenant_claim,
            self.client_address[0],
        )
        started = time.perf_counter()
        try:
            result = api.pools[route.function.logical_id].invoke(event)
        except FutureTimeout:
            log.error("%s %s timed out", self.command, self.path)
            self._message(HTTPStatus.SERVICE_UNAVAILABLE, "Service Unavailable")
            return
        except Exception:
            log.exception("%s %s: the handler raised", self.command, self.path)
            self._message(HTTPStatus.INTERNAL_SERVER_ERROR, "Internal Server Error")
            return
        status, headers, payload = to_http(result)
        log.info("%s %s -> %s (%.1f ms)", self.command, self.path, status, (time.perf_counter() - started) * 1000)
        self._send(status, headers, payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch
