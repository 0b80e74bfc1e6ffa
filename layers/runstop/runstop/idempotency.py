"""Idempotent run creation: Powertools Idempotency with its DynamoDB persistence layer.

The record's key hashes the tenant with the client's Idempotency-Key, so two tenants may use
the same key; the request body is hashed for payload validation, so a key reused with another
body is refused instead of answered with the first body's run. Powertools' errors become
domain errors here, so the HTTP layer keeps one exception map.
"""

from __future__ import annotations

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

from runstop.errors import IdempotencyKeyReused, RequestInProgress
from runstop.settings import settings
from runstop.store import dynamodb_client, translate_errors

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


RECORD_TTL_SECONDS = 24 * 60 * 60
"""How long a key answers with its first result; a retry a day later creates anew."""

config = IdempotencyConfig(
    event_key_jmespath="[tenant_id, key]",
    payload_validation_jmespath="request",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=RECORD_TTL_SECONDS,
    # A collision between two tenants' hashes would hand one the other's answer.
    hash_function="sha256",
)
"""The runs API's handler registers each invocation's context here (config.register_lambda_context),
so an in-progress record expires with the invocation and a crashed first try cannot block retries."""


def _run_action(payload: dict[str, Any], action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    return action()


@lru_cache(maxsize=4)
def _guarded(table_name: str, client: DynamoDBClient) -> Callable[..., dict[str, Any]]:
    """`_run_action` behind Powertools Idempotency, decorated once per process.

    Made on first use rather than at import, and keyed by the client: the persistence layer
    holds a boto3 client, which must be the process's own (tests replace it with
    store.reset_caches, and a new client gets a new layer).
    """
    persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=client)
    guarded: Callable[..., dict[str, Any]] = idempotent_function(
        _run_action, data_keyword_argument="payload", persistence_store=persistence, config=config
    )
    return guarded


def once(
    operation: str,
    tenant_id: str,
    key: str,
    request: dict[str, Any],
    action: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """`action()`'s result, computed once per (operation, tenant, key) while the record lives.

    A repeat with the same request answers the stored result; a repeat with another request
    raises IdempotencyKeyReused; a repeat while the first still runs raises RequestInProgress.
    An action that raises leaves no record, so a retry runs it again.
    """
    payload = {"tenant_id": f"{operation}/{tenant_id}", "key": key, "request": request}
    try:
        guarded = _guarded(settings().require("idempotency_table"), dynamodb_client())
        return guarded(payload=payload, action=action)
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
