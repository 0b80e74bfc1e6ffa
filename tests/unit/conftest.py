"""Unit tests run on moto with the table built from template.yaml's own definition.

moto's conditional updates are not atomic under concurrency: no race test belongs here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from runstop.store import RunStore, reset_caches, run_store
from runstop_dev.ddb_local import ensure_tables
from runstop_dev.handlers import LambdaContext, load_handler
from runstop_dev.stack import local_refs

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@pytest.fixture
def aws() -> Iterator[Any]:
    """A moto account holding every table of the template; yields a low-level client."""
    reset_caches()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        ensure_tables(client, local_refs())
        yield client
    reset_caches()


@pytest.fixture
def store(aws: Any) -> RunStore:
    return run_store()


@pytest.fixture
def context() -> LambdaContext:
    return LambdaContext()


def _invoker(logical_id: str, context: LambdaContext) -> Handler:
    handler = load_handler(logical_id)
    return lambda event, ctx=None: handler(event, ctx or context)


@pytest.fixture
def cancel_handler(aws: Any, context: LambdaContext) -> Handler:
    return _invoker("CancelRunFunction", context)


@pytest.fixture
def runs_handler(aws: Any, context: LambdaContext) -> Handler:
    return _invoker("RunsApiFunction", context)
