"""openapi.json: generated from the code, covering exactly the template's routes, and what
the handlers really answer fits what it documents."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from runstop_dev.contract import OPENAPI_PATH, docs_routes, openapi_document
from runstop_dev.local_api import LocalApi
from runstop_dev.stack import local_refs
from runstop_dev.template import REPO_ROOT, http_routes
from tests.helpers import api_event, body_of
from tests.unit.support import TENANT, seed_run


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(OPENAPI_PATH.read_text())
    return parsed


def _operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


def test_the_committed_document_is_what_the_code_generates():
    # When
    generated = openapi_document()
    # Then
    assert OPENAPI_PATH.read_text() == generated, "openapi.json is stale: run `make openapi` and commit it"


def test_the_document_covers_exactly_the_templates_http_routes(document):
    # Given
    template_routes = {(route.method, route.path) for route in http_routes()}
    # Then
    assert _operations(document) == template_routes


def test_every_operation_documents_its_success_and_the_common_problems(document):
    # Then
    for path, item in document["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            assert {"400", "401", "503"} <= codes, (method, path)
            assert any(code.startswith("2") for code in codes), (method, path)


def _constraints(schema: Any) -> Any:
    """The schema without its annotations (title, default...), which validate nothing."""
    if isinstance(schema, dict):
        return {k: _constraints(v) for k, v in schema.items() if k not in {"title", "default", "description"}}
    if isinstance(schema, list):
        return [_constraints(v) for v in schema]
    return schema


def test_the_documented_cancel_body_is_the_schema_the_lean_handler_validates_with(document):
    # Given
    lean = json.loads((REPO_ROOT / "layers/runstop/runstop/schemas/cancel_request.json").read_text())
    # Then
    documented = document["components"]["schemas"]["CancelRequest"]
    assert _constraints(documented) == _constraints(lean)


def _validator(document: dict[str, Any], method: str, path: str, status: int, content_type: str) -> Any:
    responses = document["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path} answered {status}, which is not documented"
    content = responses[str(status)]["content"]
    assert content_type in content, f"{method} {path} {status} answered {content_type}, documented {list(content)}"
    return Draft202012Validator({**content[content_type]["schema"], "components": document["components"]})


def _call(handler: Any, method: str, template_path: str, path: str, **kwargs: Any) -> tuple[str, str, Any]:
    response = handler(api_event(method, path, tenant=TENANT, **kwargs))
    return template_path, method, response


def test_every_answer_the_handlers_give_fits_the_documented_schema(document, runs_handler, cancel_handler, store):
    # Given: one run in each status a route treats differently
    seed_run(store, "r-running", "running")
    seed_run(store, "r-done", "success")
    seed_run(store, "r-int", "interrupted")
    runs_path, cancel_path = "/runs/{run_id}", "/runs/{run_id}/cancel"
    # When
    answers = [
        _call(runs_handler, "POST", "/runs", "/runs", body={"run_id": "r-new"}, headers={"Idempotency-Key": "k"}),
        _call(runs_handler, "POST", "/runs", "/runs", body={"run_id": "r-new"}),
        _call(runs_handler, "POST", "/runs", "/runs", body={"run_id": "r-x"}, headers={"Idempotency-Key": "k"}),
        _call(runs_handler, "POST", "/runs", "/runs", body={"metadata": []}),
        _call(runs_handler, "GET", "/runs", "/runs", query="limit=1"),
        _call(runs_handler, "GET", "/runs", "/runs", query="limit=0"),
        _call(runs_handler, "POST", "/runs/cancel", "/runs/cancel", body={"run_ids": ["r-new", "r-done", "-"]}),
        _call(runs_handler, "GET", runs_path, "/runs/r-running"),
        _call(runs_handler, "GET", runs_path, "/runs/nope"),
        _call(runs_handler, "POST", runs_path + "/start", "/runs/r-done/start"),
        _call(runs_handler, "POST", runs_path + "/heartbeat", "/runs/r-running/heartbeat"),
        _call(runs_handler, "POST", runs_path + "/complete", "/runs/r-running/complete", body={"status": "error"}),
        _call(runs_handler, "POST", runs_path + "/stopped", "/runs/r-int/stopped"),
        _call(runs_handler, "POST", runs_path + "/stopped", "/runs/r-done/stopped"),
        _call(cancel_handler, "POST", cancel_path, "/runs/r-int/cancel", query="wait=0"),
        _call(cancel_handler, "POST", cancel_path, "/runs/r-done/cancel"),
        _call(cancel_handler, "POST", cancel_path, "/runs/r-int/cancel", query="wait=99"),
        _call(cancel_handler, "POST", cancel_path, "/runs/r-int/cancel", body={"force": True}),
    ]
    # Then
    statuses = set()
    for template_path, method, response in answers:
        content_type = response["headers"]["Content-Type"]
        validator = _validator(document, method, template_path, response["statusCode"], content_type)
        errors = [error.message for error in validator.iter_errors(body_of(response))]
        assert not errors, (method, template_path, response["statusCode"], errors)
        statuses.add(int(response["statusCode"]))
    assert statuses == {200, 201, 202, 400, 404, 409, 422}


def test_the_local_runner_serves_the_document_and_swagger_ui():
    # Given
    api = LocalApi(local_refs(), {}, port=0, extra_routes=docs_routes())
    # When
    with api:
        with urllib.request.urlopen(f"{api.url}/openapi.json", timeout=10) as response:
            served = response.read().decode()
        with urllib.request.urlopen(f"{api.url}/docs", timeout=10) as response:
            page, page_type = response.read().decode(), response.headers["Content-Type"]
    # Then
    assert served == openapi_document()
    assert page_type.startswith("text/html")
    assert "SwaggerUIBundle" in page
    assert '"/openapi.json"' in page


@pytest.mark.parametrize(("raw", "status"), [(b"", 202), (b"{}", 202), (b"null", 422), (b"[]", 422)])
def test_the_document_and_the_cancel_handler_agree_on_which_bodies_are_valid(document, cancel_handler, raw, status):
    # Given: the documented cancel body (optional; when sent, an object)
    request_body = document["paths"]["/runs/{run_id}/cancel"]["post"]["requestBody"]
    schema = request_body["content"]["application/json"]["schema"]
    validator = Draft202012Validator({**schema, "components": document["components"]})
    documented_valid = raw == b"" or validator.is_valid(json.loads(raw))
    # When
    response = cancel_handler(api_event("POST", "/runs/r-none/cancel", tenant=TENANT, raw_body=raw))
    # Then: what the document accepts the handler accepts, and what it refuses is a 422
    assert not request_body.get("required", False)
    assert response["statusCode"] == status, body_of(response)
    assert documented_valid == (status == 202)
