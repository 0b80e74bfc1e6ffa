"""Run and tenant identifiers: the one pattern every door (HTTP, queue, event) checks."""

from __future__ import annotations

import os
import re

from runstop.errors import InvalidInput

RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")  # used with fullmatch: no "$\n" loophole


def valid_run_id(run_id: str) -> bool:
    return _RUN_ID.fullmatch(run_id) is not None


def require_run_id(run_id: str) -> str:
    """The id itself, or InvalidInput (400) when it does not match RUN_ID_PATTERN."""
    if not valid_run_id(run_id):
        raise InvalidInput(f"run_id must match {RUN_ID_PATTERN}")
    return run_id


def request_token(idempotency_key: str | None = None) -> str:
    """The identity a write is stored with: the caller's Idempotency-Key when there is one (so the
    caller's own retry recognises the write), else a fresh random token, which the SDK's retries
    of the same request carry unchanged."""
    if idempotency_key is not None:
        return f"key:{idempotency_key}"
    return "req:" + os.urandom(12).hex()  # os.urandom: no uuid import on the cancel path
