"""Waiting for a worker to acknowledge that it stopped an interrupted run (`?wait=N`).

On the cancel path, so standard library only. The wait polls strongly consistent reads with
backoff: a worker acknowledges within its heartbeat interval, so a few reads a second find it
soon enough without a stream or a second table.
"""

from __future__ import annotations

import re
from typing import Any

from runstop import clock
from runstop.errors import InvalidInput, StoreUnavailable
from runstop.store import RunStore

MAX_WAIT_SECONDS = 20
"""HTTP APIs cut integrations off at 30 s; 20 s of waiting leaves room for the cancel itself."""

_WAIT = re.compile(r"[0-9]{1,2}")
_FIRST_DELAY = 0.05
_MAX_DELAY = 0.5


def parse_wait(raw: str | None) -> int | None:
    """The `wait` query parameter in seconds (None when absent); InvalidInput unless 0..20."""
    if raw is None:
        return None
    if _WAIT.fullmatch(raw) is None or int(raw) > MAX_WAIT_SECONDS:
        raise InvalidInput(f"wait must be an integer from 0 to {MAX_WAIT_SECONDS} (seconds)")
    return int(raw)


def stop_acknowledged(run: dict[str, Any] | None) -> bool:
    return run is not None and run.get("stopped_at") is not None


def wait_for_stop(
    store: RunStore,
    tenant_id: str,
    run: dict[str, Any],
    seconds: float,
) -> dict[str, Any]:
    """Re-read the run until its stop is acknowledged or `seconds` pass; returns the last read.

    A read that fails ends the wait early with what is known: the cancel itself is decided,
    and a 503 would hide that.
    """
    deadline = clock.monotonic() + seconds
    delay = _FIRST_DELAY
    while not stop_acknowledged(run):
        left = deadline - clock.monotonic()
        if left <= 0:
            break
        clock.sleep(min(delay, left))
        delay = min(delay * 2, _MAX_DELAY)
        try:
            latest = store.get(tenant_id, str(run["run_id"]))
        except StoreUnavailable:
            break
        if latest is None:  # removed meanwhile (TTL): nobody is left to acknowledge
            break
        run = latest
    return run
