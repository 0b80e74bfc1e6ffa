"""The judge of the fault drill: every answer a client got, held against the runs' true final
state read from DynamoDB afterwards. Pure functions of what was recorded, so the rules are
unit-tested on their own (tests/unit/test_fault_judge.py).

The rules are the contract of issue 9: a retry that finds its own write answers what the first
attempt would have; `start` with the worker already holding the run is 200 and another worker
gets 409 with the holder's worker_id; `complete` repeated with the run's own status is 200,
unchanged; nothing is ever a 500; every 503 carries Retry-After.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FINISHED = frozenset({"success", "error", "timeout"})
TERMINAL = FINISHED | {"interrupted"}


@dataclass(frozen=True)
class Attempt:
    """One HTTP answer (or a transport failure: status None)."""

    status: int | None
    body: Any = None
    retry_after: str | None = None
    content_type: str = ""
    error: str | None = None
    seconds: float = 0.0

    @property
    def retryable(self) -> bool:
        """What a real client retries: a 503, a 409 that says when to retry, a lost connection."""
        return self.status is None or self.status == 503 or (self.status == 409 and self.retry_after is not None)


@dataclass
class Call:
    """One logical request and every attempt a client made at it (same body, same Idempotency-Key)."""

    route: str
    """create, start, heartbeat, complete, stopped, cancel, bulk."""
    run_id: str | None
    params: dict[str, Any] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def final(self) -> Attempt:
        return self.attempts[-1]

    @property
    def conclusive(self) -> bool:
        return bool(self.attempts) and not self.final.retryable

    @property
    def earlier_attempt_unknown(self) -> bool:
        """An earlier attempt may have been applied without the client learning it."""
        return any(attempt.retryable for attempt in self.attempts[:-1])


@dataclass(frozen=True)
class Finding:
    route: str
    run_id: str | None
    reason: str
    status: int | None
    body: Any = None

    def __str__(self) -> str:
        return f"{self.route} {self.run_id}: {self.reason} (answered {self.status}: {self.body})"


@dataclass
class Verdict:
    answers: int = 0
    """HTTP answers received, retries included."""
    judged: int = 0
    """Final answers judged (a bulk cancel's entries one by one)."""
    inconclusive: int = 0
    """Final answers that say nothing (503 after the client's retries ran out): allowed, never wrong."""
    wrong: list[Finding] = field(default_factory=list)
    server_errors: list[Finding] = field(default_factory=list)
    """Any 5xx other than 503: never allowed."""
    no_retry_after: list[Finding] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    """Runs in the table that no client's request can account for."""

    def wrong_by_route(self) -> dict[str, int]:
        return dict(Counter(finding.route for finding in self.wrong))

    @property
    def clean(self) -> bool:
        return not (self.wrong or self.server_errors or self.no_retry_after or self.orphans)


Validator = Callable[[str, int, str, Any], str | None]
"""(route, status, content type, body) -> why the answer breaks the document, or None."""


def _problem_status(body: Any) -> tuple[str | None, str | None]:
    if not isinstance(body, dict):
        return None, None
    return body.get("run_status"), body.get("worker_id")


def _judge_create(call: Call, final: Mapping[str, Any] | None, answer: Attempt) -> str | None:
    given = call.params.get("run_id")
    if answer.status == 201:
        body = answer.body
        if given is not None and body.get("run_id") != given:
            return f"created {body.get('run_id')!r}, not the run_id given"
        if final is None:
            return "201, but the run is not in the table"
        if final.get("metadata") != call.params.get("metadata"):
            return "201, but the stored run holds other metadata"
        return None
    body = answer.body if isinstance(answer.body, dict) else {}
    if answer.status == 409 and str(body.get("type", "")).endswith(":run-exists"):
        if given is None:
            return f"409 run exists for {body.get('run_id')!r}, an id the server chose (its own write)"
        if call.params.get("key") is None and call.earlier_attempt_unknown:
            return None  # a new request after an unknown outcome, and no key to tie them together
        if final is not None and final.get("metadata") == call.params.get("metadata"):
            return "409 run exists for the client's own write (its run_id and metadata)"
        return "409 run exists for a run_id no other client uses"
    return f"unexpected {answer.status} to a valid create"


def _judge_start(call: Call, final: Mapping[str, Any] | None, answer: Attempt) -> str | None:
    worker = call.params["worker_id"]
    holder = None if final is None else final.get("worker_id")
    if answer.status == 200:
        body = answer.body
        if body.get("status") != "running" or body.get("worker_id") != worker:
            return f"200 with status {body.get('status')!r} and worker_id {body.get('worker_id')!r}"
        if holder != worker:
            return f"200, but the run's worker is {holder!r}"
        return None
    if answer.status == 409:
        run_status, answered_holder = _problem_status(answer.body)
        if holder == worker:
            return "409 to the worker that holds the run (its own start applied)"
        if run_status == "running":
            if answered_holder != holder:
                return f"409 running names worker {answered_holder!r}, the holder is {holder!r}"
            return None
        if run_status in TERMINAL and final is not None and final["status"] == run_status:
            return None
        return f"409 with run_status {run_status!r}; the run ended {None if final is None else final['status']!r}"
    return f"unexpected {answer.status} to a start of an existing run"


def _judge_holder_call(call: Call, final: Mapping[str, Any] | None, answer: Attempt) -> str | None:
    """heartbeat, complete and stopped, sent only by the worker whose start was answered 200."""
    worker = call.params["worker_id"]
    status = None if final is None else final["status"]
    if answer.status == 200:
        body = answer.body
        if body.get("worker_id") != worker:
            return f"200 naming worker {body.get('worker_id')!r}, not the caller"
        if call.route == "heartbeat" and body.get("status") != "running":
            return f"heartbeat 200 with status {body.get('status')!r}"
        if call.route == "complete":
            wanted = call.params["status"]
            if body.get("status") != wanted or status != wanted:
                return f"complete {wanted} answered 200 with {body.get('status')!r}; the run ended {status!r}"
            if final is not None and (body.get("version"), body.get("ended_at")) != (
                final.get("version"),
                final.get("ended_at"),
            ):
                return "complete 200 shows another version of the finished run"
        if call.route == "stopped":
            stored = None if final is None else final.get("stopped_at")
            if status != "interrupted" or body.get("stopped_at") != stored:
                return f"stopped 200 with stopped_at {body.get('stopped_at')!r}; stored {stored!r}"
        return None
    if answer.status == 409:
        run_status, _ = _problem_status(answer.body)
        if call.route == "complete" and status == call.params["status"]:
            return f"409 to complete {status}: the run is {status} (its own write, or a repeat)"
        if call.route == "stopped" and status == "interrupted":
            return "409 to the stop acknowledgement of an interrupted run"
        if run_status in TERMINAL and run_status == status:
            return None
        return f"409 with run_status {run_status!r}; the run ended {status!r}"
    return f"unexpected {answer.status} to {call.route} from the run's worker"


def _judge_cancel_entry(
    call: Call, run_id: str, final: Mapping[str, Any] | None, status: int | None, outcome: Any, run_status: Any
) -> str | None:
    reason = call.params.get("reason")
    key = call.params.get("key")
    stored = {} if final is None else (final.get("cancel") or {})
    mine = stored.get("reason") == reason and (key is None or stored.get("idempotency_key") == key)
    if status == 202:
        if final is None or final["status"] != "interrupted":
            return f"202 {outcome}, but the run ended {None if final is None else final['status']!r}"
        if outcome == "interrupted" and not mine:
            return "202 interrupted, but another request's cancel is stored"
        if outcome == "already_interrupted" and mine and not (key is None and call.earlier_attempt_unknown):
            return "202 already_interrupted for the request's own cancel"
        if outcome not in ("interrupted", "already_interrupted"):
            return f"202 {outcome} for an existing run"
        return None
    if status == 409:
        if final is not None and final["status"] in FINISHED and run_status == final["status"]:
            return None
        return f"409 with run_status {run_status!r}; the run ended {None if final is None else final['status']!r}"
    return f"unexpected {status} to a cancel of an existing run"


def judge(
    calls: Iterable[Call],
    finals: Mapping[str, Mapping[str, Any]],
    *,
    created_by: Mapping[str, int] | None = None,
    create_calls: Mapping[int, Call] | None = None,
    validate: Validator | None = None,
    invalid_ids: Sequence[str] = (),
) -> Verdict:
    """Judge every call against `finals` (run_id -> the run as stored at the end).

    `created_by` maps each stored run_id to the index of the plan whose create wrote it (a
    marker in its metadata), and `create_calls` that index to its create call: a run no
    client knows is an orphan unless its create's outcome stayed unknown to the client.
    """
    verdict = Verdict()
    known: set[str] = set()
    for call in calls:
        for attempt in call.attempts:
            verdict.answers += attempt.status is not None
            if attempt.status is not None and attempt.status >= 500 and attempt.status != 503:
                verdict.server_errors.append(Finding(call.route, call.run_id, "5xx", attempt.status, attempt.body))
            if attempt.status == 503 and not attempt.retry_after:
                verdict.no_retry_after.append(
                    Finding(call.route, call.run_id, "503 without Retry-After", 503, attempt.body)
                )
        if call.route == "create" and call.conclusive and call.final.status == 201:
            known.add(call.final.body.get("run_id"))
        if call.run_id is not None:
            known.add(call.run_id)
        if not call.attempts:
            continue
        answer = call.final
        if not call.conclusive:
            verdict.judged += 1
            verdict.inconclusive += 1
            continue
        if validate is not None and answer.status is not None and answer.status < 500:
            problem = validate(call.route, answer.status, answer.content_type, answer.body)
            if problem is not None:
                verdict.judged += 1
                verdict.wrong.append(Finding(call.route, call.run_id, problem, answer.status, answer.body))
                continue
        if call.route == "bulk":
            _judge_bulk(call, finals, verdict, invalid_ids)
            continue
        verdict.judged += 1
        run_id = call.run_id if call.route != "create" else (answer.body or {}).get("run_id") or call.run_id
        final = finals.get(run_id) if run_id is not None else None
        match call.route:
            case "create":
                reason = _judge_create(call, final, answer)
            case "start":
                reason = _judge_start(call, final, answer)
            case "heartbeat" | "complete" | "stopped":
                reason = _judge_holder_call(call, final, answer)
            case "cancel":
                body = answer.body if isinstance(answer.body, dict) else {}
                reason = _judge_cancel_entry(
                    call, run_id or "", final, answer.status, body.get("outcome"), body.get("run_status")
                )
            case _:
                raise ValueError(f"no rule for route {call.route!r}")
        if reason is not None:
            verdict.wrong.append(Finding(call.route, run_id, reason, answer.status, answer.body))
    _orphans(finals, known, created_by or {}, create_calls or {}, verdict)
    return verdict


def _judge_bulk(call: Call, finals: Mapping[str, Mapping[str, Any]], verdict: Verdict, invalid: Sequence[str]) -> None:
    answer = call.final
    if answer.status != 200:
        verdict.judged += 1
        verdict.wrong.append(Finding("bulk", None, f"unexpected {answer.status} to a valid bulk cancel", answer.status))
        return
    wanted = list(dict.fromkeys(call.params["run_ids"]))
    results = answer.body.get("results", [])
    if [entry.get("run_id") for entry in results] != wanted:
        verdict.judged += 1
        verdict.wrong.append(Finding("bulk", None, "results are not one per distinct id, in order", 200, results))
        return
    for entry in results:
        verdict.judged += 1
        run_id, status = entry["run_id"], entry.get("status_code")
        if run_id in invalid:
            reason = None if status == 400 else f"{status} for an invalid run_id"
        elif status == 503:
            verdict.inconclusive += 1
            continue
        else:
            final = finals.get(run_id)
            reason = _judge_cancel_entry(call, run_id, final, status, entry.get("outcome"), entry.get("run_status"))
        if reason is not None:
            verdict.wrong.append(Finding("bulk", run_id, reason, status, entry))


def _orphans(
    finals: Mapping[str, Mapping[str, Any]],
    known: set[str],
    created_by: Mapping[str, int],
    create_calls: Mapping[int, Call],
    verdict: Verdict,
) -> None:
    for run_id in sorted(set(finals) - known):
        plan = created_by.get(run_id)
        create = None if plan is None else create_calls.get(plan)
        # A create whose outcome the client never learned may have made this run: the client
        # was told to retry and could not; with a key, its retry would find this very run.
        if create is not None and not create.conclusive:
            continue
        if create is not None and create.earlier_attempt_unknown and create.params.get("key") is None:
            continue  # its lost first attempt made this run, the keyless retry made another
        verdict.orphans.append(run_id)
