"""Opaque page cursors for GET /runs that cannot be turned into another tenant's keys.

A cursor is the index key of the last run on a page, as base64url JSON. It is no secret:
what makes it safe is that on the way back in every key in it must belong to the caller's
tenant and to the same listing (same index, same partition), else the request is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runstop.errors import InvalidCursor
from runstop.ids import valid_run_id

MAX_CURSOR_LENGTH = 1024
MAX_CREATED_KEY_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Listing:
    """One listing of GET /runs: a tenant's index partition, read newest first."""

    tenant_id: str
    index: str
    attribute: str
    """The index's partition attribute (tenant_id itself for ByCreated)."""
    value: str


def expected_key(listing: Listing) -> dict[str, str | None]:
    """The cursor's attributes and the values fixed by the listing (None: any valid value)."""
    key: dict[str, str | None] = {"tenant_id": listing.tenant_id, "run_id": None, "created_key": None}
    key[listing.attribute] = listing.value
    return key


def encode(item: Mapping[str, Any], listing: Listing) -> str:
    """The cursor that resumes the listing after `item` (a run as stored)."""
    key = {name: str(item[name]) for name in expected_key(listing)}
    raw = json.dumps(key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode(cursor: str, listing: Listing) -> dict[str, str]:
    """The index key to resume after; InvalidCursor unless it belongs to this very listing."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursor()
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise InvalidCursor() from None
    expected = expected_key(listing)
    if not isinstance(key, dict) or set(key) != set(expected) or not all(isinstance(v, str) for v in key.values()):
        raise InvalidCursor()
    if any(fixed is not None and key[name] != fixed for name, fixed in expected.items()):
        raise InvalidCursor()
    created_key, run_id = key["created_key"], key["run_id"]
    if not valid_run_id(run_id) or not created_key.endswith(f"#{run_id}") or len(created_key) > MAX_CREATED_KEY_LENGTH:
        raise InvalidCursor()
    return key
