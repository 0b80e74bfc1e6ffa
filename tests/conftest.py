"""Shared test setup: fake credentials so no test can reach real AWS."""

from __future__ import annotations

import os

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
        "POWERTOOLS_SERVICE_NAME": "runstop",
        "POWERTOOLS_METRICS_NAMESPACE": "runstop",
        "POWERTOOLS_DEV": "false",
    }
)
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
