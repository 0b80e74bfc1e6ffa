"""What the runs API answers, as typed values that keep the raw JSON for fields added later."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

FINISHED = frozenset({"success", "error", "timeout", "interrupted"})
"""Statuses a run never leaves (an interrupted run may still gain stopped_at)."""
CANCEL_OUTCOMES = ("interrupted", "already_interrupted", "absent")


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp as an aware datetime; Python 3.10's fromisoformat rejects a 'Z'."""
    if not isinstance(value, str) or not value:
        return None
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class CancelRecord:
    """Who cancelled a run, why and when; `stop_deadline` is when the work must have stopped."""

    reason: str | None
    source: str | None
    requested_at: datetime | None
    idempotency_key: str | None = None
    stop_deadline: datetime | None = None

    @classmethod
    def from_json(cls, data: Any, stop_deadline: Any = None) -> CancelRecord | None:
        if not isinstance(data, dict):
            return None
        return cls(
            reason=_text(data.get("reason")),
            source=_text(data.get("source")),
            requested_at=parse_time(data.get("requested_at")),
            idempotency_key=_text(data.get("idempotency_key")),
            stop_deadline=parse_time(stop_deadline if stop_deadline is not None else data.get("stop_deadline")),
        )

    def with_deadline(self, stop_deadline: datetime | None) -> CancelRecord:
        return self if stop_deadline is None else replace(self, stop_deadline=stop_deadline)


@dataclass(frozen=True)
class Run:
    """A run as GET /runs/{run_id} answers it."""

    run_id: str
    status: str
    version: int | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    heartbeat_at: datetime | None = None
    cancel: CancelRecord | None = None
    stopped_at: datetime | None = None
    worker_id: str | None = None
    stop_deadline: datetime | None = None
    stop_overdue_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Run:
        deadline = parse_time(data.get("stop_deadline"))
        cancel = CancelRecord.from_json(data.get("cancel"))
        metadata = data.get("metadata")
        version = data.get("version")
        return cls(
            run_id=str(data.get("run_id", "")),
            status=str(data.get("status", "")),
            version=version if isinstance(version, int) else None,
            created_at=parse_time(data.get("created_at")),
            started_at=parse_time(data.get("started_at")),
            ended_at=parse_time(data.get("ended_at")),
            heartbeat_at=parse_time(data.get("heartbeat_at")),
            cancel=cancel.with_deadline(deadline) if cancel else None,
            stopped_at=parse_time(data.get("stopped_at")),
            worker_id=_text(data.get("worker_id")),
            stop_deadline=deadline,
            stop_overdue_at=parse_time(data.get("stop_overdue_at")),
            metadata=metadata if isinstance(metadata, dict) else {},
            raw=data,
        )

    @property
    def stop(self) -> str | None:
        """For an interrupted run: acknowledged, overdue or pending (the `?stop=` filter's words)."""
        if self.status != "interrupted":
            return None
        if self.stopped_at is not None:
            return "acknowledged"
        return "overdue" if self.stop_overdue_at is not None else "pending"

    @property
    def ended(self) -> bool:
        """Nothing more will happen to it: finished, and when interrupted, stopped or given up on.

        A run interrupted before it ever started has no worker to acknowledge, so it has ended too.
        """
        if self.status not in FINISHED:
            return False
        return self.status != "interrupted" or self.stop != "pending" or self.started_at is None


@dataclass(frozen=True)
class CancelResult:
    """A 202 cancel: `outcome` is interrupted, already_interrupted or absent."""

    run_id: str
    outcome: str
    status: str | None = None
    cancel: CancelRecord | None = None
    version: int | None = None
    stop_acknowledged: bool | None = None
    stop_deadline: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CancelResult:
        deadline = parse_time(data.get("stop_deadline"))
        cancel = CancelRecord.from_json(data.get("cancel"))
        acknowledged = data.get("stop_acknowledged")
        version = data.get("version")
        return cls(
            run_id=str(data.get("run_id", "")),
            outcome=str(data.get("outcome", "")),
            status=_text(data.get("status")),
            cancel=cancel.with_deadline(deadline) if cancel else None,
            version=version if isinstance(version, int) else None,
            stop_acknowledged=acknowledged if isinstance(acknowledged, bool) else None,
            stop_deadline=deadline,
            raw=data,
        )


@dataclass(frozen=True)
class BulkCancelItem:
    """One id's answer within a bulk cancel, as POST /runs/{run_id}/cancel would have given it."""

    run_id: str
    status_code: int
    outcome: str | None = None
    run_status: str | None = None
    error: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BulkCancelItem:
        code = data.get("status_code")
        return cls(
            run_id=str(data.get("run_id", "")),
            status_code=code if isinstance(code, int) else 0,
            outcome=_text(data.get("outcome")),
            run_status=_text(data.get("run_status")),
            error=_text(data.get("error")),
            raw=data,
        )

    @property
    def kind(self) -> str:
        """The outcome of an accepted cancel, else conflict, invalid or unavailable."""
        if self.status_code == 202 and self.outcome:
            return self.outcome
        return {409: "conflict", 400: "invalid", 503: "unavailable"}.get(self.status_code, "unavailable")
