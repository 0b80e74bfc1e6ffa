"""The local runner hands requests to the functions as API Gateway does: chunked bodies read
whole, media types matched whatever their case."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.integration.support import new_run_id, running_run_over_http

pytestmark = pytest.mark.integration


def _chunks(*parts: bytes) -> Iterator[bytes]:
    """A body httpx sends with Transfer-Encoding: chunked, one chunk per part."""
    yield from parts


def test_given_a_running_run_when_cancelled_with_a_chunked_body_then_the_reason_is_kept(
    http: httpx.Client, tenant: str
) -> None:
    # Given
    run_id = running_run_over_http(http, tenant)
    headers = {"X-Tenant-Id": tenant, "Content-Type": "application/json"}
    # When
    answer = http.post(
        f"/runs/{run_id}/cancel", content=_chunks(b'{"reason":', b' "sent in', b' chunks"}'), headers=headers
    )
    # Then
    assert answer.status_code == 202, answer.text
    assert answer.request.headers["transfer-encoding"] == "chunked"
    assert answer.json()["cancel"]["reason"] == "sent in chunks"


def test_given_a_chunked_create_body_when_posted_then_the_run_is_created_with_it(
    http: httpx.Client, tenant: str
) -> None:
    # Given
    run_id = new_run_id()
    body = f'{{"run_id": "{run_id}", "metadata": {{"via": "chunks"}}}}'.encode()
    # When
    answer = http.post("/runs", content=_chunks(body[:7], body[7:20], body[20:]), headers={"X-Tenant-Id": tenant})
    # Then
    assert answer.status_code == 201, answer.text
    assert (answer.json()["run_id"], answer.json()["metadata"]) == (run_id, {"via": "chunks"})


MEDIA_TYPES_IN_OTHER_CASES = ["APPLICATION/JSON", "Application/Json; Charset=UTF-8"]


@pytest.mark.parametrize("content_type", MEDIA_TYPES_IN_OTHER_CASES)
def test_given_a_media_type_in_another_case_when_cancelling_then_the_body_is_read_as_json(
    http: httpx.Client, tenant: str, content_type: str
) -> None:
    # Given
    run_id = running_run_over_http(http, tenant)
    headers = {"X-Tenant-Id": tenant, "Content-Type": content_type}
    # When
    cancelled = http.post(f"/runs/{run_id}/cancel", content=b'{"reason": "case"}', headers=headers)
    # Then
    assert cancelled.status_code == 202, cancelled.text
    assert cancelled.json()["cancel"]["reason"] == "case"


@pytest.mark.parametrize("content_type", [*MEDIA_TYPES_IN_OTHER_CASES, "application/merge-patch+json"])
def test_given_a_media_type_in_another_case_when_creating_then_the_body_is_read_as_json(
    http: httpx.Client, tenant: str, content_type: str
) -> None:
    # Given
    run_id = new_run_id()
    headers = {"X-Tenant-Id": tenant, "Content-Type": content_type}
    # When
    created = http.post("/runs", content=f'{{"run_id": "{run_id}"}}'.encode(), headers=headers)
    # Then
    assert created.status_code == 201, created.text
    assert created.json()["run_id"] == run_id


def test_given_a_chunked_body_past_the_payload_limit_when_sent_then_413_and_nothing_reaches_the_function(
    http: httpx.Client, tenant: str
) -> None:
    # Given: 11 chunks of 1 MiB, past HTTP API's 10 MB
    mib = b" " * (1024 * 1024)
    # When
    answer = http.post("/runs", content=_chunks(*[mib] * 11), headers={"X-Tenant-Id": tenant})
    # Then
    assert answer.status_code == 413, answer.text


def test_given_a_run_id_with_a_colon_sent_percent_encoded_when_the_worker_starts_it_then_it_is_that_run(
    http: httpx.Client, tenant: str
) -> None:
    # Given: an id the pattern allows (":"), which clients percent-encode in the path
    run_id = f"job:{new_run_id()}"
    headers = {"X-Tenant-Id": tenant}
    assert http.post("/runs", json={"run_id": run_id}, headers=headers).status_code == 201
    # When
    started = http.post(f"/runs/{run_id.replace(':', '%3A')}/start", headers=headers)
    # Then: the function gets the path decoded, as from API Gateway
    assert started.status_code == 200, started.text
    assert started.json()["run_id"] == run_id
