"""Concurrency keys: at most one active run per (tenant, key), held by a lock item.

The ConcurrencyKeys table holds, per tenant and key, the id of the run that holds the key.
A create with a key changes that item in the same transaction that puts the new run, on the
condition that it still names the holder the create saw; the holder is free to be replaced
when it is final (final is forever) or, with `on_active: "interrupt"`, is interrupted in that
same transaction. So the key is free the instant its holder ends, whatever ended it, with no
write of its own; the lock item is deleted afterwards, from the table's stream, only to keep
the table small (`release`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from runstop import clock
from runstop.cancel import cancel_change, cancel_record
from runstop.ids import request_token
from runstop.item_codec import deserialize_item, serialize
from runstop.settings import settings
from runstop.status import ACTIVE, RunStatus
from runstop.store import RunStore, dynamodb_client, translate_errors, update_request

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

SUPERSEDED_SOURCE = "superseded"
SUPERSEDED_REASON = "superseded"
"""The reason a superseded run carries (its cancel record names the run that replaced it)."""


class OnActive(StrEnum):
    REJECT = "reject"
    """The create is refused (409) naming the active run of the key."""
    INTERRUPT = "interrupt"
    """The active run is interrupted (source superseded) and the new run created, in one transaction."""


@dataclass(frozen=True, slots=True)
class Holder:
    """What a create saw of its key: the holding run's id (None: no lock item) and the run itself."""

    run_id: str | None
    run: dict[str, Any] | None

    @property
    def active(self) -> bool:
        return self.run is not None and self.run["status"] in ACTIVE


class KeyLocks:
    """The lock items of the ConcurrencyKeys table, keyed by (tenant_id, concurrency_key)."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    @staticmethod
    def key(tenant_id: str, concurrency_key: str) -> dict[str, Any]:
        return {"tenant_id": {"S": tenant_id}, "concurrency_key": {"S": concurrency_key}}

    def holder_id(self, tenant_id: str, concurrency_key: str) -> str | None:
        """The run the lock names now (a strongly consistent read)."""
        with translate_errors():
            response = self.client.get_item(
                TableName=self.table_name, Key=self.key(tenant_id, concurrency_key), ConsistentRead=True
            )
        item = response.get("Item")
        return deserialize_item(item)["active_run_id"] if item else None

    def take(self, tenant_id: str, concurrency_key: str, run_id: str, held_by: str | None, at: datetime) -> Any:
        """The transaction item that makes `run_id` the holder, if the lock still names `held_by`
        (None: if there is no lock item)."""
        values: dict[str, Any] = {":run": serialize(run_id), ":at": serialize(clock.iso(at))}
        if held_by is None:
            condition = "attribute_not_exists(active_run_id)"
        else:
            condition = "active_run_id = :held_by"
            values[":held_by"] = serialize(held_by)
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": self.key(tenant_id, concurrency_key),
                "UpdateExpression": "SET active_run_id = :run, updated_at = :at",
                "ConditionExpression": condition,
                "ExpressionAttributeValues": values,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def release(self, tenant_id: str, concurrency_key: str, run_id: str) -> bool:
        """Delete the lock if `run_id` (now final) still holds it; False when another run took it."""
        with translate_errors():
            try:
                self.client.delete_item(
                    TableName=self.table_name,
                    Key=self.key(tenant_id, concurrency_key),
                    ConditionExpression="active_run_id = :run",
                    ExpressionAttributeValues={":run": serialize(run_id)},
                )
            except self.client.exceptions.ConditionalCheckFailedException:
                return False
        return True


def key_locks() -> KeyLocks:
    """The locks table of this function (CONCURRENCY_KEYS_TABLE), on the process's one client."""
    return KeyLocks(dynamodb_client(), settings().require("concurrency_keys_table"))


def holder(locks: KeyLocks, store: RunStore, tenant_id: str, concurrency_key: str) -> Holder:
    """The key's holder as it stands: the lock's run id, then that run (both strongly consistent)."""
    run_id = locks.holder_id(tenant_id, concurrency_key)
    return Holder(run_id, None if run_id is None else store.get(tenant_id, run_id))


def supersede(store: RunStore, tenant_id: str, holder_run: Mapping[str, Any], *, by: str, at: datetime) -> Any:
    """The transaction item that interrupts the key's active run `holder_run` (as just read) for the
    new run `by`: the one cancel decision's write for the status it has (a running run gets its stop
    deadline), source superseded. If the run moved on meanwhile, its condition fails."""
    run_id = str(holder_run["run_id"])
    record = cancel_record(at, reason=SUPERSEDED_REASON, source=SUPERSEDED_SOURCE, extra={"superseded_by": by})
    transition, change = cancel_change(
        tenant_id, run_id, RunStatus(holder_run["status"]), at=at, record=record, token=request_token()
    )
    return {"Update": update_request(store.table_name, store.key(tenant_id, run_id), transition, change)}
