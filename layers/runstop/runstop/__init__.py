"""runstop: race-free, idempotent cancellation of runs on DynamoDB.

Modules on the cancel path (status, clock, errors, ids, settings, item_codec, store, cancel, emf,
problems, lean_http, stop_wait, schemas) import neither pydantic nor the Powertools resolver,
so the cancel function's cold start stays near the boto3 floor (a unit test guards the
import graph). `runstop.models` (pydantic) and `runstop.resolver` serve the runs API.
"""
