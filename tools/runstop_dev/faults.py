"""A fault-injecting HTTP proxy between the functions and DynamoDB Local, on loopback only.

The functions reach DynamoDB through it by AWS_ENDPOINT_URL_DYNAMODB. Per request, with a
seeded probability, it answers in place of DynamoDB the way DynamoDB and the network fail:
throttling errors, 5xx answers of several kinds (some after the write was applied), an answer
held past the SDK's read timeout (the request still reaches DynamoDB, late), the answer lost
after the write was applied, or the connection reset before anything was forwarded. What it
injected is counted, so a test can show that each fault really happened.

`python -m runstop_dev.faults --upstream http://127.0.0.1:8001 --mode mix` runs it on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Self
from urllib.parse import urlsplit


class Fault(StrEnum):
    THROTTLE = "throttle"
    """A 400 throttling error; nothing was forwarded."""
    ERROR_5XX = "5xx"
    """A 5xx answer, with or without a JSON body; half the time after the request was applied."""
    DELAY = "delay"
    """The request is held past the client's read timeout, then forwarded anyway (the write lands late)."""
    DROP = "drop"
    """Forwarded and applied; DynamoDB's answer is thrown away and the client's connection reset."""
    RESET = "reset"
    """The client's connection is reset before anything is forwarded."""


MODES: Mapping[str, tuple[Fault, ...]] = {
    "none": (),
    "throttle": (Fault.THROTTLE,),
    "5xx": (Fault.ERROR_5XX,),
    "delay": (Fault.DELAY,),
    "drop": (Fault.DROP,),
    "reset": (Fault.RESET,),
    "mix": tuple(Fault),
}
"""Fault modes by name: the faults each one draws from, evenly."""


@dataclass(frozen=True, slots=True)
class Answer:
    """An error answer the proxy gives in DynamoDB's place."""

    code: str
    status: int
    body: bytes
    content_type: str = "application/x-amz-json-1.0"


def _json_error(kind: str, status: int, message: str) -> Answer:
    body = json.dumps({"__type": kind, "message": message}).encode()
    return Answer(kind.rsplit("#", 1)[-1], status, body)


THROTTLES = (
    _json_error(
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        400,
        "The level of configured provisioned throughput for the table was exceeded.",
    ),
    _json_error("com.amazon.coral.availability#ThrottlingException", 400, "Rate of requests exceeds the allowed rate."),
    _json_error(
        "com.amazonaws.dynamodb.v20120810#RequestLimitExceeded", 400, "Throughput exceeds the account's limit."
    ),
)
SERVER_ERRORS = (
    # What DynamoDB Local itself answers on an internal error.
    Answer("InternalFailure", 500, b'{"__type":"com.amazon.coral.service#InternalFailure"}'),
    _json_error("com.amazonaws.dynamodb.v20120810#InternalServerError", 500, "Internal server error"),
    _json_error("com.amazon.coral.availability#ServiceUnavailableException", 503, "Service unavailable"),
    # Load balancers in front of the service answer without a JSON body.
    Answer("502", 502, b"<html><body>Bad Gateway</body></html>", "text/html"),
    Answer("503", 503, b"", "text/plain"),
    Answer("504", 504, b"", "text/plain"),
)


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What the proxy does: `mode` (a key of MODES), each request faulted with `probability`."""

    mode: str = "none"
    probability: float = 0.0
    seed: int = 0
    delay: float = 1.5
    """Seconds a delayed request is held: past the functions' read timeout."""
    operations: frozenset[str] | None = None
    """Only these DynamoDB operations (PutItem, UpdateItem...) are faulted; None: all."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown fault mode {self.mode!r}; one of {', '.join(MODES)}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within 0..1")
        if not 0.0 <= self.delay <= MAX_DELAY:
            raise ValueError(f"delay must be within 0..{MAX_DELAY} s")


MAX_DELAY = 30.0
MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024  # DynamoDB's own request limit
IDLE_TIMEOUT = 120.0
UPSTREAM_TIMEOUT = 60.0


class _Closed(Exception):
    """The peer closed the connection (or sent something that is not HTTP/1.1 we can frame)."""


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as error:
        raise _Closed from error


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    fields: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip().lower()] = value.strip()
    return fields


async def _read_body(reader: asyncio.StreamReader, fields: Mapping[str, str], *, to_eof: bool) -> bytes:
    """The message body, raw as framed on the wire (chunked bodies keep their chunking)."""
    if fields.get("transfer-encoding", "").lower() == "chunked":
        raw = bytearray()
        while True:
            line = await reader.readuntil(b"\r\n")
            raw += line
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while True:  # trailers, up to the empty line
                    trailer = await reader.readuntil(b"\r\n")
                    raw += trailer
                    if trailer == b"\r\n":
                        return bytes(raw)
            if len(raw) + size > MAX_BODY_BYTES:
                raise _Closed("body too large")
            raw += await reader.readexactly(size + 2)
    if "content-length" in fields:
        length = int(fields["content-length"])
        if not 0 <= length <= MAX_BODY_BYTES:
            raise _Closed("bad length")
        return await reader.readexactly(length)
    return await reader.read(MAX_BODY_BYTES) if to_eof else b""


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a dropped connection reaches the client."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError):
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """The proxy on its own event loop thread; a context manager. Bounded: at most
    `max_connections` client connections, requests up to DynamoDB's 16 MB, delays up to 30 s."""

    def __init__(self, upstream: str, *, port: int = 0, max_connections: int = 256) -> None:
        parts = urlsplit(upstream)
        if parts.hostname not in ("127.0.0.1", "localhost") or parts.port is None:
            raise ValueError("the upstream must be a loopback http://127.0.0.1:PORT endpoint")
        self.upstream = (parts.hostname, parts.port)
        self.port = port
        self.max_connections = max_connections
        self._plan = FaultPlan()
        self._random = random.Random(0)
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._connections = 0
        self._in_flight = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def plan(self) -> FaultPlan:
        return self._plan

    def set_plan(self, plan: FaultPlan) -> None:
        """Fault from now on as `plan` says; the random draws restart from its seed and the counts from 0."""
        with self._lock:
            self._plan = plan
            self._random = random.Random(plan.seed)
            self._counts.clear()

    def counts(self) -> dict[str, int]:
        """Requests seen since the plan was set: `forwarded`, and each fault injected by kind and code."""
        with self._lock:
            return dict(self._counts)

    def wait_idle(self, timeout: float = MAX_DELAY + UPSTREAM_TIMEOUT) -> bool:
        """Wait until no request is on its way (a delayed write still lands after its client gave up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._in_flight == 0:
                    return True
            time.sleep(0.05)
        return False

    def _draw(self, operation: str) -> tuple[Fault | None, float]:
        """Whether to fault this request, and a second draw for the fault's details."""
        with self._lock:
            plan, rng = self._plan, self._random
            faults = MODES[plan.mode]
            if not faults or (plan.operations is not None and operation not in plan.operations):
                return None, 0.0
            if rng.random() >= plan.probability:
                return None, 0.0
            return rng.choice(faults), rng.random()

    def _count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    # --- the event loop side -------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._connections >= self.max_connections:
            _abort(writer)
            return
        self._connections += 1
        try:
            while await self._one_request(reader, writer):
                pass
        except (_Closed, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # the client went away, sent what cannot be framed, idled out, or DynamoDB did
        finally:
            self._connections -= 1
            if not writer.transport.is_closing():
                writer.transport.abort()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the client connection is done."""
        head = await asyncio.wait_for(_read_head(reader), IDLE_TIMEOUT)
        with self._lock:
            self._in_flight += 1
        try:
            return await self._serve_request(head, reader, writer)
        finally:
            with self._lock:
                self._in_flight -= 1

    async def _serve_request(self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        fields = _headers(head)
        body = await _read_body(reader, fields, to_eof=False)
        operation = fields.get("x-amz-target", "").rsplit(".", 1)[-1]
        fault, detail = self._draw(operation)
        plan = self._plan
        if fault is Fault.RESET:
            self._count("reset")
            _abort(writer)
            return False
        if fault is Fault.THROTTLE:
            answer = THROTTLES[int(detail * len(THROTTLES))]
            self._count(f"throttle:{answer.code}")
            return await self._answer(writer, answer)
        if fault is Fault.ERROR_5XX:
            after_write = detail >= 0.5
            answer = SERVER_ERRORS[int((detail * 2 % 1) * len(SERVER_ERRORS))]
            self._count(f"5xx{'-after-write' if after_write else ''}:{answer.code}")
            if after_write:
                await self._forward(head, body)
            return await self._answer(writer, answer)
        if fault is Fault.DELAY:
            self._count("delay")
            await asyncio.sleep(plan.delay)
        response_head, response_body = await self._forward(head, body)
        if fault is Fault.DROP:
            self._count("drop")
            _abort(writer)
            return False
        self._count("forwarded")
        writer.write(response_head + response_body)
        await writer.drain()
        return "close" not in _headers(response_head).get("connection", "").lower()

    async def _forward(self, head: bytes, body: bytes) -> tuple[bytes, bytes]:
        """Send the request to DynamoDB on a connection of its own; its answer, head and body."""
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*self.upstream), UPSTREAM_TIMEOUT)
        try:
            writer.write(head + body)
            await writer.drain()
            response_head = await asyncio.wait_for(_read_head(reader), UPSTREAM_TIMEOUT)
            fields = _headers(response_head)
            response_body = await asyncio.wait_for(_read_body(reader, fields, to_eof=True), UPSTREAM_TIMEOUT)
            if "content-length" not in fields and "transfer-encoding" not in fields:
                # Framed by closing: give the client a length instead.
                response_head = response_head[:-2] + f"Content-Length: {len(response_body)}\r\n\r\n".encode()
            return response_head, response_body
        finally:
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, answer: Answer) -> bool:
        head = (
            f"HTTP/1.1 {answer.status} Fault\r\n"
            f"Content-Type: {answer.content_type}\r\n"
            f"x-amzn-RequestId: runstop-fault\r\n"
            f"Content-Length: {len(answer.body)}\r\n\r\n"
        )
        writer.write(head.encode() + answer.body)
        await writer.drain()
        return True

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, limit=MAX_HEAD_BYTES)
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._ready.set()
        async with self._server:
            await self._server.serve_forever()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except asyncio.CancelledError:
            pass
        except BaseException as error:  # reported to start(), which waits for it
            self._startup_error = error
            self._ready.set()
        finally:
            for task in asyncio.all_tasks(loop):
                task.cancel()
            with contextlib.suppress(BaseException):
                loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name="runstop-fault-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._startup_error is not None:
            raise RuntimeError("the fault proxy did not start") from self._startup_error
        return self

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is not None and server is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(server.close)
                for task in asyncio.all_tasks(loop):
                    loop.call_soon_threadsafe(task.cancel)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runstop_dev.faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="DynamoDB Local, e.g. http://127.0.0.1:8001")
    parser.add_argument("--port", type=int, default=0, help="where to listen on 127.0.0.1 (0: any free port)")
    parser.add_argument("--mode", choices=list(MODES), default="mix")
    parser.add_argument("--probability", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--delay", type=float, default=1.5)
    args = parser.parse_args(argv)
    with FaultProxy(args.upstream, port=args.port) as proxy:
        proxy.set_plan(FaultPlan(args.mode, args.probability, args.seed, args.delay))
        print(f"faulting {args.mode} p={args.probability} on {proxy.endpoint} -> {args.upstream}; Ctrl-C stops")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
