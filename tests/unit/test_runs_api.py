"""POST /runs and GET /runs/{run_id}, and that one tenant can neither see nor touch another's runs."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from runstop.status import INTERNAL_ATTRIBUTES
from tests.helpers import api_event, body_of
from tests.unit.support import (
    OTHER_TENANT,
    T0_ISO,
    TENANT,
    Handler,
    assert_cancel_accepted,
    assert_problem,
    seed_run,
    stored,
    stored_run,
)


def _create(runs_handler: Handler, body: Any, tenant: str = TENANT) -> dict[str, Any]:
    return runs_handler(api_event("POST", "/runs", body, tenant=tenant))


def _metadata_of_size(size: int) -> dict[str, str]:
    """Metadata whose compact JSON is exactly `size` bytes: {"k":"xxx..."}."""
    metadata = {"k": "x" * (size - len('{"k":""}'))}
    assert len(json.dumps(metadata, separators=(",", ":")).encode()) == size
    return metadata


class TestCreate:
    def test_given_no_run_id_when_creating_then_201_pending_with_a_generated_id(self, aws, clock, runs_handler):
        # When
        response = _create(runs_handler, {"metadata": {"job": "nightly", "attempt": 2}})
        # Then
        assert response["statusCode"] == 201
        assert response["headers"]["Content-Type"] == "application/json"
        run = body_of(response)
        assert uuid.UUID(run["run_id"]).version == 4
        assert run["tenant_id"] == TENANT
        assert run["status"] == "pending"
        assert run["version"] == 1
        assert (run["created_at"], run["updated_at"]) == (T0_ISO, T0_ISO)
        assert run["metadata"] == {"job": "nightly", "attempt": 2}
        assert (run["started_at"], run["ended_at"], run["cancel"]) == (None, None, None)
        assert not INTERNAL_ATTRIBUTES & set(run)
        item = stored(aws, run["run_id"])
        assert item is not None
        assert item["status"] == "pending"
        assert item["created_key"] == f"{T0_ISO}#{run['run_id']}"
        assert item["tenant_status"] == f"{TENANT}#pending"
        assert item["active_pk"].startswith("pending#")
        assert item["sweep_at"] == T0_ISO

    def test_given_two_creates_without_run_id_then_each_gets_its_own_id(self, aws, runs_handler):
        # When
        first, second = _create(runs_handler, {}), _create(runs_handler, {})
        # Then
        assert body_of(first)["run_id"] != body_of(second)["run_id"]

    def test_given_a_run_id_when_creating_then_201_with_that_id(self, aws, runs_handler):
        # When
        response = _create(runs_handler, {"run_id": "nightly-2026.03.04:1"})
        # Then
        assert response["statusCode"] == 201
        assert body_of(response)["run_id"] == "nightly-2026.03.04:1"
        assert stored_run(aws, "nightly-2026.03.04:1")["status"] == "pending"

    @pytest.mark.parametrize("existing", ["pending", "running", "interrupted", "success"])
    def test_given_the_run_id_exists_when_creating_it_again_then_409_and_the_run_is_unchanged(
        self, aws, store, runs_handler, existing
    ):
        # Given
        seed_run(store, "r1", existing)
        before = stored(aws, "r1")
        # When
        response = _create(runs_handler, {"run_id": "r1", "metadata": {"owner": "someone else"}})
        # Then
        document = assert_problem(response, 409, "run-exists")
        assert document["run_id"] == "r1"
        assert stored(aws, "r1") == before

    def test_given_metadata_of_exactly_4kb_when_creating_then_201(self, aws, runs_handler):
        # When
        response = _create(runs_handler, {"run_id": "r1", "metadata": _metadata_of_size(4096)})
        # Then
        assert response["statusCode"] == 201
        assert stored_run(aws, "r1")["metadata"] == _metadata_of_size(4096)

    def test_given_metadata_over_4kb_when_creating_then_422_and_nothing_is_stored(self, aws, runs_handler):
        # When
        response = _create(runs_handler, {"run_id": "r1", "metadata": _metadata_of_size(4097)})
        # Then
        document = assert_problem(response, 422, "validation")
        assert any(error["loc"] == ["body", "metadata"] for error in document["errors"])
        assert stored(aws, "r1") is None


class TestGet:
    def test_given_a_run_when_read_then_200_with_its_public_view(self, aws, store, clock, runs_handler):
        # Given
        seed_run(store, "r1", "running")
        # When
        response = runs_handler(api_event("GET", "/runs/r1", tenant=TENANT))
        # Then
        assert response["statusCode"] == 200
        run = body_of(response)
        assert (run["run_id"], run["status"], run["version"]) == ("r1", "running", 2)
        assert run["started_at"] == T0_ISO
        assert not INTERNAL_ATTRIBUTES & set(run)

    def test_given_no_such_run_when_read_then_404_problem(self, aws, runs_handler):
        # When
        response = runs_handler(api_event("GET", "/runs/nope", tenant=TENANT))
        # Then
        assert assert_problem(response, 404, "run-not-found")["run_id"] == "nope"


class TestTenantIsolation:
    """The tenant comes from the token alone: another tenant's run is absent, never touched."""

    @pytest.mark.parametrize("status", ["pending", "running"])
    def test_given_a_run_of_one_tenant_when_another_tenant_reads_and_acts_on_it_then_it_is_absent_and_unchanged(
        self, aws, store, runs_handler, cancel_handler, status
    ):
        # Given
        seed_run(store, "shared-id", status, tenant=TENANT)
        before = stored(aws, "shared-id", tenant=TENANT)
        # When the other tenant uses the same run id everywhere
        read = runs_handler(api_event("GET", "/runs/shared-id", tenant=OTHER_TENANT))
        cancel = cancel_handler(api_event("POST", "/runs/shared-id/cancel", tenant=OTHER_TENANT))
        start = runs_handler(api_event("POST", "/runs/shared-id/start", tenant=OTHER_TENANT))
        heartbeat = runs_handler(api_event("POST", "/runs/shared-id/heartbeat", tenant=OTHER_TENANT))
        complete = runs_handler(api_event("POST", "/runs/shared-id/complete", {"status": "error"}, tenant=OTHER_TENANT))
        # Then
        assert_problem(read, 404, "run-not-found")
        assert_cancel_accepted(cancel, outcome="absent", status=None)
        for response in (start, heartbeat, complete):
            assert_problem(response, 404, "run-not-found")
        assert stored(aws, "shared-id", tenant=TENANT) == before
        assert stored(aws, "shared-id", tenant=OTHER_TENANT) is None

    def test_given_a_run_of_one_tenant_when_another_creates_the_same_id_then_both_exist_apart(
        self, aws, store, runs_handler
    ):
        # Given
        seed_run(store, "shared-id", "running", tenant=TENANT)
        before = stored(aws, "shared-id", tenant=TENANT)
        # When
        response = _create(runs_handler, {"run_id": "shared-id"}, tenant=OTHER_TENANT)
        # Then
        assert response["statusCode"] == 201
        assert body_of(response)["tenant_id"] == OTHER_TENANT
        assert stored(aws, "shared-id", tenant=TENANT) == before
        assert stored_run(aws, "shared-id", tenant=OTHER_TENANT)["status"] == "pending"
