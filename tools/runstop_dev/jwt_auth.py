"""JWT locally, checked as the HTTP API's JWT authorizer checks it (RUNSTOP_AUTH=jwt).

A local issuer keeps an RSA signing key under .local/jwt/ and signs tokens with it
(`python -m runstop_dev token --tenant acme`); the local runner serves its JWKS and, for every
routed request, does what API Gateway does before the function runs: take the token from
`Authorization` (with or without `Bearer `), check algorithm, key id and signature against the
issuer's JWKS, then `iss`, `aud` (or `client_id` when there is no `aud`), `exp`, `nbf` and
`iat`; refuse with 401 `{"message":"Unauthorized"}` and a `www-authenticate` header, or hand
the claims to the function at `requestContext.authorizer.jwt.claims`, every value a string.
PyJWT does the JOSE work (parsing, JWKS, signatures); only the claim rules are written here.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from runstop_dev.template import REPO_ROOT, load_template

KEY_DIR = REPO_ROOT / ".local" / "jwt"
KEY_DIR_ENV = "RUNSTOP_JWT_DIR"
"""Where the key is kept instead of KEY_DIR (the docs test points it at its own runner's key)."""
LOCAL_ISSUER = "https://issuer.runstop.local"
"""The `iss` of local tokens; the local authorizer accepts no other (JwtIssuer when deployed)."""
RSA_ALGORITHMS = ("RS256", "RS384", "RS512")
"""API Gateway supports only RSA-based algorithms."""
JWKS_PATH = "/.well-known/jwks.json"
DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_CACHE_SECONDS = 7200
"""API Gateway caches an issuer's public keys for up to two hours."""
DEFAULT_TTL = 3600


def template_audiences() -> list[str]:
    """The JwtAudience parameter's default: the audiences the deployed authorizer accepts."""
    default = load_template()["Parameters"]["JwtAudience"]["Default"]
    return [a.strip() for a in (default if isinstance(default, list) else str(default).split(","))]


def template_tenant_claim() -> str:
    return str(load_template()["Parameters"]["TenantClaim"]["Default"])


class LocalIssuer:
    """An RSA key kept in `key_dir` (made on first use), the JWKS that publishes it, and tokens it signs."""

    def __init__(self, key_dir: Path | None = None, issuer: str = LOCAL_ISSUER) -> None:
        self.key_dir = key_dir or Path(os.environ.get(KEY_DIR_ENV) or KEY_DIR)
        self.issuer = issuer

    @cached_property
    def private_key(self) -> rsa.RSAPrivateKey:
        path = self.key_dir / "signing-key.pem"
        if not path.exists():
            self.key_dir.mkdir(parents=True, exist_ok=True)
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            partial.write_bytes(pem)
            partial.chmod(0o600)
            partial.replace(path)  # two processes racing to make it: both keep one whole key
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise TypeError(f"{path} does not hold an RSA private key")
        return loaded

    @cached_property
    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        # RFC 7638 thumbprint as key id: the same key always gets the same kid.
        canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True)
        kid = jwt.utils.base64url_encode(hashlib.sha256(canonical.encode()).digest()).decode()
        return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk]}

    def discovery(self, jwks_uri: str) -> dict[str, Any]:
        """The OpenID discovery document an authorizer reads first (issuer, jwks_uri)."""
        return {"issuer": self.issuer, "jwks_uri": jwks_uri, "id_token_signing_alg_values_supported": ["RS256"]}

    def token(
        self,
        tenant: str | None,
        *,
        ttl: float = DEFAULT_TTL,
        now: float | None = None,
        audience: str | None = None,
        tenant_claim: str | None = None,
        **claims: Any,
    ) -> str:
        """An access token for `tenant` (None: no tenant claim), valid from `now` for `ttl` seconds.

        Extra `claims` are added or replace the defaults; a claim given as None is left out.
        """
        issued = int(time.time() if now is None else now)
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "sub": f"local-{tenant or 'nobody'}",
            "aud": audience or template_audiences()[0],
            "iat": issued,
            "nbf": issued,
            "exp": issued + int(ttl),
            "jti": str(uuid.uuid4()),
            "token_use": "access",
        }
        if tenant is not None:
            payload[tenant_claim or template_tenant_claim()] = tenant
        payload.update(claims)
        payload = {name: value for name, value in payload.items() if value is not None}
        return jwt.encode(payload, self.private_key, algorithm="RS256", headers={"kid": self.public_jwk["kid"]})


class Rejected(Exception):
    """The authorizer refused the request; `challenge` is the www-authenticate value."""

    def __init__(self, description: str | None) -> None:
        super().__init__(description or "no token")
        self.description = description

    @property
    def challenge(self) -> str:
        # AWS documents this shape (for "the token does not have a valid audience"); the other
        # descriptions are ours. A request with no token at all gets no error code (RFC 6750 3.1).
        if self.description is None:
            return "Bearer"
        return f'Bearer scope="" error="invalid_token" error_description="{self.description}"'


@dataclass(frozen=True)
class Authorized:
    claims: dict[str, str]
    scopes: list[str] | None
    """None: no route declares authorization scopes, and API Gateway then passes null."""


class JwtAuthorizer:
    """The HTTP API's JWT authorizer for one issuer and its audiences, keys read from `jwks_uri`."""

    def __init__(self, issuer: str, audiences: Sequence[str], jwks_uri: str) -> None:
        self.issuer = issuer
        self.audiences = set(audiences)
        self.keys = jwt.PyJWKClient(jwks_uri, cache_jwk_set=True, lifespan=JWKS_CACHE_SECONDS, timeout=5)

    def authorize(self, authorization: str | None, now: float | None = None) -> Authorized:
        """The claims for the function, or Rejected with what API Gateway would say."""
        token = (authorization or "").strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        if not token:
            raise Rejected(None)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise Rejected("the token is malformed") from None
        if header.get("alg") not in RSA_ALGORITHMS:
            raise Rejected(f"signing method {header.get('alg')} is invalid")
        try:
            key = self.keys.get_signing_key(str(header.get("kid")))
        except jwt.PyJWKClientError:
            raise Rejected("the token's kid matches no key of the issuer") from None
        try:
            # The signature only: the claim rules below are API Gateway's, on our clock.
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=list(RSA_ALGORITHMS),
                options={
                    "verify_signature": True,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise Rejected("the token signature is invalid") from None
        except jwt.InvalidTokenError:
            raise Rejected("the token is malformed") from None
        self._check_claims(claims, time.time() if now is None else now)
        return Authorized({name: claim_value(value) for name, value in claims.items()}, None)

    def _check_claims(self, claims: Mapping[str, Any], now: float) -> None:
        if claims.get("iss") != self.issuer:
            raise Rejected("the token does not have a valid issuer")
        # aud when present (a string or a list), else client_id (Cognito access tokens have no aud).
        audience = claims["aud"] if "aud" in claims else claims.get("client_id")
        offered = set(audience) if isinstance(audience, list) else {audience}
        if not offered & self.audiences:
            raise Rejected("the token does not have a valid audience")
        if not _number(claims.get("exp")) or claims["exp"] <= now:
            raise Rejected("the token has expired")
        if "nbf" in claims and (not _number(claims["nbf"]) or claims["nbf"] > now):
            raise Rejected("the token is not valid yet")
        if "iat" in claims and (not _number(claims["iat"]) or claims["iat"] > now):
            raise Rejected("the token was issued in the future")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def claim_value(value: Any) -> str:
    """A claim as API Gateway hands it to the function: always a string.

    Numbers keep their JSON text ("1767225600"), booleans are "true"/"false", and an array is
    bracketed and space-separated ("[admin ops]"), as measured on API Gateway; nested objects
    and null have no documented form and are given as JSON.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + " ".join(claim_value(item) for item in value) + "]"
    return json.dumps(value, separators=(",", ":"))


UNAUTHORIZED_BODY = b'{"message":"Unauthorized"}'
