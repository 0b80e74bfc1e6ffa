"""The fault drill: clients driving runs through the local runner while the proxy
(runstop_dev.faults) makes DynamoDB fail, then the judge (fault_judge) holds every answer
against the table read directly afterwards.

Each client behaves as a real one: it retries a 503 after Retry-After (and a lost connection)
a bounded number of times with the same body and Idempotency-Key, and a worker keeps its
worker_id across its calls. The jobs cover every write route: creates with and without an
Idempotency-Key and a given run_id; starts, two workers contending for one run; heartbeats;
completions, repeated; cancels racing the worker and its completion; stop acknowledgements;
bulk cancels with an invalid and a repeated id.
"""

from __future__ import annotations

import json
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft202012Validator

from runstop.item_codec import deserialize_item
from tests.integration.fault_judge import FINISHED, Attempt, Call, Verdict, judge

OPENAPI = Path(__file__).resolve().parents[2] / "openapi.json"
INVALID_RUN_ID = "-not-a-run-id"
MAX_ATTEMPTS = 6
"""Attempts a client makes at one request before it gives up (the answer stays unknown)."""
RETRY_AFTER_CAP = 1.0
"""Seconds at most a client waits on a Retry-After (the service says 1)."""
SCENARIOS = ("finish", "contend", "cancel-running", "cancel-pending", "race-complete", "bulk")

ROUTES = {
    "create": ("post", "/runs"),
    "start": ("post", "/runs/{run_id}/start"),
    "heartbeat": ("post", "/runs/{run_id}/heartbeat"),
    "complete": ("post", "/runs/{run_id}/complete"),
    "stopped": ("post", "/runs/{run_id}/stopped"),
    "cancel": ("post", "/runs/{run_id}/cancel"),
    "bulk": ("post", "/runs/cancel"),
}


@cache
def _document() -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(OPENAPI.read_text())
    return parsed


@cache
def _validator(route: str, status: int, content_type: str) -> Draft202012Validator | str:
    method, path = ROUTES[route]
    responses = _document()["paths"][path][method]["responses"]
    if str(status) not in responses:
        return f"status {status} is not documented for {method.upper()} {path}"
    content = responses[str(status)].get("content", {})
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in content:
        return f"{status} answered as {media!r}, documented {sorted(content)}"
    return Draft202012Validator({**content[media]["schema"], "components": _document()["components"]})


def validate_against_document(route: str, status: int, content_type: str, body: Any) -> str | None:
    """Why the answer breaks openapi.json, or None when it fits."""
    validator = _validator(route, status, content_type)
    if isinstance(validator, str):
        return validator
    errors = [error.message for error in validator.iter_errors(body)]
    return f"the body breaks the documented schema: {errors[:2]}" if errors else None


@dataclass
class Drill:
    """One mode's workload for one tenant; `run()` then `verdict()`."""

    http: httpx.Client
    tenant: str
    seed: int
    clients: int
    calls: list[Call] = field(default_factory=list)
    create_calls: dict[int, Call] = field(default_factory=dict)
    runs: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- the client -----------------------------------------------------------------------

    def call(
        self,
        route: str,
        run_id: str | None,
        params: dict[str, Any],
        path: str,
        body: Any,
        key: str | None = None,
    ) -> Call:
        """One request as a real client makes it: retried on 503 / lost connection, same body and key."""
        headers = {"X-Tenant-Id": self.tenant}
        if key is not None:
            headers["Idempotency-Key"] = key
        call = Call(route, run_id, params)
        for _ in range(MAX_ATTEMPTS):
            sent = time.perf_counter()
            try:
                answer = self.http.post(path, json=body, headers=headers)
            except httpx.TransportError as error:
                call.attempts.append(Attempt(None, error=repr(error), seconds=time.perf_counter() - sent))
                time.sleep(0.2)
                continue
            try:
                parsed: Any = answer.json()
            except ValueError:
                parsed = answer.text
            attempt = Attempt(
                answer.status_code,
                parsed,
                answer.headers.get("retry-after"),
                answer.headers.get("content-type", ""),
                seconds=time.perf_counter() - sent,
            )
            call.attempts.append(attempt)
            if not attempt.retryable:
                break
            try:
                wait = float(attempt.retry_after or 0.2)
            except ValueError:
                wait = 0.2
            time.sleep(min(max(wait, 0.0), RETRY_AFTER_CAP))
        with self._lock:
            self.calls.append(call)
        return call

    def _ok(self, call: Call, status: int) -> bool:
        return call.conclusive and call.final.status == status

    def create(self, plan: int, rng: random.Random) -> str | None:
        """Create run number `plan` in one of four ways; its run_id, or None when unknown to the client."""
        variant = rng.choice(("id", "id+key", "key", "none"))
        given = f"fd-{uuid.uuid4()}" if "id" in variant else None
        key = f"k-{uuid.uuid4().hex}" if "key" in variant else None
        metadata = {"drill": self.tenant, "plan": plan}
        body: dict[str, Any] = {"metadata": metadata}
        if given is not None:
            body["run_id"] = given
        with self._lock:
            self.runs += 1
        call = self.call(
            "create", given, {"run_id": given, "key": key, "metadata": metadata, "variant": variant}, "/runs", body, key
        )
        self.create_calls[plan] = call
        if not self._ok(call, 201):
            return None
        run_id = call.final.body.get("run_id")
        return run_id if isinstance(run_id, str) else None

    def worker_call(self, route: str, run_id: str, worker: str, **extra: Any) -> Call:
        body = {"worker_id": worker, **extra}
        return self.call(route, run_id, {"worker_id": worker, **extra}, f"/runs/{run_id}/{route}", body)

    def cancel(self, run_id: str, rng: random.Random) -> Call:
        reason = f"c-{uuid.uuid4().hex[:12]}"
        key = f"k-{uuid.uuid4().hex}" if rng.random() < 0.5 else None
        return self.call(
            "cancel", run_id, {"reason": reason, "key": key}, f"/runs/{run_id}/cancel", {"reason": reason}, key
        )

    # --- the jobs -------------------------------------------------------------------------

    def _together(self, first: Callable[[], Call], second: Callable[[], Any]) -> tuple[Call, Any]:
        """Both calls at once, released together."""
        barrier = threading.Barrier(2, timeout=60)

        def released(fn: Callable[[], Any]) -> Any:
            barrier.wait()
            return fn()

        with ThreadPoolExecutor(max_workers=1) as pool:
            other = pool.submit(released, second)
            mine = released(first)
            return mine, other.result(timeout=300)

    def _acknowledge_if_interrupted(self, run_id: str, worker: str, answer: Call) -> None:
        if answer.conclusive and answer.final.status == 409 and _run_status(answer) == "interrupted":
            self.worker_call("stopped", run_id, worker)
            self.worker_call("stopped", run_id, worker)

    def job(self, index: int) -> None:
        rng = random.Random(self.seed * 1_000_003 + index)
        scenario = SCENARIOS[index % len(SCENARIOS)]
        if scenario == "bulk":
            self._bulk(index, rng)
            return
        plan = index * 4
        run_id = self.create(plan, rng)
        if run_id is None:
            return
        worker = f"w-{index}-a"
        status = rng.choice(sorted(FINISHED))
        match scenario:
            case "finish":
                if self._ok(self.worker_call("start", run_id, worker), 200):
                    self.worker_call("heartbeat", run_id, worker)
                    self.worker_call("complete", run_id, worker, status=status)
                    self.worker_call("complete", run_id, worker, status=status)
            case "contend":
                rival = f"w-{index}-b"
                first, second = self._together(
                    lambda: self.worker_call("start", run_id, worker),
                    lambda: self.worker_call("start", run_id, rival),
                )
                holders = [w for w, c in ((worker, first), (rival, second)) if self._ok(c, 200)]
                if holders:
                    self.worker_call("heartbeat", run_id, holders[0])
                    self.worker_call("complete", run_id, holders[0], status=status)
            case "cancel-running":
                if not self._ok(self.worker_call("start", run_id, worker), 200):
                    return
                self.worker_call("heartbeat", run_id, worker)

                def beat_until_stopped() -> Call | None:
                    for _ in range(3):
                        beat = self.worker_call("heartbeat", run_id, worker)
                        if beat.conclusive and beat.final.status == 409:
                            return beat
                    return None

                _, seen = self._together(lambda: self.cancel(run_id, rng), beat_until_stopped)
                self._acknowledge_if_interrupted(run_id, worker, seen or self.worker_call("heartbeat", run_id, worker))
            case "cancel-pending":
                self.cancel(run_id, rng)
                started = self.worker_call("start", run_id, worker)
                if self._ok(started, 200):
                    self.worker_call("complete", run_id, worker, status=status)
            case "race-complete":
                if not self._ok(self.worker_call("start", run_id, worker), 200):
                    return
                completed, _ = self._together(
                    lambda: self.worker_call("complete", run_id, worker, status=status),
                    lambda: self.cancel(run_id, rng),
                )
                if self._ok(completed, 200):
                    self.worker_call("complete", run_id, worker, status=status)
                else:
                    self._acknowledge_if_interrupted(run_id, worker, completed)

    def _bulk(self, index: int, rng: random.Random) -> None:
        """Four runs: one finished, one running, two pending; one bulk cancel of them all."""
        created = [(plan, self.create(plan, rng)) for plan in range(index * 4, index * 4 + 4)]
        run_ids = [run_id for _, run_id in created if run_id is not None]
        workers = {run_id: f"w-{index}-{n}" for n, run_id in enumerate(run_ids[:2])}
        started = [r for r, w in workers.items() if self._ok(self.worker_call("start", r, w), 200)]
        if started:
            self.worker_call("complete", started[0], workers[started[0]], status=rng.choice(sorted(FINISHED)))
        if not run_ids:
            return
        reason = f"b-{uuid.uuid4().hex[:12]}"
        key = f"k-{uuid.uuid4().hex}" if rng.random() < 0.5 else None
        ids = [*run_ids, run_ids[-1], INVALID_RUN_ID]
        params = {"run_ids": ids, "reason": reason, "key": key}
        self.call("bulk", None, params, "/runs/cancel", {"run_ids": ids, "reason": reason}, key)
        for run_id in started[1:]:
            self._acknowledge_if_interrupted(
                run_id, workers[run_id], self.worker_call("heartbeat", run_id, workers[run_id])
            )

    def run(self, runs: int) -> None:
        """Jobs for about `runs` runs, spread over the clients, each client one job at a time."""
        jobs: queue.Queue[int] = queue.Queue()
        planned, index = 0, 0
        while planned < runs:
            jobs.put(index)
            planned += 4 if SCENARIOS[index % len(SCENARIOS)] == "bulk" else 1
            index += 1
        errors: list[BaseException] = []

        def client() -> None:
            while True:
                try:
                    job = jobs.get_nowait()
                except queue.Empty:
                    return
                try:
                    self.job(job)
                except BaseException as error:  # a drill bug must fail the test, not vanish in a thread
                    errors.append(error)
                    return

        threads = [threading.Thread(target=client, name=f"drill-client-{n}") for n in range(self.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    # --- the verdict ----------------------------------------------------------------------

    def verdict(self, finals: Mapping[str, Mapping[str, Any]]) -> Verdict:
        created_by = {
            run_id: int(item["metadata"]["plan"])
            for run_id, item in finals.items()
            if isinstance(item.get("metadata"), dict) and "plan" in item["metadata"]
        }
        return judge(
            self.calls,
            finals,
            created_by=created_by,
            create_calls=self.create_calls,
            validate=validate_against_document,
            invalid_ids=(INVALID_RUN_ID,),
        )


def _run_status(call: Call) -> Any:
    body = call.final.body
    return body.get("run_status") if isinstance(body, dict) else None


def stored_runs(client: Any, table: str, tenant: str) -> dict[str, dict[str, Any]]:
    """Every run of the tenant as DynamoDB holds it: the truth the answers are judged against."""
    runs: dict[str, dict[str, Any]] = {}
    paginator = client.get_paginator("query")
    pages = paginator.paginate(
        TableName=table,
        KeyConditionExpression="tenant_id = :t",
        ExpressionAttributeValues={":t": {"S": tenant}},
        ConsistentRead=True,
    )
    for page in pages:
        for item in page["Items"]:
            run = deserialize_item(item)
            runs[str(run["run_id"])] = run
    return runs


@dataclass(frozen=True)
class ModeResult:
    mode: str
    runs: int
    verdict: Verdict
    injected: dict[str, int]
    seconds: float


def table(results: list[ModeResult], probability: float, clients: int) -> str:
    """The per-mode figures, as printed by the suite and by `make faults`."""
    header = (
        f"fault drill: p={probability} per DynamoDB request, {clients} clients\n"
        f"{'mode':<9}{'runs':>6}{'answers':>9}{'judged':>8}{'wrong':>7}{'500s':>6}{'503 no RA':>11}"
        f"{'orphans':>9}{'unknown':>9}{'faults':>8}{'s':>7}  wrong by route"
    )
    lines = [header, "-" * len(header.splitlines()[-1])]
    for r in results:
        v = r.verdict
        faults = sum(n for kind, n in r.injected.items() if kind != "forwarded")
        by_route = ", ".join(f"{route} {n}" for route, n in sorted(v.wrong_by_route().items())) or "-"
        lines.append(
            f"{r.mode:<9}{r.runs:>6}{v.answers:>9}{v.judged:>8}{len(v.wrong):>7}{len(v.server_errors):>6}"
            f"{len(v.no_retry_after):>11}{len(v.orphans):>9}{v.inconclusive:>9}{faults:>8}{r.seconds:>7.1f}  {by_route}"
        )
    return "\n".join(lines)


def examples(result: ModeResult, limit: int | None = 5) -> str:
    """The first few findings of a mode (all of them with limit None), one a line."""
    v = result.verdict
    findings = [*v.server_errors, *v.no_retry_after, *v.wrong]
    text = [f"  {finding}"[: 400 if limit else None] for finding in findings[:limit]]
    text += [f"  orphan run {run_id}" for run_id in v.orphans[:limit]]
    return "\n".join(text)
