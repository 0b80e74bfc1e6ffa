"""Execution environments for the trigger functions in the race tests, and their answers.

Each function runs in worker processes of its own, as Lambda runs it: Powertools keeps
metrics and log state per process, so concurrent invocations in threads of one process would
trip over each other where Lambda never would. A worker also records the decisions its
function logs ("cancel decided": run, outcome), which is how a queue consumer answers.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from runstop_dev.handlers import LambdaContext, load_handler
from runstop_dev.stack import LocalStack
from runstop_dev.template import function_environment, load_template

_handler: Any = None
_decisions: list[dict[str, Any]] = []


class _Decisions(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "cancel decided":
            _decisions.append({k: getattr(record, k, None) for k in ("run_id", "outcome", "trigger", "origin_id")})


def _init(logical_id: str, env: dict[str, str]) -> None:
    global _handler
    os.environ.update(env)
    _handler = load_handler(logical_id)
    logging.getLogger("runstop").addHandler(_Decisions())


def _invoke(event: dict[str, Any]) -> tuple[Any, list[dict[str, Any]]]:
    _decisions.clear()
    result = _handler(event, LambdaContext())
    return result, list(_decisions)


def _ready() -> int:
    return os.getpid()


def unused_queue_refs() -> dict[str, str]:
    """Queue URLs for `!Ref` to queues; nothing in the race tests is ever dead-lettered."""
    return {
        rid: f"http://127.0.0.1:9/{rid}"
        for rid, res in load_template()["Resources"].items()
        if res["Type"] == "AWS::SQS::Queue"
    }


class TriggerPool:
    """A function's execution environments on DynamoDB Local; a context manager."""

    def __init__(self, stack: LocalStack, logical_id: str, workers: int = 2) -> None:
        env = {
            **function_environment(logical_id, {**stack.refs, **unused_queue_refs()}),
            **stack.env,
            "AWS_LAMBDA_FUNCTION_NAME": logical_id,
            "POWERTOOLS_METRICS_NAMESPACE": "runstop-tests",
        }
        self.executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init,
            initargs=(logical_id, env),
        )
        self.workers = workers

    def warm(self) -> None:
        """Start every worker (its cold start) before the race, not during it."""
        futures = [self.executor.submit(_ready) for _ in range(self.workers * 2)]
        for future in futures:
            future.result(timeout=120)

    def invoke(self, event: dict[str, Any]) -> tuple[Any, list[dict[str, Any]]]:
        """The handler's result and the decisions it logged."""
        return self.executor.submit(_invoke, event).result(timeout=120)

    def __enter__(self) -> TriggerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
