"""The record handlers of the queues the tables' streams feed (Powertools BatchProcessor, SQS).

- RunEnded queue (CascadeFunction): a run left pending/running. If it was interrupted and has
  children, its cascade interrupts them; if it held a concurrency key, the lock item is
  deleted. Both are idempotent, so at-least-once delivery is all they need.
- CancelJobs queue (CancelJobFunction): a cancel job waits for a worker; the message works it
  while the job's epoch is the message's (runstop.jobs).

A handler raises only for a transient failure (StoreUnavailable, a cascade whose index still
lags): the batch processor reports that record alone, SQS delivers it again, and after the
queue's maxReceiveCount it goes to the queue's dead-letter queue. The messages come from the
stacks' own pipes, so one that does not parse is a bug: it fails the same way, and ends there too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import BaseModel, ConfigDict

from runstop import jobs, trees
from runstop.concurrency import KeyLocks, key_locks
from runstop.errors import StoreUnavailable
from runstop.status import FINAL
from runstop.store import RunStore, run_store

logger = Logger(child=True)


class RunEnded(BaseModel):
    """What the RunEnded pipe sends for a run that left pending/running."""

    model_config = ConfigDict(extra="ignore")
    tenant_id: str
    run_id: str


class JobWake(BaseModel):
    """What the CancelJobs pipe sends for a job waiting for a worker."""

    model_config = ConfigDict(extra="ignore")
    tenant_id: str
    job_id: str
    epoch: str


def _body(record: SqsRecordModel) -> str:
    return record.body if isinstance(record.body, str) else json.dumps(record.body)


class RunEndedConsumer:
    """Cascade an interrupted run to its children; free the concurrency key of a final run."""

    def __init__(
        self,
        metrics: Metrics,
        store: Callable[[], RunStore] = run_store,
        locks: Callable[[], KeyLocks] = key_locks,
        remaining_ms: Callable[[], int] | None = None,
    ) -> None:
        self.metrics = metrics
        self.store = store
        self.locks = locks
        self.remaining_ms = remaining_ms
        """The invocation's clock (set per invocation): the cascade goes deeper while time remains."""

    def __call__(self, record: SqsRecordModel) -> dict[str, Any]:
        message = RunEnded.model_validate_json(_body(record))
        store = self.store()
        run = store.get(message.tenant_id, message.run_id)
        answer: dict[str, Any] = {"run_id": message.run_id}
        if run is None or run["status"] not in FINAL:
            return answer
        try:
            result = trees.cascade(store, message.tenant_id, message.run_id, run=run, remaining_ms=self.remaining_ms)
        except StoreUnavailable:
            self.metrics.add_metric(name="Cascade.retried", unit=MetricUnit.Count, value=1)
            raise
        for outcome, count in result.outcomes.items():
            self.metrics.add_metric(name=f"Cascade.{outcome}", unit=MetricUnit.Count, value=count)
        answer.update(result.as_dict())
        if result.parents:
            logger.info("cascade", tenant_id=message.tenant_id, **answer)
        key = run.get("concurrency_key")
        if key:
            answer["released"] = self.locks().release(message.tenant_id, str(key), message.run_id)
        return answer


class JobWakeConsumer:
    """Work a cancel job for as long as the invocation allows, from where it stands."""

    def __init__(
        self,
        metrics: Metrics,
        remaining_ms: Callable[[], int] | None = None,
        store: Callable[[], RunStore] = run_store,
        job_table: Callable[[], jobs.JobTable] = jobs.job_table,
    ) -> None:
        self.metrics = metrics
        self.remaining_ms = remaining_ms
        self.store = store
        self.job_table = job_table

    def __call__(self, record: SqsRecordModel) -> dict[str, Any]:
        message = JobWake.model_validate_json(_body(record))
        result = jobs.work(
            self.job_table(),
            self.store(),
            message.tenant_id,
            message.job_id,
            message.epoch,
            remaining_ms=self.remaining_ms,
        )
        self.metrics.add_metric(name=f"CancelJob.{result.end.value}", unit=MetricUnit.Count, value=1)
        logger.info(
            "cancel job worked",
            tenant_id=message.tenant_id,
            job_id=message.job_id,
            end=result.end.value,
            steps=result.steps,
            decided=result.decided,
        )
        return {"job_id": message.job_id, "end": result.end.value, "steps": result.steps, "decided": result.decided}
