"""Timestamps as fixed-width UTC ISO-8601 strings, so they sort as text in DynamoDB keys."""

from datetime import UTC, datetime, timedelta


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """`2026-11-23T21:12:27.123456Z`: always microseconds, always Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def expiry_epoch(moment: datetime, days: int) -> int:
    """The TTL attribute's value: seconds since the epoch, `days` after `moment`."""
    return int((moment + timedelta(days=days)).timestamp())
