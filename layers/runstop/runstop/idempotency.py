"""Idempotent run creation: Powertools Idempotency with its DynamoDB persistence layer.

The record's key hashes the tenant with the client's Idempotency-Key, so two tenants may use
the same key; the request body is hashed for payload validation, so a key reused with another
body is refused instead of answered with the first body's run. Powertools' errors become
domain errors here, so the HTTP layer keeps one exception map.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)

from runstop.http import IdempotencyKeyReused, RequestInProgress
from runstop.store import dynamodb_client, translate_errors

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_dynamodb.client import DynamoDBClient

RECORD_TTL_SECONDS = 24 * 60 * 60
"""How long a key answers with its first result; a retry a day later creates anew."""

_config = IdempotencyConfig(
    event_key_jmespath="[tenant_id, key]",
    payload_validation_jmespath="request",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=RECORD_TTL_SECONDS,
    # A collision between two tenants' hashes would hand one the other's answer.
    hash_function="sha256",
)


def idempotency_table() -> str:
    """Locally the table is named after its logical id, as every template table is."""
    return os.environ.get("IDEMPOTENCY_TABLE", "IdempotencyTable")


@lru_cache(maxsize=4)
def _persistence(table_name: str, client: DynamoDBClient) -> DynamoDBPersistenceLayer:
    # Keyed by the client: after store.reset_caches() a new client gets a new layer.
    return DynamoDBPersistenceLayer(table_name=table_name, boto3_client=client)


def once(
    operation: str,
    tenant_id: str,
    key: str,
    request: dict[str, Any],
    action: Callable[[], dict[str, Any]],
    context: LambdaContext | None,
) -> dict[str, Any]:
    """`action()`'s result, computed once per (operation, tenant, key) while the record lives.

    A repeat with the same request answers the stored result; a repeat with another request
    raises IdempotencyKeyReused; a repeat while the first still runs raises RequestInProgress.
    An action that raises leaves no record, so a retry runs it again.
    """
    # The in-progress record expires with the invocation, so a crashed first try cannot block
    # retries; without a context (a direct call) it lives until the record's own expiry.
    _config.lambda_context = context

    def run(payload: dict[str, Any]) -> dict[str, Any]:
        return action()

    guarded = idempotent_function(
        run,
        data_keyword_argument="payload",
        persistence_store=_persistence(idempotency_table(), dynamodb_client()),
        config=_config,
        key_prefix=f"runstop.{operation}",
    )
    try:
        result: dict[str, Any] = guarded(payload={"tenant_id": tenant_id, "key": key, "request": request})
    except IdempotencyValidationError:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with a different request; send a new key for a new request"
        ) from None
    except IdempotencyAlreadyInProgressError:
        raise RequestInProgress("a request with this Idempotency-Key is still in progress; retry shortly") from None
    except IdempotencyPersistenceLayerError as error:
        # Throttling or an unreachable table is a 503 like any store failure; anything else is a bug.
        cause = error.__cause__
        if isinstance(cause, Exception):
            with translate_errors():
                raise cause from error
        raise
    return result
