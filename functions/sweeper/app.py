"""Scheduled sweep: interrupt runs whose heartbeat or start is overdue, and mark the runs whose
worker missed its stop deadline.

Wiring only (the rules live in runstop.sweeper): the sweep stops before this invocation's
timeout and the next tick continues, so the schedule needs no retries.
"""

from typing import Any

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from runstop.metric_names import STOP_OVERDUE, SWEEP_PREFIX, SWEEP_READ_UNITS, TRIGGER_DIMENSION, TRIGGER_SWEEPER
from runstop.settings import settings
from runstop.store import run_store
from runstop.sweeper import OverdueRun, StoppedRun, SweepPolicy, sweep

logger = Logger()
metrics = Metrics()


def _stopped(run: StoppedRun) -> None:
    logger.info("run interrupted", tenant_id=run.tenant_id, run_id=run.run_id, reason=run.reason)


def _overdue(run: OverdueRun) -> None:
    """Counted per the trigger that interrupted the run; the stream announces it (OverduePipe)."""
    logger.warning("run stop overdue", tenant_id=run.tenant_id, run_id=run.run_id, worker_id=run.worker_id)
    with single_metric(
        name=STOP_OVERDUE, unit=MetricUnit.Count, value=1, default_dimensions=metrics.default_dimensions
    ) as metric:
        metric.add_dimension(name=TRIGGER_DIMENSION, value=run.source)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Per invocation: Metrics state is process-wide.
    metrics.add_dimension(name=TRIGGER_DIMENSION, value=TRIGGER_SWEEPER)
    summary = sweep(
        run_store(),
        SweepPolicy.from_settings(settings()),
        remaining_ms=context.get_remaining_time_in_millis,
        on_stopped=_stopped,
        on_overdue=_overdue,
    )
    for outcome, count in summary.outcomes.items():
        metrics.add_metric(name=SWEEP_PREFIX + outcome, unit=MetricUnit.Count, value=count)
    metrics.add_metric(name=SWEEP_READ_UNITS, unit=MetricUnit.Count, value=summary.read_units)
    result = summary.as_dict()
    logger.info("sweep finished", **result)
    return result
