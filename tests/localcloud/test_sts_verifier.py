"""The local STS front refuses exactly what AWS refuses, for the reasons AWS gives."""

from __future__ import annotations

import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from components import trust
from localcloud.entra import FakeEntra
from localcloud.sts_verifier import OidcProvider, WebIdentityVerifier
from localcloud.trust_evaluation import Unevaluable, allows, iam_like

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


# ---- fail closed: evaluate what IAM evaluates, refuse what cannot be evaluated ----------------


def keys_of(entra):
    prefix = trust.condition_key_prefix(entra.tenant_id)
    return f"{prefix}:aud", f"{prefix}:sub"


def verifier_for(world, policy):
    return WebIdentityVerifier([world["provider"]], {ROLE: json.dumps(policy)})


def exchange(verifier, token):
    return verifier({"RoleArn": ROLE, "WebIdentityToken": token, "RoleSessionName": "t"})


def tokens(entra, world):
    trusted, _ = entra.issue_token(world["trusted"], world["audience"])
    stranger, _ = entra.issue_token(world["untrusted"], world["audience"])
    return trusted, stranger


def allow_on_aud(entra, world, **extra):
    aud, _ = keys_of(entra)
    return {
        "Effect": "Allow",
        "Principal": {"Federated": world["provider"].arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {aud: world["audience"]}},
        **extra,
    }


def test_a_deny_on_sub_with_string_not_equals_keeps_the_stranger_out(entra, world):
    """Allow on aud alone plus "Deny unless sub is trusted": IAM denies the stranger."""
    _, sub = keys_of(entra)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            allow_on_aud(entra, world),
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringNotEquals": {sub: [world["trusted"].principal_id]}},
            },
        ],
    }
    trusted, stranger = tokens(entra, world)
    verifier = verifier_for(world, policy)
    assert exchange(verifier, stranger).code == "AccessDenied"
    assert exchange(verifier, trusted) is None
    assert verifier.unevaluable == []


def test_actions_are_case_insensitive_in_a_deny(entra, world):
    policy = json.loads(json.dumps(world["policy"]))
    policy["Statement"].append(
        {"Effect": "Deny", "Principal": "*", "Action": "STS:AssumeRoleWithWEBIdentity"}
    )
    trusted, _ = tokens(entra, world)
    assert exchange(verifier_for(world, policy), trusted).code == "AccessDenied"


def test_a_deny_with_not_action_applies_to_every_other_action(entra, world):
    trusted, _ = tokens(entra, world)
    denying = json.loads(json.dumps(world["policy"]))
    denying["Statement"].append({"Effect": "Deny", "Principal": "*", "NotAction": "s3:*"})
    assert exchange(verifier_for(world, denying), trusted).code == "AccessDenied"
    sparing = json.loads(json.dumps(world["policy"]))
    sparing["Statement"].append({"Effect": "Deny", "Principal": "*", "NotAction": "sts:Assume*"})
    assert exchange(verifier_for(world, sparing), trusted) is None


def test_a_deny_with_not_principal_applies_to_every_other_principal(entra, world):
    trusted, _ = tokens(entra, world)
    policy = json.loads(json.dumps(world["policy"]))
    other = "arn:aws:iam::123456789012:oidc-provider/elsewhere/"
    policy["Statement"].append(
        {"Effect": "Deny", "NotPrincipal": {"Federated": other}, "Action": "sts:*"}
    )
    assert exchange(verifier_for(world, policy), trusted).code == "AccessDenied"
    policy["Statement"][-1]["NotPrincipal"] = {"Federated": world["provider"].arn}
    assert exchange(verifier_for(world, policy), trusted) is None


def test_principal_star_is_everyone_and_does_not_crash(entra, world):
    policy = json.loads(json.dumps(world["policy"]))
    policy["Statement"][0]["Principal"] = "*"
    trusted, stranger = tokens(entra, world)
    verifier = verifier_for(world, policy)
    assert exchange(verifier, trusted) is None
    assert exchange(verifier, stranger).code == "AccessDenied"  # sub still pins it


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (
            lambda s, aud, sub: s["Condition"]["StringEquals"].update({aud[:-4] + ":roles": "x"}),
            "roles",
        ),
        (
            lambda s, aud, sub: s["Condition"].update({"Bool": {"aws:SecureTransport": "true"}}),
            "Bool",
        ),
        (
            lambda s, aud, sub: s["Condition"].update({"StringEquals": {"aws:SourceIp": "x"}}),
            "aws:SourceIp",
        ),
        (
            lambda s, aud, sub: s["Condition"].update({"ForAnyValue:StringNotLike": {sub: "x"}}),
            "ForAnyValue:StringNotLike",
        ),
        (
            lambda s, aud, sub: s["Condition"].update({"StringLike": {sub: "${aws:username}"}}),
            "policy variable",
        ),
        (lambda s, aud, sub: s.update({"Resource": "*"}), "Resource"),
        (lambda s, aud, sub: s.update({"Effect": "allow"}), "Effect"),
        (
            lambda s, aud, sub: s.update({"NotPrincipal": s.pop("Principal")}),
            "NotPrincipal with Allow",
        ),
    ],
    ids=[
        "roles-key",
        "bool",
        "global-key",
        "set-on-negated",
        "variable",
        "resource",
        "effect",
        "notprincipal-allow",
    ],
)
def test_what_cannot_be_evaluated_refuses_even_the_trusted_identity(entra, world, change, why):
    aud, sub = keys_of(entra)
    policy = json.loads(json.dumps(world["policy"]))
    change(policy["Statement"][0], aud, sub)
    trusted, _ = tokens(entra, world)
    verifier = verifier_for(world, policy)
    assert exchange(verifier, trusted).code == "AccessDenied"
    assert any(why in reason for reason in verifier.unevaluable), verifier.unevaluable


def test_an_unevaluable_deny_is_not_ignored(entra, world):
    """A Deny the evaluator cannot read must not let anyone in (it might have applied)."""
    policy = json.loads(json.dumps(world["policy"]))
    policy["Statement"].append(
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        }
    )
    trusted, _ = tokens(entra, world)
    assert exchange(verifier_for(world, policy), trusted).code == "AccessDenied"


def test_string_like_knows_only_star_and_question_mark(entra, world):
    """fnmatch reads `[0-9a-f]*` as a character class; IAM matches the brackets literally."""
    _, sub = keys_of(entra)
    policy = json.loads(json.dumps(world["policy"]))
    conditions = policy["Statement"][0]["Condition"]
    del conditions["StringEquals"][sub]
    trusted_id = world["trusted"].principal_id
    trusted, _ = tokens(entra, world)

    conditions["StringLike"] = {sub: "[0-9a-f]*"}
    assert exchange(verifier_for(world, policy), trusted).code == "AccessDenied"
    conditions["StringLike"] = {sub: trusted_id[:8] + "-????-*"}
    assert exchange(verifier_for(world, policy), trusted) is None


def test_condition_key_names_are_case_insensitive_and_ignore_case_operators_work(entra, world):
    aud, sub = keys_of(entra)
    policy = json.loads(json.dumps(world["policy"]))
    policy["Statement"][0]["Condition"] = {
        "StringEquals": {aud.upper(): world["audience"]},
        "StringEqualsIgnoreCase": {sub: world["trusted"].principal_id.upper()},
    }
    trusted, stranger = tokens(entra, world)
    verifier = verifier_for(world, policy)
    assert exchange(verifier, trusted) is None
    assert exchange(verifier, stranger).code == "AccessDenied"


def test_a_token_longer_than_20000_characters_is_a_validation_error(entra, world):
    trusted, _ = tokens(entra, world)
    verifier = verifier_for(world, world["policy"])
    refusal = exchange(verifier, trusted + "." + "A" * (25_000 - len(trusted)))
    assert (refusal.code, refusal.status) == ("ValidationError", 400)
    assert exchange(verifier, "A" * 20_000).code == "InvalidIdentityToken"  # in range: decoded
    assert exchange(verifier, "abc").code == "ValidationError"


# ---- the evaluator itself, on claims a token could not carry ------------------------------------

PROVIDER_ARN = "arn:aws:iam::123456789012:oidc-provider/issuer.example/"
PREFIX = "issuer.example/"


def one_statement(effect, operator, values):
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": effect,
                "Principal": {"Federated": PROVIDER_ARN},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {operator: {f"{PREFIX}:sub": values}},
            }
        ],
    }


@pytest.mark.parametrize(
    ("operator", "applies_without_sub"),
    [
        ("StringEquals", False),
        ("StringLike", False),
        ("ForAnyValue:StringEquals", False),
        ("ForAllValues:StringEquals", True),
        ("StringNotEquals", True),
        ("StringNotLike", True),
    ],
)
def test_a_key_missing_from_the_request_follows_iams_rule(operator, applies_without_sub):
    """Missing key: a condition is false, a negated one true, ForAllValues vacuously true."""
    claims = {"aud": "a"}
    policy = one_statement("Allow", operator, ["x"])
    assert allows(policy, PROVIDER_ARN, PREFIX, claims) is applies_without_sub


def test_iam_wildcards_are_only_star_and_question_mark():
    assert iam_like("a*[b]?", "a-anything-[b]!")
    assert not iam_like("[ab]", "a")
    assert iam_like("STS:Assume*", "sts:AssumeRoleWithWebIdentity", ignore_case=True)
    assert not iam_like("STS:Assume*", "sts:AssumeRoleWithWebIdentity")


def test_a_deny_that_does_not_apply_leaves_the_allow():
    policy = one_statement("Allow", "StringEquals", ["me"])
    policy["Statement"].append(
        one_statement("Deny", "StringEquals", ["someone-else"])["Statement"][0]
    )
    assert allows(policy, PROVIDER_ARN, PREFIX, {"sub": "me"})
    assert not allows(policy, PROVIDER_ARN, PREFIX, {"sub": "someone-else"})
    with pytest.raises(Unevaluable):
        allows({"Statement": [], "Extra": 1}, PROVIDER_ARN, PREFIX, {"sub": "me"})


@pytest.mark.parametrize("unknown_first", [True, False], ids=["unknown-key-first", "unknown-last"])
def test_a_deny_with_an_unknown_condition_key_refuses_whatever_the_key_order(unknown_first):
    """Issue 20: the Deny's first key was false for this caller, so the evaluation stopped before
    the unknown key and the trusted identity got in - or not, depending on JSON key order."""
    keys = [(f"{PREFIX}:sub", "someone-else"), ("aws:SourceIp", "10.0.0.0/8")]
    if unknown_first:
        keys.reverse()
    policy = one_statement("Allow", "StringEquals", ["me"])
    deny = one_statement("Deny", "StringEquals", ["x"])["Statement"][0]
    deny["Condition"] = {"StringEquals": dict(keys)}
    policy["Statement"].append(deny)
    with pytest.raises(Unevaluable):
        allows(policy, PROVIDER_ARN, PREFIX, {"sub": "me", "aud": "a"})


@pytest.mark.parametrize("kinds_first", [True, False])
def test_an_unknown_principal_kind_is_unevaluable_whatever_the_key_order(kinds_first):
    principal = {"AWS": "*", "Bogus": "x"} if kinds_first else {"Bogus": "x", "AWS": "*"}
    policy = one_statement("Allow", "StringEquals", ["me"])
    policy["Statement"][0]["Principal"] = principal
    with pytest.raises(Unevaluable):
        allows(policy, PROVIDER_ARN, PREFIX, {"sub": "me"})


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", ["NaN", float("nan"), "1893456000", True, None])
def test_a_signed_token_with_a_non_numeric_date_is_refused(entra, world, claim, value):
    """A validly signed token with `exp: "NaN"` compared false with every time: it never
    expired. NumericDate claims must be numbers (RFC 7519 section 2)."""
    claims = jwt.decode(
        entra.issue_token(world["trusted"], world["audience"])[0],
        options={"verify_signature": False},
    )
    claims[claim] = value
    token = jwt.encode(
        claims, entra._private_key, algorithm="RS256", headers={"kid": entra.key_id}
    )  # signed with the fake Entra's own key: only the claim is wrong
    refusal = verify(world, token)
    assert refusal is not None and refusal.code == "InvalidIdentityToken"
