"""Both identities read both clouds through the real SDKs; the answers keep the contract."""

from __future__ import annotations

import base64
import hashlib
import time

import pytest

from localcloud.entra import STORAGE_RESOURCE
from tests.function.conftest import (
    BUCKET,
    CONTAINER,
    ONLY_IN_AZURE,
    REGISTERED,
    SAMPLES,
    SITE_NAME,
    MakeFunction,
    World,
)

IDENTITIES = ["sami", "uami"]


def expected_object(name: str, data: bytes) -> dict[str, object]:
    try:
        text: str | None = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return {
        "name": name,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "text": text,
        "base64": None if text is not None else base64.b64encode(data).decode(),
    }


def test_routes_are_get_only_and_anonymous_at_the_host() -> None:
    triggers = {route: fn.get_trigger() for route, fn in REGISTERED.items()}
    assert set(triggers) == {"list", "read", "whoami"}
    for trigger in triggers.values():
        assert [m.value for m in trigger.methods] == ["GET"]
        # No function key: the front door checks an Entra token in code (test_caller_auth.py).
        assert trigger.auth_level.name == "ANONYMOUS"


@pytest.mark.parametrize("identity", IDENTITIES)
def test_list_names_both_stores_and_the_identity(
    make_function: MakeFunction, world: World, identity: str
) -> None:
    me = world.identities[identity]
    answer = make_function(identity).call("list")

    assert answer.status == 200, answer.body
    assert answer.mimetype == "application/json"
    assert answer.body == {
        "identity": {
            "type": "SystemAssigned" if identity == "sami" else "UserAssigned",
            "client_id": me.client_id,
            "principal_id": me.principal_id,
        },
        "azure": {
            "container": CONTAINER,
            "blobs": sorted([*SAMPLES, ONLY_IN_AZURE]),
            "truncated": False,
        },
        "aws": {"bucket": BUCKET, "keys": sorted(SAMPLES), "truncated": False},
    }
    # Seen at the fakes: every token was this identity's, and Blob saw this principal.
    assert {r.principal_id for r in world.entra.request_log()} == {me.principal_id}
    expected_client = None if identity == "sami" else me.client_id
    assert {r.client_id for r in world.entra.request_log()} == {expected_client}
    assert {r.principal_id for r in world.gate.request_log()} == {me.principal_id}


@pytest.mark.parametrize("identity", IDENTITIES)
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_read_returns_the_object_from_both_clouds(
    make_function: MakeFunction, identity: str, name: str
) -> None:
    azure_bytes, aws_bytes = SAMPLES[name]
    answer = make_function(identity).call("read", name=name)

    assert answer.status == 200, answer.body
    assert answer.body == {
        "azure": expected_object(name, azure_bytes),
        "aws": expected_object(name, aws_bytes),
    }


@pytest.mark.parametrize("identity", IDENTITIES)
def test_whoami_shows_the_federation_token_claims(
    make_function: MakeFunction, world: World, identity: str
) -> None:
    me = world.identities[identity]
    answer = make_function(identity).call("whoami")

    assert answer.status == 200, answer.body
    exp = answer.body.pop("exp")
    assert answer.body == {
        "aud": world.audience,
        "iss": world.entra.issuer,
        "sub": me.principal_id,
        "oid": me.principal_id,
        "appid": me.client_id,
        "roles": ["AssumeAWSRole"],
        # Who called: the assigned caller app, by ids only.
        "caller": {
            "oid": world.identities["caller"].principal_id,
            "appid": world.identities["caller"].client_id,
            "kind": "app",
            "roles": ["CrossCloud.Read"],
        },
    }
    assert exp > time.time() + 3600
    # Only the federation audience was needed for this route.
    assert world.entra.requests_for(world.audience) == 1
    assert world.entra.requests_for(STORAGE_RESOURCE) == 0


@pytest.mark.parametrize("identity", IDENTITIES)
def test_sts_is_asked_for_the_configured_role_with_a_long_session(
    make_function: MakeFunction, world: World, identity: str
) -> None:
    assert make_function(identity).call("read", name="hello.txt").status == 200

    (call,) = world.aws.call_log("sts")
    assert call.action == "AssumeRoleWithWebIdentity"
    assert call.status is None  # the trust check passed and moto answered
    assert call.params["RoleArn"] == world.role_arn
    assert call.params["DurationSeconds"] == "3600"
    assert call.params["RoleSessionName"] == f"crosscloud-{SITE_NAME}-{identity}"
    assert "WebIdentityToken" not in call.params  # the fake never keeps the token
