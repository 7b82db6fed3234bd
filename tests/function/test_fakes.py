"""The fakes themselves behave like what they stand in for (the local cloud reuses them)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import boto3
import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ManagedIdentityCredential
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from localcloud.entra import STORAGE_RESOURCE, FakeEntra, unverified_claims
from localcloud.moto_server import MotoServer, StsRefusal
from tests.function.conftest import World


def mi_get(world: World, resource: str, header: str | None, client_id: str | None = None):
    query = f"api-version=2019-08-01&resource={resource}"
    if client_id:
        query += f"&client_id={client_id}"
    headers = {"X-IDENTITY-HEADER": header} if header else {}
    request = urllib.request.Request(f"{world.entra.identity_endpoint}?{query}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_mi_endpoint_answers_like_app_service(world: World) -> None:
    status, body = mi_get(world, STORAGE_RESOURCE, world.host_env["IDENTITY_HEADER"])
    assert status == 200
    assert set(body) == {"access_token", "expires_on", "resource", "token_type", "client_id"}
    assert isinstance(body["expires_on"], str) and int(body["expires_on"]) > time.time() + 3600
    assert body["token_type"] == "Bearer" and body["resource"] == STORAGE_RESOURCE


def test_tokens_verify_against_the_served_jwks_with_v1_claims(world: World) -> None:
    uami = world.identities["uami"]
    status, body = mi_get(world, world.audience, world.host_env["IDENTITY_HEADER"], uami.client_id)
    assert status == 200
    with urllib.request.urlopen(world.entra.discovery_url, timeout=5) as response:
        discovery = json.loads(response.read())
    assert (
        discovery["issuer"]
        == world.entra.issuer
        == f"https://sts.windows.net/{world.entra.tenant_id}/"
    )
    keys = jwt.PyJWKClient(discovery["jwks_uri"])
    key = keys.get_signing_key_from_jwt(body["access_token"])
    claims = jwt.decode(
        body["access_token"],
        key.key,
        algorithms=["RS256"],
        audience=world.audience,
        issuer=world.entra.issuer,
    )
    assert claims["sub"] == claims["oid"] == uami.principal_id
    assert claims["appid"] == uami.client_id and claims["tid"] == world.entra.tenant_id
    assert claims["roles"] == ["AssumeAWSRole"] and claims["ver"] == "1.0"


def test_storage_audience_is_the_resource_without_default_scope(world: World) -> None:
    token, _ = world.entra.issue_token(world.identities["sami"], STORAGE_RESOURCE + "/.default")
    claims = unverified_claims(token)
    assert claims["aud"] == "https://storage.azure.com" and "roles" not in claims


@pytest.mark.parametrize("header", [None, "wrong-secret"])
def test_identity_header_must_match(world: World, header: str | None) -> None:
    status, body = mi_get(world, STORAGE_RESOURCE, header)
    assert status == 401 and "access_token" not in body


def test_unassigned_identity_gets_aadsts501051_in_both_shapes(world: World) -> None:
    stranger = world.identities["stranger"]
    status, body = mi_get(
        world, world.audience, world.host_env["IDENTITY_HEADER"], stranger.client_id
    )
    assert status == 400
    assert body["error"] == "invalid_request"
    assert body["error_description"].startswith("AADSTS501051:")
    assert body["message"] == body["error_description"] and body["statusCode"] == 400


def test_azure_identity_surfaces_the_aadsts_code(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The function maps on this text; if azure-identity stopped carrying it, this fails first.
    for name, value in world.host_env.items():
        monkeypatch.setenv(name, value)
    stranger = world.identities["stranger"]
    credential = ManagedIdentityCredential(client_id=stranger.client_id)
    with pytest.raises(ClientAuthenticationError) as raised:
        credential.get_token(world.audience + "/.default")
    assert "AADSTS501051" in str(raised.value)
    assert stranger.client_id in str(raised.value)


def test_token_requests_are_counted_exactly_under_concurrency(world: World) -> None:
    world.reset_counts()
    header = world.host_env["IDENTITY_HEADER"]
    threads = [
        threading.Thread(target=lambda: [mi_get(world, STORAGE_RESOURCE, header) for _ in range(5)])
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert world.entra.token_requests == 40 == world.entra.requests_for(STORAGE_RESOURCE)


def test_injected_latency_is_paid_at_the_fake() -> None:
    with FakeEntra(latency=0.2) as entra:
        host = entra.add_host("h", system_identity=entra.new_identity("s"))
        started = time.perf_counter()
        request = urllib.request.Request(
            f"{entra.identity_endpoint}?api-version=2019-08-01&resource={STORAGE_RESOURCE}",
            headers={"X-IDENTITY-HEADER": host.identity_header},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
        assert time.perf_counter() - started >= 0.2


def test_sts_guard_refusal_reaches_botocore_as_an_aws_error(world: World) -> None:
    sts = boto3.client(
        "sts",
        region_name="eu-west-1",
        endpoint_url=world.aws.endpoint_url,
        config=Config(signature_version=UNSIGNED),
        verify=str(world.tls_ca),
    )
    world.reset_counts()
    with pytest.raises(ClientError) as raised:
        sts.assume_role_with_web_identity(
            RoleArn=world.role_arn, RoleSessionName="probe", WebIdentityToken="not-a-jwt"
        )
    assert raised.value.response["Error"]["Code"] == "InvalidIdentityToken"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    (call,) = world.aws.call_log("sts")
    assert call.status == 400 and "WebIdentityToken" not in call.params


def test_moto_server_counts_and_delays_sts_calls() -> None:
    refusals: list[str] = []

    def guard(params):
        refusals.append(params["RoleSessionName"])
        return (
            StsRefusal("AccessDenied", "no", 403) if params["RoleSessionName"] == "deny" else None
        )

    with MotoServer(sts_latency=0.2, sts_guard=guard) as aws:
        sts = boto3.client(
            "sts",
            region_name="us-east-1",
            endpoint_url=aws.endpoint_url,
            config=Config(signature_version=UNSIGNED),
        )
        started = time.perf_counter()
        answer = sts.assume_role_with_web_identity(
            RoleArn="arn:aws:iam::123456789012:role/r",
            RoleSessionName="ok",
            WebIdentityToken="opaque",
        )
        assert time.perf_counter() - started >= 0.2
        assert answer["Credentials"]["SessionToken"] in aws.issued_secrets()
        with pytest.raises(ClientError):
            sts.assume_role_with_web_identity(
                RoleArn="arn:aws:iam::123456789012:role/r",
                RoleSessionName="deny",
                WebIdentityToken="opaque",
            )
        assert aws.web_identity_calls == 2 and refusals == ["ok", "deny"]
        assert [c.status for c in aws.call_log("sts")] == [None, 403]


def test_user_assigned_identity_can_be_selected_by_object_id(world: World) -> None:
    uami = world.identities["uami"]
    url = (
        f"{world.entra.identity_endpoint}?api-version=2019-08-01"
        f"&resource={STORAGE_RESOURCE}&object_id={uami.principal_id}"
    )
    request = urllib.request.Request(
        url, headers={"X-IDENTITY-HEADER": world.host_env["IDENTITY_HEADER"]}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        token = json.loads(response.read())["access_token"]
    assert unverified_claims(token)["oid"] == uami.principal_id
