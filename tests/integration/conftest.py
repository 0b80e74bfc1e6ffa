"""Integration fixtures: one DynamoDB Local and one local runner for the whole session.

Concurrency is tested here and only here: DynamoDB Local runs the real engine's conditional
writes, where moto does not make them atomic under threads. Every test uses fresh run ids
(and its own tenant), so tests sharing the session's table cannot see each other's runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from runstop.store import RunStore, reset_caches
from runstop_dev.contract import docs_routes
from runstop_dev.jwt_auth import LocalIssuer
from runstop_dev.local_api import LocalApi
from runstop_dev.stack import LocalStack, local_stack
from runstop_dev.template import table_definition
from tests.integration.support import TABLE

QUIET_TABLE = "RunsTableWithoutStream"


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    """DynamoDB Local, in memory on a free loopback port, with the template's tables."""
    with local_stack() as started:
        yield started


@pytest.fixture(autouse=True)
def handler_env(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The environment a function gets, so the domain's own factories reach DynamoDB Local.

    Set per test, not per session: the unit tests run later in the same session and must
    never see this endpoint (moto does not intercept requests to it).
    """
    for name, value in {**stack.env, "TABLE_NAME": stack.refs[TABLE]}.items():
        monkeypatch.setenv(name, value)
    reset_caches()
    yield
    reset_caches()


@pytest.fixture(scope="session")
def store(stack: LocalStack) -> RunStore:
    """A store whose connection pool lets 64 threads send at once (botocore's default is 10)."""
    client = stack.client(max_pool_connections=80, retries={"mode": "standard", "max_attempts": 3})
    return RunStore(client, stack.refs[TABLE])


@pytest.fixture(scope="session")
def quiet_store(stack: LocalStack, store: RunStore) -> RunStore:
    """A runs table made from the template's definition without its stream, for the races that
    write thousands of runs and call the stream's consumers themselves: DynamoDB Local keeps all
    stream records in one unindexed table, so every later write of the session would pay for them
    (runs ~3x slower after a few thousand)."""
    definition = table_definition(QUIET_TABLE)
    definition.pop("StreamSpecification", None)
    store.client.create_table(**definition)
    store.client.get_waiter("table_exists").wait(TableName=QUIET_TABLE, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    return RunStore(store.client, QUIET_TABLE)


@pytest.fixture
def tenant() -> str:
    return f"it-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def api(stack: LocalStack) -> Iterator[LocalApi]:
    """The template's HTTP API on a free loopback port, four environments per function, and
    GET /openapi.json as `make run` serves it."""
    with LocalApi(stack.refs, stack.env, port=0, workers=4, quiet=True, extra_routes=docs_routes()) as served:
        served.warm()
        yield served


@pytest.fixture(scope="session")
def http(api: LocalApi) -> Iterator[httpx.Client]:
    """One thread-safe client with a connection per concurrent caller."""
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    with httpx.Client(base_url=api.url, timeout=60, limits=limits) as client:
        yield client


@pytest.fixture(scope="session")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> LocalIssuer:
    """The local issuer, with a key of its own (not the developer's .local/jwt)."""
    return LocalIssuer(tmp_path_factory.mktemp("jwt"))


@pytest.fixture(scope="session")
def jwt_api(stack: LocalStack, issuer: LocalIssuer) -> Iterator[LocalApi]:
    """The API in JWT mode (RUNSTOP_AUTH=jwt): every request needs a token `issuer` signed."""
    with LocalApi(stack.refs, stack.env, port=0, workers=2, quiet=True, issuer=issuer) as served:
        served.warm()
        yield served


@pytest.fixture(scope="session")
def jwt_client(jwt_api: LocalApi) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=jwt_api.url, timeout=60) as http:
        yield http
