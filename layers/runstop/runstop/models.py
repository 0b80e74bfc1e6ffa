"""The API contract as pydantic models: request validation in the runs API and the source
of the OpenAPI document. Not imported on the cancel path (pydantic's cold start)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    field_validator,
    model_validator,
)

from runstop.bulk import MAX_BULK_RUNS
from runstop.cancel import MAX_REASON_LENGTH
from runstop.ids import RUN_ID_PATTERN
from runstop.limits import text_problem, value_problems
from runstop.status import RunStatus

MAX_METADATA_BYTES = 4096
MAX_CONCURRENCY_KEY_LENGTH = 256


def _storable_text(value: str | None) -> str | None:
    problem = None if value is None else text_problem(value)
    if problem:
        raise ValueError(f"the text {problem}")
    return value


RunId = Annotated[str, Field(pattern=RUN_ID_PATTERN, examples=["run-2026-11-23.001"])]
Timestamp = Annotated[str, Field(examples=["2026-11-23T21:12:27.123456Z"])]
ConcurrencyKey = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_CONCURRENCY_KEY_LENGTH,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        examples=["thread-42"],
        description="Any text without control characters, at most 256 characters.",
    ),
    AfterValidator(_storable_text),
]


class Strict(BaseModel):
    """Unknown fields are a client bug worth reporting, not something to ignore."""

    model_config = ConfigDict(extra="forbid")


class CancelRecord(BaseModel):
    reason: str | None = None
    requested_at: Timestamp
    source: str = Field(
        description="Which trigger cancelled: api, bulk, sqs, eventbridge, sweeper, cascade (its parent was "
        "cancelled), superseded (a run created with its concurrency_key and on_active interrupt), job (a cancel job)."
    )
    idempotency_key: str | None = Field(default=None, description="The cancelling request's Idempotency-Key.")
    root_run_id: RunId | None = Field(
        default=None, description="With source cascade: the run whose cancel started the cascade."
    )
    superseded_by: RunId | None = Field(
        default=None, description="With source superseded: the run created in its place."
    )
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
    parent_run_id: RunId | None = Field(default=None, description="The run this run was created under.")
    concurrency_key: ConcurrencyKey | None = Field(default=None, description="The key this run was created with.")


class RunPage(BaseModel):
    items: list[Run] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page. Opaque, and valid only for the "
        "same tenant and the same status filter."
    )


def _small_and_storable(value: dict[str, JsonValue]) -> dict[str, JsonValue]:
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


Metadata = Annotated[dict[str, JsonValue], AfterValidator(_small_and_storable)]


class CreateRunRequest(Strict):
    run_id: RunId | None = Field(default=None, description="Generated when absent.")
    metadata: Metadata = Field(default_factory=dict, description="At most 4 KB as compact JSON.")
    parent_run_id: RunId | None = Field(
        default=None,
        description="Create the run under this run of the same tenant: only while that run is pending or running "
        "(else 409 with its run_status; 404 if there is no such run; 422 if it is run_id itself). Cancelling a "
        "run cancels its active descendants (cancel.source cascade).",
    )
    concurrency_key: ConcurrencyKey | None = Field(
        default=None, description="At most one run per tenant and key is active; on_active says what to do if one is."
    )
    on_active: Literal["reject", "interrupt"] | None = Field(
        default=None,
        description="Only with concurrency_key (default reject): reject answers 409 naming the key's active run "
        "(active_run_id); interrupt interrupts it (cancel.source superseded, cancel.superseded_by this run) and "
        "creates this run, in one transaction.",
    )
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

    @model_validator(mode="after")
    def _on_active_needs_a_key(self) -> CreateRunRequest:
        if self.on_active is not None and self.concurrency_key is None:
            raise ValueError("on_active needs a concurrency_key")
        if self.parent_run_id is not None and self.parent_run_id == self.run_id:
            raise ValueError("a run cannot be its own parent")
        return self


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


class CancelJobFilter(Strict):
    status: list[RunStatus] = Field(
        default_factory=lambda: [RunStatus.PENDING, RunStatus.RUNNING],
        min_length=1,
        description="Runs in any of these statuses (default pending and running); each is read from its own "
        "index partition, so a job costs in proportion to the runs in these statuses, not the table.",
    )
    created_before: AwareDatetime | None = Field(
        default=None,
        description="Only runs created before this moment (ISO 8601 with a time zone). Runs created after the job "
        "started are never touched, whatever this says.",
    )
    metadata: Metadata = Field(
        default_factory=dict, description="Only runs whose metadata has each of these top-level entries, equal."
    )
    concurrency_key: ConcurrencyKey | None = Field(default=None, description="Only runs created with this key.")

    @field_validator("status")
    @classmethod
    def _distinct(cls, value: list[RunStatus]) -> list[RunStatus]:
        return list(dict.fromkeys(value))

    @field_validator("created_before")
    @classmethod
    def _in_utc_range(cls, value: datetime | None) -> datetime | None:
        try:
            return None if value is None else value.astimezone(UTC)
        except OverflowError:
            raise ValueError("created_before is outside the range of UTC timestamps") from None


class CancelJobRequest(Strict):
    filter: CancelJobFilter
    reason: Reason = None
    force: Force = False


class CancelJobFilterView(BaseModel):
    status: list[RunStatus]
    created_before: Timestamp | None = None
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    concurrency_key: str | None = None


class CancelJobCounts(BaseModel):
    interrupted: int = Field(ge=0, description="Runs this job interrupted.")
    already_interrupted: int = Field(ge=0, description="Runs interrupted before this job decided them.")
    conflict: int = Field(ge=0, description="Runs that had finished (success, error, timeout).")
    failed: int = Field(ge=0, description="Runs DynamoDB kept refusing to decide; cancel them again.")


class CancelJob(BaseModel):
    job_id: str
    state: Literal["running", "done"]
    filter: CancelJobFilterView
    reason: str | None = None
    force: bool = False
    created_at: Timestamp = Field(description="When the job started: runs created from then on are not touched.")
    updated_at: Timestamp
    finished_at: Timestamp | None = None
    matched: int = Field(ge=0, description="Runs found matching the filter so far; each counted in one outcome.")
    counts: CancelJobCounts


class Problem(BaseModel):
    """RFC 9457 problem details; extension members depend on the problem type."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    run_id: str | None = None
    run_status: RunStatus | None = None
    parent_run_id: str | None = Field(default=None, description="parent-not-found, parent-not-active: the parent.")
    concurrency_key: str | None = Field(default=None, description="concurrency-key-held: the key.")
    active_run_id: str | None = Field(default=None, description="concurrency-key-held: the key's active run.")
    job_id: str | None = Field(default=None, description="cancel-job-not-found: the job.")
