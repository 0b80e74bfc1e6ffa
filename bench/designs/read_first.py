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
from runstop.cancel import CancelDecision
from runstop.errors import StoreUnavailable
from runstop.ids import request_token
from runstop.status import FINAL
from runstop.store import RunStore
from runstop_dev.handlers import load_function_module
from runstop_dev.template import Function

WRAPS = "BENCH_WRAPS_FUNCTION"
"""The wrapped function as JSON: logical_id, code_dir, module, attribute."""


def cancel_run_read_first(
    store: RunStore, tenant_id: str, run_id: str, *, idempotency_key: str | None = None, **options: Any
) -> CancelDecision:
    """A final status read (eventually consistent) decides; otherwise runstop's conditional update.

    The decision from a final status is runstop's own (`_decided_by`, as its throttling fallback
    uses it), so identity works the same: a run interrupted with this Idempotency-Key answers
    `interrupted`. The read only saves work: throttled past its retries, the update decides.
    """
    try:
        current = store.get(tenant_id, run_id, consistent=False)
    except StoreUnavailable:
        current = None  # unknown: the update decides, as for an active or absent run
    if current is not None and current["status"] in FINAL:
        decision = cancel._decided_by(run_id, current, request_token(idempotency_key))
        if decision is not None:
            return decision
    return cancel.cancel_run(store, tenant_id, run_id, idempotency_key=idempotency_key, **options)


def _wrapped() -> ModuleType:
    named = json.loads(os.environ[WRAPS])
    fn = Function(named["logical_id"], Path(named["code_dir"]), named["module"], named["attribute"])
    module = load_function_module(fn)
    module.cancel_run = cancel_run_read_first  # type: ignore[attr-defined]  # looked up on every call
    return module


_app = _wrapped()
lambda_handler = _app.lambda_handler
