"""The local stand-in for the deployed stack: DynamoDB Local with the template's tables,
and the environment the functions would get from CloudFormation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runstop_dev.ddb_local import DynamoDBLocal, ensure_tables, local_client
from runstop_dev.template import table_resources

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}


@dataclass(frozen=True)
class LocalStack:
    endpoint: str
    refs: dict[str, str]
    """Logical id -> local name, what `!Ref` resolves to."""

    @property
    def env(self) -> dict[str, str]:
        """What every function process needs to reach the local tables."""
        return {
            "AWS_ENDPOINT_URL_DYNAMODB": self.endpoint,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            **CREDENTIALS,
        }

    def client(self, **config: Any) -> Any:
        return local_client(self.endpoint, **config)


def local_refs() -> dict[str, str]:
    """Locally every table is named after its logical id."""
    return {logical_id: logical_id for logical_id in table_resources()}


@contextmanager
def local_stack(endpoint: str | None = None, port: int = 0, data_dir: Path | None = None) -> Iterator[LocalStack]:
    """Yield a stack on `endpoint`, or on a DynamoDB Local started (and stopped) here."""
    if endpoint:
        stack = LocalStack(endpoint, local_refs())
        ensure_tables(stack.client(), stack.refs)
        yield stack
        return
    with DynamoDBLocal(port=port, data_dir=data_dir) as ddb:
        stack = LocalStack(ddb.endpoint, local_refs())
        ensure_tables(stack.client(), stack.refs)
        yield stack
