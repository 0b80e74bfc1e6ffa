"""Runs API: create, list, read, bulk cancel and the worker's calls (single cancel has its own lean function)."""

import uuid
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from runstop import bulk, clock, idempotency, jobs, runs
from runstop.concurrency import OnActive
from runstop.cursor import MAX_CURSOR_LENGTH
from runstop.ids import RUN_ID_PATTERN
from runstop.links import Links
from runstop.metric_names import STOP_LATENCY, TRIGGER_BULK, TRIGGER_DIMENSION
from runstop.models import (
    BulkCancelRequest,
    BulkCancelResponse,
    CancelJob,
    CancelJobRequest,
    CompleteRunRequest,
    CreateRunRequest,
    Run,
    RunPage,
    WorkerRequest,
)
from runstop.resolver import (
    IdempotencyKeyHeader,
    JobIdPath,
    RunIdPath,
    build_resolver,
    current_tenant,
    json_media_type_for_validation,
    route_responses,
)
from runstop.settings import settings
from runstop.status import RunStatus, StopPhase
from runstop.store import run_store

logger = Logger()
metrics = Metrics()
app = build_resolver()
settings()  # a missing TABLE_NAME fails the first cold start, with its name, not a later request

StatusQuery = Annotated[RunStatus | None, Query(description="Only runs in this status.")]
StopQuery = Annotated[
    StopPhase | None,
    Query(
        description="Only interrupted runs in this stop phase: pending (still stopping), overdue (past their "
        "stop_deadline without acknowledgement), acknowledged (stopped_at recorded). Implies status=interrupted."
    ),
]
LimitQuery = Annotated[int, Query(ge=1, le=runs.MAX_PAGE_SIZE, description="Runs per page.")]
WorkerBody = Annotated[WorkerRequest | None, Body(description="Optional: which worker calls.")]
ParentQuery = Annotated[
    str | None,
    Query(pattern=RUN_ID_PATTERN, description="Only the children of this run (created with it as parent_run_id)."),
]
CursorQuery = Annotated[
    str | None, Query(max_length=MAX_CURSOR_LENGTH, description="next_cursor of the previous page, unchanged.")
]


def _worker(body: WorkerRequest | None) -> str | None:
    return None if body is None else body.worker_id


def _links(body: CreateRunRequest) -> Links:
    return Links(body.parent_run_id, body.concurrency_key, OnActive(body.on_active or OnActive.REJECT))


@app.post(
    "/runs",
    summary="Create a run (pending)",
    description="With an Idempotency-Key, a repeat of the same request (same tenant, key and body) answers the "
    "first 201 again and creates nothing; the key with another body is refused with 422.",
    responses=route_responses(
        201,
        Run,
        "The new run (or, for a repeated Idempotency-Key, the run the first request created).",
        404,
        409,
        415,
        422,
        notes={
            404: "parent-not-found: parent_run_id names no run of this tenant.",
            409: "run-exists: the run_id exists; request-in-progress: a request with this Idempotency-Key is still "
            "in progress (Retry-After); parent-not-active: the parent is no longer pending or running (run_status "
            "says what it is); concurrency-key-held: on_active reject and the key's run (active_run_id) is active.",
            422: "The body breaks the schema, or the Idempotency-Key was used with another body.",
        },
    ),
)
def create_run(body: CreateRunRequest, idempotency_key: IdempotencyKeyHeader = None) -> Response[Run]:
    tenant_id = current_tenant(app)
    links = _links(body)
    if idempotency_key is None:
        run = runs.create_run(
            run_store(),
            tenant_id,
            body.run_id or str(uuid.uuid4()),
            body.metadata,
            stop_grace_seconds=body.stop_grace_seconds,
            links=links,
        )
    else:
        key = idempotency_key
        run = idempotency.once(
            "create_run",
            tenant_id,
            key,
            body.model_dump(mode="json"),
            lambda: runs.create_run_for_key(
                run_store(),
                tenant_id,
                key,
                body.run_id,
                body.metadata,
                stop_grace_seconds=body.stop_grace_seconds,
                links=links,
            ),
        )
    return Response(status_code=201, body=Run.model_validate(run), content_type="application/json")


@app.get(
    "/runs",
    summary="List runs, newest first",
    description="One page of the caller's runs, optionally of one status, or the children of one run "
    "(parent_run_id, optionally of one status or stop phase); follow next_cursor for the next page.",
    responses=route_responses(200, RunPage, "A page of runs."),
)
def list_runs(
    status: StatusQuery = None,
    stop: StopQuery = None,
    limit: LimitQuery = runs.DEFAULT_PAGE_SIZE,
    cursor: CursorQuery = None,
    parent_run_id: ParentQuery = None,
) -> RunPage:
    items, next_cursor = runs.list_runs(
        run_store(),
        current_tenant(app),
        status=status,
        stop=stop,
        limit=limit,
        after=cursor,
        parent_run_id=parent_run_id,
    )
    return RunPage(items=[Run.model_validate(item) for item in items], next_cursor=next_cursor)


@app.post(
    "/runs/cancel",
    summary="Cancel up to 100 runs",
    description="Each distinct run_id is decided exactly as POST /runs/{run_id}/cancel would decide it; the "
    "results keep the order in which the ids first appear. An invalid id fails only its own entry.",
    responses=route_responses(200, BulkCancelResponse, "One result per distinct run_id.", 415, 422),
)
def bulk_cancel(body: BulkCancelRequest, idempotency_key: IdempotencyKeyHeader = None) -> BulkCancelResponse:
    results = bulk.cancel_many(
        run_store(),
        current_tenant(app),
        body.run_ids,
        reason=body.reason,
        idempotency_key=idempotency_key,
        force=body.force,
        remaining_ms=app.lambda_context.get_remaining_time_in_millis,
    )
    metrics.add_dimension(name=TRIGGER_DIMENSION, value=TRIGGER_BULK)
    for name, count in bulk.metric_counts(results).items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)
    return BulkCancelResponse.model_validate({"results": results})


@app.get("/runs/<run_id>", summary="Read a run", responses=route_responses(200, Run, "The run.", 404))
def get_run(run_id: RunIdPath) -> Run:
    return Run.model_validate(runs.get_run(run_store(), current_tenant(app), run_id))


@app.post(
    "/runs/<run_id>/start",
    summary="Worker: pending -> running",
    description="Stores worker_id (generated when absent) as the run's holder. Repeating it with the same "
    "worker_id while that worker runs the run answers 200 with the run; another worker gets 409 with run_status "
    "and the holder's worker_id.",
    responses=route_responses(200, Run, "The run, now running.", 404, 409, 415, 422),
)
def start_run(run_id: RunIdPath, body: WorkerBody = None) -> Run:
    return Run.model_validate(runs.start_run(run_store(), current_tenant(app), run_id, _worker(body)))


@app.post(
    "/runs/<run_id>/heartbeat",
    summary="Worker: I am alive",
    description="With worker_id, only the holder may heartbeat. A 409 carries run_status (and, when interrupted, "
    "cancel): the run is no longer running and the worker must stop "
    "(and, if it is interrupted, acknowledge with POST /runs/{run_id}/stopped).",
    responses=route_responses(200, Run, "The run, heartbeat_at updated.", 404, 409, 415, 422),
)
def heartbeat_run(run_id: RunIdPath, body: WorkerBody = None) -> Run:
    return Run.model_validate(runs.heartbeat_run(run_store(), current_tenant(app), run_id, _worker(body)))


@app.post(
    "/runs/<run_id>/complete",
    summary="Worker: running -> success | error | timeout",
    description="A completion that arrives after a cancel is refused with 409; it never overwrites the cancel. "
    "Completing again with the status the run already has answers 200 with the run, unchanged.",
    responses=route_responses(200, Run, "The finished run.", 404, 409, 415, 422),
)
def complete_run(run_id: RunIdPath, body: CompleteRunRequest) -> Run:
    run = runs.complete_run(run_store(), current_tenant(app), run_id, RunStatus(body.status), body.worker_id)
    return Run.model_validate(run)


@app.post(
    "/runs/<run_id>/stopped",
    summary="Worker: I stopped the interrupted run",
    description="Records stopped_at once, which a cancel with ?wait=N waits for; a repeat answers 200 with the "
    "same stopped_at.",
    responses=route_responses(
        200,
        Run,
        "The run with stopped_at.",
        404,
        409,
        415,
        notes={409: "The run is not interrupted; run_status says what it is."},
    ),
)
def acknowledge_stop(run_id: RunIdPath, body: WorkerBody = None) -> Run:
    run = runs.acknowledge_stop(
        run_store(), current_tenant(app), run_id, _worker(body), on_recorded=_count_stop_latency
    )
    return Run.model_validate(run)


def _count_stop_latency(run: dict[str, Any]) -> None:
    """From interruption to acknowledgement, per the trigger that interrupted the run."""
    latency = runs.stop_latency_ms(run)
    if latency is not None:
        trigger = str((run.get("cancel") or {}).get("source") or "unknown")
        with single_metric(
            name=STOP_LATENCY,
            unit=MetricUnit.Milliseconds,
            value=latency,
            default_dimensions=metrics.default_dimensions,
        ) as metric:
            metric.add_dimension(name=TRIGGER_DIMENSION, value=trigger)


@app.post(
    "/cancel-jobs",
    summary="Cancel every run matching a filter, as a job",
    description="Answers at once with the job; the job then puts every run in the selected statuses that matches "
    "the filter (created before created_before and before the job itself started, with the metadata entries and "
    "the concurrency_key given) through the same decision as POST /runs/{run_id}/cancel, page by page. Follow it "
    "with GET /cancel-jobs/{job_id}. With an Idempotency-Key, a repeat answers the same job.",
    responses=route_responses(
        202,
        CancelJob,
        "The job, running.",
        415,
        422,
        notes={422: "The body breaks the schema, or the Idempotency-Key was used with another body."},
    ),
)
def create_cancel_job(body: CancelJobRequest, idempotency_key: IdempotencyKeyHeader = None) -> Response[CancelJob]:
    job_filter = jobs.JobFilter(
        tuple(body.filter.status),
        None if body.filter.created_before is None else clock.iso(body.filter.created_before),
        body.filter.metadata,
        body.filter.concurrency_key,
    )
    job = jobs.start_job(
        jobs.job_table(),
        current_tenant(app),
        job_filter,
        reason=body.reason,
        force=body.force,
        idempotency_key=idempotency_key,
    )
    return Response(status_code=202, body=CancelJob.model_validate(job), content_type="application/json")


@app.get(
    "/cancel-jobs/<job_id>",
    summary="Read a cancel job",
    description="Its state (running, done), the runs it matched so far and its counts per outcome.",
    responses=route_responses(200, CancelJob, "The job.", 404),
)
def get_cancel_job(job_id: JobIdPath) -> CancelJob:
    return CancelJob.model_validate(jobs.get_job(jobs.job_table(), current_tenant(app), job_id))


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency.config.register_lambda_context(context)
    return app.resolve(json_media_type_for_validation(event), context)
