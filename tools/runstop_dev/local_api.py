"""Serve the template's HttpApi routes on loopback without Docker.

Each HTTP request becomes an API Gateway payload-2.0 event for the very handler the
template names. Every function gets a pool of worker processes, each one like a Lambda
execution environment: it imports the handler once (its cold start) and handles one event
at a time, so module state behaves as it does in Lambda while requests run in parallel.
"""

from __future__ import annotations

import atexit
import base64
import io
import json
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from runstop_dev.handlers import LambdaContext, load_function_module
from runstop_dev.jwt_auth import (
    DISCOVERY_PATH,
    JWKS_PATH,
    UNAUTHORIZED_BODY,
    JwtAuthorizer,
    LocalIssuer,
    Rejected,
    template_audiences,
)
from runstop_dev.streams import StreamPipe, start_stream_pipes, stop_stream_pipes, stream_routes
from runstop_dev.template import (
    Function,
    HttpRoute,
    function,
    function_environment,
    function_timeout,
    http_routes,
)

log = logging.getLogger("runstop.local")

DEFAULT_TENANT = "local"
TENANT_HEADER = "x-tenant-id"
MAX_BODY_BYTES = 10 * 1024 * 1024  # HTTP API's own payload limit
_MAX_LINE = 8 * 1024  # a chunk-size or trailer line longer than this is not HTTP a client sends
_MAX_TRAILERS = 64
TEXT_TYPES = ("application/json", "application/problem+json", "text/", "application/x-www-form-urlencoded")

# Extra routes served by the runner itself (e.g. the OpenAPI document): path -> (status, content type, body)
ExtraRoute = Callable[[], tuple[int, str, bytes]]

_handler: Callable[[dict[str, Any], Any], Any] | None = None
_function_name = ""
_timeout_ms = 10_000
STREAM_WORKERS = 2
"""Execution environments of each function fed by a stream pipe (the cascade, cancel jobs)."""


def _init_worker(source: Function, env: dict[str, str], quiet: bool, timeout: float) -> None:
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
    _function_name = source.logical_id
    _timeout_ms = int(timeout * 1000)
    _handler = getattr(load_function_module(source, fresh=True), source.attribute)


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
    """A function's execution environments: worker processes that each import it once.

    Processes start on demand, up to `workers`; `timeout` is the function's (seconds).
    """

    def __init__(self, source: Function, env: dict[str, str], workers: int, quiet: bool, timeout: float) -> None:
        self.logical_id = source.logical_id
        self.workers = workers
        self.timeout = timeout
        # spawn, not fork: the parent runs server threads, and a forked lock may be held.
        context = multiprocessing.get_context("spawn")
        self.executor = ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(source, env, quiet, timeout)
        )

    def invoke(self, event: dict[str, Any]) -> Any:
        return self.submit(event).result(timeout=self.timeout + 5)

    def submit(self, event: dict[str, Any]) -> Future[Any]:
        """One invocation, answered later (the stream pipes' queues invoke this way)."""
        return self.executor.submit(_invoke, event)

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
    claims: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API payload-2.0 event, with the JWT claims the authorizer would add.

    `claims` are those of a checked token (JWT mode); without them, the tenant comes from the
    X-Tenant-Id header (default 'local') as the only claim (header mode).
    """
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    if claims is None:
        claims = {tenant_claim: lowered.get(TENANT_HEADER, DEFAULT_TENANT)}
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
            "authorizer": {"jwt": {"claims": claims, "scopes": None}},
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
        # Media types are case-insensitive (RFC 9110 8.3.1): APPLICATION/JSON is JSON text too.
        content_type = lowered.get("content-type", "").strip().lower()
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


class BodyTooLarge(ValueError):
    """A request body past MAX_BODY_BYTES."""


def read_chunked(stream: io.BufferedIOBase, limit: int) -> bytes:
    """A chunked body (RFC 9112 7.1) read to its last chunk and its trailers.

    ValueError for bad framing, BodyTooLarge past `limit` bytes: each chunk's size is checked
    before it is read, so a client cannot make the runner buffer more than the limit.
    """
    parts: list[bytes] = []
    total = 0
    while True:
        line = stream.readline(_MAX_LINE)
        if not line.endswith(b"\n"):
            raise ValueError("truncated chunk size line")
        size_text = line.split(b";", 1)[0].strip()
        if not size_text or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
            raise ValueError("bad chunk size")
        size = int(size_text, 16)
        if size == 0:
            break
        total += size
        if total > limit:
            raise BodyTooLarge(f"body over {limit} bytes")
        chunk = stream.read(size)
        if len(chunk) != size or stream.readline(_MAX_LINE).strip():
            raise ValueError("truncated chunk")
        parts.append(chunk)
    for _ in range(_MAX_TRAILERS):  # trailer fields until the empty line; they are not passed on
        line = stream.readline(_MAX_LINE)
        if not line.endswith(b"\n"):
            raise ValueError("truncated trailers")
        if not line.strip():
            return b"".join(parts)
    raise ValueError("too many trailer fields")


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
        issuer: LocalIssuer | None = None,
        stream_pipes: bool = True,
    ) -> None:
        """`issuer` turns on JWT mode: every routed request needs a token that issuer signed.
        `stream_pipes` runs the template's stream -> pipe -> queue -> function routes too (the
        cascade, cancel jobs) against the DynamoDB of `extra_env` (runstop_dev.streams)."""
        self.routes = http_routes()
        self.tenant_claim = "tenant_id"
        self.extra_routes = extra_routes or {}
        self.pools: dict[str, FunctionPool] = {}
        for route in self.routes:
            logical_id = route.function.logical_id
            if logical_id not in self.pools:
                env = {**function_environment(logical_id, refs), **extra_env, "AWS_LAMBDA_FUNCTION_NAME": logical_id}
                self.tenant_claim = env.get("TENANT_CLAIM", self.tenant_claim)
                self.pools[logical_id] = FunctionPool(route.function, env, workers, quiet, function_timeout(logical_id))
        self.refs = refs
        self.endpoint = extra_env.get("AWS_ENDPOINT_URL_DYNAMODB") if stream_pipes else None
        self.stream_routes = stream_routes() if self.endpoint else []
        for stream_route in self.stream_routes:
            fn_id = stream_route.function_id
            if fn_id not in self.pools:
                env = {**function_environment(fn_id, refs), **extra_env, "AWS_LAMBDA_FUNCTION_NAME": fn_id}
                # Two environments each: a cascade goes through a whole tree in one invocation, and
                # every further worker process is a cold start paid during someone's cancel.
                stream_workers = min(workers, STREAM_WORKERS)
                self.pools[fn_id] = FunctionPool(function(fn_id), env, stream_workers, quiet, function_timeout(fn_id))
        self.stream_pipes: list[StreamPipe] = []
        self.server = _Server((host, port), _RequestHandler)
        self.server.api = self
        self.thread: threading.Thread | None = None
        self.issuer = issuer
        self.authorizer: JwtAuthorizer | None = None
        if issuer is not None:
            jwks = json.dumps(issuer.jwks()).encode()
            discovery = json.dumps(issuer.discovery(self.url + JWKS_PATH)).encode()
            self.extra_routes = {
                **self.extra_routes,
                JWKS_PATH: lambda: (200, "application/json", jwks),
                DISCOVERY_PATH: lambda: (200, "application/json", discovery),
            }
            # Keys read from the JWKS this runner serves, as API Gateway reads the issuer's.
            self.authorizer = JwtAuthorizer(issuer.issuer, template_audiences(), self.url + JWKS_PATH)

    @property
    def url(self) -> str:
        host, port = str(self.server.server_address[0]), int(self.server.server_address[1])
        return f"http://{host}:{port}"

    def warm(self, every_environment: bool = False) -> None:
        """Start one environment per function now rather than on the first request (or all of
        them: a load test should not time its first requests' cold starts).

        All pools start together: each cold start is CPU-bound imports, one per core.
        """
        # The pool starts another process whenever none is idle, so `workers` calls at once start them all.
        count = {logical_id: pool.workers if every_environment else 1 for logical_id, pool in self.pools.items()}
        started = [pool.warm() for logical_id, pool in self.pools.items() for _ in range(count[logical_id])]
        for future in started:
            future.result(timeout=120)

    def match(self, method: str, path: str) -> tuple[HttpRoute, dict[str, str]] | None:
        for route in self.routes:
            if route.method not in (method, "ANY"):
                continue
            found = route.pattern.match(path)
            if found:
                return route, {k: unquote(v) for k, v in found.groupdict().items()}
        return None

    def start(self) -> LocalApi:
        if self.endpoint:
            self.stream_pipes = start_stream_pipes(
                self.endpoint, self.refs, lambda fn: (self.pools[fn].submit, self.pools[fn].workers)
            )
        self.thread = threading.Thread(target=self.server.serve_forever, name="runstop-local-api", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        stop_stream_pipes(self.stream_pipes)
        if self.thread is not None:  # shutdown() waits forever for a loop that never started
            self.server.shutdown()
        self.server.server_close()
        for pool in self.pools.values():
            pool.close()

    def streams_idle(self) -> bool:
        """Whether every stream pipe's queue is empty with nothing in flight (records still in the
        stream, not yet read, are not counted: wait for what you expect, not for this alone)."""
        return all(pipe.queue.idle() for pipe in self.stream_pipes)

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
    # The head and the body go out as two writes: with Nagle's algorithm on, the body waits for
    # the client's delayed ACK of the head, 40 ms or more on every answer (bench: storms, 88 ->
    # 14 ms for one cancel through the runner).
    disable_nagle_algorithm = True
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

    def _too_large(self) -> None:
        self._message(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Request Entity Too Large")
        self.close_connection = True

    def _read_body(self) -> tuple[bytes, dict[str, str]] | None:
        """The whole request body and the headers the function sees; None once a refusal is sent.

        A chunked body is read to its end and handed over whole, as API Gateway does: the
        function gets the body and its Content-Length, never the hop-by-hop Transfer-Encoding.
        """
        headers = dict(self.headers.items())
        encoding = (self.headers.get("Transfer-Encoding") or "").strip().lower()
        if not encoding:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self._message(HTTPStatus.BAD_REQUEST, "Bad Request")
                self.close_connection = True
                return None
            if length > MAX_BODY_BYTES:
                self._too_large()
                return None
            return (self.rfile.read(length) if length else b""), headers
        if encoding != "chunked":
            self._message(HTTPStatus.NOT_IMPLEMENTED, "Not Implemented")
            self.close_connection = True
            return None
        try:
            body = read_chunked(self.rfile, MAX_BODY_BYTES)
        except BodyTooLarge:
            self._too_large()
            return None
        except ValueError:
            self._message(HTTPStatus.BAD_REQUEST, "Bad Request")
            self.close_connection = True
            return None
        headers = {k: v for k, v in headers.items() if k.lower() not in ("transfer-encoding", "content-length")}
        headers["Content-Length"] = str(len(body))
        return body, headers

    def _dispatch(self) -> None:
        api = self.server.api
        split = urlsplit(self.path)
        read = self._read_body()
        if read is None:
            return
        body, headers = read
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
        claims = None
        if api.authorizer is not None:
            try:
                claims = api.authorizer.authorize(self.headers.get("Authorization")).claims
            except Rejected as rejected:
                log.info("%s %s -> 401 (%s)", self.command, self.path, rejected)
                headers = {"Content-Type": "application/json", "www-authenticate": rejected.challenge}
                self._send(HTTPStatus.UNAUTHORIZED.value, headers, UNAUTHORIZED_BODY)
                return
        event = build_event(
            route,
            self.command,
            # HTTP APIs route on the path as sent but hand it to the function decoded (rawPath too).
            unquote(split.path),
            split.query,
            headers,
            body,
            params,
            api.tenant_claim,
            self.client_address[0],
            claims,
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

    def __getattr__(self, name: str) -> Any:
        # Any other method (QUERY, PROPFIND...) is routed like these: API Gateway answers 404
        # when no route has it, where http.server would answer 501.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)
