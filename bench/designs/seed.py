"""The seed's two designs, the ones runstop is measured against (handlers served by the bench).

Both check first (a consistent GetItem; an absent run answers 404), then make the conditional
update as the seed wrote it (no ReturnValuesOnConditionCheckFailure, so a failed condition says
nothing), then re-read (consistent) when the condition failed:

- `pre_fix_handler`, before the seed's fix: the check refuses anything that is not active, so a
  run that is already interrupted answers 409 -- the false failure runstop exists to remove;
  after a lost race the re-read answers 202 only for `interrupted`.
- `seed_fix_handler`, the seed's fix: the check is for existence only, the update always goes
  out, and the re-read answers 202 when the run is interrupted or gone, 409 otherwise.

They run on the same table, client, tenant handling and Powertools logging and metrics as the
real handler, so what differs is the design alone.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from runstop import clock
from runstop.errors import RunstopError
from runstop.ids import require_run_id
from runstop.item_codec import deserialize_item, serialize
from runstop.lean_http import error_response, json_body, response, tenant_from_event
from runstop.problems import PROBLEM_CONTENT_TYPE, problem
from runstop.settings import settings
from runstop.status import ACTIVE, RunStatus
from runstop.store import RunStore, run_store, translate_errors

logger = Logger()
metrics = Metrics()


def _conflict(run_id: str, status: str) -> dict[str, Any]:
    body = problem(409, "Run not cancellable", f"run {run_id!r} is {status}", "status-conflict", run_id=run_id)
    return response(409, {**body, "run_status": status}, PROBLEM_CONTENT_TYPE)


def _accepted(run_id: str, run: dict[str, Any] | None, outcome: str) -> dict[str, Any]:
    status = None if run is None else run["status"]
    cancel = None if run is None else run.get("cancel")
    return response(202, {"run_id": run_id, "status": status, "outcome": outcome, "cancel": cancel})


def _interrupt(store: RunStore, tenant_id: str, run_id: str, reason: str | None) -> dict[str, Any]:
    """The conditional update, as the seed wrote it: no item comes back when it fails."""
    moment = clock.now()
    stamp = clock.iso(moment)
    values = {
        ":interrupted": {"S": RunStatus.INTERRUPTED.value},
        ":tenant_status": {"S": f"{tenant_id}#{RunStatus.INTERRUPTED.value}"},
        ":stamp": {"S": stamp},
        ":cancel": serialize({"reason": reason, "requested_at": stamp, "source": "api"}),
        ":expires": serialize(clock.expiry_epoch(moment, settings().retention_days)),
        ":one": {"N": "1"},
        ":pending": {"S": RunStatus.PENDING.value},
        ":running": {"S": RunStatus.RUNNING.value},
    }
    result = store.client.update_item(
        TableName=store.table_name,
        Key=store.key(tenant_id, run_id),
        UpdateExpression=(
            "SET #status = :interrupted, tenant_status = :tenant_status, updated_at = :stamp, ended_at = :stamp,"
            " #cancel = :cancel, expires_at = :expires, version = version + :one REMOVE active_pk, sweep_at"
        ),
        ConditionExpression="#status IN (:pending, :running)",
        ExpressionAttributeNames={"#status": "status", "#cancel": "cancel"},
        ExpressionAttributeValues=values,
        ReturnValues="ALL_NEW",
    )
    return deserialize_item(result["Attributes"])


def _decide(event: dict[str, Any], fixed: bool) -> dict[str, Any]:
    tenant_id = tenant_from_event(event)
    run_id = require_run_id((event.get("pathParameters") or {}).get("run_id") or "")
    body = json_body(event) or {}
    reason = body.get("reason") if isinstance(body, dict) else None
    store = run_store()
    run = store.get(tenant_id, run_id)  # 1. does it exist?
    if run is None:
        body = problem(404, "Run not found", f"run {run_id!r} not found", "run-not-found", run_id=run_id)
        return response(404, body, PROBLEM_CONTENT_TYPE)
    if not fixed and run["status"] not in ACTIVE:  # before the fix: an interrupted run is refused too
        return _conflict(run_id, str(run["status"]))
    with translate_errors():  # 2. then cancel
        try:
            return _accepted(run_id, _interrupt(store, tenant_id, run_id, reason), "interrupted")
        except store.client.exceptions.ConditionalCheckFailedException:
            pass
    current = store.get(tenant_id, run_id)  # 3. the condition failed: read again to decide
    if current is not None and current["status"] == RunStatus.INTERRUPTED:
        return _accepted(run_id, current, "already_interrupted")
    if current is None and fixed:
        return _accepted(run_id, None, "absent")
    return _conflict(run_id, "absent" if current is None else str(current["status"]))


def _handle(event: dict[str, Any], fixed: bool) -> dict[str, Any]:
    try:
        result = _decide(event, fixed)
    except RunstopError as error:
        return error_response(error)
    metrics.add_metric(name=f"SeedCancel.{result['statusCode']}", unit=MetricUnit.Count, value=1)
    logger.info("seed cancel decided", status=result["statusCode"], fixed=fixed)
    return result


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def pre_fix_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _handle(event, fixed=False)


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def seed_fix_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _handle(event, fixed=True)
