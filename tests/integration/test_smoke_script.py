"""`make smoke`: the deployed-stack walk, run here against the local runner in JWT mode."""

from __future__ import annotations

import pytest

from runstop_dev import smoke

pytestmark = pytest.mark.integration


def test_given_the_api_in_jwt_mode_and_a_token_when_the_smoke_walk_runs_then_every_step_passes(jwt_api, issuer, capsys):
    # When
    exit_status = smoke.main(["--url", jwt_api.url, "--token", issuer.token("smoke-tenant")])
    # Then: one line per step, each as expected
    out = capsys.readouterr().out.splitlines()
    assert exit_status == 0, "\n".join(out)
    assert out[-1] == "smoke passed"
    assert len(out) == len(smoke.steps("x")) + 1
    assert all(line.startswith("ok   ") for line in out[:-1])
    assert any(" -> 409 " in line and "/heartbeat" in line for line in out)


def test_given_an_api_without_an_authorizer_when_the_smoke_walk_runs_then_it_fails_and_says_where(api, capsys):
    # When: header mode answers the request without a token
    exit_status = smoke.main(["--url", api.url, "--token", "anything"])
    # Then
    out = capsys.readouterr().out
    assert exit_status == 1
    assert "FAIL GET /runs (no token) -> 200" in out
    assert out.splitlines()[-1] == "smoke FAILED"
