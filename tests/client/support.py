"""A scripted runs API behind httpx's MockTransport, and a clock that only moves when slept on.

Runs on Python 3.10 too (the client's oldest): nothing here may need a newer Python.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from runstop_client import AsyncClient, Client, RetryPolicy

URL = "http://runstop.test"
T0 = "2026-11-23T21:12:27.000000Z"
T1 = "2026-11-23T21:13:27.000000Z"

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def problem(status: int, slug: str, headers: dict[str, str] | None = None, **extensions: Any) -> httpx.Response:
    body = {"type": f"urn:runstop:problem:{slug}", "title": slug, "status": status, "detail": slug, **extensions}
    return httpx.Response(
        status, headers={"Content-Type": "application/problem+json", **(headers or {})}, content=json.dumps(body)
    )


def unavailable(retry_after: str | None = "1") -> httpx.Response:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    return problem(503, "store-unavailable", headers)


def run_json(run_id: str = "run-1", status: str = "running", **extra: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "tenant_id": "t",
        "status": status,
        "created_at": T0,
        "updated_at": T0,
        "started_at": T0 if status != "pending" else None,
        "ended_at": None,
        "heartbeat_at": None,
        "cancel": None,
        "stopped_at": None,
        "version": 2,
        "metadata": {},
        **extra,
    }


def ok(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)


CANCEL = {"reason": "user pressed Stop", "source": "api", "requested_at": T0}


@dataclass
class FakeClock:
    """Monotonic time that advances only by what the client sleeps."""

    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


class FakeApi:
    """Answers queued per "METHOD /path"; the last answer of a route repeats. Records every request."""

    def __init__(self) -> None:
        self.answers: dict[str, list[Answer]] = {}
        self.requests: list[httpx.Request] = []
        self.clock = FakeClock()

    def on(self, route: str, *answers: Answer) -> FakeApi:
        self.answers.setdefault(route, []).extend(answers)
        return self

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = f"{request.method} {request.url.path}"
        queue = self.answers.get(route)
        if not queue:
            raise AssertionError(f"unexpected request {route}")
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        return self.handle(request)

    def client(self, deadline: float = 30.0, **kwargs: Any) -> Client:
        return Client(
            URL,
            transport=httpx.MockTransport(self.handle),
            retry=RetryPolicy(deadline=deadline),
            sleep=self.clock.sleep,
            clock=self.clock,
            jitter=lambda: 0.0,
            **kwargs,
        )

    def async_client(self, deadline: float = 30.0, **kwargs: Any) -> AsyncClient:
        return AsyncClient(
            URL,
            transport=httpx.MockTransport(self.handle_async),
            retry=RetryPolicy(deadline=deadline),
            sleep=self.clock.async_sleep,
            clock=self.clock,
            jitter=lambda: 0.0,
            **kwargs,
        )

    def sent(self, route: str | None = None) -> list[httpx.Request]:
        return [r for r in self.requests if route is None or f"{r.method} {r.url.path}" == route]

    def bodies(self, route: str) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.sent(route)]

    def keys(self, route: str | None = None) -> list[str | None]:
        return [r.headers.get("Idempotency-Key") for r in self.sent(route)]
