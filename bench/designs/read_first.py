"""Read-first cancel, a design under test: runstop's cancel handler with one change in the decision.

An eventually consistent GetItem goes first (half a read unit, and reads have their own, larger
capacity). A final state answers at once -- final states never change, so even a stale replica
that shows one is right: `interrupted` -> 202 already_interrupted (interrupted when the stored
Idempotency-Key is this request's), `success`/`error`/`timeout` -> 409. Only an active or absent
run goes on to runstop's own conditional update (`runstop.cancel.cancel_run`), which decides
exactly as it always does. Everything else -- parsing, validation, answers, logging, metrics --
is the real handler's: its module is loaded as the template names it and only its `cancel_run`
is replaced, so the figures differ by the decision alone.

Served by the bench's runner (bench/runner.py), which names the wrapped function in
BENCH_WRAPS_FUNCTION. runstop's default stays update-first; this measures the alternative.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from runstop import cancel
from runstop.cancel import CancelDecision, CancelOutcome
from runstop.errors import StoreUnavailable
from runstop.item_codec import deserialize_item
from runstop.status import ACTIVE, RunStatus
from runstop.store import RunStore, translate_errors
from runstop_dev.handlers import load_function_module
from runstop_dev.template import Function

WRAPS = "BENCH_WRAPS_FUNCTION"
"""The wrapped function as JSON: logical_id, code_dir, module, attribute."""


def cancel_run_read_first(
    store: RunStore, tenant_id: str, run_id: str, *, idempotency_key: str | None = None, **options: Any
) -> CancelDecision:
    """A final state read (eventually consistent) decides; otherwise runstop's conditional update.

    The read only saves work: when it is throttled past its retries, the update decides as it
    would have without it.
    """
    try:
        with translate_errors():
            item = store.client.get_item(TableName=store.table_name, Key=store.key(tenant_id, run_id)).get("Item")
    except StoreUnavailable:
        item = None  # unknown: the update decides, as for an active or absent run
    run = deserialize_item(item) if item else None
    if run is None or run["status"] in ACTIVE:
        return cancel.cancel_run(store, tenant_id, run_id, idempotency_key=idempotency_key, **options)
    if run["status"] == RunStatus.INTERRUPTED:
        stored_key = (run.get("cancel") or {}).get("idempotency_key")
        mine = idempotency_key is not None and stored_key == idempotency_key
        return CancelDecision(run_id, CancelOutcome.INTERRUPTED if mine else CancelOutcome.ALREADY_INTERRUPTED, run)
    return CancelDecision(run_id, CancelOutcome.CONFLICT, run)


def _wrapped() -> ModuleType:
    named = json.loads(os.environ[WRAPS])
    fn = Function(named["logical_id"], Path(named["code_dir"]), named["module"], named["attribute"])
    module = load_function_module(fn)
    module.cancel_run = cancel_run_read_first  # type: ignore[attr-defined]  # looked up on every call
    return module


_app = _wrapped()
lambda_handler = _app.lambda_handler
