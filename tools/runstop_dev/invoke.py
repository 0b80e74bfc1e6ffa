"""Run the event-driven triggers locally, against the table of a running `make run`.

`sweep` runs the sweeper once and prints what it stopped. `invoke` feeds a sample event to
the handler the template names, with the environment the template gives it. Queues the
function talks to (its dead-letter queue) are stood in for by moto, in process, and what
lands in them is printed; DynamoDB calls go to the local endpoint. For a Pipe, `invoke`
applies its filter and input template and prints the events it would put on the bus.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from runstop_dev.stack import CREDENTIALS, REGION, LocalStack, local_stack
from runstop_dev.template import REPO_ROOT, function_environment, function_timeout, load_template, resource

RUNNING_FILE = REPO_ROOT / ".local" / "running.json"
"""Written by a running `make run` (its API URL and DynamoDB endpoint), removed when it stops."""


def default_endpoint() -> str | None:
    """DYNAMODB_ENDPOINT, else the DynamoDB of the `make run` that is running now (whatever its port)."""
    if os.environ.get("DYNAMODB_ENDPOINT"):
        return os.environ["DYNAMODB_ENDPOINT"]
    try:
        return str(json.loads(RUNNING_FILE.read_text())["dynamodb"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def require_endpoint(endpoint: str | None) -> str:
    if not endpoint:
        raise SystemExit("no DynamoDB to talk to: start `make run` first, or set DYNAMODB_ENDPOINT")
    return endpoint


@contextlib.contextmanager
def reachable_stack(endpoint: str | None) -> Iterator[LocalStack]:
    """The local stack on `endpoint`, or a clear exit when nothing answers there."""
    from botocore.exceptions import EndpointConnectionError

    from runstop_dev.ddb_local import local_client

    endpoint = require_endpoint(endpoint)
    try:
        local_client(endpoint, retries={"max_attempts": 1}).list_tables(Limit=1)
    except EndpointConnectionError:
        raise SystemExit(
            f"no DynamoDB answers at {endpoint}: start `make run` first, or set DYNAMODB_ENDPOINT"
        ) from None
    with local_stack(endpoint=endpoint) as stack:
        yield stack


@contextlib.contextmanager
def function_env(logical_id: str, endpoint: str, refs: dict[str, str]) -> Iterator[dict[str, str]]:
    """The function's environment in this process, as Lambda would set it; restored after."""
    from runstop import store, triggers

    env = {
        **function_environment(logical_id, refs),
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_NAME": logical_id,
        "POWERTOOLS_METRICS_NAMESPACE": os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "runstop"),
        **CREDENTIALS,
    }
    saved = dict(os.environ)
    os.environ.update(env)
    store.reset_caches()
    triggers.reset_caches()
    try:
        yield env
    finally:
        os.environ.clear()
        os.environ.update(saved)
        store.reset_caches()
        triggers.reset_caches()


def sweep_once(
    endpoint: str | None, heartbeat_timeout: float | None = None, pending_timeout: float | None = None
) -> dict[str, Any]:
    """One sweep with the SweeperFunction's settings (overridable), printing each stopped run."""
    from runstop.settings import settings
    from runstop.store import run_store
    from runstop.sweeper import OverdueRun, StoppedRun, SweepPolicy, sweep

    def stopped(run: StoppedRun) -> None:
        print(f"stopped {run.tenant_id}/{run.run_id} ({run.reason})", file=sys.stderr, flush=True)

    def overdue(run: OverdueRun) -> None:
        print(f"overdue {run.tenant_id}/{run.run_id} (deadline {run.stop_deadline})", file=sys.stderr, flush=True)

    with reachable_stack(endpoint) as stack, function_env("SweeperFunction", stack.endpoint, stack.refs):
        policy = SweepPolicy.from_settings(settings())
        if heartbeat_timeout is not None:
            policy = dataclasses.replace(policy, heartbeat_timeout=timedelta(seconds=heartbeat_timeout))
        if pending_timeout is not None:
            policy = dataclasses.replace(policy, pending_timeout=timedelta(seconds=pending_timeout))
        print(
            f"sweeping {stack.endpoint}: running runs silent for {policy.heartbeat_timeout.total_seconds():g}s, "
            f"pending runs older than {policy.pending_timeout.total_seconds():g}s",
            file=sys.stderr,
            flush=True,
        )
        summary = sweep(run_store(), policy, on_stopped=stopped, on_overdue=overdue)
    return summary.as_dict(include_runs=True)


def queue_resources() -> list[str]:
    return [rid for rid, r in load_template()["Resources"].items() if r["Type"] == "AWS::SQS::Queue"]


def _sqs(boto3: Any) -> Any:
    """A client of the in-process (moto) SQS, with credentials of its own: none need exist on the machine."""
    session = boto3.session.Session(
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    return session.client("sqs")


@contextlib.contextmanager
def local_queues() -> Iterator[dict[str, str]]:
    """Every SQS queue of the template, in moto, in this process: logical id -> queue URL.

    Only SQS is mocked; DynamoDB requests pass through to the real local endpoint.
    """
    import boto3
    from moto import mock_aws

    config: Any = {"core": {"mock_credentials": False, "passthrough": {"services": ["dynamodb"]}}}
    with mock_aws(config=config):
        sqs = _sqs(boto3)
        yield {rid: sqs.create_queue(QueueName=rid)["QueueUrl"] for rid in queue_resources()}


def drain(queue_url: str) -> list[dict[str, Any]]:
    """Every message now in a (moto) queue, with its attributes."""
    import boto3

    sqs = _sqs(boto3)
    messages: list[dict[str, Any]] = []
    while True:
        got: list[Any] = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=60
        ).get("Messages", [])
        if not got:
            return messages
        messages.extend(got)


def invoke(logical_id: str, event_path: Path, endpoint: str | None) -> dict[str, Any]:
    """Feed the event to the resource's handler (or pipe) and report what came out.

    The function's own output (log lines, the EMF metrics line) goes to stderr, so stdout
    carries only the report.
    """
    from runstop_dev.handlers import LambdaContext, load_handler

    event = json.loads(event_path.read_text())
    kind = resource(logical_id)["Type"]
    if kind == "AWS::Pipes::Pipe":
        from runstop_dev.pipes import emulate

        records = event.get("Records", [event]) if isinstance(event, dict) else event
        return {
            "events": [
                {"Source": e.source, "DetailType": e.detail_type, "Detail": e.detail}
                for e in emulate(logical_id, records)
            ]
        }
    if kind != "AWS::Serverless::Function":
        raise SystemExit(f"{logical_id} is a {kind}; invoke takes a function or a pipe")
    with (
        reachable_stack(endpoint) as stack,
        local_queues() as queues,
        function_env(logical_id, stack.endpoint, {**stack.refs, **queues}),
        contextlib.redirect_stdout(sys.stderr),
    ):
        handler = load_handler(logical_id, fresh=True)
        context = LambdaContext(function_name=logical_id, timeout_ms=int(function_timeout(logical_id) * 1000))
        result = handler(event, context)
        dead_lettered = {rid: drain(url) for rid, url in queues.items()}
    return {
        "result": result,
        "dead_lettered": {
            rid: [
                {
                    "body": m["Body"],
                    "attributes": {k: v.get("StringValue") for k, v in m.get("MessageAttributes", {}).items()},
                }
                for m in messages
            ]
            for rid, messages in dead_lettered.items()
            if messages
        },
    }


__all__ = ["default_endpoint", "invoke", "sweep_once"]
