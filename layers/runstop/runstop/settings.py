"""Settings: every environment variable of the domain, read once, in this one place.

A frozen dataclass rather than a pydantic model: this module is on the cancel path, and
pydantic's first model costs more cold start than the whole rest of that function. A
required variable that is missing fails the first call with a message naming it, instead of
falling back to a table that does not exist.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache


class MissingSetting(RuntimeError):
    """A required environment variable is not set (a deployment or test-setup error)."""


@dataclass(frozen=True, slots=True)
class Settings:
    table_name: str
    """TABLE_NAME (required): the runs table."""
    tenant_claim: str = "tenant_id"
    """TENANT_CLAIM: the JWT claim that names the caller's tenant."""
    retention_days: int = 30
    """RETENTION_DAYS: how long a finished run is kept (the TTL attribute)."""
    idempotency_table: str | None = None
    """IDEMPOTENCY_TABLE: Powertools Idempotency's table (runs API only)."""
    dead_letter_queue_url: str | None = None
    """DEAD_LETTER_QUEUE_URL: where a trigger parks input that can never succeed."""
    concurrency_keys_table: str | None = None
    """CONCURRENCY_KEYS_TABLE: the active run of each (tenant, concurrency key)."""
    cancel_jobs_table: str | None = None
    """CANCEL_JOBS_TABLE: cancel-by-filter jobs, their cursor and counts."""
    dynamodb_max_attempts: int = 3
    """DYNAMODB_MAX_ATTEMPTS: tries per DynamoDB call, the first included."""
    dynamodb_connect_timeout: float = 1.0
    dynamodb_read_timeout: float = 2.0
    heartbeat_timeout_seconds: float = 300.0
    """HEARTBEAT_TIMEOUT_SECONDS: a running run silent this long is swept."""
    pending_timeout_seconds: float = 3600.0
    """PENDING_TIMEOUT_SECONDS: a pending run never started this long is swept."""
    sweep_page_size: int = 100
    sweep_concurrency: int = 8
    sweep_margin_seconds: float = 5.0
    """SWEEP_MARGIN_SECONDS: the sweep stops this long before the invocation's timeout."""
    stop_grace_seconds: int = 60
    """STOP_GRACE_SECONDS: a run's default stop grace (template parameter StopGraceSeconds)."""
    metrics_namespace: str = "runstop"
    """POWERTOOLS_METRICS_NAMESPACE: the CloudWatch namespace of every metric (runstop.emf too)."""
    service_name: str | None = None
    """POWERTOOLS_SERVICE_NAME: the `service` dimension of every metric (none if unset)."""
    throttle_fallback: bool = True
    """RUNSTOP_THROTTLE_FALLBACK ("0" turns it off, for the bench's comparison): a cancel whose
    update stays throttled is decided by a read when the run is final."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        table_name = env.get("TABLE_NAME")
        if not table_name:
            raise MissingSetting("TABLE_NAME is not set: the function cannot know which runs table to use")
        defaults = cls(table_name=table_name)

        def get[T](name: str, kind: type[T], default: T) -> T:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                return kind(raw)  # type: ignore[call-arg]
            except ValueError:
                raise MissingSetting(f"{name}={raw!r} is not a valid {kind.__name__}") from None

        return cls(
            table_name=table_name,
            tenant_claim=get("TENANT_CLAIM", str, defaults.tenant_claim),
            retention_days=get("RETENTION_DAYS", int, defaults.retention_days),
            idempotency_table=env.get("IDEMPOTENCY_TABLE") or None,
            dead_letter_queue_url=env.get("DEAD_LETTER_QUEUE_URL") or None,
            concurrency_keys_table=env.get("CONCURRENCY_KEYS_TABLE") or None,
            cancel_jobs_table=env.get("CANCEL_JOBS_TABLE") or None,
            dynamodb_max_attempts=get("DYNAMODB_MAX_ATTEMPTS", int, defaults.dynamodb_max_attempts),
            dynamodb_connect_timeout=get("DYNAMODB_CONNECT_TIMEOUT", float, defaults.dynamodb_connect_timeout),
            dynamodb_read_timeout=get("DYNAMODB_READ_TIMEOUT", float, defaults.dynamodb_read_timeout),
            heartbeat_timeout_seconds=get("HEARTBEAT_TIMEOUT_SECONDS", float, defaults.heartbeat_timeout_seconds),
            pending_timeout_seconds=get("PENDING_TIMEOUT_SECONDS", float, defaults.pending_timeout_seconds),
            sweep_page_size=get("SWEEP_PAGE_SIZE", int, defaults.sweep_page_size),
            sweep_concurrency=get("SWEEP_CONCURRENCY", int, defaults.sweep_concurrency),
            sweep_margin_seconds=get("SWEEP_MARGIN_SECONDS", float, defaults.sweep_margin_seconds),
            stop_grace_seconds=get("STOP_GRACE_SECONDS", int, defaults.stop_grace_seconds),
            metrics_namespace=env.get("POWERTOOLS_METRICS_NAMESPACE") or defaults.metrics_namespace,
            service_name=env.get("POWERTOOLS_SERVICE_NAME") or None,
            throttle_fallback=env.get("RUNSTOP_THROTTLE_FALLBACK", "1") != "0",
        )

    @property
    def stop_grace_us(self) -> int:
        return self.stop_grace_seconds * 1_000_000

    def require(self, name: str) -> str:
        """An optional setting this function needs after all (e.g. the idempotency table)."""
        value = getattr(self, name)
        if not value:
            raise MissingSetting(f"{name.upper()} is not set, and this function needs it")
        return str(value)


@cache
def settings() -> Settings:
    """The process's settings; tests clear the cache (store.reset_caches) after changing the environment."""
    return Settings.from_env(os.environ)
