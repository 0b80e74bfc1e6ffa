"""A counting HTTP proxy in front of DynamoDB Local: requests counted at the wire.

Counting where the bytes pass, not in the SDK, means retries and every hidden read are seen,
whichever code made them. Each request's X-Amz-Target (e.g. DynamoDB_20120810.UpdateItem)
is counted before it is forwarded, so a snapshot taken after the answer includes it.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from urllib.parse import urlsplit

_HEAD_END = b"\r\n\r\n"


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    """The message body as sent (chunked bodies are relayed chunk by chunk, unchanged)."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0], 16)
            data = await reader.readexactly(size + 2)
            parts.append(size_line + data)
            if size == 0:
                return b"".join(parts)
    length = int(headers.get("content-length") or 0)
    return await reader.readexactly(length) if length else b""


class CountingProxy:
    """Forwards HTTP/1.1 (keep-alive) to `upstream` and counts requests by X-Amz-Target."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="counting-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection(*self.upstream)
        try:
            while True:
                try:
                    head = await client_r.readuntil(_HEAD_END)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                headers = _headers(head)
                body = await _read_body(client_r, headers)
                target = headers.get("x-amz-target", "?").rsplit(".", 1)[-1]
                with self._lock:
                    self.counts[target] += 1
                up_w.write(head + body)
                await up_w.drain()
                reply_head = await up_r.readuntil(_HEAD_END)
                reply_body = await _read_body(up_r, _headers(reply_head))
                client_w.write(reply_head + reply_body)
                await client_w.drain()
                if _headers(reply_head).get("connection", "").lower() == "close":
                    return
        finally:
            up_w.close()
            client_w.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    def start(self) -> CountingProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        async def _close() -> None:
            if self._server is not None:
                self._server.close()
                self._server.close_clients()  # keep-alive connections would hold wait_closed
                await asyncio.wait_for(self._server.wait_closed(), 5)

        asyncio.run_coroutine_threadsafe(_close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> CountingProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
