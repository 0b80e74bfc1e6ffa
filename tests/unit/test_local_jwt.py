"""`python -m runstop_dev token`: a token the local runner's authorizer accepts, for the tenant asked."""

from __future__ import annotations

import jwt

from runstop_dev import __main__ as cli
from runstop_dev import jwt_auth
from runstop_dev.jwt_auth import LOCAL_ISSUER, LocalIssuer, template_audiences, template_tenant_claim


def test_given_a_tenant_and_a_ttl_when_the_token_command_runs_then_it_prints_a_signed_token_for_them(
    tmp_path, monkeypatch, capsys
):
    # Given: the local issuer's key kept in a directory of the test's own
    monkeypatch.setattr(jwt_auth, "KEY_DIR", tmp_path)
    # When
    assert cli.main(["token", "--tenant", "acme", "--ttl", "600"]) == 0
    token = capsys.readouterr().out.strip()
    # Then: signed by the key the runner publishes, with the claims its authorizer checks
    issuer = LocalIssuer(tmp_path)
    header = jwt.get_unverified_header(token)
    assert header["kid"] == issuer.jwks()["keys"][0]["kid"]
    claims = jwt.decode(token, issuer.private_key.public_key(), algorithms=["RS256"], audience=template_audiences())
    assert claims["iss"] == LOCAL_ISSUER
    assert claims[template_tenant_claim()] == "acme"
    assert claims["exp"] - claims["iat"] == 600
    assert (tmp_path / "signing-key.pem").stat().st_mode & 0o077 == 0


def test_the_same_key_directory_gives_the_same_key_id_across_processes(tmp_path):
    # Then: a key made once is reused, and its kid is its thumbprint
    assert LocalIssuer(tmp_path).public_jwk["kid"] == LocalIssuer(tmp_path).public_jwk["kid"]
