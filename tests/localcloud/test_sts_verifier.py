"""The local STS front refuses exactly what AWS refuses, for the reasons AWS gives."""

from __future__ import annotations

import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from components import trust
from localcloud.entra import FakeEntra
from localcloud.sts_verifier import OidcProvider, WebIdentityVerifier

ROLE = "arn:aws:iam::123456789012:role/S3AccessRoleFromAzure"


@pytest.fixture(scope="module")
def entra():
    with FakeEntra() as fake:
        yield fake


@pytest.fixture(scope="module")
def world(entra):
    audience = f"api://{entra.tenant_id}/AWS-Federation-App"
    trusted = entra.new_identity("trusted")
    untrusted = entra.new_identity("assigned-but-not-in-sub")
    entra.add_federation_app(audience, assigned=[trusted.principal_id, untrusted.principal_id])
    provider = OidcProvider(
        url=trust.issuer_url(entra.tenant_id),
        arn=f"arn:aws:iam::123456789012:oidc-provider/sts.windows.net/{entra.tenant_id}/",
        client_ids=(audience,),
        jwks_url=entra.jwks_url,
    )
    policy = trust.trust_policy(provider.arn, entra.tenant_id, audience, [trusted.principal_id])
    return {
        "audience": audience,
        "trusted": trusted,
        "untrusted": untrusted,
        "provider": provider,
        "policy": policy,
    }


def verify(world, token, *, policy=None, provider=None, now=None):
    verifier = WebIdentityVerifier(
        [provider or world["provider"]], {ROLE: json.dumps(policy or world["policy"])}, now=now
    )
    return verifier({"RoleArn": ROLE, "WebIdentityToken": token, "RoleSessionName": "t"})


def test_a_trusted_identity_is_let_through(entra, world):
    token, _ = entra.issue_token(world["trusted"], world["audience"])
    assert verify(world, token) is None


def test_sub_outside_the_trust_list_is_access_denied(entra, world):
    token, _ = entra.issue_token(world["untrusted"], world["audience"])
    refusal = verify(world, token)
    assert (refusal.code, refusal.status) == ("AccessDenied", 403)


def test_wrong_audience_is_an_invalid_identity_token(entra, world):
    token, _ = entra.issue_token(world["trusted"], "https://storage.azure.com")
    refusal = verify(world, token)
    assert refusal.code == "InvalidIdentityToken"
    assert "audience" in refusal.message


def test_issuer_without_trailing_slash_matches_no_provider(entra, world):
    provider = OidcProvider(
        url=trust.issuer_url(entra.tenant_id).rstrip("/"),
        arn=world["provider"].arn,
        client_ids=world["provider"].client_ids,
        jwks_url=entra.jwks_url,
    )
    token, _ = entra.issue_token(world["trusted"], world["audience"])
    refusal = verify(world, token, provider=provider)
    assert refusal.code == "InvalidIdentityToken"
    assert "No OpenIDConnect provider" in refusal.message


def test_a_token_signed_by_another_key_is_refused(entra, world):
    claims = jwt.decode(
        entra.issue_token(world["trusted"], world["audience"])[0],
        options={"verify_signature": False},
    )
    forged = jwt.encode(
        claims,
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        algorithm="RS256",
        headers={"kid": entra.key_id},
    )
    assert verify(world, forged).code == "InvalidIdentityToken"


def test_an_expired_token_is_refused(entra, world):
    token, expires_on = entra.issue_token(world["trusted"], world["audience"])
    refusal = verify(world, token, now=lambda: expires_on + 1)
    assert refusal.code == "ExpiredTokenException"


def test_trust_without_sub_lets_any_assigned_identity_in(entra, world):
    """Why the `sub` condition matters: with `aud` alone, the untrusted identity gets in."""
    loose = json.loads(json.dumps(world["policy"]))
    conditions = loose["Statement"][0]["Condition"]["StringEquals"]
    del conditions[next(k for k in conditions if k.endswith(":sub"))]
    token, _ = entra.issue_token(world["untrusted"], world["audience"])
    assert verify(world, token, policy=loose) is None


def test_another_provider_arn_or_an_unknown_operator_is_refused(entra, world):
    token, _ = entra.issue_token(world["trusted"], world["audience"])
    other = json.loads(json.dumps(world["policy"]))
    other["Statement"][0]["Principal"]["Federated"] = "arn:aws:iam::1:oidc-provider/elsewhere/"
    assert verify(world, token, policy=other).code == "AccessDenied"
    unknown = json.loads(json.dumps(world["policy"]))
    statement = unknown["Statement"][0]
    statement["Condition"] = {"StringEqualsIfExists": statement["Condition"]["StringEquals"]}
    assert verify(world, token, policy=unknown).code == "AccessDenied"


def test_an_explicit_deny_wins(entra, world):
    token, _ = entra.issue_token(world["trusted"], world["audience"])
    denying = json.loads(json.dumps(world["policy"]))
    deny = dict(denying["Statement"][0], Effect="Deny")
    denying["Statement"].append(deny)
    assert verify(world, token, policy=denying).code == "AccessDenied"
