"""For the client's integration tests: what the server can do, `runstop` as a process, a lossy proxy.

Features the client speaks before the service has them (worker_id, stop deadlines, force, the
stop filter) are detected from the service's own contract, openapi.json (generated from the
code; a test fails on drift), so the tests that need them turn on by themselves once it has them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from runstop_dev.template import REPO_ROOT

RUNSTOP = Path(sys.executable).parent / "runstop"
"""The command `make install` puts in .venv/bin."""
PROCESS_TIMEOUT = 120.0
"""Generous: the machine is shared; every wait ends as soon as its condition holds."""


@dataclass(frozen=True)
class ServerFeatures:
    worker_id: bool
    force: bool
    stop_deadline: bool
    stop_filter: bool
    stop_grace: bool

    @classmethod
    def of(cls, document: dict[str, Any]) -> ServerFeatures:
        schemas = document.get("components", {}).get("schemas", {})

        def props(name: str) -> set[str]:
            return set(schemas.get(name, {}).get("properties", {}))

        start = document.get("paths", {}).get("/runs/{run_id}/start", {}).get("post", {})
        body = json.dumps(start.get("requestBody", {}))
        refs = re.findall(r"#/components/schemas/(\w+)", body)
        listing = document.get("paths", {}).get("/runs", {}).get("get", {})
        return cls(
            worker_id="worker_id" in body or any("worker_id" in props(ref) for ref in refs),
            force="force" in props("CancelRequest"),
            stop_deadline="stop_deadline" in props("Run"),
            stop_filter=any(p.get("name") == "stop" for p in listing.get("parameters", [])),
            stop_grace="stop_grace_seconds" in props("CreateRunRequest"),
        )


FEATURES = ServerFeatures.of(json.loads((REPO_ROOT / "openapi.json").read_text()))
needs_worker_id = pytest.mark.skipif(
    not FEATURES.worker_id, reason="the service has no worker_id yet (issue 9): not in start's body in openapi.json"
)
needs_stop_deadline = pytest.mark.skipif(
    not FEATURES.stop_deadline, reason="the service has no stop_deadline yet (issue 10): not in Run in openapi.json"
)
needs_force = pytest.mark.skipif(
    not FEATURES.force, reason="the service has no force yet (issue 10): not in CancelRequest in openapi.json"
)
needs_stop_filter = pytest.mark.skipif(
    not FEATURES.stop_filter, reason="the service has no ?stop= filter yet (issue 10): not in GET /runs"
)


def grace(seconds: float) -> float | None:
    """stop_grace_seconds for a new run when the service takes it, else None (not sent)."""
    return seconds if FEATURES.stop_grace else None


def eventually(condition: Callable[[], Any], timeout: float = PROCESS_TIMEOUT, every: float = 0.05) -> Any:
    """Poll until `condition()` is truthy; its value, or AssertionError at the timeout."""
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"not within {timeout}s: {condition}")
        time.sleep(every)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def runstop_env(url: str, tenant: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNSTOP_")}
    return {**env, "RUNSTOP_URL": url, "RUNSTOP_TENANT": tenant, "RUNSTOP_DEADLINE": "20", **extra}


class Runstop:
    """One `runstop ...` process; its stderr is read as it comes (the run id, the process group)."""

    GROUP = re.compile(r"run (\S+) started: .* is process group (\d+)")

    def __init__(self, url: str, tenant: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.process = subprocess.Popen(
            [str(RUNSTOP), *args],
            env=runstop_env(url, tenant, **(env or {})),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.run_id: str | None = None
        self.pgid: int | None = None
        self._started = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            found = self.GROUP.search(line)
            if found:
                self.run_id, self.pgid = found.group(1), int(found.group(2))
                self._started.set()
        self._started.set()

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def started(self) -> Runstop:
        """Wait until CMD runs; the process group is then known."""
        self._started.wait(PROCESS_TIMEOUT)
        assert self.pgid is not None, f"runstop did not start the command:\n{self.stderr}"
        return self

    def wait(self, timeout: float = PROCESS_TIMEOUT) -> int:
        code = self.process.wait(timeout)
        self._reader.join(timeout)
        return code

    @property
    def stdout(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.read()

    def kill(self) -> None:
        """Whatever the test's outcome: nothing it started may survive it."""
        for pgid in (self.process.pid, self.pgid):
            if pgid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)


@contextlib.contextmanager
def runstops() -> Iterator[list[Runstop]]:
    """Collects the processes a test starts, and kills what is left of them at its end."""
    started: list[Runstop] = []
    try:
        yield started
    finally:
        for process in started:
            process.kill()


def runstop(url: str, tenant: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run one operator command to its end."""
    return subprocess.run(
        [str(RUNSTOP), *args],
        env=runstop_env(url, tenant, **(env or {})),
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )


class LossyProxy:
    """Forwards every request to the API, but drops the answer of the first `times` requests that
    `drop(method, path)` selects: the request is applied upstream, then the connection is closed
    without a response, as when an answer is lost on the way back."""

    def __init__(self, upstream: str, drop: Callable[[str, str], bool], times: int = 1) -> None:
        self.upstream = httpx.Client(base_url=upstream, timeout=60)
        self.drop = drop
        self.remaining = times
        self.dropped: list[str] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                skip = {"host", "content-length", "connection", "accept-encoding"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                answer = proxy.upstream.request(self.command, self.path, content=body, headers=headers)
                if proxy._take(self.command, self.path):
                    self.close_connection = True  # applied upstream; the caller never hears of it
                    return
                self.send_response(answer.status_code)
                for name in ("Content-Type", "Retry-After"):
                    if name in answer.headers:
                        self.send_header(name, answer.headers[name])
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _take(self, method: str, path: str) -> bool:
        with self.lock:
            if self.remaining > 0 and self.drop(method, path):
                self.remaining -= 1
                self.dropped.append(f"{method} {path}")
                return True
        return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> LossyProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.upstream.close()
