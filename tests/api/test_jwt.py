"""JWT bearer tokens: HS256 and RS256 (JWKS file) mapped to tenant and user, and every way a
token can be wrong answered with the same 401."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from securerag.api import create_app
from securerag.config import Settings
from securerag.errors import ConfigError
from securerag.runtime import Runtime

SECRET = "s" * 40
POLICY = """
p, alice, {T}, collection:handbook/*, read
p, alice, {T}, clearance:internal, read
"""


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def client(
    runtime: Runtime, rsa_key: rsa.RSAPrivateKey, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    jwks = tmp_path_factory.mktemp("jwks") / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}))
    settings = Settings(
        home=runtime.settings.home,
        jwt_hs256_secret=SECRET,
        jwt_jwks_file=jwks,
        jwt_issuer="https://idp.example",
        jwt_audience="securerag",
    )
    with TestClient(create_app(settings, runtime=runtime), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def tenant(make_tenant: Callable[..., Any], ingest: Callable[..., Any]) -> Any:
    tenant = make_tenant(policy=POLICY)
    ingest(tenant, "handbook/travel", "Hotels are reimbursed up to 200 USD a night.")
    ingest(tenant, "finance/q3", "Revenue forecast: 48 million.")
    return tenant


def _claims(tenant: str, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "tenant": tenant,
        "sub": "alice",
        "iss": "https://idp.example",
        "aud": "securerag",
        "exp": now + 300,
        **extra,
    }


def _ask(client: TestClient, token: str) -> Any:
    return client.post(
        "/v1/retrieve", json={"query": "hotel revenue"}, headers={"Authorization": f"Bearer {token}"}
    )


def test_hs256_and_rs256_tokens_act_as_their_user(
    client: TestClient, tenant: Any, rsa_key: rsa.RSAPrivateKey
) -> None:
    """A valid token of either kind retrieves exactly what its user may read."""
    hs = jwt.encode(_claims(tenant.name), SECRET, algorithm="HS256")
    rs = jwt.encode(_claims(tenant.name), rsa_key, algorithm="RS256", headers={"kid": "k1"})
    for token in (hs, rs):
        answer = _ask(client, token)
        assert answer.status_code == 200, answer.text
        assert {c["collection"] for c in answer.json()["chunks"]} == {"handbook/travel"}


def test_every_bad_token_is_the_same_401(client: TestClient, tenant: Any, rsa_key: rsa.RSAPrivateKey) -> None:
    """Expired, wrong issuer or audience, missing claims, unknown tenant, a role as user, a bad
    signature, `alg: none`, an unknown kid, and HS256 signed with the public key (algorithm
    confusion) all fail alike."""
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = tenant.name
    bad = {
        "expired": jwt.encode(_claims(name, exp=int(time.time()) - 120), SECRET, algorithm="HS256"),
        "issuer": jwt.encode(_claims(name, iss="https://evil.example"), SECRET, algorithm="HS256"),
        "audience": jwt.encode(_claims(name, aud="other"), SECRET, algorithm="HS256"),
        "no-exp": jwt.encode(
            {k: v for k, v in _claims(name).items() if k != "exp"}, SECRET, algorithm="HS256"
        ),
        "no-tenant": jwt.encode(
            {k: v for k, v in _claims(name).items() if k != "tenant"}, SECRET, algorithm="HS256"
        ),
        "unknown-tenant": jwt.encode(_claims("no-such-tenant-zz"), SECRET, algorithm="HS256"),
        "role-as-user": jwt.encode(_claims(name, sub="role:admin"), SECRET, algorithm="HS256"),
        "tenant-not-a-string": jwt.encode({**_claims(name), "tenant": True}, SECRET, algorithm="HS256"),
        "wrong-secret": jwt.encode(_claims(name), "x" * 40, algorithm="HS256"),
        "alg-none": jwt.encode(_claims(name), None, algorithm="none"),
        "unknown-kid": jwt.encode(_claims(name), rsa_key, algorithm="RS256", headers={"kid": "k9"}),
        "other-rsa-key": jwt.encode(_claims(name), other_key, algorithm="RS256", headers={"kid": "k1"}),
        "hs256-with-public-key": _hs256_with(public_pem, _claims(name)),
        "garbage": "a.b.c",
    }
    bodies = {}
    for case, token in bad.items():
        answer = _ask(client, token)
        assert answer.status_code == 401, (case, answer.text)
        bodies[case] = answer.json()["detail"]
    assert set(bodies.values()) == {"invalid credentials"}


def _hs256_with(key: bytes, claims: dict[str, Any]) -> str:
    """An HS256 token whose HMAC key is the RSA public key (PyJWT refuses to make one)."""
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode()
    signing = f"{b64(header)}.{b64(json.dumps(claims).encode())}"
    return f"{signing}.{b64(hmac.new(key, signing.encode(), hashlib.sha256).digest())}"


def test_bad_jwt_configuration_fails_at_start(tmp_path: Path) -> None:
    """A short secret or an unreadable JWKS file is a configuration error, not a silent open door."""
    with pytest.raises(ConfigError, match="32 bytes"):
        Settings(home=tmp_path, jwt_hs256_secret="short").jwt_verifier()
    with pytest.raises(ConfigError, match="JWKS"):
        Settings(home=tmp_path, jwt_jwks_file=tmp_path / "missing.json", jwt_audience="a").jwt_verifier()
    with pytest.raises(ConfigError, match="AUDIENCE"):
        Settings(home=tmp_path, jwt_jwks_file=tmp_path / "missing.json").jwt_verifier()
