"""The Lambda's pieces with the real SDKs and no network: the exact STS call (botocore's Stubber
checks it against the installed sts model), event parsing, settings and the refusal hints."""

from __future__ import annotations

import base64
import json
import threading

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from crosscloud_fn.errors import CrossCloudError
from crosscloud_lambda import app, failures
from crosscloud_lambda.settings import LambdaSettings, SettingsError
from crosscloud_lambda.web_identity import WebIdentityAssertion, presented, sts_client

TENANT = "8f5b3c1e-1111-4d2a-9c3b-2f6d7e8a9b0c"
CLIENT = "0c2b6f1a-2222-4e5d-8a9b-1c2d3e4f5a6b"
ROLE = "arn:aws:iam::123456789012:role/crosscloud-aws-reader"
ISSUER = "https://abc123.tokens.sts.global.api.aws"
ENV = {
    "CROSSCLOUD_TENANT_ID": TENANT,
    "CROSSCLOUD_READER_CLIENT_ID": CLIENT,
    "CROSSCLOUD_BLOB_ACCOUNT_URL": "https://data.blob.core.windows.net",
    "CROSSCLOUD_BLOB_CONTAINER": "mycontainer",
    "AWS_REGION": "eu-west-1",
    "CROSSCLOUD_EXPECTED_ISSUER": ISSUER,
    "CROSSCLOUD_EXPECTED_SUBJECT": ROLE,
}


def _jwt(header: dict, claims: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part(header)}.{part(claims)}.c2ln"


def test_sts_call_is_exactly_what_entra_needs_on_the_regional_endpoint(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_STS_REGIONAL_ENDPOINTS", "legacy")  # would pick the global endpoint
    settings = LambdaSettings.from_env({**ENV, "AWS_REGION": "us-east-1"})
    client = sts_client(settings)
    # The global endpoint refuses GetWebIdentityToken (AWS docs, outbound getting started).
    assert client.meta.endpoint_url == "https://sts.us-east-1.amazonaws.com"
    token = _jwt({"alg": "RS256", "kid": "k"}, {"iss": ISSUER, "sub": ROLE, "aud": "x"})
    with Stubber(client) as stub:
        stub.add_response(
            "get_web_identity_token",
            {"WebIdentityToken": token, "Expiration": "2026-01-01T00:00:00Z"},
            {
                "Audience": ["api://AzureADTokenExchange"],
                "SigningAlgorithm": "RS256",
                "DurationSeconds": 300,
            },
        )
        assertion = WebIdentityAssertion(client, settings.token_duration)
        assert assertion() == token
    assert assertion.calls == 1
    assert assertion.last is not None and assertion.last.claims["sub"] == ROLE


def test_presented_keeps_only_non_secret_claims():
    token = _jwt({"alg": "ES384"}, {"iss": ISSUER, "sub": ROLE, "aud": "a", "jti": "j"})
    shown = presented(token)
    assert shown.algorithm == "ES384"
    assert set(shown.claims) == {"iss", "sub", "aud"}
    assert presented("not a token").claims == {}


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"CROSSCLOUD_TENANT_ID": ""}, "CROSSCLOUD_TENANT_ID"),
        ({"CROSSCLOUD_READER_CLIENT_ID": "nope"}, "CROSSCLOUD_READER_CLIENT_ID"),
        ({"CROSSCLOUD_BLOB_ACCOUNT_URL": "http://x"}, "CROSSCLOUD_BLOB_ACCOUNT_URL"),
        ({"CROSSCLOUD_BLOB_CONTAINER": "Bad_Name"}, "CROSSCLOUD_BLOB_CONTAINER"),
        ({"AWS_REGION": ""}, "AWS_REGION"),
        ({"CROSSCLOUD_TOKEN_DURATION_SECONDS": "3600"}, "CROSSCLOUD_TOKEN_DURATION_SECONDS"),
        ({"CROSSCLOUD_CALL_TIMEOUT_SECONDS": "x"}, "CROSSCLOUD_CALL_TIMEOUT_SECONDS"),
    ],
)
def test_settings_name_the_bad_variable(change, key):
    with pytest.raises(SettingsError, match=key):
        LambdaSettings.from_env({**ENV, **change})


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ({"action": "delete"}, "bad_request"),
        ("list", "bad_request"),
        ({"action": "read"}, "bad_name"),
        ({"action": "read", "name": "../etc/passwd"}, "bad_name"),
        ({"action": "read", "name": "a\u2028b"}, "bad_name"),
        ({"action": "read", "name": "x" * 1025}, "bad_name"),
    ],
)
def test_events_are_checked_before_any_call(event, code):
    with pytest.raises(CrossCloudError) as caught:
        app._parse(event)
    assert caught.value.status == 400
    assert caught.value.code == code


def _settings() -> LambdaSettings:
    return LambdaSettings.from_env(ENV)


def test_aadsts70021_hint_names_presented_and_expected_issuer_and_subject():
    other_role = "arn:aws:iam::123456789012:role/someone-else"
    shown = presented(_jwt({"alg": "RS256"}, {"iss": ISSUER, "sub": other_role, "aud": "a"}))
    exc = ClientAuthenticationError(
        message="AADSTS70021: No matching federated identity record found for presented "
        "assertion.\r\nTrace ID: 1"
    )
    error = failures.from_entra(exc, _settings(), shown)
    assert (error.status, error.code) == (502, "federated_credential_mismatch")
    assert other_role in error.hint and ROLE in error.hint and ISSUER in error.hint
    assert "AADSTS70021" in error.message


@pytest.mark.parametrize(
    ("message", "named"),
    [
        # Wordings as Entra answers them (Azure/azure-workload-identity#1200, Azure/login#482,
        # Azure/login#517).
        (
            "AADSTS700211: No matching federated identity record found for presented assertion "
            f"issuer '{ISSUER}/'. Please check your federated identity credential Subject, "
            "Audience and Issuer against the presented assertion.",
            "ISSUER differs",
        ),
        (
            "AADSTS700212: No matching federated identity record found for presented assertion "
            "audience 'api://someone-else'.",
            "AUDIENCE differs",
        ),
        (
            "AADSTS700213: No matching federated identity record found for presented assertion "
            "subject 'arn:aws:iam::123456789012:role/someone-else'. Check your federated "
            "identity credential Subject, Audience and Issuer against the presented assertion.",
            "SUBJECT differs:",
        ),
        (
            "AADSTS7002138: No matching federated identity record found for presented assertion "
            "subject 'arn:aws:iam::123456789012:role/CrossCloud-AWS-Reader'. The subject matches "
            "with case-insensitive comparison, but not with case-sensitive comparison.",
            "SUBJECT differs in CASE",
        ),
    ],
    ids=["700211 issuer", "700212 audience", "700213 subject", "7002138 case"],
)
def test_every_code_of_the_mismatch_family_gets_its_own_hint(message, named):
    other_role = "arn:aws:iam::123456789012:role/someone-else"
    shown = presented(_jwt({"alg": "RS256"}, {"iss": ISSUER, "sub": other_role, "aud": "a"}))
    error = failures.from_entra(ClientAuthenticationError(message=message), _settings(), shown)
    assert (error.status, error.code) == (502, "federated_credential_mismatch")
    assert named in error.hint
    others = {"ISSUER differs", "AUDIENCE differs", "SUBJECT differs:", "SUBJECT differs in CASE"}
    assert not any(other in error.hint for other in others - {named})
    assert other_role in error.hint and ROLE in error.hint and ISSUER in error.hint
    assert error.message.startswith("Entra ID: " + message.split(":")[0])


@pytest.mark.parametrize("code", ["AADSTS700024", "AADSTS700016", "AADSTS7002"])
def test_another_aadsts_code_is_not_taken_for_a_mismatch(code):
    exc = ClientAuthenticationError(message=f"{code}: something else")
    assert failures.from_entra(exc, _settings(), None).code == "identity_refused"


def test_aadsts5002738_hint_names_the_algorithm():
    shown = presented(_jwt({"alg": "ES384"}, {"iss": ISSUER, "sub": ROLE}))
    exc = ClientAuthenticationError(
        message="AADSTS5002738: Invalid JWT token. 'ES384' is not a supported signing algorithm."
    )
    error = failures.from_entra(exc, _settings(), shown)
    assert error.code == "signing_algorithm_refused"
    assert "ES384" in error.hint and "RS256" in error.hint


def test_disabled_account_feature_is_named():
    exc = ClientError(
        {"Error": {"Code": "OutboundWebIdentityFederationDisabledException", "Message": "off"}},
        "GetWebIdentityToken",
    )
    error = failures.from_sts(exc)
    assert error.code == "outbound_federation_disabled"
    assert "awsOutboundFederation" in error.hint


def test_access_denied_at_sts_points_at_the_role_policy():
    exc = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetWebIdentityToken")
    error = failures.from_sts(exc)
    assert error.code == "web_identity_token_denied"
    assert "api://AzureADTokenExchange" in error.hint


def test_missing_settings_answer_misconfigured_without_raising(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    app.reset()
    answer = app.handle({"action": "list"}, remaining_ms=10_000)
    assert answer["status"] == 500
    assert answer["error"]["code"] == "misconfigured"
    app.reset()


def _blob_error(status: int, code: str) -> Exception:
    class Response:
        def __init__(self) -> None:
            self.status_code = status
            self.reason = code
            self.headers = {"x-ms-error-code": code}

        def text(self) -> str:
            return ""

    error = HttpResponseError(message=code, response=Response())
    error.error_code = code
    return error


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (403, "AuthorizationPermissionMismatch", (502, "blob_access_denied")),
        (404, "BlobNotFound", (404, "not_found")),
        (503, "ServerBusy", (503, "blob_unavailable")),
    ],
)
def test_blob_answers_map_to_codes_with_hints(status, code, expected):
    error = failures.from_blob(_blob_error(status, code), _settings(), "x.txt")
    assert (error.status, error.code) == expected
    if status == 403:
        assert "mycontainer" in error.hint and "Storage Blob Data Reader" in error.hint


def test_no_time_left_answers_504_without_calling_anything(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    app.reset()
    reader, _ = app.current()
    monkeypatch.setattr(reader, "answer", lambda event: pytest.fail("called with no time left"))
    answer = app.handle({"action": "list"}, remaining_ms=500)
    assert (answer["status"], answer["error"]["code"]) == (504, "timeout")
    app.reset()


def test_a_hung_dependency_ends_at_the_lambdas_remaining_time(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    app.reset()
    reader, _ = app.current()
    release = threading.Event()
    monkeypatch.setattr(reader, "answer", lambda event: release.wait(10))
    try:
        answer = app.handle({"action": "list"}, remaining_ms=1_300)
    finally:
        release.set()
        app.reset()
    assert (answer["status"], answer["error"]["code"]) == (504, "timeout")
