"""Cancel by filter, as a job: every run matching a filter goes through the one cancel decision.

A job reads the ByStatus index, one selected status after another (in lifecycle order, so a run
that moves from pending to running while the job works is still met), each partition bounded by
`created_key < min(created_before, the job's own start)`: runs created after the job started are
never read, and the cost follows the runs in the selected statuses, not the table. Metadata and
concurrency_key are checked per run.

The job lives in one item of the CancelJobs table, and moves in steps, each one conditional write
on the job's step number (`seq`), so a step is taken once whoever races for it:

1. page: read the next index page from the stored cursor; store the page's matching run ids
   (`undecided`) with the cursor after it;
2. decide: put every undecided run through the cancel decision, then store the counts with
   `undecided` cleared.

A worker that dies between the two leaves `undecided` in place: the next one decides the same
runs again, with the same idempotency key (`job:<job_id>`), so a run this job interrupted answers
`interrupted` again and counts once, since counts are only ever stored with the step that clears
`undecided`. Runs an earlier try interrupted have left their status partition meanwhile, which is
why the page's ids are stored before any of them is decided.

Who works: the job item carries an `epoch`, and a `wake` attribute only when it waits for a
worker (when created, and when a worker runs out of time and hands over). The stream of the
table carries exactly those writes to the CancelJobs queue (every step removes `wake`); a
message works the job only while its epoch is the job's, so a stale or duplicate message does
nothing, and a redelivered one (its worker died) resumes from the last step.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from runstop import clock
from runstop.cancel import cancel_run
from runstop.errors import CancelJobNotFound, IdempotencyKeyReused, StoreUnavailable
from runstop.ids import request_token
from runstop.item_codec import deserialize_item, serialize
from runstop.settings import settings
from runstop.status import ACTIVE, FINAL, RunStatus
from runstop.store import RunStore, dynamodb_client, translate_errors

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

BY_STATUS_INDEX = "ByStatus"
JOB_SOURCE = "job"
PAGE_SIZE = 100
"""Runs read per step: one Query and two job writes per page, so ~0.03 requests per run on top
of each run's one cancel decision (bench row "filter job")."""
DECIDE_CONCURRENCY = 16
DECISION_TRIES = 3
"""Tries of one run's decision against a store that stays unavailable before it counts as failed."""
LIFECYCLE = (
    RunStatus.PENDING,
    RunStatus.RUNNING,
    RunStatus.SUCCESS,
    RunStatus.ERROR,
    RunStatus.TIMEOUT,
    RunStatus.INTERRUPTED,
)
DEFAULT_STATUSES = (RunStatus.PENDING, RunStatus.RUNNING)
OUTCOMES = ("interrupted", "already_interrupted", "conflict", "failed")
_KEYED_JOB_IDS = uuid.UUID("0b8c3f0e-41d6-4f4e-a6c2-8e1f3c5d7a90")
"""Namespace of the job ids derived from an Idempotency-Key (uuid5)."""
INTERNAL = frozenset(
    {
        "tenant_id",
        "seq",
        "epoch",
        "wake",
        "undecided",
        "undecided_status",
        "cursor",
        "phase",
        "upper_key",
        "create_token",
        "expires_at",
    }
)
_MISSING = object()


class JobState(StrEnum):
    RUNNING = "running"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which runs a job cancels: in one of `statuses`, created before `created_before` (an
    ISO-8601 UTC timestamp as runstop writes them), with every `metadata` entry, with that key."""

    statuses: tuple[RunStatus, ...] = DEFAULT_STATUSES
    created_before: str | None = None
    metadata: Mapping[str, Any] | None = None
    concurrency_key: str | None = None

    def as_item(self) -> dict[str, Any]:
        return {
            "status": [status.value for status in self.statuses],
            "created_before": self.created_before,
            "metadata": dict(self.metadata or {}),
            "concurrency_key": self.concurrency_key,
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> JobFilter:
        return cls(
            tuple(RunStatus(s) for s in item.get("status") or DEFAULT_STATUSES),
            item.get("created_before"),
            item.get("metadata") or {},
            item.get("concurrency_key"),
        )

    def matches(self, run: Mapping[str, Any]) -> bool:
        """The checks the index cannot make: each metadata entry equal, and the key."""
        if self.concurrency_key is not None and run.get("concurrency_key") != self.concurrency_key:
            return False
        stored = run.get("metadata") or {}
        return all(stored.get(name, _MISSING) == value for name, value in (self.metadata or {}).items())

    def ordered_statuses(self) -> list[RunStatus]:
        """The selected statuses in lifecycle order: a run moving on while the job reads is met again."""
        return [status for status in LIFECYCLE if status in self.statuses]


class JobTable:
    """Cancel jobs in one table keyed by (tenant_id, job_id)."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    @staticmethod
    def key(tenant_id: str, job_id: str) -> dict[str, Any]:
        return {"tenant_id": {"S": tenant_id}, "job_id": {"S": job_id}}

    def get(self, tenant_id: str, job_id: str) -> dict[str, Any] | None:
        with translate_errors():
            response = self.client.get_item(
                TableName=self.table_name, Key=self.key(tenant_id, job_id), ConsistentRead=True
            )
        item = response.get("Item")
        return deserialize_item(item) if item else None

    def put_new(self, item: Mapping[str, Any]) -> dict[str, Any] | None:
        """Put a new job; the job already stored under its id (None: this put created it)."""
        with translate_errors():
            try:
                self.client.put_item(
                    TableName=self.table_name,
                    Item={k: serialize(v) for k, v in item.items() if v is not None},
                    ConditionExpression="attribute_not_exists(job_id)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except self.client.exceptions.ConditionalCheckFailedException as error:
                old: Mapping[str, Any] | None = error.response.get("Item")  # type: ignore[assignment]
                return deserialize_item(old) if old else {}
        return None

    def advance(
        self, job: Mapping[str, Any], values: Mapping[str, Any], remove: Sequence[str] = ()
    ) -> dict[str, Any] | None:
        """The job's next step: `values` set and `remove` removed (and `wake`, always), only if
        the job is still at its step and epoch. The job as written, or None if another worker
        took the step first."""
        names = {"#seq": "seq", "#epoch": "epoch"}
        updates = {**values, "seq": int(job["seq"]) + 1, "updated_at": clock.iso(clock.now())}
        expression_values: dict[str, Any] = {":seq": serialize(int(job["seq"])), ":epoch": serialize(job["epoch"])}
        sets = []
        for i, (name, value) in enumerate(updates.items()):
            names[f"#v{i}"] = name
            expression_values[f":v{i}"] = serialize(value)
            sets.append(f"#v{i} = :v{i}")
        removed = []
        if "wake" not in updates:  # every step but a hand-over: the stream must not wake anyone
            names["#wake"] = "wake"
            removed.append("#wake")
        for i, name in enumerate(attr for attr in remove if attr not in updates):
            names[f"#r{i}"] = name
            removed.append(f"#r{i}")
        with translate_errors():
            try:
                response = self.client.update_item(
                    TableName=self.table_name,
                    Key=self.key(str(job["tenant_id"]), str(job["job_id"])),
                    UpdateExpression=f"SET {', '.join(sets)}" + (f" REMOVE {', '.join(removed)}" if removed else ""),
                    ConditionExpression="#seq = :seq AND #epoch = :epoch",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=expression_values,
                    ReturnValues="ALL_NEW",
                )
            except self.client.exceptions.ConditionalCheckFailedException:
                return None
        return deserialize_item(response["Attributes"])


def job_table() -> JobTable:
    """The jobs table of this function (CANCEL_JOBS_TABLE), on the process's one client."""
    return JobTable(dynamodb_client(), settings().require("cancel_jobs_table"))


def public_view(job: Mapping[str, Any]) -> dict[str, Any]:
    """The job as clients see it: its counts, never its cursor or its workers' bookkeeping."""
    view = {k: v for k, v in job.items() if k not in INTERNAL}
    view["counts"] = {outcome: int((job.get("counts") or {}).get(outcome, 0)) for outcome in OUTCOMES}
    view["matched"] = int(job.get("matched") or 0)
    return view


def start_job(
    jobs: JobTable,
    tenant_id: str,
    job_filter: JobFilter,
    *,
    reason: str | None = None,
    force: bool = False,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Store a new running job (its stream record wakes the first worker); answers its view.

    With an Idempotency-Key the job id derives from it, so a repeat finds the job it made (and
    the key sent with another request is refused).
    """
    now = clock.iso(clock.now())
    request = {"filter": job_filter.as_item(), "reason": reason, "force": force}
    token = None
    if idempotency_key is None:
        job_id = str(uuid.uuid4())
    else:
        job_id = str(uuid.uuid5(_KEYED_JOB_IDS, f"{tenant_id}\n{idempotency_key}"))
        digest = hashlib.sha256(json.dumps(request, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        token = f"{request_token(idempotency_key)}#{digest}"
    upper = now if job_filter.created_before is None else min(now, job_filter.created_before)
    epoch = request_token()
    item = {
        "tenant_id": tenant_id,
        "job_id": job_id,
        "state": JobState.RUNNING.value,
        **request,
        "created_at": now,
        "updated_at": now,
        "upper_key": upper,
        "phase": 0,
        "counts": dict.fromkeys(OUTCOMES, 0),
        "matched": 0,
        "seq": 0,
        "epoch": epoch,
        "wake": epoch,
        "create_token": token,
    }
    existing = jobs.put_new(item)
    if existing is None:
        return public_view(item)
    if token is not None and existing.get("create_token") == token:
        return public_view(existing)
    raise IdempotencyKeyReused("this Idempotency-Key was used with a different request; send a new key")


def get_job(jobs: JobTable, tenant_id: str, job_id: str) -> dict[str, Any]:
    job = jobs.get(tenant_id, job_id)
    if job is None:
        raise CancelJobNotFound(job_id)
    return public_view(job)


class WorkEnd(StrEnum):
    DONE = "done"
    HANDED_OVER = "handed_over"
    """Out of time: the job waits for the next worker (its stream record wakes one)."""
    STALE = "stale"
    """Not this message's job to work any more (another worker took it on, or it is done)."""


@dataclass
class WorkResult:
    end: WorkEnd
    steps: int = 0
    decided: int = 0
    pages: int = 0


def _page(store: RunStore, job: Mapping[str, Any], job_filter: JobFilter) -> tuple[list[str], dict[str, Any]]:
    """Read the next index page: the matching ids and the job attributes that move past it."""
    statuses = job_filter.ordered_statuses()
    phase = int(job.get("phase") or 0)
    status = statuses[phase]
    items, next_key, _ = store.query_page(
        BY_STATUS_INDEX,
        "tenant_status = :partition AND created_key < :upper",
        {":partition": f"{job['tenant_id']}#{status.value}", ":upper": job["upper_key"]},
        limit=PAGE_SIZE,
        start_key=job.get("cursor"),
    )
    matching = [str(item["run_id"]) for item in items if job_filter.matches(item) and _ours(item, status, job)]
    values: dict[str, Any] = {"undecided": matching, "undecided_status": status.value} if matching else {}
    if next_key is None:
        values["phase"] = phase + 1
    else:
        values["cursor"] = next_key
    return matching, values


def _ours(run: Mapping[str, Any], status: RunStatus, job: Mapping[str, Any]) -> bool:
    """Whether this status's phase decides the run. One that reached a final status after the job
    started was active then: the active statuses' phases are the ones to meet it (the job's own
    interruptions included), so a final status's phase never counts a run a second time."""
    return status not in FINAL or str(run.get("ended_at", "")) < str(job["created_at"])


def _decide_all(store: RunStore, job: Mapping[str, Any], run_ids: Sequence[str]) -> Counter[str]:
    """The cancel decision for each run of the page, as the counts it adds (absent: not counted)."""
    tenant_id, job_id = str(job["tenant_id"]), str(job["job_id"])
    force = bool(job.get("force"))
    # The status the page was read in: a pending run is cancelled in one write, not two.
    read_in = RunStatus(job.get("undecided_status") or RunStatus.RUNNING)
    expect = read_in if read_in in ACTIVE else RunStatus.RUNNING

    def decide(run_id: str) -> str:
        for _ in range(DECISION_TRIES):
            try:
                decision = cancel_run(
                    store,
                    tenant_id,
                    run_id,
                    reason=job.get("reason"),
                    idempotency_key=f"{JOB_SOURCE}:{job_id}",
                    source=JOB_SOURCE,
                    force=force,
                    expect=expect,
                )
            except StoreUnavailable:
                continue
            return decision.outcome.value
        return "failed"

    with ThreadPoolExecutor(max_workers=min(DECIDE_CONCURRENCY, max(1, len(run_ids)))) as pool:
        return Counter(pool.map(decide, run_ids))


def work(
    jobs: JobTable,
    store: RunStore,
    tenant_id: str,
    job_id: str,
    epoch: str,
    *,
    remaining_ms: Callable[[], int] | None = None,
    margin_ms: int = 15_000,
) -> WorkResult:
    """Take the job's steps while it is this epoch's and time remains (see the module doc)."""
    result = WorkResult(WorkEnd.STALE)
    job = jobs.get(tenant_id, job_id)
    if job is None or job.get("state") != JobState.RUNNING or job.get("epoch") != epoch:
        return result
    job_filter = JobFilter.from_item(job.get("filter") or {})
    while True:
        if remaining_ms is not None and remaining_ms() < margin_ms:
            handed = jobs.advance(job, {"epoch": (successor := request_token()), "wake": successor})
            result.end = WorkEnd.STALE if handed is None else WorkEnd.HANDED_OVER
            return result
        undecided = job.get("undecided")
        if undecided:
            tally = _decide_all(store, job, undecided)
            counts = {o: int((job.get("counts") or {}).get(o, 0)) + tally[o] for o in OUTCOMES}
            decided = sum(tally[o] for o in OUTCOMES)
            values: dict[str, Any] = {"counts": counts, "matched": int(job.get("matched") or 0) + decided}
            advanced = jobs.advance(job, values, remove=("undecided", "undecided_status"))
            result.decided += decided
        elif int(job.get("phase") or 0) < len(job_filter.ordered_statuses()):
            _, values = _page(store, job, job_filter)
            advanced = jobs.advance(job, values, remove=("cursor",) if "phase" in values else ())
            result.pages += 1
        else:
            now = clock.now()
            done = {"state": JobState.DONE.value, "finished_at": clock.iso(now), "expires_at": _expiry(now)}
            advanced = jobs.advance(job, done)
            if advanced is not None:
                result.end = WorkEnd.DONE
                result.steps += 1
            return result
        if advanced is None:
            return result  # another worker took this step: it carries on from here
        job = advanced
        result.steps += 1


def _expiry(moment: datetime) -> int:
    return clock.expiry_epoch(moment, settings().retention_days)


__all__ = [
    "JobFilter",
    "JobState",
    "JobTable",
    "WorkEnd",
    "get_job",
    "job_table",
    "start_job",
    "work",
]
