"""Behaviour pinned below the handlers: the status machine's derived attributes, the cancel
decision's retry loop, the serializer fast path against boto3's own, the sweeper's cutoff
boundary, and the cancel function's import graph (its cold start)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import given, settings
from hypothesis import strategies as st

from runstop.cancel import CancelOutcome, cancel_run
from runstop.clock import expiry_epoch, iso
from runstop.item_codec import deserialize_item, serialize
from runstop.status import (
    ACTIVE,
    COMPLETE,
    FINISHED,
    HEARTBEAT,
    INTERRUPT_RUNNING,
    START,
    TRANSITIONS,
    RunStatus,
    changes,
    new_run,
)
from runstop.store import ConditionFailed, RunStore
from runstop.sweeper import SweepPolicy, sweep
from runstop_dev.template import REPO_ROOT
from tests.unit.support import T0, TENANT, seed_run, stored

# The status machine


@pytest.mark.parametrize("status", list(RunStatus))
def test_every_status_is_reachable_from_create(status):
    # Given the transitions, When we follow them from pending, Then every status is reached
    reached = {RunStatus.PENDING}
    frontier = [RunStatus.PENDING]
    while frontier:
        current = frontier.pop()
        for transition in (t for variants in TRANSITIONS.values() for t in variants):
            if current in transition.sources:
                for target in transition.targets - reached:
                    reached.add(target)
                    frontier.append(target)
    assert status in reached


def test_given_an_active_target_then_the_index_attributes_are_set_and_nothing_removed():
    change = changes(START, tenant_id="t", run_id="r", at=T0, retention_days=30)
    assert change.set["status"] == "running"
    assert change.set["tenant_status"] == "t#running"
    assert change.set["active_pk"].startswith("running#")
    assert change.set["sweep_at"] == iso(T0)
    assert change.remove == ()


@pytest.mark.parametrize("target", sorted(FINISHED | {RunStatus.INTERRUPTED}))
def test_given_a_final_target_then_the_run_leaves_the_active_index_and_gets_its_expiry(target):
    transition = INTERRUPT_RUNNING if target is RunStatus.INTERRUPTED else COMPLETE
    change = changes(transition, tenant_id="t", run_id="r", at=T0, retention_days=2, target=target)
    assert change.remove == ("active_pk", "sweep_at")
    assert change.set["expires_at"] == expiry_epoch(T0, 2)
    assert change.set["ended_at"] == iso(T0)


def test_given_a_heartbeat_then_the_status_stays_and_only_the_staleness_clock_moves():
    change = changes(HEARTBEAT, tenant_id="t", run_id="r", at=T0, retention_days=30, stays=RunStatus.RUNNING)
    assert set(change.set) == {"updated_at", "heartbeat_at", "sweep_at"}


@pytest.mark.parametrize("target", [RunStatus.PENDING, RunStatus.INTERRUPTED])
def test_a_transition_refuses_a_target_it_cannot_lead_to(target):
    with pytest.raises(ValueError, match="cannot lead to"):
        changes(COMPLETE, tenant_id="t", run_id="r", at=T0, retention_days=30, target=target)


def test_a_new_run_is_pending_and_in_the_active_index():
    item = new_run("t", "r", at=T0, retention_days=30, metadata={"a": 1})
    assert (item["status"], item["version"], item["metadata"]) == ("pending", 1, {"a": 1})
    assert item["active_pk"].startswith("pending#")
    assert item["created_key"] == f"{iso(T0)}#r"


# The cancel decision's retry loop


class FlippingStore(RunStore):
    """The run changes between the cancel's update and its read: absent at the update, then
    appearing (created in that instant) as the read sees it."""

    def __init__(self, inner: RunStore, appears_as: list[dict[str, Any] | None]) -> None:
        super().__init__(inner.client, inner.table_name)
        self.appears_as = appears_as
        self.updates = 0

    def apply(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.updates += 1
        if self.appears_as:
            raise ConditionFailed(None)
        return super().apply(*args, **kwargs)

    def get(self, tenant_id: str, run_id: str) -> dict[str, Any] | None:
        return self.appears_as.pop(0) if self.appears_as else super().get(tenant_id, run_id)


def test_given_a_run_created_between_the_update_and_the_read_when_cancelled_then_the_update_is_tried_again(
    store, clock
):
    # Given a run that is absent for the first update and appears, active, in the read after it
    seed_run(store, "flip", "running")
    flipping = FlippingStore(store, [{"status": "running", "run_id": "flip"}])
    # When the cancel is decided
    decision = cancel_run(flipping, TENANT, "flip", reason="user")
    # Then the second update interrupts it
    assert decision.outcome is CancelOutcome.INTERRUPTED
    assert flipping.updates == 2


def test_given_a_run_that_finishes_between_the_update_and_the_read_then_the_read_decides(store, clock):
    seed_run(store, "flip", "success")
    flipping = FlippingStore(store, [{"status": "success", "run_id": "flip"}])
    decision = cancel_run(flipping, TENANT, "flip")
    assert (decision.outcome, flipping.updates) == (CancelOutcome.CONFLICT, 1)


# The serializer fast path is boto3's serializer


_scalars = (
    st.none()
    | st.booleans()
    | st.text(max_size=20)
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False, width=64).filter(lambda f: f == 0 or 1e-100 < abs(f) < 1e100)
)
_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(min_size=1, max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def _exact(value: Any) -> Any:
    """What boto3's serializer is given: floats as exact Decimals (boto3 refuses floats)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _exact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_exact(v) for v in value]
    return value


@settings(max_examples=300, deadline=None)
@given(_values)
def test_the_fast_serializer_equals_boto3s(value):
    assert serialize(value) == TypeSerializer().serialize(_exact(value))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8), _values, max_size=5))
def test_the_fast_deserializer_equals_boto3s(item):
    wire = {k: TypeSerializer().serialize(_exact(v)) for k, v in item.items()}
    expected = {k: TypeDeserializer().deserialize(v) for k, v in wire.items()}
    assert _exact(deserialize_item(wire)) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()),
)
def test_a_timestamp_is_the_fixed_width_text_strftime_would_write(moment):
    assert iso(moment) == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.parametrize("number", [10**38 - 1, -(10**38) + 1, 10**38, -(10**38), 10**39])
def test_given_a_whole_number_at_dynamodbs_38_digits_then_the_fast_path_answers_as_boto3_would(number):
    # Given boto3's verdict on the number: its attribute value, or the error it raises
    try:
        expected: Any = TypeSerializer().serialize(number)
    except Exception as error:  # boto3 refuses what DynamoDB cannot hold
        expected = type(error)
    # When the fast serializer is given it, then it says the same
    try:
        actual: Any = serialize(number)
    except Exception as error:
        actual = type(error)
    assert actual == expected
    if isinstance(expected, dict):
        assert deserialize_item({"n": expected}) == {"n": number}


# The sweeper's cutoff boundary


def test_given_a_run_whose_heartbeat_is_exactly_at_the_cutoff_when_swept_then_it_is_left_alone(aws, store, clock):
    # Given a running run last heard of exactly `heartbeat_timeout` before the sweep
    policy = SweepPolicy(heartbeat_timeout=timedelta(seconds=300), pending_timeout=timedelta(days=1))
    clock.moment = T0
    seed_run(store, "edge", "running")
    seed_run(store, "older", "running")
    # ... and another one microsecond older than that
    store.client.update_item(
        TableName=store.table_name,
        Key=store.key(TENANT, "older"),
        UpdateExpression="SET sweep_at = :at",
        ExpressionAttributeValues={":at": {"S": iso(T0 - timedelta(microseconds=1))}},
    )
    # When the sweep runs with its cutoff equal to the first run's sweep_at
    summary = sweep(store, policy, now=T0 + timedelta(seconds=300))
    # Then only the strictly older run is interrupted ("older than", not "at least as old as")
    assert summary.interrupted == 1
    assert stored(aws, "edge")["status"] == "running"
    assert stored(aws, "older")["status"] == "interrupted"


# The cancel function's cold start


def test_the_cancel_function_imports_neither_pydantic_nor_the_validating_resolver():
    # Given a fresh interpreter, When it loads the cancel function as Lambda would
    probe = (
        "import sys, json;"
        "from runstop_dev.handlers import load_handler;"
        "load_handler('CancelRunFunction');"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=REPO_ROOT, timeout=60
    ).stdout
    modules = set(json.loads(out.strip().splitlines()[-1]))
    # Then nothing of pydantic or the runs API's resolver came along
    forbidden = {m for m in modules if m.split(".")[0] == "pydantic"}
    forbidden |= {m for m in modules if m.startswith(("aws_lambda_powertools.event_handler", "runstop.resolver"))}
    forbidden |= {m for m in modules if m in {"runstop.models", "runstop.idempotency", "runstop.messages"}}
    assert not forbidden, sorted(forbidden)
    assert ACTIVE  # the status machine itself is on the path (imported above), and light
