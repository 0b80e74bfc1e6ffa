"""What one cancel costs at the wire, counted on DynamoDB Local, and the handler's own wiring.

The decision reads the item DynamoDB returns with a failed condition, so every outcome but
`absent` is one UpdateItem; only a missing run needs the consistent GetItem as well.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from runstop.cancel import cancel_run
from runstop.runs import complete_run
from runstop.status import RunStatus
from runstop.store import RunStore, run_store
from runstop_dev.handlers import LambdaContext, load_handler
from runstop_dev.stack import LocalStack
from tests.helpers import api_event, body_of
from tests.integration.support import TABLE, new_run_id, running_run, wire_requests

pytestmark = pytest.mark.integration


@pytest.fixture
def counted_store(stack: LocalStack) -> Iterator[RunStore]:
    """A store on a client of its own, so only this test's requests are counted."""
    client = stack.client(retries={"mode": "standard", "max_attempts": 3})
    yield RunStore(client, stack.refs[TABLE])
    client.close()


def _running(store: RunStore, tenant: str) -> str:
    return running_run(store, tenant)[0]


def _interrupted(store: RunStore, tenant: str) -> str:
    run_id = _running(store, tenant)
    assert cancel_run(store, tenant, run_id).outcome == "interrupted"
    return run_id


def _succeeded(store: RunStore, tenant: str) -> str:
    run_id = _running(store, tenant)
    complete_run(store, tenant, run_id, RunStatus.SUCCESS)
    return run_id


def _missing(store: RunStore, tenant: str) -> str:
    return new_run_id()


@pytest.mark.parametrize(
    ("given", "outcome", "requests"),
    [
        (_running, "interrupted", ["UpdateItem"]),
        (_interrupted, "already_interrupted", ["UpdateItem"]),
        (_succeeded, "conflict", ["UpdateItem"]),
        (_missing, "absent", ["UpdateItem", "GetItem"]),
    ],
    ids=["interrupted", "already_interrupted", "conflict", "absent"],
)
def test_given_a_run_when_cancelled_then_the_decision_costs_the_promised_requests(
    counted_store: RunStore, tenant: str, given: Callable[[RunStore, str], str], outcome: str, requests: list[str]
) -> None:
    # Given
    run_id = given(counted_store, tenant)

    # When
    with wire_requests(counted_store.client) as sent:
        decision = cancel_run(counted_store, tenant, run_id, reason="counted")

    # Then
    assert decision.outcome == outcome
    assert sent == requests
    print(f"\n{outcome}: {len(sent)} request(s) {sent}")


def test_given_the_function_environment_when_the_cancel_handler_runs_in_process_then_it_decides_on_dynamodb_local(
    store: RunStore, tenant: str
) -> None:
    # Given: a running run, and the handler's own store built from the environment alone
    run_id, _ = running_run(store, tenant)
    handler = load_handler("CancelRunFunction")

    # When
    response = handler(
        api_event("POST", f"/runs/{run_id}/cancel", {"reason": "in process"}, tenant=tenant), LambdaContext()
    )

    # Then
    assert (response["statusCode"], body_of(response)["outcome"]) == (202, "interrupted"), response
    final = store.get(tenant, run_id)
    assert final is not None
    assert (final["status"], final["cancel"]["reason"]) == ("interrupted", "in process")
    assert run_store().get(tenant, run_id) == final, "the domain's factory must read the same table"
