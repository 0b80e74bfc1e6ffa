"""`make smoke URL=... TOKEN=...`: walk a deployed stack through one run's life and print what it saw.

Every step is one request with the expected answer: a run created, started, cancelled twice
(202 both times), its worker told 409 on heartbeat and completion, a bulk cancel, the listing,
and a request without a token refused by the authorizer. Exit status 0 only if every answer
was the expected one. Works against any runstop API with a JWT authorizer, the local runner in
JWT mode included (`RUNSTOP_AUTH=jwt make run`).
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Step:
    method: str
    path: str
    expect: int
    body: Any = None
    check: Callable[[Any], str | None] | None = None
    """Looks at the answer's JSON; returns what is wrong with it, or None."""
    authorized: bool = True


def _field(name: str, *allowed: Any) -> Callable[[Any], str | None]:
    def check(body: Any) -> str | None:
        value = body.get(name) if isinstance(body, dict) else None
        return None if value in allowed else f"{name} is {value!r}, expected {' or '.join(map(repr, allowed))}"

    return check


def _bulk(run_id: str, other: str) -> Callable[[Any], str | None]:
    def check(body: Any) -> str | None:
        results = {entry["run_id"]: entry for entry in body.get("results", [])}
        if results.get(run_id, {}).get("status_code") != 202 or results.get(other, {}).get("status_code") != 202:
            return f"expected 202 for both runs, got {body!r}"
        return None

    return check


def _listed(run_id: str) -> Callable[[Any], str | None]:
    def check(body: Any) -> str | None:
        ids = [run["run_id"] for run in body.get("items", [])]
        return None if run_id in ids else f"{run_id} is not on the first page ({len(ids)} runs)"

    return check


def steps(prefix: str) -> list[Step]:
    """The walk for run `<prefix>-a` (and `<prefix>-b` for the bulk cancel)."""
    run_id, other = f"{prefix}-a", f"{prefix}-b"
    return [
        Step("GET", "/runs", 401, authorized=False),
        Step("POST", "/runs", 201, {"run_id": run_id, "metadata": {"smoke": True}}, _field("status", "pending")),
        Step("POST", f"/runs/{run_id}/start", 200, check=_field("status", "running")),
        Step("POST", f"/runs/{run_id}/cancel", 202, {"reason": "smoke test"}, _field("outcome", "interrupted")),
        Step("POST", f"/runs/{run_id}/cancel", 202, {"reason": "smoke test"}, _field("status", "interrupted")),
        Step("POST", f"/runs/{run_id}/heartbeat", 409, check=_field("run_status", "interrupted")),
        Step("POST", f"/runs/{run_id}/complete", 409, {"status": "success"}, _field("run_status", "interrupted")),
        Step("POST", "/runs", 201, {"run_id": other}, _field("status", "pending")),
        Step("POST", "/runs/cancel", 200, {"run_ids": [run_id, other], "reason": "smoke bulk"}, _bulk(run_id, other)),
        Step("GET", "/runs?limit=10", 200, check=_listed(other)),
        Step("GET", f"/runs/{run_id}", 200, check=_field("status", "interrupted")),
    ]


def _summary(body: Any) -> str:
    if not isinstance(body, dict):
        return str(body)[:120]
    keys = ("run_id", "status", "outcome", "run_status", "message", "title")
    shown = {k: body[k] for k in keys if k in body}
    if "results" in body:
        shown["results"] = [(r.get("run_id"), r.get("status_code"), r.get("outcome")) for r in body["results"]]
    if "items" in body:
        shown["items"] = len(body["items"])
    return ", ".join(f"{k}={v}" for k, v in shown.items())


def run(url: str, token: str, prefix: str | None = None, client: httpx.Client | None = None) -> bool:
    """Walk the steps against `url`, printing one line each; True if every answer was as expected."""
    prefix = prefix or f"smoke-{uuid.uuid4().hex[:12]}"
    http = client or httpx.Client(base_url=url.rstrip("/"), timeout=30)
    auth = {"Authorization": f"Bearer {token}"}
    ok = True
    try:
        for step in steps(prefix):
            response = http.request(step.method, step.path, json=step.body, headers=auth if step.authorized else {})
            try:
                body = response.json()
            except ValueError:
                body = response.text
            wrong = f"expected {step.expect}" if response.status_code != step.expect else None
            if wrong is None and step.check is not None:
                wrong = step.check(body)
            ok = ok and wrong is None
            mark = "ok  " if wrong is None else "FAIL"
            label = f"{step.method} {step.path}" + ("" if step.authorized else " (no token)")
            print(f"{mark} {label} -> {response.status_code} {_summary(body)}" + (f"  [{wrong}]" if wrong else ""))
    finally:
        if client is None:
            http.close()
    print("smoke passed" if ok else "smoke FAILED")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="runstop_dev.smoke", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("URL"), help="the stack's ApiUrl output (env URL)")
    parser.add_argument("--token", default=os.environ.get("TOKEN"), help="an access token with a tenant (env TOKEN)")
    args = parser.parse_args(argv)
    if not args.url or not args.token:
        parser.error("give the API's URL and a token: make smoke URL=https://... TOKEN=eyJ...")
    return 0 if run(args.url, args.token) else 1


if __name__ == "__main__":
    sys.exit(main())
