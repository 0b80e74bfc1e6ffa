"""A proxy in front of DynamoDB Local: requests and capacity units counted at the wire, and an
optional per-item throughput cap answered with DynamoDB's own throttling errors.

Counting where the bytes pass, not in the SDK, sees every retry and every hidden read, whichever
code made them. Each request is counted by its X-Amz-Target and attempt number (botocore's
`amz-sdk-request: attempt=N` header). Capacity units: the proxy adds `ReturnConsumedCapacity:
TOTAL` to every request and adds up what DynamoDB Local reports; a failed conditional write
comes back without a figure although DynamoDB charges it (write units for the item's size, at
least one), so it is charged here by that rule; a throttled request costs nothing.

The cap (`Limits`) is a scaled stand-in for DynamoDB's per-partition limits (1,000 write units
and 3,000 read units a second): a token bucket per item (table + key) for writes and one for
reads, refilled at the given rate and holding one second's worth. A request the bucket cannot
pay for is answered 400 with the body DynamoDB sends for a hot key, so botocore parses and
retries it exactly as it would the real one.

It runs in a process of its own (`python -m bench.proxy`), so relaying never competes with the
bench's own threads for the GIL; `DynamoProxy` starts it, and reads and resets its counters.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import math
import os
import signal
import subprocess
import sys
import time
import uuid
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_HEAD_END = b"\r\n\r\n"
REPO_ROOT = Path(__file__).resolve().parents[1]
CONTROL = "/__proxy__/"
WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
CAPPED_WRITES = frozenset({"UpdateItem", "DeleteItem"})
CAPPED_READS = frozenset({"GetItem"})
"""Single-item requests that name their item by Key: the ones the per-item cap applies to."""

# What DynamoDB answers when a request is throttled: the exception (its __type) and the message.
# The hot-key case is ProvisionedThroughputExceededException with a ThrottlingReason saying
# which limit (TableWriteKeyRangeThroughputExceeded); on-demand tables also answer
# ThrottlingException, and an account quota RequestLimitExceeded. botocore's standard retry
# mode retries all three; runstop.store treats all three as transient (503 when retries run out).
THROTTLE_ERRORS = {
    "ProvisionedThroughputExceededException": (
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded."
        " Consider increasing your provisioning level with the UpdateTable API.",
    ),
    "ThrottlingException": (
        "com.amazon.coral.availability#ThrottlingException",
        "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically"
        " scaling your table or index so please try again shortly.",
    ),
    "RequestLimitExceeded": (
        "com.amazonaws.dynamodb.v20120810#RequestLimitExceeded",
        "Throughput exceeds the current throughput limit for your account. Please contact AWS Support"
        " at https://aws.amazon.com/support request a limit increase",
    ),
}


@dataclass(frozen=True)
class Limits:
    """Per-item capacity a second (units); 0 = no cap. The error answered beyond it."""

    write_units_per_s: float = 0.0
    read_units_per_s: float = 0.0
    error: str = "ProvisionedThroughputExceededException"

    @classmethod
    def scaled(cls, write_units_per_s: float, error: str = "ProvisionedThroughputExceededException") -> Limits:
        """DynamoDB's per-partition ratio (1,000 WCU : 3,000 RCU), scaled to `write_units_per_s`."""
        return cls(write_units_per_s, 3 * write_units_per_s, error)


def item_size(item: dict[str, Any]) -> int:
    """An item's size in bytes by DynamoDB's rules (names + values), close enough to round to KB."""

    def value_size(value: dict[str, Any]) -> int:
        (kind, raw), *_ = value.items()
        if kind in ("S", "B"):
            return len(str(raw).encode())
        if kind == "N":
            return len(str(raw).lstrip("-").replace(".", "")) // 2 + 2
        if kind in ("BOOL", "NULL"):
            return 1
        if kind == "M":
            return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in raw.items())
        if kind == "L":
            return 3 + sum(value_size(v) + 1 for v in raw)
        return sum(len(str(v).encode()) for v in raw)  # SS, NS, BS

    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


@dataclass
class Stats:
    """What passed, since the last reset. `units` are capacity units (read and write apart)."""

    requests: Counter[str] = field(default_factory=Counter)
    """Per operation (X-Amz-Target without its prefix), every attempt."""
    results: Counter[str] = field(default_factory=Counter)
    """"<operation> <result>": ok, condition_failed, throttled, error."""
    attempts: Counter[int] = field(default_factory=Counter)
    """Per attempt number (1 = a first try, 2+ = an SDK retry)."""
    units: dict[str, float] = field(default_factory=dict)
    """"read" and "write" capacity units."""
    largest_item_bytes: int = 0
    timeline: list[tuple[float, str, str, int]] = field(default_factory=list)
    """(seconds since reset, operation, result, attempt) while `record_timeline` is on."""


class _Bucket:
    """Units a second, holding at most one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate, self.tokens, self.at = rate, rate, time.monotonic()

    def take(self, cost: float) -> bool:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    """The message body, de-chunked if it was sent chunked."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                return b"".join(parts)
            parts.append(data[:-2])
    length = int(headers.get("content-length") or 0)
    return await reader.readexactly(length) if length else b""


def _with_length(head: bytes, length: int) -> bytes:
    """The head with Content-Length set to `length` (and no Transfer-Encoding)."""
    lines = [
        line
        for line in head[: -len(_HEAD_END)].split(b"\r\n")
        if not line.lower().startswith((b"content-length:", b"transfer-encoding:"))
    ]
    return b"\r\n".join([*lines, b"Content-Length: " + str(length).encode()]) + _HEAD_END


def _attempt(headers: dict[str, str]) -> int:
    for part in headers.get("amz-sdk-request", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "attempt" and value.isdigit():
            return int(value)
    return 1


def _http_answer(status: int, body: bytes, content_type: str = "application/json") -> bytes:
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "OK")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nx-amzn-RequestId: {uuid.uuid4()}\r\n"
        f"x-amz-crc32: {zlib.crc32(body)}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class _Upstream:
    """One keep-alive connection to DynamoDB Local, per client connection, opened when needed."""

    IDLE_S = 5.0
    """Reconnect rather than reuse a connection idle this long (the server may be closing it)."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.used = 0.0

    async def exchange(self, request: bytes) -> tuple[bytes, dict[str, str], bytes]:
        """Send one request; its answer's head, headers and body."""
        if self.streams is not None and time.monotonic() - self.used > self.IDLE_S:
            self.close()
        if self.streams is None:
            self.streams = await asyncio.open_connection(*self.address)
        reader, writer = self.streams
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(_HEAD_END)
        headers = _headers(head)
        body = await _read_body(reader, headers)
        self.used = time.monotonic()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return head, headers, body

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


class _Proxy:
    """The proxy's state and its connection handler (runs inside the proxy process)."""

    def __init__(self, upstream: tuple[str, int], limits: Limits) -> None:
        self.upstream = upstream
        self.limits = limits
        self.stats = Stats()
        self.since = time.monotonic()
        self.record_timeline = False
        self.buckets: dict[tuple[str, str, str], _Bucket] = {}

    def _admit(self, operation: str, request: dict[str, Any]) -> bool:
        """Take the request's capacity from its item's bucket; False when it cannot pay."""
        if operation in CAPPED_WRITES:
            rate, kind, cost = self.limits.write_units_per_s, "write", 1.0
        elif operation in CAPPED_READS:
            rate, kind = self.limits.read_units_per_s, "read"
            cost = 1.0 if request.get("ConsistentRead") else 0.5
        else:
            return True
        if rate <= 0:
            return True
        key = (str(request.get("TableName")), json.dumps(request.get("Key"), sort_keys=True), kind)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = _Bucket(rate)
        return bucket.take(cost)

    def _throttled(self, operation: str, request: dict[str, Any]) -> bytes:
        kind, message = THROTTLE_ERRORS[self.limits.error]
        table = request.get("TableName", "unknown")
        what = "Write" if operation in WRITES else "Read"
        body = {
            "__type": kind,
            "message": message,
            "ThrottlingReasons": [
                {
                    "reason": f"Table{what}KeyRangeThroughputExceeded",
                    "resource": f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}",
                }
            ],
        }
        return _http_answer(400, json.dumps(body).encode(), "application/x-amz-json-1.0")

    def _count(self, operation: str, result: str, attempt: int, units: float, kind: str) -> None:
        s = self.stats
        s.requests[operation] += 1
        s.results[f"{operation} {result}"] += 1
        s.attempts[attempt] += 1
        if units:
            s.units[kind] = s.units.get(kind, 0.0) + units
        if self.record_timeline:
            s.timeline.append((round(time.monotonic() - self.since, 4), operation, result, attempt))

    def _settle(self, operation: str, attempt: int, status: int, reply: bytes) -> None:
        """Count an answered request and the capacity it consumed."""
        kind = "write" if operation in WRITES else "read"
        try:
            answer = json.loads(reply) if reply else {}
        except ValueError:
            answer = {}
        if status == 200:
            consumed = answer.get("ConsumedCapacity") or {}
            if isinstance(consumed, list):
                units = sum(float(c.get("CapacityUnits", 0)) for c in consumed)
            else:
                units = float(consumed.get("CapacityUnits", 0))
            self._count(operation, "ok", attempt, units, kind)
            return
        code = str(answer.get("__type", "")).rsplit("#", 1)[-1]
        if code == "ConditionalCheckFailedException":
            item = answer.get("Item")
            size = item_size(item) if isinstance(item, dict) else 0
            self.stats.largest_item_bytes = max(self.stats.largest_item_bytes, size)
            self._count(operation, "condition_failed", attempt, max(1.0, math.ceil(size / 1024)), "write")
        else:
            self._count(operation, "error", attempt, 0.0, kind)

    def control(self, method: str, path: str, body: bytes) -> bytes:
        """GET stats, POST reset (`{"timeline": bool}`), POST limits (a Limits as JSON)."""
        if method == "GET" and path == CONTROL + "stats":
            s = self.stats
            data = {
                "requests": dict(s.requests),
                "results": dict(s.results),
                "attempts": {str(k): v for k, v in s.attempts.items()},
                "units": dict(s.units),
                "largest_item_bytes": s.largest_item_bytes,
                "timeline": s.timeline,
            }
            return _http_answer(200, json.dumps(data).encode())
        if method == "POST" and path == CONTROL + "reset":
            options = json.loads(body or b"{}")
            self.stats, self.since, self.buckets = Stats(), time.monotonic(), {}
            self.record_timeline = bool(options.get("timeline"))
            return _http_answer(200, b"{}")
        if method == "POST" and path == CONTROL + "limits":
            self.limits, self.buckets = Limits(**json.loads(body)), {}
            return _http_answer(200, b"{}")
        return _http_answer(404, b'{"message": "unknown control request"}')

    async def relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        upstream = _Upstream(self.upstream)
        try:
            while True:
                try:
                    head = await client_r.readuntil(_HEAD_END)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                headers = _headers(head)
                body = await _read_body(client_r, headers)
                method, path, _ = head.split(b" ", 2)
                if path.startswith(CONTROL.encode()):
                    client_w.write(self.control(method.decode(), path.decode(), body))
                    await client_w.drain()
                    continue
                operation = headers.get("x-amz-target", "?").rsplit(".", 1)[-1]
                attempt = _attempt(headers)
                try:
                    request = json.loads(body) if body else {}
                except ValueError:
                    request = {}
                if not self._admit(operation, request):
                    self._count(operation, "throttled", attempt, 0.0, "")
                    client_w.write(self._throttled(operation, request))
                    await client_w.drain()
                    continue
                if request and "ReturnConsumedCapacity" not in request:
                    request["ReturnConsumedCapacity"] = "TOTAL"
                    body = json.dumps(request).encode()
                request_bytes = _with_length(head, len(body)) + body
                try:
                    reply_head, reply_headers, reply = await upstream.exchange(request_bytes)
                except (asyncio.IncompleteReadError, ConnectionError):
                    # DynamoDB Local closes a keep-alive connection that sat idle; nothing was
                    # answered on it, so the request goes again on a fresh one (once).
                    upstream.close()
                    reply_head, reply_headers, reply = await upstream.exchange(request_bytes)
                self._settle(operation, attempt, int(reply_head.split(b" ", 2)[1]), reply)
                client_w.write(_with_length(reply_head, len(reply)) + reply)
                await client_w.drain()
                if reply_headers.get("connection", "").lower() == "close":
                    return
        finally:
            upstream.close()
            client_w.close()


async def _serve(upstream: str, limits: Limits) -> None:
    parts = urlsplit(upstream)
    proxy = _Proxy((parts.hostname or "127.0.0.1", parts.port or 80), limits)
    server = await asyncio.start_server(proxy.relay, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


class DynamoProxy:
    """The proxy process, started and stopped by its owner; a context manager."""

    def __init__(self, upstream: str, limits: Limits | None = None) -> None:
        self.upstream = upstream
        self.limits = limits or Limits()
        self.process: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DynamoProxy:
        limits = json.dumps(asdict(self.limits))
        args = [sys.executable, "-m", "bench.proxy", "--upstream", self.upstream, "--limits", limits]
        self.process = subprocess.Popen(args, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"the DynamoDB proxy did not start (said {line!r})")
        self.port = int(line)
        return self

    def _call(self, method: str, name: str, payload: dict[str, Any] | None = None) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, CONTROL + name, body=json.dumps(payload or {}).encode())
            reply = conn.getresponse()
            data = reply.read()
            if reply.status != 200:
                raise RuntimeError(f"proxy {name}: {reply.status} {data!r}")
            return json.loads(data)
        finally:
            conn.close()

    def stats(self) -> dict[str, Any]:
        """The counters since the last reset (see Stats; Counters as plain dicts)."""
        found: dict[str, Any] = self._call("GET", "stats")
        return found

    def reset(self, timeline: bool = False) -> None:
        """Zero the counters and refill every bucket; `timeline` records each request too."""
        self._call("POST", "reset", {"timeline": timeline})

    def set_limits(self, limits: Limits) -> None:
        self.limits = limits
        self._call("POST", "limits", asdict(limits))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> DynamoProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.proxy", description=__doc__)
    parser.add_argument("--upstream", required=True, help="DynamoDB Local's endpoint, e.g. http://127.0.0.1:8001")
    parser.add_argument("--limits", default="{}", help="a Limits as JSON (per-item units a second; 0 = no cap)")
    args = parser.parse_args(argv)
    # Stopped by its owner with SIGTERM: nothing to flush, so leave at once, quietly.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.upstream, Limits(**json.loads(args.limits))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
