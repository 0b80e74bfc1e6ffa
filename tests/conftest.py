"""Shared test setup: fake credentials so no test can reach real AWS."""

from __future__ import annotations

import os
import sys
from typing import Any

# Before any boto3 client exists: a test must never find real credentials or a real region.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "TABLE_NAME": "RunsTable",
        "IDEMPOTENCY_TABLE": "IdempotencyTable",
        "CONCURRENCY_KEYS_TABLE": "ConcurrencyKeysTable",
        "CANCEL_JOBS_TABLE": "CancelJobsTable",
        "POWERTOOLS_SERVICE_NAME": "runstop",
        "POWERTOOLS_METRICS_NAMESPACE": "runstop",
        "POWERTOOLS_DEV": "false",
    }
)
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The figures of the fault drill and the fuzz run, when they ran in this session."""
    drill = sys.modules.get("tests.integration.test_faults")
    if drill is not None and (drill.RESULTS or drill.STALLED_BULK):
        from tests.integration.fault_drill import table

        terminalreporter.section("fault drill")
        if drill.RESULTS:
            terminalreporter.write_line(table(drill.RESULTS, drill.PROBABILITY, drill.CLIENTS))
        for line in drill.STALLED_BULK:
            terminalreporter.write_line(line)
    fuzz = sys.modules.get("tests.integration.test_fuzz")
    if fuzz is not None and fuzz.TALLY.cases:
        terminalreporter.section("fuzz")
        terminalreporter.write_line(fuzz.TALLY.summary())
