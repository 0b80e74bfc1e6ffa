"""Python client of the runstop runs API, its worker helper and the `runstop` command."""

from runstop_client._wire import RetryPolicy
from runstop_client.client import DEFAULT_HEARTBEAT_INTERVAL, AsyncClient, Client, __version__
from runstop_client.errors import (
    InvalidRequest,
    RunCancelled,
    RunConflict,
    RunNotFound,
    RunstopError,
    Unauthorized,
    Unavailable,
)
from runstop_client.models import BulkCancelItem, CancelRecord, CancelResult, Run
from runstop_client.worker import AsyncWorker, Worker

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL",
    "AsyncClient",
    "AsyncWorker",
    "BulkCancelItem",
    "CancelRecord",
    "CancelResult",
    "Client",
    "InvalidRequest",
    "RetryPolicy",
    "Run",
    "RunCancelled",
    "RunConflict",
    "RunNotFound",
    "RunstopError",
    "Unauthorized",
    "Unavailable",
    "Worker",
    "__version__",
]
