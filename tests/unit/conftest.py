"""Unit tests run on moto with the table built from template.yaml's own definition.

moto's conditional updates are not atomic under concurrency: no race test belongs here.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from botocore.retries.standard import ExponentialBackoff

from runstop.store import RunStore, run_store
from runstop_dev.handlers import LambdaContext, load_handler
from tests.unit.support import T0, Handler, moto_tables, share_botocore_session


@pytest.fixture(autouse=True)
def fresh_metrics() -> Iterator[None]:
    """Powertools keeps metrics and dimensions process-wide until they are flushed: a test that
    leaves some behind (a consumer called without its handler) must not tag the next test's."""
    from aws_lambda_powertools import Metrics

    yield
    Metrics().clear_metrics()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A moto account holding every table of the template; yields a low-level client."""
    share_botocore_session(monkeypatch)
    with moto_tables() as client:
        yield client


@pytest.fixture
def store(aws: Any) -> RunStore:
    return run_store()


UNIT_TIMEOUT_MS = 120_000
"""Each invocation's time in unit tests: moto on a shared machine is far slower than DynamoDB,
so the invocation-time budgets (bulk cancel, ?wait) are tested with explicit contexts only."""


@pytest.fixture
def context() -> LambdaContext:
    return LambdaContext(timeout_ms=UNIT_TIMEOUT_MS)


def _invoker(logical_id: str, context: LambdaContext) -> Handler:
    handler = load_handler(logical_id)

    def invoke(event: dict[str, Any], ctx: Any = None) -> dict[str, Any]:
        # A context of its own per invocation, as Lambda gives (its clock starts now).
        fresh = LambdaContext(timeout_ms=context.timeout_ms, clock=context.clock)
        response: dict[str, Any] = handler(event, ctx or fresh)
        return response

    return invoke


@pytest.fixture
def cancel_handler(aws: Any, context: LambdaContext) -> Handler:
    return _invoker("CancelRunFunction", context)


@pytest.fixture
def runs_handler(aws: Any, context: LambdaContext) -> Handler:
    return _invoker("RunsApiFunction", context)


class FakeClock:
    """The domain's clock, moved by hand so timestamps in assertions are exact."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """runstop.clock.now frozen at T0; tests set `clock.moment` to move it."""
    fake = FakeClock(T0)
    monkeypatch.setattr("runstop.clock.now", fake)
    return fake


@dataclass
class FakeTimer:
    """runstop.clock.monotonic and runstop.clock.sleep on a timer that only sleeping moves."""

    now: float = 1_000.0
    slept: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def elapsed_since(self, start: float) -> float:
        return self.now - start


@pytest.fixture
def timer(monkeypatch: pytest.MonkeyPatch) -> FakeTimer:
    """Waits run on a fake timer: a wait of N seconds takes no real time and ends exactly at N."""
    fake = FakeTimer()
    monkeypatch.setattr("runstop.clock.monotonic", fake.monotonic)
    monkeypatch.setattr("runstop.clock.sleep", fake.sleep)
    return fake


@dataclass
class DynamoCalls:
    """The DynamoDB API calls the handlers made, with their arguments (one per call, not per retry)."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def record(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        # `params` is the serialized HTTP request here; its JSON body holds the API arguments.
        self.calls.append((model.name, json.loads(params["body"])))

    @property
    def operations(self) -> list[str]:
        return [name for name, _ in self.calls]

    def clear(self) -> None:
        self.calls.clear()


@pytest.fixture
def ddb_calls(store: RunStore) -> DynamoCalls:
    """Records calls on the process's cached client, the one every handler uses."""
    calls = DynamoCalls()
    store.client.meta.events.register("before-call.dynamodb", calls.record)
    return calls


class _RawBody:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


FAULT_URL = "https://fault-injected.invalid/"


def throttled(request: Any) -> AWSResponse:
    """What DynamoDB answers when a partition is over its throughput.

    For a before-send hook. botocore runs every before-send hook and keeps the first answer,
    so moto's hook would still apply the write: the attempt is aimed at a host moto ignores.
    """
    request.url = FAULT_URL
    body = json.dumps(
        {
            "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "message": "The level of configured provisioned throughput for the table was exceeded.",
        }
    ).encode()
    headers = {"x-amzn-RequestId": "throttled", "Content-Type": "application/x-amz-json-1.0"}
    return AWSResponse(request.url, 400, HTTPHeaders.from_dict(headers), _RawBody(body))


def unreachable(request: Any) -> AWSResponse:
    raise EndpointConnectionError(endpoint_url=request.url)


def read_timeout(request: Any) -> AWSResponse:
    raise ReadTimeoutError(endpoint_url=request.url)


@dataclass
class Faults:
    """Failures injected below the SDK's retries, so each attempt (retry included) meets one."""

    client: Any
    attempts: Counter[str] = field(default_factory=Counter)

    def inject(self, operation: str, fault: Callable[[Any], AWSResponse | None]) -> None:
        """Call `fault` on every attempt of `operation`; a None answer lets the attempt through."""

        def before_send(request: Any, **_: Any) -> AWSResponse | None:
            self.attempts[operation] += 1
            response = fault(request)
            if response is not None:
                request.url = FAULT_URL  # as in throttled(): moto must not apply this attempt
            return response

        # First, ahead of moto's own before-send hook, which would otherwise answer.
        self.client.meta.events.register_first(f"before-send.dynamodb.{operation}", before_send)


@pytest.fixture
def faults(store: RunStore, monkeypatch: pytest.MonkeyPatch) -> Faults:
    """Inject DynamoDB failures into the handlers' client; the SDK retries without sleeping."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)
    return Faults(store.client)


def pytest_configure(config: pytest.Config) -> None:
    # Powertools warns on every invocation that records no metric (most runs API calls).
    config.addinivalue_line("filterwarnings", "ignore:No application metrics to publish:UserWarning")
