"""The CloudWatch metrics the functions emit (EMF, through Powertools Metrics), named once."""

STOP_OVERDUE = "Stop.overdue"
"""Interrupted runs found past their stop deadline without a stop acknowledgement (Count)."""
STOP_LATENCY = "Stop.latency"
"""From interruption to the worker's stop acknowledgement (Milliseconds)."""
