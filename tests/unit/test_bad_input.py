"""Bad input gets a clear 4xx problem document: never a 500, never a 202 or 409 that acted on it."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from runstop.models import CancelRequest
from tests.helpers import api_event, body_of
from tests.unit.support import (
    RUN_ROUTES,
    TENANT,
    Handler,
    assert_cancel_accepted,
    assert_problem,
    base64_event,
    run_event,
    seed_run,
    stored,
    stored_run,
)

RUN = "r1"

INVALID_RUN_IDS = {
    "space": "run 1",
    "leading-dot": ".run1",
    "leading-dash": "-run1",
    "129-chars": "r" * 129,
    "trailing-newline": f"{RUN}\n",
    "unicode": "rün-1",
    "percent": "run%201",
}


def _handler_for(route: str, runs_handler: Handler, cancel_handler: Handler) -> Handler:
    return cancel_handler if route == "cancel" else runs_handler


class TestInvalidRunId:
    @pytest.mark.parametrize("route", list(RUN_ROUTES))
    @pytest.mark.parametrize("run_id", list(INVALID_RUN_IDS.values()), ids=list(INVALID_RUN_IDS))
    def test_given_an_invalid_run_id_when_any_route_is_called_then_400_and_no_run_is_touched(
        self, aws, store, runs_handler, cancel_handler, route, run_id
    ):
        # Given a run whose id is a prefix of the bad one ("r1" for "r1\n")
        seed_run(store, RUN, "running")
        before = stored(aws, RUN)
        handler = _handler_for(route, runs_handler, cancel_handler)
        # When the path arrives decoded (HTTP API) or still percent-encoded (the local runner)
        for encoded in (False, True):
            response = handler(run_event(route, run_id, encode_path=encoded))
            # Then
            assert_problem(response, 400, "bad-request")
        assert stored(aws, RUN) == before

    @pytest.mark.parametrize("route", ["start", "cancel"])
    def test_given_a_run_id_of_128_characters_when_called_then_it_is_valid(
        self, aws, runs_handler, cancel_handler, route
    ):
        # When
        response = _handler_for(route, runs_handler, cancel_handler)(run_event(route, "r" * 128))
        # Then: an ordinary answer about an absent run, not a 400
        assert response["statusCode"] == (202 if route == "cancel" else 404)

    def test_given_an_invalid_run_id_in_the_create_body_then_422(self, aws, runs_handler):
        # When
        response = runs_handler(api_event("POST", "/runs", {"run_id": ".hidden"}, tenant=TENANT))
        # Then: the id is part of a well-formed body, so it is a validation failure
        document = assert_problem(response, 422, "validation")
        assert any(error["loc"] == ["body", "run_id"] for error in document["errors"])


# (handler, method, path) of every route that reads a JSON body.
BODY_ROUTES = {
    "create": ("runs", "POST", "/runs"),
    "complete": ("runs", "POST", f"/runs/{RUN}/complete"),
    "cancel": ("cancel", "POST", f"/runs/{RUN}/cancel"),
}


def _send_raw(
    route: str, raw: bytes, runs_handler: Handler, cancel_handler: Handler, content_type: str = "application/json"
) -> dict[str, Any]:
    which, method, path = BODY_ROUTES[route]
    event = api_event(method, path, raw_body=raw, tenant=TENANT, headers={"content-type": content_type})
    return (cancel_handler if which == "cancel" else runs_handler)(event)


class TestBodies:
    @pytest.mark.parametrize("route", list(BODY_ROUTES))
    @pytest.mark.parametrize("raw", [b"{", b'{"status": "success",}', b"{'reason': 1}", b"   ", b"\xff\xfe{"])
    def test_given_malformed_json_when_sent_then_400_and_the_run_is_untouched(
        self, aws, store, runs_handler, cancel_handler, route, raw
    ):
        # Given
        seed_run(store, RUN, "running")
        before = stored(aws, RUN)
        # When
        response = _send_raw(route, raw, runs_handler, cancel_handler)
        # Then
        assert_problem(response, 400, "bad-request")
        assert stored(aws, RUN) == before

    @pytest.mark.parametrize(
        ("route", "body"),
        [
            pytest.param("create", {"run_id": "r2", "colour": "red"}, id="create-unknown-field"),
            pytest.param("create", {"run_id": 5}, id="create-run_id-number"),
            pytest.param("create", {"metadata": ["a", "b"]}, id="create-metadata-list"),
            pytest.param("create", ["r2"], id="create-array"),
            pytest.param("create", None, id="create-null"),
            pytest.param("complete", {"status": "success", "note": "done"}, id="complete-unknown-field"),
            pytest.param("complete", {"status": "running"}, id="complete-not-a-completion"),
            pytest.param("complete", {"status": 1}, id="complete-status-number"),
            pytest.param("complete", {}, id="complete-missing-status"),
            pytest.param("cancel", {"reason": "x", "forcefully": True}, id="cancel-unknown-field"),
            pytest.param("cancel", {"reason": 5}, id="cancel-reason-number"),
            pytest.param("cancel", {"reason": "x" * 257}, id="cancel-reason-257-chars"),
            pytest.param("cancel", ["stop"], id="cancel-array"),
            pytest.param("cancel", "stop", id="cancel-string"),
            pytest.param("cancel", None, id="cancel-null"),
        ],
    )
    def test_given_well_formed_json_that_breaks_the_contract_when_sent_then_422_and_nothing_changes(
        self, aws, store, runs_handler, cancel_handler, route, body
    ):
        # Given
        seed_run(store, RUN, "running")
        before = stored(aws, RUN)
        # When
        response = _send_raw(route, json.dumps(body).encode(), runs_handler, cancel_handler)
        # Then
        document = assert_problem(response, 422, "validation")
        assert document["errors"]
        assert stored(aws, RUN) == before
        assert stored(aws, "r2") is None

    @pytest.mark.parametrize("route", [*BODY_ROUTES, "start"])
    @pytest.mark.parametrize(
        "content_type",
        ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
    )
    def test_given_a_body_that_is_not_json_when_sent_then_415_and_nothing_changes(
        self, aws, store, runs_handler, cancel_handler, route, content_type
    ):
        # Given
        seed_run(store, RUN, "running")
        before = stored(aws, RUN)
        # When
        if route == "start":
            event = api_event(
                "POST", f"/runs/{RUN}/start", raw_body=b"go", tenant=TENANT, headers={"content-type": content_type}
            )
            response = runs_handler(event)
        else:
            response = _send_raw(route, b'{"status": "success"}', runs_handler, cancel_handler, content_type)
        # Then
        assert_problem(response, 415, "unsupported-media-type")
        assert stored(aws, RUN) == before

    @pytest.mark.parametrize("route", list(BODY_ROUTES))
    @pytest.mark.parametrize(
        "content_type",
        [
            "application/json; charset=utf-8",
            "Application/JSON",
            "APPLICATION/JSON; Charset=UTF-8",
            "application/problem+json",
        ],
    )
    def test_given_json_in_any_spelling_of_its_media_type_when_sent_then_it_is_accepted(
        self, aws, store, runs_handler, cancel_handler, route, content_type
    ):
        # Given (media types are case-insensitive, RFC 9110; +json types are JSON)
        seed_run(store, RUN, "running")
        body = {"create": b'{"run_id": "r2"}', "complete": b'{"status": "success"}', "cancel": b"{}"}[route]
        # When
        response = _send_raw(route, body, runs_handler, cancel_handler, content_type)
        # Then
        assert response["statusCode"] == {"create": 201, "complete": 200, "cancel": 202}[route]

    def test_given_a_cancel_body_over_64kb_when_sent_then_400_and_the_run_keeps_running(
        self, aws, store, cancel_handler
    ):
        # Given
        seed_run(store, RUN, "running")
        raw = json.dumps({"reason": "x" * (64 * 1024)}).encode()
        # When
        response = cancel_handler(api_event("POST", f"/runs/{RUN}/cancel", raw_body=raw, tenant=TENANT))
        # Then
        assert "bytes" in assert_problem(response, 400, "bad-request")["detail"]
        assert stored_run(aws, RUN)["status"] == "running"

    def test_given_a_create_body_of_100kb_when_sent_then_422_and_nothing_is_stored(self, aws, runs_handler):
        # When
        body = {"run_id": "big", "metadata": {f"k{i}": "x" * 1000 for i in range(100)}}
        response = runs_handler(api_event("POST", "/runs", body, tenant=TENANT))
        # Then
        assert_problem(response, 422, "validation")
        assert stored(aws, "big") is None


class TestBase64Bodies:
    """API Gateway base64-encodes bodies it considers binary; the handlers decode them."""

    def test_given_a_base64_cancel_body_then_it_is_read_like_plain_json(self, aws, store, cancel_handler):
        # Given
        seed_run(store, RUN, "running")
        event = base64_event(api_event("POST", f"/runs/{RUN}/cancel", tenant=TENANT), b'{"reason": "binary"}')
        # When
        response = cancel_handler(event)
        # Then
        assert_cancel_accepted(response, outcome="interrupted")
        assert stored_run(aws, RUN)["cancel"]["reason"] == "binary"

    def test_given_a_base64_create_body_then_it_is_read_like_plain_json(self, aws, runs_handler):
        # When
        event = base64_event(api_event("POST", "/runs", tenant=TENANT), b'{"run_id": "b64", "metadata": {"a": 1}}')
        response = runs_handler(event)
        # Then
        assert response["statusCode"] == 201
        assert stored_run(aws, "b64")["metadata"] == {"a": 1}

    def test_given_a_base64_complete_body_then_it_is_read_like_plain_json(self, aws, store, runs_handler):
        # Given
        seed_run(store, RUN, "running")
        event = base64_event(api_event("POST", f"/runs/{RUN}/complete", tenant=TENANT), b'{"status": "error"}')
        # When
        response = runs_handler(event)
        # Then
        assert response["statusCode"] == 200
        assert stored_run(aws, RUN)["status"] == "error"

    def test_given_a_cancel_body_that_is_not_valid_base64_then_400_and_the_run_keeps_running(
        self, aws, store, cancel_handler
    ):
        # Given
        seed_run(store, RUN, "running")
        event = {**api_event("POST", f"/runs/{RUN}/cancel", tenant=TENANT), "body": "%%%", "isBase64Encoded": True}
        # When
        response = cancel_handler(event)
        # Then
        assert "base64" in assert_problem(response, 400, "bad-request")["detail"]
        assert stored_run(aws, RUN)["status"] == "running"

    def test_given_base64_of_malformed_json_then_400(self, aws, store, cancel_handler, runs_handler):
        # Given
        seed_run(store, RUN, "running")
        # When
        cancel = cancel_handler(base64_event(api_event("POST", f"/runs/{RUN}/cancel", tenant=TENANT), b"{"))
        create = runs_handler(base64_event(api_event("POST", "/runs", tenant=TENANT), b"{"))
        # Then
        assert_problem(cancel, 400, "bad-request")
        assert_problem(create, 400, "bad-request")


EVERY_ROUTE = {
    "create": ("POST", "/runs", {"run_id": "r2"}),
    **{name: (method, f"/runs/{RUN}{suffix}", body) for name, (method, suffix, body) in RUN_ROUTES.items()},
}


def _event_with_claims(route: str, claims: dict[str, Any] | None) -> dict[str, Any]:
    method, path, body = EVERY_ROUTE[route]
    event = api_event(method, path, body, tenant=TENANT)
    if claims is None:
        del event["requestContext"]["authorizer"]
    else:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    return event


class TestTenantClaim:
    @pytest.mark.parametrize("route", list(EVERY_ROUTE))
    @pytest.mark.parametrize(
        "claims", [pytest.param(None, id="no-authorizer"), pytest.param({"sub": "user-1"}, id="no-tenant-claim")]
    )
    def test_given_no_tenant_claim_when_any_route_is_called_then_401_and_nothing_changes(
        self, aws, store, runs_handler, cancel_handler, route, claims
    ):
        # Given
        seed_run(store, RUN, "running")
        before = stored(aws, RUN)
        handler = cancel_handler if route == "cancel" else runs_handler
        # When
        response = handler(_event_with_claims(route, claims))
        # Then
        assert_problem(response, 401, "unauthorized")
        assert stored(aws, RUN) == before
        assert stored(aws, "r2") is None

    @pytest.mark.parametrize("route", ["create", "cancel"])
    @pytest.mark.parametrize("tenant", ["", "acme corp", ".acme", 42, None], ids=repr)
    def test_given_an_unusable_tenant_claim_when_called_then_401_and_nothing_changes(
        self, aws, store, runs_handler, cancel_handler, route, tenant
    ):
        # Given
        seed_run(store, RUN, "running")
        before = stored(aws, RUN)
        handler = cancel_handler if route == "cancel" else runs_handler
        # When
        response = handler(_event_with_claims(route, {"tenant_id": tenant}))
        # Then
        assert_problem(response, 401, "unauthorized")
        assert stored(aws, RUN) == before
        assert stored(aws, "r2") is None


# --- a property: whatever arrives, the cancel handler never fails and never acts on bad input

RUN_ID_ORACLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")  # the documented pattern, written out again
JSON_TYPES = {None, "application/json", "application/json; charset=utf-8"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=300),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)
cancel_bodies = st.one_of(
    st.just(""),
    st.text(max_size=80),
    st.dictionaries(st.sampled_from(["reason", "force", "forcefully", "Reason"]), json_values, max_size=2).map(
        json.dumps
    ),
    json_values.map(json.dumps),
)
run_ids = st.one_of(
    st.from_regex(RUN_ID_ORACLE, fullmatch=True),
    st.text(max_size=140),
    st.sampled_from(["done-1", "live-1", "live-1\n", " live-1", "done-1/", "r" * 129]),
)


def _acceptable(run_id: str, body: str, content_type: str | None, key: str | None, tenant: str | None) -> bool:
    """Whether the contract accepts this request, judged by the pydantic model, not the handler."""
    if tenant is None or RUN_ID_ORACLE.fullmatch(run_id) is None:
        return False
    if key is not None and not 1 <= len(key) <= 256:
        return False
    if body == "":
        return True
    if content_type not in JSON_TYPES:
        return False
    try:
        CancelRequest.model_validate(json.loads(body))
    except (ValueError, ValidationError):
        return False
    return True


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    run_id=run_ids,
    body=cancel_bodies,
    content_type=st.sampled_from([*JSON_TYPES, "text/plain", "application/x-www-form-urlencoded"]),
    as_base64=st.booleans(),
    key=st.none() | st.text(max_size=300),
    tenant=st.sampled_from([TENANT, None]),
)
def test_property_the_cancel_handler_never_fails_and_accepts_only_valid_requests(
    store, cancel_handler, run_id, body, content_type, as_base64, key, tenant
):
    # Given a finished run and a running one the generated ids may hit
    if stored(store.client, "done-1") is None:
        seed_run(store, "done-1", "success")
        seed_run(store, "live-1", "running")
    headers = {} if content_type is None else {"content-type": content_type}
    if key is not None:
        headers["idempotency-key"] = key
    event = run_event("cancel", run_id, tenant=tenant, raw_body=b"")
    event["headers"] = headers
    if body:
        event = base64_event(event, body.encode()) if as_base64 else {**event, "body": body}
    # When
    response = cancel_handler(event)
    # Then
    status = response["statusCode"]
    assert status < 500, body_of(response)
    assert (status in (202, 409)) == _acceptable(run_id, body, content_type, key, tenant), body_of(response)
    if status >= 400:
        assert_problem(response, status)
