"""Pure parts of the function library: names, settings, the session name rule."""

from __future__ import annotations

import pytest
from crosscloud_fn.names import BadName, validate_name
from crosscloud_fn.settings import (
    Settings,
    SettingsError,
    role_session_name,
    validate_role_session_name,
)

GOOD = {
    "CROSSCLOUD_AUDIENCE": "api://11111111-2222-3333-4444-555555555555/AWS-Federation-App",
    "CROSSCLOUD_AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/crosscloud-reader",
    "CROSSCLOUD_AWS_REGION": "eu-west-1",
    "CROSSCLOUD_S3_BUCKET": "crosscloud-data",
    "CROSSCLOUD_BLOB_ACCOUNT_URL": "https://crossclouddata.blob.core.windows.net/",
    "CROSSCLOUD_BLOB_CONTAINER": "mycontainer",
}


@pytest.mark.parametrize(
    "name", ["hello.txt", "a/b/c.json", "caf\u00e9", "..hidden", "a..b", "x" * 1024]
)
def test_plain_names_pass(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", [None, "", "..", "a/../b", "a\rb", "a\\b", "y" * 1025])
def test_bad_names_are_refused(name: str | None) -> None:
    with pytest.raises(BadName):
        validate_name(name)


def test_settings_from_env_for_the_sami() -> None:
    settings = Settings.from_env({**GOOD, "CROSSCLOUD_IDENTITY_CLIENT_ID": ""})
    assert settings.identity_client_id is None and not settings.user_assigned
    assert settings.blob_account_url == "https://crossclouddata.blob.core.windows.net"
    assert settings.federation_scope == GOOD["CROSSCLOUD_AUDIENCE"] + "/.default"
    assert settings.role_session_name == "crosscloud-function-sami"


def test_settings_from_env_for_a_uami() -> None:
    client_id = "0f0e0d0c-0b0a-4909-8807-060504030201"
    settings = Settings.from_env(
        {**GOOD, "CROSSCLOUD_IDENTITY_CLIENT_ID": client_id, "WEBSITE_SITE_NAME": "fn-uami-1a2b"}
    )
    assert settings.identity_client_id == client_id
    assert settings.role_session_name == "crosscloud-fn-uami-1a2b-uami"


@pytest.mark.parametrize("missing", sorted(GOOD))
def test_every_required_setting_is_required(missing: str) -> None:
    env = {k: v for k, v in GOOD.items() if k != missing}
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    assert raised.value.setting == missing


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("CROSSCLOUD_AWS_ROLE_ARN", "arn:aws:iam::123:role/x"),
        ("CROSSCLOUD_AWS_ROLE_ARN", "arn:aws:iam::123456789012:user/x"),
        ("CROSSCLOUD_AWS_REGION", "eu_west_1"),
        ("CROSSCLOUD_S3_BUCKET", "Bad_Bucket"),
        ("CROSSCLOUD_BLOB_CONTAINER", "My--Container"),
        ("CROSSCLOUD_BLOB_ACCOUNT_URL", "http://crossclouddata.blob.core.windows.net"),
        ("CROSSCLOUD_AUDIENCE", "AWS-Federation-App"),
        ("CROSSCLOUD_IDENTITY_CLIENT_ID", "not-a-guid"),
    ],
)
def test_malformed_settings_are_refused(setting: str, value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({**GOOD, setting: value})
    assert raised.value.setting == setting


@pytest.mark.parametrize("name", ["a", "x" * 65, "has space", "slash/", "colon:"])
def test_role_session_name_rule(name: str) -> None:
    with pytest.raises(SettingsError):
        validate_role_session_name(name)


def test_role_session_name_from_any_site_name_is_valid() -> None:
    long_odd = "my app/with:odd*chars" * 5
    name = role_session_name(long_odd, user_assigned=True)
    assert validate_role_session_name(name) == name
    assert len(name) <= 64 and name.endswith("-uami")


def test_time_limits_default_well_under_function_timeout() -> None:
    limits = Settings.from_env(GOOD).limits
    assert limits.budget == 25 and limits.call_timeout == 5
    # Two attempts of one call end before the budget, so a stuck call frees its worker (and any
    # lock it holds) while later requests still have time left.
    assert 2 * (limits.connect_timeout + limits.call_timeout) < limits.budget
    small = Settings.from_env({**GOOD, "CROSSCLOUD_REQUEST_BUDGET_SECONDS": "2"}).limits
    assert small.budget == 2 and small.call_timeout == 2  # never longer than the budget by default


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("CROSSCLOUD_REQUEST_BUDGET_SECONDS", "55"),  # past functionTimeout (60 s) minus 10
        ("CROSSCLOUD_REQUEST_BUDGET_SECONDS", "0"),
        ("CROSSCLOUD_CALL_TIMEOUT_SECONDS", "soon"),
        ("CROSSCLOUD_OUTAGE_COOLDOWN_SECONDS", "-1"),
    ],
)
def test_bad_time_limits_name_the_setting(setting: str, value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({**GOOD, setting: value})
    assert raised.value.setting == setting


def test_key_prefix_setting_is_optional() -> None:
    assert Settings.from_env(GOOD).s3_key_prefix == ""
    prefixed = Settings.from_env({**GOOD, "CROSSCLOUD_S3_KEY_PREFIX": "reports/"})
    assert prefixed.s3_key_prefix == "reports/"


def test_s3_names_live_under_the_key_prefix(world) -> None:
    """A role limited to `reports/*` may only list with that prefix; names stay prefix-free."""
    from crosscloud_fn.readers import S3Reader

    s3 = world.aws.client("s3")
    s3.create_bucket(
        Bucket="prefixed-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    s3.put_object(Bucket="prefixed-bucket", Key="reports/q1.txt", Body=b"q1")
    s3.put_object(Bucket="prefixed-bucket", Key="private/secret.txt", Body=b"no")
    reader = S3Reader(s3, "prefixed-bucket", "reports/")
    assert reader.list_keys() == (["q1.txt"], False)
    assert reader.read("q1.txt")["text"] == "q1"


@pytest.mark.parametrize(
    "prefix",
    [
        "reports",  # no trailing slash: `reports-confidential/...` would be read too
        "/reports/",
        "reports//q1/",
        "reports/../",
        "./reports/",
        "reports\u202e/",
        "reports\n/",
        "a" * 600 + "/",
    ],
)
def test_a_key_prefix_that_is_not_a_plain_folder_is_refused(prefix: str) -> None:
    """The infrastructure only ever sets a folder (components/settings.py `_key_prefix`): a
    prefix without its slash makes every name a key *starting with* it, outside the folder."""
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({**GOOD, "CROSSCLOUD_S3_KEY_PREFIX": prefix})
    assert raised.value.setting == "CROSSCLOUD_S3_KEY_PREFIX"


@pytest.mark.parametrize(
    "data",
    [b"\n" * 300_000, b"\t\r\n" * 100_000, b'\\"\n' * 100_000],
    ids=["newlines", "tabs-crlf", "mixed"],
)
def test_answers_stay_bounded_for_text_that_grows_when_escaped(data: bytes) -> None:
    """JSON writes tab, CR and LF as two characters each: 1 MiB of newlines as text would be a
    2 MiB answer, past the ~1.4x bound (docs/design.md "The function's contract")."""
    import json

    from crosscloud_fn.readers import describe

    described = describe("x.txt", data)
    answer = json.dumps(described, ensure_ascii=False).encode()
    assert len(answer) <= 1.4 * len(data) + 200
    assert described["text"] is None and described["base64"] is not None


def test_utf8_text_with_emoji_and_scripts_stays_text() -> None:
    from crosscloud_fn.readers import describe

    text = "Grüße 😀👩‍👩‍👧 日本語 עברית\tend\n" * 100
    described = describe("x.txt", text.encode())
    assert described["text"] == text and described["base64"] is None


@pytest.mark.parametrize(
    "name",
    ["/etc/passwd", "/", "a//b", "reports//q1.txt", "a\u2028b", "a\u2029b"],
    ids=["leading-slash", "slash", "empty-segment", "empty-segment-2", "U+2028", "U+2029"],
)
def test_names_with_empty_segments_or_line_separators_are_refused(name: str) -> None:
    """A leading '/' or '//' names an empty segment, which the two stores treat differently
    (and under a key prefix reads `prefix//...`); U+2028/2029 end a line in log viewers."""
    with pytest.raises(BadName):
        validate_name(name)


def test_a_botocore_without_the_private_refresh_api_still_refreshes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`WebIdentityCredentials` drives botocore's private `_refresh_lock`/`_protected_refresh`
    (pinned botocore). A botocore that renamed them must fall back to its own refresh, not
    fail every AWS call with an AttributeError."""
    import datetime as dt

    from botocore.credentials import RefreshableCredentials
    from crosscloud_fn.credentials import WebIdentityCredentials

    # This botocore exists as pinned: the check below is about a future one.
    probe = WebIdentityCredentials(lambda: {}, wait=1.0, clock=None)
    assert probe.takes_over_refresh

    renamed = RefreshableCredentials._protected_refresh

    def refresh(self: RefreshableCredentials) -> None:  # botocore's, with the new name
        if self.refresh_needed(self._advisory_refresh_timeout):
            renamed(self, is_mandatory=True)

    monkeypatch.delattr(RefreshableCredentials, "_protected_refresh")
    monkeypatch.setattr(RefreshableCredentials, "_refresh", refresh)
    expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    fetched = []

    def fetch() -> dict[str, str]:
        fetched.append(1)
        return {"access_key": "AKIDNEW", "secret_key": "s", "token": "t", "expiry_time": expiry}

    credentials = WebIdentityCredentials(fetch, wait=1.0, clock=None)
    assert not credentials.takes_over_refresh
    with credentials.fresh():
        assert credentials.get_frozen_credentials().access_key == "AKIDNEW"
    credentials.refresh_now("AKIDNEW")  # cannot force one: a no-op, not an AttributeError
    assert fetched == [1]


def test_a_name_too_long_for_s3_under_the_key_prefix_is_a_bad_name_not_a_refusal() -> None:
    """S3 keys are at most 1024 bytes: a valid 1024-byte name under `reports/` would make S3
    answer KeyTooLongError, reported as a 502 from AWS instead of the caller's own 400."""
    from crosscloud_fn.errors import CrossCloudError
    from crosscloud_fn.readers import S3Reader

    class NoS3:
        def get_object(self, **_kwargs: object) -> None:
            raise AssertionError("S3 must not be asked for a key it cannot hold")

    name = "n" * 1020
    assert validate_name(name) == name
    with pytest.raises(CrossCloudError) as raised:
        S3Reader(NoS3(), "bucket", "reports/").read(name)
    assert (raised.value.status, raised.value.code) == (400, "bad_name")
