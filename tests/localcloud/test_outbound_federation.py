"""The fakes behind the AWS readers, checked against what the real services do: STS's
GetWebIdentityToken (SigV4 caller, the role's policy, the token's claims and keys) and Entra's
client_assertion exchange (exact federated-credential match, RS256 only, the issuer's JWKS)."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator

import botocore.session
import jwt
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import rsa

from components.aws_readers import ENTRA_AUDIENCE, execution_role_policy
from localcloud.certs import make_tls_files
from localcloud.entra import EntraRefusal, FakeEntra
from localcloud.entra_federated import JWT_BEARER, FederatedCredential, FederatedTokenEndpoint
from localcloud.outbound_federation import OutboundFederation, RoleSession, allows

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/reader"
POLICY = json.loads(execution_role_policy("aws", "eu-west-1", ACCOUNT, "reader"))


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def sts(tls) -> Iterator[OutboundFederation]:
    with OutboundFederation(tls) as fake:
        fake.add_account(ACCOUNT)
        yield fake


@pytest.fixture(scope="module")
def session(sts) -> RoleSession:
    return sts.add_role(ROLE, POLICY)


def _client(sts: OutboundFederation, tls, session: RoleSession, secret: str | None = None):
    return botocore.session.Session().create_client(
        "sts",
        region_name="eu-west-1",
        endpoint_url=sts.endpoint_url,
        verify=str(tls.ca_cert),
        aws_access_key_id=session.access_key_id,
        aws_secret_access_key=secret or session.secret_access_key,
        aws_session_token=session.session_token,
        config=Config(retries={"total_max_attempts": 1}),
    )


def _token(client, audience=ENTRA_AUDIENCE, algorithm="RS256", duration=300) -> str:
    return client.get_web_identity_token(
        Audience=[audience], SigningAlgorithm=algorithm, DurationSeconds=duration
    )["WebIdentityToken"]


@pytest.mark.parametrize(
    ("context", "allowed"),
    [
        ({"aud": [ENTRA_AUDIENCE], "alg": "RS256", "dur": 300}, True),
        ({"aud": [ENTRA_AUDIENCE], "alg": "RS256", "dur": 900}, True),
        ({"aud": [ENTRA_AUDIENCE], "alg": "RS256", "dur": 901}, False),
        ({"aud": [ENTRA_AUDIENCE], "alg": "ES384", "dur": 300}, False),
        ({"aud": [ENTRA_AUDIENCE, "api://other"], "alg": "RS256", "dur": 300}, False),
        ({"aud": None, "alg": "RS256", "dur": 300}, False),
    ],
)
def test_the_programs_role_policy_is_evaluated_as_iam_does(context, allowed):
    request = {
        "sts:IdentityTokenAudience": context["aud"],
        "sts:SigningAlgorithm": context["alg"],
        "sts:DurationSeconds": context["dur"],
    }
    assert allows(POLICY, {k: v for k, v in request.items() if v is not None}) is allowed


def test_the_token_names_the_role_and_verifies_with_the_issuers_published_keys(sts, tls, session):
    token = _token(_client(sts, tls, session))
    issuer = sts.issuer(ACCOUNT)
    # Over HTTPS from the issuer's discovery document, as Entra fetches it.
    context = ssl.create_default_context(cafile=str(tls.ca_cert))
    keys = jwt.PyJWKClient(sts.discovery(ACCOUNT)["jwks_uri"], ssl_context=context)
    claims = jwt.decode(
        token,
        keys.get_signing_key_from_jwt(token).key,
        algorithms=["RS256"],
        audience=ENTRA_AUDIENCE,
        issuer=issuer,
    )
    assert claims["sub"] == ROLE
    assert claims["exp"] - claims["iat"] == 300
    assert sts.discovery(ACCOUNT)["jwks_uri"] == f"{issuer}/.well-known/jwks.json"


def test_a_wrong_secret_is_refused_as_aws_does(sts, tls, session):
    with pytest.raises(ClientError) as caught:
        _token(_client(sts, tls, session, secret="not-the-secret"))
    assert caught.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_the_role_policy_refuses_es384_and_other_audiences(sts, tls, session):
    client = _client(sts, tls, session)
    for kwargs in ({"algorithm": "ES384"}, {"audience": "api://other"}, {"duration": 3600}):
        with pytest.raises(ClientError) as caught:
            _token(client, **kwargs)
        assert caught.value.response["Error"]["Code"] == "AccessDenied"


def test_an_account_without_the_feature_says_so(tls):
    with OutboundFederation(tls) as fake:
        fake.add_account(ACCOUNT, enabled=False)
        session = fake.add_role(ROLE, POLICY)
        with pytest.raises(ClientError) as caught:
            _token(_client(fake, tls, session))
    code = caught.value.response["Error"]["Code"]
    assert code == "OutboundWebIdentityFederationDisabledException"


@pytest.fixture(scope="module")
def entra(tls) -> Iterator[FederatedTokenEndpoint]:
    with FakeEntra(tls=tls) as fake, FederatedTokenEndpoint(fake, tls) as endpoint:
        yield endpoint


def _exchange(entra: FederatedTokenEndpoint, assertion: str, client_id: str) -> dict:
    return entra.exchange(
        {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion,
            "scope": "https://storage.azure.com/.default",
        }
    )


@pytest.mark.parametrize(
    ("issuer_suffix", "subject", "audience", "refused"),
    [
        ("", ROLE, ENTRA_AUDIENCE, None),
        ("/", ROLE, ENTRA_AUDIENCE, "AADSTS700211"),
        ("", ROLE.upper(), ENTRA_AUDIENCE, "AADSTS7002138"),
        ("", f"arn:aws:sts::{ACCOUNT}:assumed-role/reader/fn", ENTRA_AUDIENCE, "AADSTS700213"),
        ("", ROLE, "api://someone-else", "AADSTS700212"),
    ],
    ids=["exact", "trailing slash", "case", "session arn", "audience"],
)
def test_entra_matches_issuer_subject_and_audience_exactly(
    entra, sts, tls, session, issuer_suffix, subject, audience, refused
):
    identity = entra.entra.new_identity(
        f"readers-{len(issuer_suffix)}-{len(subject)}-{len(audience)}"
    )
    credential = FederatedCredential(sts.issuer(ACCOUNT) + issuer_suffix, subject, (audience,))
    entra.add_identity(identity, [credential])
    token = _token(_client(sts, tls, session))
    if refused is None:
        answer = _exchange(entra, token, identity.client_id)
        claims = jwt.decode(answer["access_token"], options={"verify_signature": False})
        assert claims["oid"] == identity.principal_id
        assert claims["aud"] == "https://storage.azure.com"
    else:
        # The code names what differs, as real Entra's answers do.
        with pytest.raises(EntraRefusal, match=f"^{refused}: No matching federated identity"):
            _exchange(entra, token, identity.client_id)


def test_entra_refuses_es384_with_aadsts5002738(entra, sts, tls):
    loose = sts.add_role(
        f"arn:aws:iam::{ACCOUNT}:role/loose",
        {"Statement": [{"Effect": "Allow", "Action": "sts:GetWebIdentityToken"}]},
    )
    identity = entra.entra.new_identity("readers-es")
    entra.add_identity(
        identity, [FederatedCredential(sts.issuer(ACCOUNT), loose.role_arn, (ENTRA_AUDIENCE,))]
    )
    token = _token(_client(sts, tls, loose), algorithm="ES384")
    with pytest.raises(EntraRefusal, match="AADSTS5002738"):
        _exchange(entra, token, identity.client_id)


def test_entra_refuses_a_token_it_cannot_verify(entra, sts, tls, session):
    identity = entra.entra.new_identity("readers-forged")
    entra.add_identity(
        identity, [FederatedCredential(sts.issuer(ACCOUNT), ROLE, (ENTRA_AUDIENCE,))]
    )
    claims = jwt.decode(_token(_client(sts, tls, session)), options={"verify_signature": False})
    forged = jwt.encode(
        claims,
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "RS256",
        headers={"kid": "x"},
    )
    with pytest.raises(EntraRefusal, match="AADSTS50027"):
        _exchange(entra, forged, identity.client_id)
