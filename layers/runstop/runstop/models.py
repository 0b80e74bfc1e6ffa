"""The API contract as pydantic models: request validation in the runs API and the source
of the OpenAPI document. Not imported on the cancel path (pydantic's cold start)."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, StrictBool, field_validator

from runstop.bulk import MAX_BULK_RUNS
from runstop.cancel import MAX_REASON_LENGTH
from runstop.ids import RUN_ID_PATTERN
from runstop.limits import text_problem, value_problems
from runstop.status import RunStatus

MAX_METADATA_BYTES = 4096

RunId = Annotated[str, Field(pattern=RUN_ID_PATTERN, examples=["run-2026-11-23.001"])]
Timestamp = Annotated[str, Field(examples=["2026-11-23T21:12:27.123456Z"])]


class Strict(BaseModel):
    """Unknown fields are a client bug worth reporting, not something to ignore."""

    model_config = ConfigDict(extra="forbid")


class CancelRecord(BaseModel):
    reason: str | None = None
    requested_at: Timestamp
    source: str = Field(description="Which trigger cancelled: api, bulk, sqs, eventbridge, sweeper.")
    idempotency_key: str | None = Field(default=None, description="The cancelling request's Idempotency-Key.")
    force: bool | None = Field(default=None, description="true when the cancel gave the worker no grace.")


class Run(BaseModel):
    run_id: RunId
    tenant_id: str
    status: RunStatus
    created_at: Timestamp
    updated_at: Timestamp
    started_at: Timestamp | None = None
    ended_at: Timestamp | None = None
    heartbeat_at: Timestamp | None = None
    worker_id: RunId | None = Field(default=None, description="The worker that started the run (and holds it).")
    cancel: CancelRecord | None = Field(default=None, description="The first cancel; never overwritten.")
    stopped_at: Timestamp | None = Field(
        default=None,
        description="When the worker acknowledged the stop of the interrupted run (for a run interrupted while "
        "pending, the interruption itself: no worker to wait for).",
    )
    stop_grace_seconds: int | None = Field(
        default=None, description="How long a worker has to stop after a cancel (the stop deadline's grace)."
    )
    stop_deadline: Timestamp | None = Field(
        default=None,
        description="Set by the cancel of a running run: the cancel's requested_at plus the run's stop grace (force: "
        "no grace). The worker must acknowledge its stop by then.",
    )
    stop_overdue_at: Timestamp | None = Field(
        default=None,
        description="When the sweeper found the run past its stop deadline without acknowledgement (and announced "
        "Run Stop Overdue). A late acknowledgement still records stopped_at.",
    )
    version: int = Field(ge=1, description="Increments on every change.")
    metadata: dict[str, JsonValue] = Field(default_factory=dict)


class RunPage(BaseModel):
    items: list[Run] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page. Opaque, and valid only for the "
        "same tenant and the same status filter."
    )


class CreateRunRequest(Strict):
    run_id: RunId | None = Field(default=None, description="Generated when absent.")
    metadata: dict[str, JsonValue] = Field(default_factory=dict, description="At most 4 KB as compact JSON.")
    stop_grace_seconds: int | None = Field(
        default=None,
        ge=1,
        le=3600,
        description="Seconds a worker has to stop after a cancel; default: the stack's StopGraceSeconds.",
    )

    @field_validator("stop_grace_seconds", mode="before")
    @classmethod
    def _a_json_number(cls, value: object) -> object:
        # JSON Schema's integer: 60 and 60.0, never "60" or true (pydantic's lax mode would take them).
        if isinstance(value, (str, bool)):
            raise ValueError("stop_grace_seconds must be a JSON integer")
        return value

    @field_validator("metadata")
    @classmethod
    def _small_and_storable(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        try:
            encoded = json.dumps(value, separators=(",", ":"), allow_nan=False)
        except ValueError:
            raise ValueError("metadata must not contain NaN or Infinity") from None
        problems = value_problems(value, "metadata")
        if problems:
            raise ValueError("; ".join(problems[:5]))
        if len(encoded.encode()) > MAX_METADATA_BYTES:
            raise ValueError(f"metadata must be at most {MAX_METADATA_BYTES} bytes as JSON")
        return value


def _storable_text(value: str | None) -> str | None:
    problem = None if value is None else text_problem(value)
    if problem:
        raise ValueError(f"the text {problem}")
    return value


Reason = Annotated[str | None, Field(max_length=MAX_REASON_LENGTH), AfterValidator(_storable_text)]


class WorkerRequest(Strict):
    """The optional body of the worker's calls: who is calling."""

    worker_id: RunId | None = Field(
        default=None,
        description="The worker's own id. On start, stored as the run's holder (generated when absent); on the "
        "other worker calls, when given and not the holder's, the call is refused with 409.",
    )


class CompleteRunRequest(WorkerRequest):
    status: Literal["success", "error", "timeout"]


Force = Annotated[
    StrictBool,
    Field(description="No grace: the stop deadline is the cancel's requested_at (for a worker that must stop now)."),
]


class CancelRequest(Strict):
    reason: Reason = None
    force: Force = False


class CancelAccepted(BaseModel):
    run_id: RunId
    status: Literal["interrupted"] | None = Field(description="null when the run does not exist.")
    outcome: Literal["interrupted", "already_interrupted", "absent"] = Field(
        description="interrupted: this request (or an earlier try with its Idempotency-Key) stopped the run; "
        "already_interrupted: someone else had; absent: no such run for this tenant."
    )
    cancel: CancelRecord | None = None
    version: int | None = None
    stop_deadline: Timestamp | None = Field(
        default=None, description="By when the worker must acknowledge the stop; null when absent or never started."
    )
    stop_acknowledged: bool | None = Field(
        default=None,
        description="Only with ?wait=N: whether the worker acknowledged the stop (POST /runs/{run_id}/stopped) "
        "before the answer; it waits up to N seconds for that. Always false for an absent run.",
    )


class BulkCancelRequest(Strict):
    run_ids: list[str] = Field(
        min_length=1,
        max_length=MAX_BULK_RUNS,
        description="Each id is decided once, in order of first appearance; an invalid id gets its own 400 entry.",
    )
    reason: Reason = None
    force: Force = False


class BulkCancelResult(BaseModel):
    run_id: str
    status_code: Literal[202, 400, 409, 503] = Field(
        description="What POST /runs/{run_id}/cancel would answer for this run: 202 accepted, 409 already finished, "
        "400 invalid run_id, 503 store unavailable (retry this id)."
    )
    outcome: Literal["interrupted", "already_interrupted", "absent"] | None = Field(
        default=None, description="Set when status_code is 202."
    )
    run_status: RunStatus | None = Field(
        default=None, description="The run's status after the decision; null when absent or not decided."
    )
    error: str | None = Field(default=None, description="Set when status_code is 400 or 503.")


class BulkCancelResponse(BaseModel):
    results: list[BulkCancelResult]


class Problem(BaseModel):
    """RFC 9457 problem details; extension members depend on the problem type."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    run_id: str | None = None
    run_status: RunStatus | None = None
