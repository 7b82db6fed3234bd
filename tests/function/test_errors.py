"""Each way the trust chain breaks answers the right status and a hint naming the cause."""

from __future__ import annotations

import pytest

from localcloud.entra import STORAGE_RESOURCE
from tests.function.conftest import (
    BUCKET,
    ONLY_IN_AZURE,
    OTHER_BUCKET,
    Answer,
    MakeFunction,
    World,
)


def assert_error(answer: Answer, status: int, code: str) -> dict[str, str]:
    assert answer.status == status, answer.body
    assert set(answer.body) == {"error"}
    error = answer.body["error"]
    assert set(error) == {"code", "message", "hint"}
    assert error["code"] == code
    assert "Traceback" not in answer.text
    return error


def no_cloud_calls(world: World) -> bool:
    return (
        world.entra.token_requests == 0 and world.aws.call_log() == [] and world.gate.requests == 0
    )


# ---- Entra --------------------------------------------------------------------------------------


def test_identity_without_the_app_role_is_named_in_the_hint(
    make_function: MakeFunction, world: World
) -> None:
    sami = world.identities["sami"]
    world.entra.unassign(world.audience, sami.principal_id)
    answer = make_function("sami").call("read", name="hello.txt")

    error = assert_error(answer, 502, "identity_not_assigned")
    assert "AADSTS501051" in error["message"]
    assert "AssumeAWSRole" in error["hint"] and "system-assigned" in error["hint"]
    assert world.audience in error["hint"]
    # Entra (the fake) refused; STS was never asked.
    refused = [r for r in world.entra.request_log() if r.resource == world.audience]
    assert [r.status for r in refused] == [400]
    assert world.aws.web_identity_calls == 0


def test_stranger_identity_is_refused_on_whoami(make_function: MakeFunction, world: World) -> None:
    stranger = world.identities["stranger"]
    error = assert_error(make_function("stranger").call("whoami"), 502, "identity_not_assigned")
    assert stranger.client_id in error["hint"]


def test_unknown_audience_names_the_setting(make_function: MakeFunction, world: World) -> None:
    fn = make_function(CROSSCLOUD_AUDIENCE=f"api://{world.entra.tenant_id}/No-Such-App")
    error = assert_error(fn.call("whoami"), 502, "audience_not_found")
    assert "AADSTS500011" in error["message"]
    assert "CROSSCLOUD_AUDIENCE" in error["hint"]


def test_identity_not_attached_to_the_app(make_function: MakeFunction, world: World) -> None:
    fn = make_function(CROSSCLOUD_IDENTITY_CLIENT_ID="00000000-0000-4000-8000-000000000000")
    # App Service refuses (400): a refusal with a precise hint, not an outage.
    error = assert_error(fn.call("list"), 502, "identity_refused")
    assert "CROSSCLOUD_IDENTITY_CLIENT_ID" in error["hint"]
    # Asked once per audience: a refused token request is not retried by the storage pipeline.
    assert world.entra.requests_for(STORAGE_RESOURCE) == 1
    assert world.entra.requests_for(world.audience) == 1


# ---- AWS STS ------------------------------------------------------------------------------------


def test_sts_refusing_the_audience_names_aud_iss_and_sub(
    make_function: MakeFunction, world: World
) -> None:
    # Entra happily issues a token for another app; the role's OIDC provider does not know it.
    sami = world.identities["sami"]
    answer = make_function("sami", CROSSCLOUD_AUDIENCE=world.other_audience).call(
        "read", name="hello.txt"
    )

    error = assert_error(answer, 502, "sts_refused")
    assert "InvalidIdentityToken" in error["message"]
    for fact in (world.other_audience, world.entra.issuer, sami.principal_id, ":aud", ":sub"):
        assert fact in error["hint"]
    assert [c.status for c in world.aws.call_log("sts")] == [400]
    assert world.aws.calls("s3") == 0


def test_sts_refusing_the_subject(make_function: MakeFunction, world: World) -> None:
    world.guard.subjects.discard(world.identities["sami"].principal_id)
    error = assert_error(make_function("sami").call("list"), 502, "sts_refused")
    assert "AccessDenied" in error["message"]
    assert "trust policy" in error["hint"]
    assert [c.status for c in world.aws.call_log("sts")] == [403]


def test_s3_denied_by_the_role_policy(make_function: MakeFunction, world: World) -> None:
    # moto enforces IAM policies only in its auth mode, where unsigned STS calls fail too:
    # assume the role first (auth off), then turn auth on and use the bucket the role may not.
    fn = make_function("sami", CROSSCLOUD_S3_BUCKET=OTHER_BUCKET)
    assert fn.call("list").status == 200
    world.aws.enable_auth()
    try:
        answer = fn.call("list")
    finally:
        world.aws.disable_auth()

    error = assert_error(answer, 502, "s3_access_denied")
    assert f"arn:aws:s3:::{OTHER_BUCKET}" in error["hint"] and "s3:GetObject" in error["hint"]


def test_the_role_policy_allows_its_own_bucket_under_moto_auth(
    make_function: MakeFunction, world: World
) -> None:
    # The positive side of the previous test: with IAM enforced, the least-privilege policy
    # from components.trust is enough to list and read the configured bucket.
    fn = make_function("uami")
    assert fn.call("whoami").status == 200
    assert fn.call("list").status == 200
    world.aws.enable_auth()
    try:
        listed = fn.call("list")
        read = fn.call("read", name="hello.txt")
    finally:
        world.aws.disable_auth()
    assert listed.status == 200 and listed.body["aws"]["bucket"] == BUCKET
    assert read.status == 200 and read.body["aws"]["text"] == "hello from Amazon S3\n"


# ---- Azure Blob ---------------------------------------------------------------------------------


def test_blob_403_names_storage_blob_data_reader(make_function: MakeFunction, world: World) -> None:
    world.gate.readers.discard(world.identities["sami"].principal_id)
    answer = make_function("sami").call("read", name="hello.txt")

    error = assert_error(answer, 502, "blob_access_denied")
    assert "AuthorizationPermissionMismatch" in error["message"]
    assert "Storage Blob Data Reader" in error["hint"]
    assert [r.status for r in world.gate.request_log()] == [403]


# ---- missing objects and bad names --------------------------------------------------------------


def test_missing_object_is_404(make_function: MakeFunction, world: World) -> None:
    error = assert_error(make_function().call("read", name="no/such/object"), 404, "not_found")
    assert "no/such/object" in error["message"]


def test_object_missing_in_one_cloud_is_404_naming_that_cloud(make_function: MakeFunction) -> None:
    error = assert_error(make_function().call("read", name=ONLY_IN_AZURE), 404, "not_found")
    assert error["message"].startswith("AWS:")


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../x",
        "a/../b",
        "a/..",
        "./a",
        "x" * 1025,
        "\u00e9" * 513,  # 513 characters but 1026 bytes: S3 counts bytes
        "a\x00b",
        "line\nbreak",
        "tab\there",
        "del\x7f",
        "c1\x85control",
        "bidi\u202eoverride",
        "back\\slash",
    ],
    ids=lambda n: repr(n[:12]),
)
def test_bad_names_are_400_before_any_cloud_call(
    make_function: MakeFunction, world: World, name: str
) -> None:
    error = assert_error(make_function().call("read", name=name), 400, "bad_name")
    assert error["hint"]
    assert no_cloud_calls(world)


def test_missing_name_parameter_is_400(make_function: MakeFunction, world: World) -> None:
    assert_error(make_function().call("read"), 400, "bad_name")
    assert no_cloud_calls(world)


def test_longest_allowed_name_is_accepted(make_function: MakeFunction) -> None:
    # 1024 bytes is legal in both stores: it is looked up (and not found), not refused.
    assert_error(make_function().call("read", name="n" * 1024), 404, "not_found")


# ---- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("CROSSCLOUD_AWS_ROLE_ARN", ""),
        ("CROSSCLOUD_AWS_ROLE_ARN", "crosscloud-reader"),
        ("CROSSCLOUD_AUDIENCE", "api://x/AWS-Federation-App/.default"),
        ("CROSSCLOUD_IDENTITY_CLIENT_ID", "my-identity"),
        ("CROSSCLOUD_BLOB_ACCOUNT_URL", "http://127.0.0.1:10000/devstoreaccount1"),
        ("CROSSCLOUD_AWS_REGION", "Europe"),
    ],
)
def test_misconfiguration_is_500_naming_the_setting(
    make_function: MakeFunction, world: World, setting: str, value: str
) -> None:
    error = assert_error(make_function(**{setting: value}).call("list"), 500, "misconfigured")
    assert setting in error["message"] and setting in error["hint"]
    assert no_cloud_calls(world)
