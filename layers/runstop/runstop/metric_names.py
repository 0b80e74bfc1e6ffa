"""The CloudWatch metrics the functions emit (EMF: Powertools Metrics, or runstop.emf in the
cancel function), in one list.

The template's alarms and dashboard watch these names, and tests/test_template.py reads them
here, so an alarm cannot watch a name nothing emits. The namespace is
POWERTOOLS_METRICS_NAMESPACE; Powertools adds the `service` dimension (POWERTOOLS_SERVICE_NAME)
and every function adds `trigger`. The cancel function does not import this module (cold
start): the names it needs live in runstop.cancel and runstop.emf, and are re-exported here.
"""

from runstop.cancel import (
    TRIGGER_API,
    TRIGGER_BULK,
    TRIGGER_DIMENSION,
    TRIGGER_EVENTBRIDGE,
    TRIGGER_SQS,
    TRIGGER_SWEEPER,
    CancelOutcome,
    cancel_metric,
)
from runstop.emf import SERVICE_DIMENSION
from runstop.errors import StoreUnavailable

CANCEL_TRIGGERS = (TRIGGER_API, TRIGGER_BULK, TRIGGER_SQS, TRIGGER_EVENTBRIDGE)
"""The triggers that count every decision as `Cancel.<outcome>` (the sweeper counts `Sweep.<outcome>`)."""
STOP_TRIGGERS = (*CANCEL_TRIGGERS, TRIGGER_SWEEPER)
"""Every way a run gets interrupted: stop metrics count per the trigger that interrupted the run."""

CANCEL_CONFLICT = cancel_metric(CancelOutcome.CONFLICT)
"""A cancel of a finished run, answered 409."""
CANCEL_STORE_UNAVAILABLE = cancel_metric(StoreUnavailable.__name__)
"""DynamoDB did not answer after the SDK's retries: HTTP answered 503, a trigger retries the message."""

SWEEP_PREFIX = "Sweep."
"""`Sweep.<outcome>`: what one sweeper tick did (trigger `sweeper`)."""
SWEEP_READ_UNITS = SWEEP_PREFIX + "read_units"

# Emitted by the stop-guarantee work (stop deadlines), per the trigger that interrupted the run.
STOP_OVERDUE = "Stop.overdue"
"""Interrupted runs found past their stop deadline without a stop acknowledgement (Count)."""
STOP_LATENCY = "Stop.latency"
"""From interruption to the worker's stop acknowledgement (Milliseconds)."""

__all__ = [
    "CANCEL_CONFLICT",
    "CANCEL_STORE_UNAVAILABLE",
    "CANCEL_TRIGGERS",
    "SERVICE_DIMENSION",
    "STOP_LATENCY",
    "STOP_OVERDUE",
    "STOP_TRIGGERS",
    "SWEEP_PREFIX",
    "SWEEP_READ_UNITS",
    "TRIGGER_API",
    "TRIGGER_BULK",
    "TRIGGER_DIMENSION",
    "TRIGGER_EVENTBRIDGE",
    "TRIGGER_SQS",
    "TRIGGER_SWEEPER",
    "cancel_metric",
]
