"""Runs API: create, read and the worker's transitions (cancel has its own lean function)."""

import uuid
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from runstop import runs
from runstop.api import build_resolver, current_tenant, problem_responses
from runstop.http import RUN_ID_PATTERN
from runstop.models import CompleteRunRequest, CreateRunRequest, Run
from runstop.status import RunStatus
from runstop.store import run_store

logger = Logger()
metrics = Metrics()
app = build_resolver()

RunIdPath = Annotated[str, Path(pattern=RUN_ID_PATTERN, description="The run's id within the caller's tenant.")]


@app.post("/runs", summary="Create a run (pending)", responses=problem_responses(409, 415, 422))
def create_run(body: CreateRunRequest) -> Response[Run]:
    run = runs.create_run(run_store(), current_tenant(app), body.run_id or str(uuid.uuid4()), body.metadata)
    return Response(status_code=201, body=Run.model_validate(run), content_type="application/json")


@app.get("/runs/<run_id>", summary="Read a run", responses=problem_responses(404))
def get_run(run_id: RunIdPath) -> Run:
    return Run.model_validate(runs.get_run(run_store(), current_tenant(app), run_id))


@app.post("/runs/<run_id>/start", summary="Worker: pending -> running", responses=problem_responses(404, 409))
def start_run(run_id: RunIdPath) -> Run:
    return Run.model_validate(runs.start_run(run_store(), current_tenant(app), run_id))


@app.post(
    "/runs/<run_id>/heartbeat",
    summary="Worker: I am alive",
    description="A 409 carries run_status: the run is no longer running and the worker must stop.",
    responses=problem_responses(404, 409),
)
def heartbeat_run(run_id: RunIdPath) -> Run:
    return Run.model_validate(runs.heartbeat_run(run_store(), current_tenant(app), run_id))


@app.post(
    "/runs/<run_id>/complete",
    summary="Worker: running -> success | error | timeout",
    description="A completion that arrives after a cancel is refused with 409; it never overwrites the cancel.",
    responses=problem_responses(404, 409, 415, 422),
)
def complete_run(run_id: RunIdPath, body: CompleteRunRequest) -> Run:
    run = runs.complete_run(run_store(), current_tenant(app), run_id, RunStatus(body.status))
    return Run.model_validate(run)


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
