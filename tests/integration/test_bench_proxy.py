"""The bench's DynamoDB proxy (bench/proxy.py) in front of DynamoDB Local: what it counts, and the
throttling it answers beyond a per-item cap looks to botocore and to runstop like DynamoDB's own.

The hot-run row and the fallback's integration test rely on exactly that, so it is pinned here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bench.proxy import DynamoProxy, Limits
from runstop.errors import StoreUnavailable
from runstop.status import RunStatus
from runstop.store import translate_errors
from runstop_dev.ddb_local import local_client
from runstop_dev.seed import put_runs, run_item
from runstop_dev.stack import LocalStack
from tests.integration.support import TABLE

pytestmark = pytest.mark.integration

NO_RETRIES = {"mode": "standard", "total_max_attempts": 1}


@pytest.fixture(scope="module")
def proxy(stack: LocalStack) -> Iterator[DynamoProxy]:
    with DynamoProxy(stack.endpoint) as started:
        yield started


@pytest.fixture
def through_proxy(proxy: DynamoProxy) -> Iterator[Any]:
    """A client that sends through the proxy and never retries (each request seen once)."""
    proxy.set_limits(Limits())
    proxy.reset()
    yield local_client(proxy.endpoint, retries=NO_RETRIES)
    proxy.set_limits(Limits())


def _interrupted_run(stack: LocalStack, tenant: str) -> dict[str, Any]:
    run_id = f"hot-{uuid.uuid4().hex[:8]}"
    put_runs(stack.client(), stack.refs[TABLE], [run_item(tenant, run_id, RunStatus.INTERRUPTED, datetime.now(UTC))])
    return {"tenant_id": {"S": tenant}, "run_id": {"S": run_id}}


def _duplicate_cancel(client: Any, table: str, key: dict[str, Any]) -> None:
    """The conditional update of a cancel, on a run that is no longer active (so it fails)."""
    client.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET #status = :interrupted",
        ConditionExpression="#status IN (:pending, :running)",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={
            ":interrupted": {"S": "interrupted"},
            ":pending": {"S": "pending"},
            ":running": {"S": "running"},
        },
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    )


def test_given_no_cap_when_requests_pass_then_requests_and_capacity_units_are_counted(
    stack: LocalStack, proxy: DynamoProxy, through_proxy: Any, tenant: str
) -> None:
    # Given
    table = stack.refs[TABLE]
    key = _interrupted_run(stack, tenant)
    # When: an eventually consistent read, a consistent one, and a conditional write that fails
    through_proxy.get_item(TableName=table, Key=key)
    through_proxy.get_item(TableName=table, Key=key, ConsistentRead=True)
    with pytest.raises(ClientError) as failed:
        _duplicate_cancel(through_proxy, table, key)
    # Then
    assert failed.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    stats = proxy.stats()
    assert stats["requests"] == {"GetItem": 2, "UpdateItem": 1}
    assert stats["results"] == {"GetItem ok": 2, "UpdateItem condition_failed": 1}
    assert stats["units"] == {"read": 1.5, "write": 1.0}


@pytest.mark.parametrize(
    ("error", "modeled"),
    [
        ("ProvisionedThroughputExceededException", True),
        ("ThrottlingException", False),  # not in DynamoDB's model: botocore keeps only code and message
        ("RequestLimitExceeded", True),
    ],
)
def test_given_a_cap_of_one_write_a_second_when_a_second_write_follows_then_it_is_throttled_as_dynamodb_does(
    stack: LocalStack, proxy: DynamoProxy, through_proxy: Any, tenant: str, error: str, modeled: bool
) -> None:
    # Given
    table = stack.refs[TABLE]
    key = _interrupted_run(stack, tenant)
    proxy.set_limits(Limits(write_units_per_s=1, error=error))
    with pytest.raises(ClientError):
        _duplicate_cancel(through_proxy, table, key)  # takes the second's one unit
    # When
    with pytest.raises(ClientError) as throttled:
        _duplicate_cancel(through_proxy, table, key)
    # Then: botocore sees DynamoDB's error, with the hot-key reason
    answer = throttled.value.response
    assert answer["Error"]["Code"] == error
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 400
    if modeled:
        assert answer["ThrottlingReasons"][0]["reason"] == "TableWriteKeyRangeThroughputExceeded"
    assert proxy.stats()["results"]["UpdateItem throttled"] == 1
    # and reads of that item, and writes to other items, are not held back
    through_proxy.get_item(TableName=table, Key=key)
    with pytest.raises(ClientError) as other:
        _duplicate_cancel(through_proxy, table, _interrupted_run(stack, tenant))
    assert other.value.response["Error"]["Code"] == "ConditionalCheckFailedException"


def test_given_a_throttled_item_when_runstop_cancels_past_its_retries_then_the_store_says_unavailable(
    stack: LocalStack, proxy: DynamoProxy, tenant: str
) -> None:
    # Given: a cap so low that every retry of the SDK is throttled too
    key = _interrupted_run(stack, tenant)
    proxy.set_limits(Limits(write_units_per_s=0.001))
    proxy.reset()
    client = local_client(proxy.endpoint, retries={"mode": "standard", "total_max_attempts": 2})
    # When / Then: the failure runstop maps to 503 + Retry-After
    try:
        with pytest.raises(StoreUnavailable), translate_errors():
            _duplicate_cancel(client, stack.refs[TABLE], key)
    finally:
        proxy.set_limits(Limits())
    assert proxy.stats()["results"] == {"UpdateItem throttled": 2}
