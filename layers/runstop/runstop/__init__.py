"""runstop: race-free, idempotent cancellation of runs on DynamoDB.

Modules on the cancel path (status, errors, config, store, cancel, http) import neither
pydantic nor the Powertools resolver, so the cancel function's cold start stays near the
boto3 floor. `runstop.models` (pydantic) serves the runs API and the OpenAPI contract.
"""
