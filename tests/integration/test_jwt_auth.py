"""RUNSTOP_AUTH=jwt: the local runner checks every request's token as the HTTP API's JWT
authorizer does, and the functions take the tenant from the claims it hands them.

End to end on DynamoDB Local: a token signed by the local issuer, checked against the JWKS the
runner serves, its claims in the event, the tenant from the claim, the run stored under it.
Times are set in the tokens (issued long ago, valid later), so no test waits for a clock.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import httpx
import pytest

from runstop_dev.jwt_auth import LOCAL_ISSUER, JwtAuthorizer, LocalIssuer, claim_value, template_audiences
from tests.integration.support import new_run_id

pytestmark = pytest.mark.integration

UNAUTHORIZED = {"message": "Unauthorized"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def tampered(token: str, **changes: str) -> str:
    """The token with its payload changed and its signature kept."""
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    changed = base64.urlsafe_b64encode(json.dumps({**claims, **changes}).encode()).rstrip(b"=").decode()
    return f"{head}.{changed}.{signature}"


def assert_refused_by_the_authorizer(response: httpx.Response, description: str | None) -> None:
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    expected = (
        "Bearer" if description is None else f'Bearer scope="" error="invalid_token" error_description="{description}"'
    )
    assert response.headers["www-authenticate"] == expected


def test_given_a_token_for_a_tenant_when_creating_and_reading_a_run_then_it_is_the_tenants(jwt_client, issuer):
    # Given
    token, run_id = issuer.token("acme-jwt"), new_run_id()
    # When
    created = jwt_client.post("/runs", json={"run_id": run_id}, headers=bearer(token))
    read = jwt_client.get(f"/runs/{run_id}", headers=bearer(token))
    # Then
    assert created.status_code == 201, created.text
    assert created.json()["tenant_id"] == "acme-jwt"
    assert read.status_code == 200
    assert read.json()["run_id"] == run_id


def test_given_a_token_without_bearer_prefix_when_called_then_it_is_accepted_as_api_gateway_does(jwt_client, issuer):
    # When
    response = jwt_client.get("/runs", headers={"Authorization": issuer.token("acme-jwt")})
    # Then
    assert response.status_code == 200


def test_given_a_token_and_an_x_tenant_id_header_when_called_then_only_the_token_counts(jwt_client, issuer):
    # Given
    run_id = new_run_id()
    headers = {**bearer(issuer.token("acme-jwt")), "X-Tenant-Id": "globex-jwt"}
    # When
    created = jwt_client.post("/runs", json={"run_id": run_id}, headers=headers)
    # Then
    assert created.json()["tenant_id"] == "acme-jwt"


def test_given_a_cognito_style_access_token_with_client_id_and_no_aud_then_client_id_is_the_audience(
    jwt_client, issuer
):
    # Given: Cognito access tokens carry client_id, not aud
    token = issuer.token("acme-jwt", aud=None, client_id=template_audiences()[0])
    # When
    response = jwt_client.get("/runs", headers=bearer(token))
    # Then
    assert response.status_code == 200, response.text


def test_given_a_token_without_the_tenant_claim_when_called_then_the_function_answers_401_problem(jwt_client, issuer):
    # Given: a token API Gateway accepts (signature, issuer, audience, times are fine)
    token = issuer.token(None)
    # When
    responses = [
        jwt_client.post("/runs", json={"run_id": new_run_id()}, headers=bearer(token)),
        jwt_client.post(f"/runs/{new_run_id()}/cancel", headers=bearer(token)),
    ]
    # Then: the authorizer let it through, and the function refused it with a problem document
    for response in responses:
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "urn:runstop:problem:unauthorized"
        assert "www-authenticate" not in response.headers


def test_given_another_tenants_token_when_reading_and_cancelling_a_run_then_it_is_absent_and_untouched(
    jwt_client, issuer
):
    # Given: acme's running run
    acme, globex, run_id = bearer(issuer.token("acme-jwt")), bearer(issuer.token("globex-jwt")), new_run_id()
    assert jwt_client.post("/runs", json={"run_id": run_id}, headers=acme).status_code == 201
    assert jwt_client.post(f"/runs/{run_id}/start", headers=acme).status_code == 200
    # When: globex reads, cancels, heartbeats and lists
    read = jwt_client.get(f"/runs/{run_id}", headers=globex)
    cancelled = jwt_client.post(f"/runs/{run_id}/cancel", headers=globex)
    heartbeat = jwt_client.post(f"/runs/{run_id}/heartbeat", headers=globex)
    listed = jwt_client.get("/runs", headers=globex)
    # Then: globex sees no such run, and acme's run still runs
    assert read.status_code == 404
    assert (cancelled.status_code, cancelled.json()["outcome"]) == (202, "absent")
    assert heartbeat.status_code == 404
    assert run_id not in [run["run_id"] for run in listed.json()["items"]]
    assert jwt_client.get(f"/runs/{run_id}", headers=acme).json()["status"] == "running"


NOW = time.time()


@pytest.mark.parametrize(
    ("case", "make_token", "description"),
    [
        ("no token", lambda issuer, other: "", None),
        ("not a JWT", lambda issuer, other: "not-a-token", "the token is malformed"),
        (
            "wrong audience",
            lambda issuer, other: issuer.token("acme-jwt", audience="someone-else"),
            "the token does not have a valid audience",
        ),
        (
            "wrong issuer",
            lambda issuer, other: issuer.token("acme-jwt", iss="https://elsewhere.example"),
            "the token does not have a valid issuer",
        ),
        (
            "expired",
            lambda issuer, other: issuer.token("acme-jwt", now=NOW - 7200, ttl=3600),
            "the token has expired",
        ),
        (
            "not valid yet (nbf in the future)",
            lambda issuer, other: issuer.token("acme-jwt", nbf=int(NOW) + 3600),
            "the token is not valid yet",
        ),
        (
            "bad signature",
            lambda issuer, other: tampered(issuer.token("acme-jwt"), tenant_id="globex-jwt"),
            "the token signature is invalid",
        ),
        (
            "signed by an unknown key",
            lambda issuer, other: other.token("acme-jwt"),
            "the token's kid matches no key of the issuer",
        ),
    ],
)
def test_given_a_token_api_gateway_would_refuse_when_called_then_401_unauthorized_and_nothing_runs(
    jwt_client, issuer, tmp_path: Path, case, make_token, description
):
    # Given: another issuer with the same iss but its own key
    other = LocalIssuer(tmp_path / "other")
    token = make_token(issuer, other)
    run_id = new_run_id()
    # When
    headers = bearer(token) if token else {}
    created = jwt_client.post("/runs", json={"run_id": run_id}, headers=headers)
    cancelled = jwt_client.post(f"/runs/{run_id}/cancel", headers=headers)
    # Then: API Gateway's answer, and no function ran (the run was never created)
    assert_refused_by_the_authorizer(created, description)
    assert_refused_by_the_authorizer(cancelled, description)
    assert jwt_client.get(f"/runs/{run_id}", headers=bearer(issuer.token("acme-jwt"))).status_code == 404


def test_given_a_token_when_authorized_then_the_claims_are_strings_as_api_gateway_passes_them(jwt_api, issuer):
    # Given: the authorizer reading the JWKS the runner serves
    authorizer = JwtAuthorizer(LOCAL_ISSUER, template_audiences(), jwt_api.url + "/.well-known/jwks.json")
    token = issuer.token("acme-jwt", now=NOW, groups=["admin", "ops"], admin=True, level=3)
    # When
    authorized = authorizer.authorize(f"Bearer {token}", now=NOW + 1)
    # Then
    assert authorized.claims["tenant_id"] == "acme-jwt"
    assert authorized.claims["exp"] == str(int(NOW) + 3600)
    assert authorized.claims["groups"] == "[admin ops]"
    assert (authorized.claims["admin"], authorized.claims["level"]) == ("true", "3")
    assert all(isinstance(value, str) for value in authorized.claims.values())
    assert authorized.scopes is None
    assert claim_value("x") == "x"


def test_the_runner_serves_the_issuers_jwks_and_discovery_document(jwt_client, jwt_api, issuer):
    # When
    jwks = jwt_client.get("/.well-known/jwks.json").json()
    discovery = jwt_client.get("/.well-known/openid-configuration").json()
    # Then
    assert jwks == issuer.jwks()
    assert discovery["issuer"] == LOCAL_ISSUER
    assert discovery["jwks_uri"] == jwt_api.url + "/.well-known/jwks.json"
