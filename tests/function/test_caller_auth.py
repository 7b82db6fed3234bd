"""The front door (issue 16, docs/callers.md): only a caller holding an Entra access token
for the reader API, with its app role, gets an answer. Every rule is shown refusing, through the
registered functions and against the fake Entra's published keys."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from localcloud.caller_tokens import alg_none, hs256_with_public_key
from localcloud.entra import AZURE_CLI_CLIENT_ID, EntraRefusal, FakeEntra
from tests.function.conftest import CALLER_ROLE, FunctionClient, MakeFunction, World

from crosscloud_fn import caller_auth  # isort: skip  (function_src is put on sys.path by conftest)

INVALID = 'Bearer error="invalid_token"'


def claims(world: World, **changes: Any) -> dict[str, Any]:
    """A v1 app token's claims for the reader API, as Entra issues them; `changes` override
    (None removes the claim)."""
    now = int(time.time())
    caller = world.identities["caller"]
    base: dict[str, Any] = {
        "aud": world.caller_audience,
        "iss": world.entra.issuer,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "appid": caller.client_id,
        "oid": caller.principal_id,
        "sub": caller.principal_id,
        "tid": world.entra.tenant_id,
        "roles": [CALLER_ROLE],
        "ver": "1.0",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def bearer(token: str) -> str:
    return f"Bearer {token}"


def refused(client: FunctionClient, authorization: str | None, **kwargs: Any) -> Any:
    answer = client.call("list", authorization=authorization, **kwargs)
    assert answer.status == 401, answer.body
    assert answer.body["error"]["code"] == "unauthenticated"
    return answer


@pytest.fixture
def client(make_function: MakeFunction) -> FunctionClient:
    return make_function("sami")


# ---- let in ------------------------------------------------------------------------------------


def test_an_assigned_app_reads(client: FunctionClient, world: World) -> None:
    answer = client.call("list")
    assert answer.status == 200, answer.body
    assert world.entra.keys_requests == 1


def test_an_assigned_person_reads_with_an_azure_cli_token(
    client: FunctionClient, world: World
) -> None:
    person = world.identities["person"]
    token = world.entra.issue_caller_token(person, world.caller_audience, user=True)
    answer = client.call("whoami", authorization=bearer(token))
    assert answer.status == 200, answer.body
    assert answer.body["caller"] == {
        "oid": person.principal_id,
        "appid": AZURE_CLI_CLIENT_ID,
        "kind": "user",
        "roles": [CALLER_ROLE],
    }


def test_a_v2_token_with_the_client_id_as_audience_is_accepted(
    client: FunctionClient, world: World
) -> None:
    v2 = claims(
        world,
        aud=world.caller_client_id,
        iss=f"{world.entra.base_url}/{world.entra.tenant_id}/v2.0",
        azp=world.identities["caller"].client_id,
        appid=None,
        ver="2.0",
    )
    answer = client.call("whoami", authorization=bearer(world.entra.sign(v2)))
    assert answer.status == 200, answer.body
    assert answer.body["caller"]["appid"] == world.identities["caller"].client_id


def test_clock_skew_within_five_minutes_is_tolerated(client: FunctionClient, world: World) -> None:
    now = int(time.time())
    skewed = claims(world, exp=now - 240, nbf=now + 240)
    assert client.call("list", authorization=bearer(world.entra.sign(skewed))).status == 200


# ---- 401 without a usable token ----------------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "", "Basic dXNlcjpwYXNz", "Bearer", "Bearer a.b"])
def test_no_or_malformed_authorization_is_401_with_a_bare_challenge(
    client: FunctionClient, authorization: str | None
) -> None:
    answer = refused(client, authorization)
    assert answer.headers["WWW-Authenticate"] == "Bearer"


def test_a_function_key_alone_is_401(client: FunctionClient) -> None:
    answer = refused(client, None, headers={"x-functions-key": "a-function-key"})
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    answer = refused(client, None, code="a-function-key")
    assert answer.headers["WWW-Authenticate"] == "Bearer"


# ---- 401 invalid_token: each check, named ------------------------------------------------------


def invalid(client: FunctionClient, token: str, check_words: str) -> dict[str, Any]:
    answer = refused(client, bearer(token))
    assert answer.headers["WWW-Authenticate"] == INVALID
    message = answer.body["error"]["message"]
    assert check_words in message, message
    assert token not in answer.text  # also checked for every issued token by FunctionClient
    return answer.body


def test_alg_none_is_refused(client: FunctionClient, world: World) -> None:
    invalid(client, alg_none(claims(world), kid=world.entra.key_id), "alg must be RS256")


def test_hs256_signed_with_the_public_key_is_refused(client: FunctionClient, world: World) -> None:
    token = hs256_with_public_key(claims(world), world.entra.public_key, world.entra.key_id)
    invalid(client, token, "alg must be RS256")


def test_a_token_from_another_tenant_is_refused(client: FunctionClient, world: World) -> None:
    other = str(uuid.uuid4())
    token = world.entra.issue_caller_token(
        world.identities["caller"], world.caller_audience, tenant_id=other
    )
    invalid(client, token, "iss")


def test_the_right_issuer_with_another_tid_is_refused(client: FunctionClient, world: World) -> None:
    invalid(client, world.entra.sign(claims(world, tid=str(uuid.uuid4()))), "tenant")


@pytest.mark.parametrize(
    "issuer",
    [
        "https://sts.windows.net/{tenant}",  # no trailing slash
        "{authority}/{tenant}/",  # v2 authority without /v2.0
        "https://login.microsoftonline.com/common/v2.0",
    ],
)
def test_only_the_two_issuer_forms_are_accepted(
    client: FunctionClient, world: World, issuer: str
) -> None:
    iss = issuer.format(tenant=world.entra.tenant_id, authority=world.entra.base_url)
    invalid(client, world.entra.sign(claims(world, iss=iss)), "iss")


def test_an_expired_token_is_refused(client: FunctionClient, world: World) -> None:
    token = world.entra.issue_caller_token(
        world.identities["caller"], world.caller_audience, expired=True
    )
    invalid(client, token, "expired")


def test_a_token_not_valid_yet_is_refused(client: FunctionClient, world: World) -> None:
    invalid(client, world.entra.sign(claims(world, nbf=int(time.time()) + 600)), "nbf")


def test_a_token_for_the_aws_federation_audience_is_refused(
    client: FunctionClient, world: World
) -> None:
    # The identity's own federation token: valid, signed, same tenant - but not for this API.
    invalid(client, world.entra.sign(claims(world, aud=world.audience)), "aud")


@pytest.mark.parametrize("claim", ["exp", "nbf", "tid", "aud"])
def test_a_token_missing_a_required_claim_is_refused(
    client: FunctionClient, world: World, claim: str
) -> None:
    invalid(client, world.entra.sign(claims(world, **{claim: None})), claim)


def test_a_kid_the_tenant_does_not_publish_is_refused(client: FunctionClient, world: World) -> None:
    invalid(client, world.entra.sign(claims(world), kid="made-up"), "kid")


def test_a_token_signed_by_another_key_with_a_published_kid_is_refused(
    client: FunctionClient, world: World
) -> None:
    with FakeEntra(world.entra.tenant_id) as impostor:
        token = impostor.sign(claims(world), kid=world.entra.key_id)
    invalid(client, token, "signature")


# ---- 403 without the role ----------------------------------------------------------------------


def test_a_valid_token_without_the_role_is_403_naming_role_and_caller(
    client: FunctionClient, world: World
) -> None:
    outsider = world.identities["outsider"]
    token = world.entra.issue_caller_token(outsider, world.caller_audience, roles=["Other.Role"])
    answer = client.call("list", authorization=bearer(token))
    assert answer.status == 403, answer.body
    assert answer.body["error"]["code"] == "forbidden"
    assert CALLER_ROLE in answer.body["error"]["message"]
    assert outsider.principal_id in answer.body["error"]["message"]
    # RFC 6750 section 3.1: the token is valid, it lacks the privilege.
    assert answer.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope"'


def test_entra_itself_refuses_an_unassigned_caller(world: World) -> None:
    with pytest.raises(EntraRefusal, match="AADSTS501051"):
        world.entra.issue_caller_token(world.identities["outsider"], world.caller_audience)


def test_no_cloud_is_called_for_a_refused_caller(client: FunctionClient, world: World) -> None:
    refused(client, None)
    client.call("read", authorization=None, name="../etc/passwd")
    assert world.entra.token_requests == 0
    assert world.aws.call_log("sts") == [] and world.gate.request_log() == []


# ---- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("CROSSCLOUD_TENANT_ID", ""),
        ("CROSSCLOUD_CALLER_CLIENT_ID", "not-a-guid"),
        ("CROSSCLOUD_CALLER_AUDIENCE", ""),
        ("CROSSCLOUD_CALLER_KEYS_REFRESH_SECONDS", "0"),
        ("AZURE_AUTHORITY_HOST", "http://login.example.com"),
    ],
)
def test_missing_front_door_settings_fail_closed_naming_the_setting(
    make_function: MakeFunction, setting: str, value: str
) -> None:
    answer = make_function("sami", **{setting: value}).call("list")
    assert answer.status == 500
    assert answer.body["error"]["code"] == "misconfigured"
    assert setting in answer.body["error"]["message"]


def test_keys_come_from_the_authority_host_discovery_v2_keys(world: World) -> None:
    settings = caller_auth.CallerSettings.from_env(
        {
            "AZURE_AUTHORITY_HOST": "login.microsoftonline.us/",
            "CROSSCLOUD_TENANT_ID": world.entra.tenant_id,
            "CROSSCLOUD_CALLER_AUDIENCE": world.caller_audience,
            "CROSSCLOUD_CALLER_CLIENT_ID": world.caller_client_id,
        }
    )
    tenant = world.entra.tenant_id
    assert settings.keys_url == f"https://login.microsoftonline.us/{tenant}/discovery/v2.0/keys"
    assert settings.issuers == (
        f"https://sts.windows.net/{tenant}/",
        f"https://login.microsoftonline.us/{tenant}/v2.0",
    )
    assert settings.role == "CrossCloud.Read" and settings.refresh_seconds == 300
    default = caller_auth.CallerSettings.from_env({**_env(world), "AZURE_AUTHORITY_HOST": ""})
    assert default.keys_url.startswith("https://login.microsoftonline.com/")


def _env(world: World) -> dict[str, str]:
    return {
        "CROSSCLOUD_TENANT_ID": world.entra.tenant_id,
        "CROSSCLOUD_CALLER_AUDIENCE": world.caller_audience,
        "CROSSCLOUD_CALLER_CLIENT_ID": world.caller_client_id,
    }


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---- admitted tokens are remembered, never past their expiry ------------------------------------


def test_a_repeated_token_is_checked_once_then_remembered(
    client: FunctionClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[str] = []
    real_decode = caller_auth.jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        decoded.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(caller_auth.jwt, "decode", counting)
    for _ in range(3):
        assert client.call("whoami").status == 200
    assert decoded == [world.caller_token]
    # A different token is checked in full, and a refused one is never remembered.
    late = world.entra.issue_caller_token(
        world.identities["caller"], world.caller_audience, expired=True
    )
    for _ in range(2):
        refused(client, bearer(late))
    assert decoded == [world.caller_token, late, late]


def test_a_remembered_token_is_refused_once_it_expires(world: World) -> None:
    clock = Clock()
    clock.now = time.time()
    settings = caller_auth.CallerSettings.from_env(
        {**_env(world), "AZURE_AUTHORITY_HOST": world.entra.base_url}
    )
    guard = caller_auth.CallerGuard(settings, clock=clock)
    token = world.entra.sign(claims(world, exp=int(clock.now) + 60))
    assert guard.check(bearer(token)).oid == world.identities["caller"].principal_id
    clock.now += 60 + caller_auth.MAX_LEEWAY - 1  # within the allowed skew: still in
    assert guard.check(bearer(token)).oid == world.identities["caller"].principal_id
    clock.now += 2
    with pytest.raises(caller_auth.Refused) as refusal:
        guard.check(bearer(token))
    assert refusal.value.outcome == "invalid_token:exp"


def test_at_most_so_many_tokens_are_remembered(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(caller_auth, "MAX_REMEMBERED", 3)
    settings = caller_auth.CallerSettings.from_env(
        {**_env(world), "AZURE_AUTHORITY_HOST": world.entra.base_url}
    )
    guard = caller_auth.CallerGuard(settings)
    for n in range(5):
        guard.check(bearer(world.entra.sign(claims(world, uti=str(n)))))
    assert len(guard._admitted) == 3


# ---- what is logged ----------------------------------------------------------------------------


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(previous)


def request_records(records: Records) -> list[dict[str, Any]]:
    return [json.loads(line) for line in records.lines if line.startswith('{"event"')]


def test_the_request_record_names_the_caller_and_the_outcome(
    client: FunctionClient, world: World, records: Records
) -> None:
    caller = world.identities["caller"]
    expired = world.entra.issue_caller_token(caller, world.caller_audience, expired=True)
    client.call("list")
    client.call("list", authorization=bearer(expired))
    client.call("list", authorization=None)
    ok, late, anonymous = request_records(records)
    assert (ok["status"], ok["auth"], ok["caller_oid"], ok["caller_appid"]) == (
        200,
        "ok",
        caller.principal_id,
        caller.client_id,
    )
    assert (late["status"], late["auth"]) == (401, "invalid_token:exp")
    assert (anonymous["status"], anonymous["auth"], anonymous["caller_oid"]) == (
        401,
        "no_token",
        None,
    )
    logged = "\n".join(records.lines)
    assert world.caller_token not in logged and expired not in logged
