"""The sample events in events/ (also used by `sam local invoke -e`) stay true to the template.

Each apigw-*.json is fed to the handler the template routes its routeKey to, on moto, after
seeding the run it names; every HttpApi route has a sample.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runstop.store import run_store
from runstop_dev.handlers import LambdaContext, load_handler
from runstop_dev.stack import CREDENTIALS, REGION, local_refs
from runstop_dev.template import HttpRoute, functions, http_routes, load_template
from tests.helpers import body_of, events_dir
from tests.unit.support import moto_tables, seed_run, share_botocore_session

API_EVENTS = sorted(events_dir().glob("apigw-*.json"))

# routeKey: (status the named run is seeded in, or None for no run; the status code expected)
SCENARIOS: dict[str, tuple[str | None, int]] = {
    "POST /runs": (None, 201),
    "GET /runs": ("running", 200),
    "POST /runs/cancel": ("running", 200),
    "GET /runs/{run_id}": ("running", 200),
    "POST /runs/{run_id}/start": ("pending", 200),
    "POST /runs/{run_id}/heartbeat": ("running", 200),
    "POST /runs/{run_id}/complete": ("running", 200),
    "POST /runs/{run_id}/stopped": ("interrupted", 200),
    "POST /runs/{run_id}/cancel": ("running", 202),
    "POST /cancel-jobs": (None, 202),
    "GET /cancel-jobs/{job_id}": (None, 404),
}
DEFAULT_SCENARIO = ("running", None)
"""A route added without a scenario here: its sample must still get a non-5xx answer."""


def _load(path: Path) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(path.read_text())
    return event


def _route(route_key: str) -> HttpRoute:
    return next(route for route in http_routes() if route.route_key == route_key)


def _named_run(event: dict[str, Any]) -> str | None:
    """The run a sample acts on: its path parameter, else the first id of its body."""
    run_id = (event.get("pathParameters") or {}).get("run_id")
    if run_id is None and event.get("body"):
        run_ids = json.loads(event["body"]).get("run_ids") or [None]
        run_id = run_ids[0]
    return run_id


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    share_botocore_session(monkeypatch)
    with moto_tables() as client:
        yield client


def test_every_http_route_of_the_template_has_a_sample_event():
    # Given
    samples = {_load(path)["routeKey"] for path in API_EVENTS}
    # Then
    assert {route.route_key for route in http_routes()} <= samples


@pytest.mark.parametrize("path", API_EVENTS, ids=lambda p: p.name)
def test_a_sample_event_is_a_consistent_payload_2_event_for_its_route(path):
    # Given
    event = _load(path)
    route_key = event["routeKey"]
    # Then: a route the template has, and a request that route would really receive
    route = _route(route_key)
    assert event["version"] == "2.0"
    assert event["requestContext"]["routeKey"] == route_key
    assert event["requestContext"]["http"]["method"] == route.method
    assert event["requestContext"]["http"]["path"] == event["rawPath"]
    assert event["requestContext"]["stage"] == "$default"
    match = route.pattern.match(event["rawPath"])
    assert match is not None, f"{event['rawPath']} is not a path of {route_key}"
    assert (event.get("pathParameters") or {}) == match.groupdict()
    assert event["requestContext"]["authorizer"]["jwt"]["claims"]["tenant_id"]
    assert event["headers"]["authorization"].startswith("Bearer ")
    assert all(name == name.lower() for name in event["headers"])
    if event.get("body"):
        json.loads(event["body"])
        assert event["headers"]["content-type"] == "application/json"
        assert int(event["headers"]["content-length"]) == len(event["body"].encode())
    if event["rawQueryString"]:
        pairs = dict(pair.split("=", 1) for pair in event["rawQueryString"].split("&"))
        assert event["queryStringParameters"] == pairs


@pytest.mark.parametrize("path", API_EVENTS, ids=lambda p: p.name)
def test_given_the_run_a_sample_names_when_the_sample_is_handled_then_the_answer_is_the_expected_one(aws, path):
    # Given
    event = _load(path)
    seeded, expected = SCENARIOS.get(event["routeKey"], DEFAULT_SCENARIO)
    tenant = event["requestContext"]["authorizer"]["jwt"]["claims"]["tenant_id"]
    run_id = _named_run(event)
    if seeded is not None and run_id is not None:
        seed_run(run_store(), run_id, seeded, tenant=tenant)
    handler = load_handler(_route(event["routeKey"]).function.logical_id)
    # When
    response = handler(event, LambdaContext())
    # Then
    assert response["statusCode"] < 500, body_of(response)
    if expected is not None:
        assert response["statusCode"] == expected, body_of(response)
    assert response["headers"]["Content-Type"].startswith("application/")


def test_given_the_idempotent_cancel_sample_when_sent_twice_then_both_answers_say_interrupted(aws):
    # Given
    event = _load(events_dir() / "apigw-cancel-run-idempotent.json")
    seed_run(run_store(), event["pathParameters"]["run_id"], "running", tenant="acme")
    handler = load_handler("CancelRunFunction")
    # When
    first, retry = handler(event, LambdaContext()), handler(event, LambdaContext())
    # Then
    assert [(r["statusCode"], body_of(r)["outcome"]) for r in (first, retry)] == [(202, "interrupted")] * 2
    assert body_of(retry)["cancel"]["idempotency_key"] == event["headers"]["idempotency-key"]


class TestEnvLocal:
    """events/env.local.json: `sam local invoke --env-vars`, matching the local runner's stack."""

    @pytest.fixture(scope="class")
    @classmethod
    def env(cls) -> dict[str, dict[str, str]]:
        loaded: dict[str, dict[str, str]] = json.loads((events_dir() / "env.local.json").read_text())
        return loaded

    def test_every_function_of_the_template_has_an_entry(self, env):
        assert {fn.logical_id for fn in functions()} <= set(env)

    def test_every_table_a_function_names_is_the_local_table_of_that_logical_id(self, env):
        # Given the template's variables that !Ref a table (locally named after its logical id)
        template = load_template()
        globals_env = template["Globals"]["Function"]["Environment"]["Variables"]
        tables = local_refs()
        for fn in functions():
            own = template["Resources"][fn.logical_id]["Properties"].get("Environment", {}).get("Variables", {})
            wanted = {
                name: tables[value["Ref"]]
                for name, value in {**globals_env, **own}.items()
                if isinstance(value, dict) and value.get("Ref") in tables
            }
            # Then
            assert wanted
            assert {name: env[fn.logical_id].get(name) for name in wanted} == wanted, fn.logical_id

    def test_every_function_reaches_dynamodb_local_on_the_docker_host_with_dummy_credentials(self, env):
        for values in env.values():
            assert values["TABLE_NAME"] == "RunsTable"
            assert values["AWS_ENDPOINT_URL_DYNAMODB"] == "http://host.docker.internal:8000"
            assert values["AWS_REGION"] == values["AWS_DEFAULT_REGION"] == REGION == "us-east-1"
            assert (
                {name: values[name] for name in CREDENTIALS}
                == CREDENTIALS
                == {
                    "AWS_ACCESS_KEY_ID": "local",
                    "AWS_SECRET_ACCESS_KEY": "local",
                }
            )
