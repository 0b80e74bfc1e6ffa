"""DynamoDB access for runs through the low-level client.

Every state change is one conditional UpdateItem/PutItem, so no read-modify-write race
exists anywhere; on a failed condition the item comes back in the same round trip
(ReturnValuesOnConditionCheckFailure=ALL_OLD) and the caller decides from it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from runstop import clock
from runstop.errors import InvalidInput, RunAlreadyExists, StoreUnavailable
from runstop.item_codec import deserialize_item, serialize
from runstop.settings import settings
from runstop.status import Change, Transition

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

# Error codes that say the request was throttled: nothing is known of the write's fate.
_THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "TransactionConflictException",
        "TransactionInProgressException",
    }
)


def client_config() -> Config:
    """Standard retry mode with short timeouts: a stuck call must become a 503, not a hang."""
    config = settings()
    return Config(
        # total_max_attempts counts the first try, as AWS_MAX_ATTEMPTS does; botocore's
        # max_attempts would count retries only (3 -> 4 requests).
        retries={"mode": "standard", "total_max_attempts": config.dynamodb_max_attempts},
        connect_timeout=config.dynamodb_connect_timeout,
        read_timeout=config.dynamodb_read_timeout,
        tcp_keepalive=True,
        # Bulk cancel decides up to 16 runs at once on this one client (runstop.bulk).
        max_pool_connections=16,
    )


ACTIVE_INDEX = "Active"
"""The sparse index of pending and running runs (active_pk, sweep_at), KEYS_ONLY."""
STOPPING_INDEX = "Stopping"
"""The sparse index of interrupted runs still stopping (stopping_pk, stop_due), KEYS_ONLY."""
SPARSE_INDEXES = {ACTIVE_INDEX: ("active_pk", "sweep_at"), STOPPING_INDEX: ("stopping_pk", "stop_due")}


@dataclass(frozen=True, slots=True)
class ActivePage:
    """Keys of one Active-index page, where the next page starts (None: last), its read cost."""

    keys: list[tuple[str, str]]
    next_key: Mapping[str, Any] | None
    read_units: float
    positions: list[str] = field(default_factory=list)
    """Each run's sort key in the index (sweep_at, or stop_due in microseconds), as sent."""


@dataclass(frozen=True, slots=True)
class Offset:
    """A number DynamoDB computes inside the update: `value + <attribute>` of the stored run
    (`default` in place of a missing attribute), so a write can depend on the run without a read."""

    value: int
    attribute: str
    default: int


TRANSACTION_CONFLICT_TRIES = 6
"""Tries of a write that meets a transaction in progress on its item (a child being created
under a run makes the run's own writes wait that long at most)."""


def conflict_backoff(attempt: int) -> float:
    """Seconds to wait before try `attempt + 1` after a transaction conflict: short, jittered."""
    return float(min(0.2, 0.005 * 2**attempt) * (0.5 + random.random()))


def update_request(
    table_name: str,
    key: Mapping[str, Any],
    transition: Transition,
    change: Change,
    condition: str | None = None,
    condition_values: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The arguments of the conditional update that makes `transition` (the status machine's
    sources and guard, plus `condition`): for UpdateItem, or as the Update of a transaction."""
    attributes = tuple(
        (attr, value.attribute if isinstance(value, Offset) else None) for attr, value in change.set.items()
    )
    expression, condition_expression, names, fixed_values = _update_shape(
        transition, attributes, change.remove, condition
    )
    values = dict(fixed_values)
    values.update({placeholder: serialize(value) for placeholder, value in (condition_values or {}).items()})
    for i, value in enumerate(change.set.values()):
        if isinstance(value, Offset):
            values[f":s{i}"] = serialize(value.value)
            values[f":o{i}"] = serialize(value.default)
        else:
            values[f":s{i}"] = serialize(value)
    return {
        "TableName": table_name,
        "Key": dict(key),
        "UpdateExpression": expression,
        "ConditionExpression": condition_expression,
        "ExpressionAttributeNames": dict(names),
        "ExpressionAttributeValues": values,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


@lru_cache(maxsize=256)
def _update_shape(
    transition: Transition,
    attributes: tuple[tuple[str, str | None], ...],
    remove: tuple[str, ...],
    condition: str | None,
) -> tuple[str, str, dict[str, str], dict[str, Any]]:
    """An update's expressions, names and constant values: the same for every write of one
    transition with the same attributes, so built once (bench row "warm path": about a fifth of
    the domain's own time on the cancel path). `attributes`: each set attribute, with the
    attribute its Offset adds to (None: a plain value). Callers copy the dicts they are given."""
    names = {"#status": "status"}
    values: dict[str, Any] = {":one": {"N": "1"}}
    sets = ["version = version + :one"]
    for i, (attr, offset_attribute) in enumerate(attributes):
        names[f"#s{i}"] = attr
        if offset_attribute is not None:
            names[f"#o{i}"] = offset_attribute
            sets.append(f"#s{i} = :s{i} + if_not_exists(#o{i}, :o{i})")
        else:
            sets.append(f"#s{i} = :s{i}")
    allowed = []
    for i, status in enumerate(sorted(transition.sources)):
        values[f":from{i}"] = {"S": str(status)}
        allowed.append(f":from{i}")
    clauses = [f"#status IN ({', '.join(allowed)})", transition.guard, condition]
    expression = "SET " + ", ".join(sets)
    if remove:
        for i, attr in enumerate(remove):
            names[f"#r{i}"] = attr
        expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(remove)))
    return expression, " AND ".join(c for c in clauses if c), names, values


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why one item of a transaction did not apply: DynamoDB's code ("None" for an item that was
    fine) and, for a failed condition, the item as it stood (None: absent)."""

    code: str
    item: dict[str, Any] | None

    @property
    def condition_failed(self) -> bool:
        return self.code == "ConditionalCheckFailed"


class TransactionRefused(Exception):
    """A transaction did not apply; `reasons` has one Refusal per item, in order."""

    def __init__(self, reasons: list[Refusal]) -> None:
        super().__init__(", ".join(r.code for r in reasons) or "transaction cancelled")
        self.reasons = reasons

    @property
    def conflicted(self) -> bool:
        """Only another transaction in flight on one of the items: trying again may well apply."""
        return not any(r.condition_failed for r in self.reasons)


class ConditionFailed(Exception):
    """A conditional write did not apply; `item` is the run as it stood (None if absent)."""

    def __init__(self, item: dict[str, Any] | None) -> None:
        super().__init__("condition failed")
        self.item = item


@contextmanager
def translate_errors() -> Iterator[None]:
    """Failures that outlast botocore's retries, as the domain's answers to them.

    Any answer of HTTP status 500 or more, any throttling code, and any failure to get an answer
    at all (connection, timeout, a body that cannot be read) is StoreUnavailable (503 +
    Retry-After): nothing can be said of the write. A ValidationException is DynamoDB refusing
    the request's data, InvalidInput (400) with its reason. Anything else is a bug (500).
    """
    try:
        yield
    except ClientError as error:
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        code = error.response.get("Error", {}).get("Code")
        if status >= 500 or code in _THROTTLING_CODES:
            raise StoreUnavailable(str(error), throttled=code in _THROTTLING_CODES) from error
        if code == "ValidationException":
            message = error.response.get("Error", {}).get("Message", "")
            raise InvalidInput(f"DynamoDB cannot store this request's data: {message}") from error
        raise
    except ParamValidationError as error:
        raise InvalidInput(f"the request's data cannot be sent to DynamoDB: {error}") from error
    except BotoCoreError as error:
        raise StoreUnavailable(str(error)) from error


class RunStore:
    """Runs in one table keyed by (tenant_id, run_id)."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    @staticmethod
    def key(tenant_id: str, run_id: str) -> dict[str, Any]:
        return {"tenant_id": {"S": tenant_id}, "run_id": {"S": run_id}}

    def get(self, tenant_id: str, run_id: str, *, consistent: bool = True) -> dict[str, Any] | None:
        """Strongly consistent by default: the authoritative state, never a stale replica. An
        eventually consistent read (half the read units) serves where any final status decides."""
        with translate_errors():
            response = self.client.get_item(
                TableName=self.table_name, Key=self.key(tenant_id, run_id), ConsistentRead=consistent
            )
        item = response.get("Item")
        return deserialize_item(item) if item else None

    def put_new(self, item: Mapping[str, Any]) -> None:
        """Create a run; raises RunAlreadyExists (with the run as stored) rather than overwrite one."""
        with translate_errors():
            try:
                self.client.put_item(
                    TableName=self.table_name,
                    Item={k: serialize(v) for k, v in item.items() if v is not None},
                    ConditionExpression="attribute_not_exists(run_id)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except self.client.exceptions.ConditionalCheckFailedException as error:
                old: Mapping[str, Any] | None = error.response.get("Item")  # type: ignore[assignment]
                raise RunAlreadyExists(str(item["run_id"]), deserialize_item(old) if old else None) from error

    def active_page(
        self, partition: str, *, before: str, limit: int, start_key: Mapping[str, Any] | None = None
    ) -> ActivePage:
        """One page of the sparse Active index: runs of `partition` ("running#3") whose
        sweep_at is older than `before`, oldest first. Only active runs are in that index,
        so this costs the same whatever the number of finished runs in the table."""
        return self._sparse_page(ACTIVE_INDEX, partition, {"S": before}, limit, start_key)

    def stopping_page(
        self, partition: str, *, before_us: int, limit: int, start_key: Mapping[str, Any] | None = None
    ) -> ActivePage:
        """One page of the sparse Stopping index: interrupted runs of `partition` ("stopping#3")
        not yet acknowledged nor marked overdue whose stop deadline is before `before_us`. Only
        runs still stopping are in it, so the cost follows them, not the table."""
        return self._sparse_page(STOPPING_INDEX, partition, {"N": str(before_us)}, limit, start_key)

    def _sparse_page(
        self, index: str, partition: str, before: Mapping[str, str], limit: int, start_key: Mapping[str, Any] | None
    ) -> ActivePage:
        partition_key, sort_key = SPARSE_INDEXES[index]
        extra: dict[str, Any] = {"ExclusiveStartKey": start_key} if start_key else {}
        with translate_errors():
            response = self.client.query(
                TableName=self.table_name,
                IndexName=index,
                KeyConditionExpression="#pk = :pk AND #sk < :before",
                ExpressionAttributeNames={"#pk": partition_key, "#sk": sort_key},
                ExpressionAttributeValues={":pk": {"S": partition}, ":before": dict(before)},
                Limit=limit,
                ReturnConsumedCapacity="TOTAL",
                **extra,
            )
        items = response.get("Items", [])
        keys = [(item["tenant_id"]["S"], item["run_id"]["S"]) for item in items]
        positions = [str(next(iter(item[sort_key].values()))) for item in items]
        units = float(response.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0))
        return ActivePage(keys, response.get("LastEvaluatedKey"), units, positions)

    def apply(
        self,
        tenant_id: str,
        run_id: str,
        transition: Transition,
        change: Change,
        *,
        condition: str | None = None,
        condition_values: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One conditional UpdateItem: `change` applies only if the run's status is one of the
        transition's sources and its guard (and `condition`, whose `:placeholders` take
        `condition_values`) holds.

        Returns the run after the update; raises ConditionFailed with the run as it was.
        """
        request = update_request(
            self.table_name, self.key(tenant_id, run_id), transition, change, condition, condition_values
        )
        for attempt in range(TRANSACTION_CONFLICT_TRIES):
            with translate_errors():
                try:
                    response = self.client.update_item(**request, ReturnValues="ALL_NEW")
                except self.client.exceptions.ConditionalCheckFailedException as error:
                    old: Mapping[str, Any] | None = error.response.get("Item")  # type: ignore[assignment]
                    raise ConditionFailed(deserialize_item(old) if old else None) from error
                except self.client.exceptions.TransactionConflictException:
                    # A transaction holds the run this instant (a child being created under it):
                    # nothing was written, and the transaction ends within milliseconds.
                    if attempt + 1 == TRANSACTION_CONFLICT_TRIES:
                        raise
                    clock.sleep(conflict_backoff(attempt))
                    continue
            return deserialize_item(response["Attributes"])
        raise AssertionError("unreachable")  # pragma: no cover

    def transact(self, items: Sequence[Mapping[str, Any]]) -> None:
        """One TransactWriteItems: every item applies, or none does.

        Raises TransactionRefused with each item's reason (and, for a failed condition, the item
        as it stood) so the caller decides from what it sees. The SDK sends one ClientRequestToken
        with all its retries, so a retry after a lost answer does not apply the writes twice.
        """
        with translate_errors():
            try:
                self.client.transact_write_items(TransactItems=list(items))  # type: ignore[arg-type]
            except self.client.exceptions.TransactionCanceledException as error:
                raw = error.response.get("CancellationReasons") or []
                reasons = [
                    Refusal(str(r.get("Code") or "None"), deserialize_item(r["Item"]) if r.get("Item") else None)
                    for r in raw
                ]
                raise TransactionRefused(reasons) from error

    def query_page(
        self,
        index_name: str,
        key_condition: str,
        values: Mapping[str, Any],
        *,
        limit: int,
        newest_first: bool = False,
        start_key: Mapping[str, Any] | None = None,
        consistent: bool = False,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None, float]:
        """One page of an index (None: the table) under `key_condition`: the items, where the next
        page starts (None: last) and the read units it cost."""
        extra: dict[str, Any] = {"ExclusiveStartKey": dict(start_key)} if start_key else {}
        if index_name:
            extra["IndexName"] = index_name
        with translate_errors():
            response = self.client.query(
                TableName=self.table_name,
                KeyConditionExpression=key_condition,
                ExpressionAttributeValues={name: serialize(value) for name, value in values.items()},
                ScanIndexForward=not newest_first,
                Limit=limit,
                ConsistentRead=consistent,
                ReturnConsumedCapacity="TOTAL",
                **extra,
            )
        items = [deserialize_item(item) for item in response.get("Items", [])]
        units = float(response.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0))
        return items, response.get("LastEvaluatedKey"), units

    def query_newest_first(
        self,
        index_name: str,
        partition: tuple[str, str],
        *,
        limit: int,
        start_after: Mapping[str, str] | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page of an index partition, newest first: a Query, never a Scan.

        Returns the items and whether DynamoDB stopped early (a 1 MB page), in which case
        more items may follow the last one returned.
        """
        attribute, value = partition
        extra: dict[str, Any] = {}
        if start_after:
            extra["ExclusiveStartKey"] = {name: {"S": v} for name, v in start_after.items()}
        with translate_errors():
            response = self.client.query(
                TableName=self.table_name,
                IndexName=index_name,
                KeyConditionExpression="#pk = :pk",
                ExpressionAttributeNames={"#pk": attribute},
                ExpressionAttributeValues={":pk": {"S": value}},
                ScanIndexForward=False,
                Limit=limit,
                **extra,
            )
        items = [deserialize_item(item) for item in response.get("Items", [])]
        return items, "LastEvaluatedKey" in response and len(items) < limit


@cache
def dynamodb_client() -> DynamoDBClient:
    """The process's low-level client, made on first use so tests can mock AWS first.

    The endpoint comes from botocore's own AWS_ENDPOINT_URL_DYNAMODB, which the local
    runner and `sam local` set; nothing here knows about local mode.
    """
    import boto3

    return boto3.session.Session().client("dynamodb", config=client_config())


@cache
def run_store() -> RunStore:
    return RunStore(dynamodb_client(), settings().table_name)


def reset_caches() -> None:
    """Forget the client and settings (tests change the environment between cases)."""
    dynamodb_client.cache_clear()
    run_store.cache_clear()
    settings.cache_clear()


__all__ = [
    "ACTIVE_INDEX",
    "STOPPING_INDEX",
    "ActivePage",
    "ConditionFailed",
    "Offset",
    "Refusal",
    "RunStore",
    "TransactionRefused",
    "run_store",
]
