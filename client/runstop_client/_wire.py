"""What the sync and async clients share: requests as values, the retry policy, answers to values.

Neither client does I/O here, so the retry decisions are tested without a network or a clock.
"""

from __future__ import annotations

import email.utils
import json
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import httpx

from runstop_client.errors import RunstopError, Unavailable, error_for

DEFAULT_URL = "http://127.0.0.1:3000"
"""The local runner (`make run`)."""
TENANT_HEADER = "X-Tenant-Id"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
"""Answers that say nothing happened or nothing can be said yet: retrying with the same key is safe."""
RETRY_PROBLEMS = frozenset({"urn:runstop:problem:request-in-progress"})
"""A 409 that means "the first request with this Idempotency-Key is still being answered"."""
RETRY_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
"""Failures after which the request may or may not have been applied: a lost answer."""


@dataclass(frozen=True)
class RetryPolicy:
    """Retry until `deadline` seconds after the first attempt: Retry-After when the service gives
    one, else exponential backoff from `base` up to `cap` with jitter (so many clients that failed
    together do not come back together)."""

    deadline: float = 30.0
    base: float = 0.25
    cap: float = 5.0

    def delay(self, attempt: int, retry_after: float | None, elapsed: float, jitter: float) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None when that would pass the deadline.

        `jitter` is a number in [0, 1); the wait is between half and all of the backoff.
        """
        if retry_after is not None:
            wait = retry_after
        else:
            ceiling = min(self.cap, self.base * 2 ** (attempt - 1))
            wait = ceiling / 2 + ceiling / 2 * jitter
        return None if elapsed + wait > self.deadline else wait


@dataclass(frozen=True)
class Request:
    """One logical call; its Idempotency-Key is fixed here, so every retry of it sends the same key."""

    method: str
    path: str
    body: Any = None
    params: dict[str, Any] | None = None
    idempotency_key: str | None = None
    extra_timeout: float = 0.0
    """Added to the read timeout (a cancel with ?wait=N keeps the answer up to N seconds)."""
    ok: frozenset[int] = field(default_factory=lambda: frozenset({200, 201, 202}))

    @classmethod
    def post(cls, path: str, body: Any = None, *, key: str | None = None, **kwargs: Any) -> Request:
        return cls("POST", path, body, idempotency_key=key or new_key(), **kwargs)

    def headers(self) -> dict[str, str]:
        return {"Idempotency-Key": self.idempotency_key} if self.idempotency_key else {}

    def content(self) -> bytes | None:
        return None if self.body is None else json.dumps(self.body, separators=(",", ":")).encode()


def new_key() -> str:
    return str(uuid.uuid4())


def retry_after(response: httpx.Response, now: datetime | None = None) -> float | None:
    """The Retry-After header in seconds (delta-seconds or an HTTP date), None when absent or bad."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, (moment - (now or datetime.now(timezone.utc))).total_seconds())


def body_of(response: httpx.Response) -> Any:
    """The JSON body, or None when there is none or it is not JSON (an API Gateway error page)."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def should_retry(response: httpx.Response) -> bool:
    if response.status_code in RETRY_STATUSES:
        return True
    if response.status_code == 409:
        body = body_of(response)
        return isinstance(body, dict) and body.get("type") in RETRY_PROBLEMS
    return False


def answer(request: Request, response: httpx.Response) -> Any:
    """The JSON of a success, or the typed exception of anything else."""
    if response.status_code in request.ok:
        return body_of(response)
    raise error_for(response.status_code, body_of(response), response.reason_phrase or "error")


def gave_up(request: Request, attempts: int, last: httpx.Response | Exception | None) -> RunstopError:
    """The exception once the deadline is reached: the last answer's own, or Unavailable."""
    where = f"{request.method} {request.path}"
    if isinstance(last, httpx.Response):
        error = error_for(last.status_code, body_of(last), last.reason_phrase or "error")
        if isinstance(error, Unavailable):
            error.args = (f"{where}: {error} (gave up after {attempts} attempts)",)
        return error
    return Unavailable(f"{where}: {last!r} (gave up after {attempts} attempts)")


@dataclass(frozen=True)
class Settings:
    """Where the service is, who calls it, and for how long a call is retried.

    `from_env` reads RUNSTOP_URL, RUNSTOP_TOKEN, RUNSTOP_TENANT and RUNSTOP_DEADLINE (seconds).
    """

    url: str = DEFAULT_URL
    token: str | None = None
    tenant: str | None = None
    deadline: float | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        deadline = env.get("RUNSTOP_DEADLINE")
        try:
            seconds = float(deadline) if deadline else None
        except ValueError:
            raise ValueError(f"RUNSTOP_DEADLINE must be a number of seconds, not {deadline!r}") from None
        return cls(
            url=env.get("RUNSTOP_URL") or DEFAULT_URL,
            token=env.get("RUNSTOP_TOKEN") or None,
            tenant=env.get("RUNSTOP_TENANT") or None,
            deadline=seconds,
        )

    def headers(self, user_agent: str) -> dict[str, str]:
        headers = {"User-Agent": user_agent, "Accept": "application/json, application/problem+json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.tenant:
            headers[TENANT_HEADER] = self.tenant
        return headers


Clock = Callable[[], float]
Jitter = Callable[[], float]
