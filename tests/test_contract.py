"""The contract is written once, in runstop.models: the lean cancel handler must not drift from it.

The cancel function validates with committed JSON Schemas instead of pydantic (cold start);
these tests fail when a schema is stale or when the two would judge a body differently.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from runstop.models import CancelRequest
from runstop_dev.contract import SCHEMA_DIR, schema_documents
from runstop_dev.handlers import LambdaContext, load_handler
from tests.helpers import api_event, body_of
from tests.unit.support import moto_tables, share_botocore_session


def test_the_committed_schemas_are_exactly_what_the_models_generate():
    # Given
    expected = schema_documents()
    # Then: regenerate with `make schemas` when this fails
    committed = {path: path.read_text() for path in sorted(SCHEMA_DIR.glob("*.json"))}
    assert set(committed) == set(expected), "a schema file is missing or no longer generated"
    for path, text in expected.items():
        assert committed[path] == text, f"{path.name} is stale: run `make schemas`"


BODIES = [
    "{}",
    '{"reason": "user pressed stop"}',
    '{"reason": null}',
    '{"reason": ""}',
    json.dumps({"reason": "x" * 256}),
    json.dumps({"reason": "x" * 257}),
    json.dumps({"reason": "é" * 256}),
    json.dumps({"reason": "😀" * 256}),
    json.dumps({"reason": "😀" * 257}),
    '{"reason": 5}',
    '{"reason": 1.5}',
    '{"reason": true}',
    '{"reason": ["a"]}',
    '{"reason": {"text": "a"}}',
    '{"reason": "a", "force": true}',
    '{"force": true}',
    '{"Reason": "case matters"}',
    '{"reason": NaN}',
    '{"reason": "a", "reason": "b"}',
    "[]",
    '["reason"]',
    '"reason"',
    "0",
    "true",
    "null",
]


def _model_accepts(text: str) -> bool:
    """How the pydantic contract (and the runs API, which parses with json.loads) judges the body."""
    try:
        CancelRequest.model_validate(json.loads(text))
    except (ValueError, ValidationError):
        return False
    return True


@pytest.fixture
def cancel_handler(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    share_botocore_session(monkeypatch)
    with moto_tables():
        handler = load_handler("CancelRunFunction")
        yield lambda event: handler(event, LambdaContext())


@pytest.mark.parametrize("text", BODIES)
def test_the_lean_cancel_handler_accepts_a_body_exactly_when_the_model_does(cancel_handler, text):
    # When the body reaches the lean handler (the run does not exist: an accepted body gets 202 absent)
    response = cancel_handler(api_event("POST", "/runs/contract-run/cancel", raw_body=text.encode(), tenant="acme"))
    # Then
    accepted = response["statusCode"] == 202
    assert accepted == _model_accepts(text), body_of(response)
    if not accepted:
        assert response["statusCode"] == 422, body_of(response)
