"""No log record at any level, and no response, carries a credential.

The flows run with every SDK logger at DEBUG - the level at which botocore prints request
parameters (the WebIdentityToken), raw STS responses and SigV4 canonical requests - and every
record is rendered the way a handler would render it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from crosscloud_fn import redaction
from crosscloud_fn.redaction import MASK, RedactingFilter, redact

from tests.function.conftest import INSTALLED_ON_IMPORT, MakeFunction, World

LOUD_LOGGERS = (
    "",
    "azure",
    "azure.core.pipeline.policies.http_logging_policy",
    "azure.identity",
    "msal",
    "botocore",
    "boto3",
    "urllib3",
    "crosscloud",
)


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        return "\n".join(formatter.format(r) for r in self.records)


@pytest.fixture
def debug_logs() -> Iterator[Capture]:
    capture = Capture()
    levels = {name: logging.getLogger(name).level for name in LOUD_LOGGERS}
    for name in LOUD_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.getLogger().addHandler(capture)
    yield capture
    logging.getLogger().removeHandler(capture)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def leaks(text: str, secrets: list[str]) -> list[str]:
    """Secrets (or the payload/signature part of a JWT) that appear in `text`."""
    found = []
    for secret in secrets:
        parts = [secret, *secret.split(".")[1:]] if secret.count(".") == 2 else [secret]
        if any(len(part) >= 16 and part in text for part in parts):
            found.append(secret[:12] + "...")
    return found


def run_flows(make_function: MakeFunction, world: World) -> None:
    for identity in ("sami", "uami"):
        fn = make_function(identity)
        assert fn.call("list").status == 200
        assert fn.call("read", name="hello.txt").status == 200
        assert fn.call("whoami").status == 200
    # Failures log too: an STS refusal and an Entra refusal.
    assert make_function(CROSSCLOUD_AUDIENCE=world.other_audience).call("list").status == 502
    assert make_function("stranger").call("whoami").status == 502


def test_no_credential_in_any_log_record(
    make_function: MakeFunction, world: World, debug_logs: Capture
) -> None:
    run_flows(make_function, world)
    text = debug_logs.text()
    secrets = world.secrets()

    assert leaks(text, secrets) == []
    # The capture saw the records that would carry them, redacted - so this test can fail:
    assert any(s.startswith("eyJ") for s in secrets) and len(world.aws.issued_secrets()) >= 4
    assert "AssumeRoleWithWebIdentity" in text
    assert f"'WebIdentityToken': '{MASK}'" in text  # botocore.endpoint's request dump
    assert f"<SessionToken>{MASK}</SessionToken>" in text  # botocore.parsers' response dump
    names = {r.name.split(".")[0] for r in debug_logs.records}
    assert {"botocore", "azure", "urllib3", "crosscloud"} <= names


def test_without_redaction_the_same_debug_logs_would_leak(
    make_function: MakeFunction, world: World, debug_logs: Capture
) -> None:
    # Proves the previous test is not vacuous: it is the redaction that keeps them out.
    redaction.uninstall()
    try:
        assert make_function("sami").call("read", name="hello.txt").status == 200
    finally:
        redaction.install()
    assert leaks(debug_logs.text(), world.secrets()) != []


def test_importing_the_app_installs_the_redaction() -> None:
    assert INSTALLED_ON_IMPORT


def test_logged_exceptions_are_redacted_too(debug_logs: Capture) -> None:
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzb21lb25lIn0.c2lnbmF0dXJlLXBhcnQ"
    try:
        raise RuntimeError(f"upstream said Authorization: Bearer {token}")
    except RuntimeError:
        logging.getLogger("crosscloud").exception("failed with %s", {"WebIdentityToken": token})
    (record,) = [r for r in debug_logs.records if r.name == "crosscloud"]
    assert token not in debug_logs.text() and "c2lnbmF0dXJlLXBhcnQ" not in debug_logs.text()
    assert record.exc_info is None and "RuntimeError" in (record.exc_text or "")


JWT = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJhcGk6Ly94In0.SIGNATUREsignature_-123"


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        # botocore.endpoint: "Making request ... with params: {...}"
        (
            f"{{'body': {{'Action': 'AssumeRoleWithWebIdentity', 'WebIdentityToken': '{JWT}'}}}}",
            JWT,
        ),
        # botocore.parsers: raw STS response
        (
            "<Credentials><SecretAccessKey>wJalrXUtnFEMI/K7MDENG</SecretAccessKey>"
            "<SessionToken>FQoGZXIvYXdzEJr//////////wEaDM</SessionToken></Credentials>",
            "wJalrXUtnFEMI/K7MDENG",
        ),
        ("<SessionToken>FQoGZXIvYXdzEJr//////////wEaDM</SessionToken>", "FQoGZXIvYXdzEJr"),
        # botocore.auth: canonical request lines and header dicts
        (
            "host:s3.eu-west-1.amazonaws.com\nx-amz-security-token:IQoJb3JpZ2luX2VjEDoaCXVz\n",
            "IQoJb3JpZ2luX2VjEDoaCXVz",
        ),
        (
            "{'X-Amz-Security-Token': b'IQoJb3JpZ2luX2VjEDoaCXVz', "
            "'Authorization': b'AWS4-HMAC-SHA256 "
            "Credential=ASIA/20250101/eu-west-1/s3/aws4_request, Signature=abcdef0123'}",
            "IQoJb3JpZ2luX2VjEDoaCXVz",
        ),
        (
            "{'Authorization': b'AWS4-HMAC-SHA256 Credential=ASIA, Signature=abcdef0123'}",
            "abcdef0123",
        ),
        # form body and query string
        (f"Action=AssumeRoleWithWebIdentity&WebIdentityToken={JWT}&Version=2011-06-15", JWT),
        # plain HTTP header dumps
        ("Authorization: Bearer opaque-token-value-123", "opaque-token-value-123"),
        ('{"access_token": "opaque-token-value-123", "expires_on": "1"}', "opaque-token-value-123"),
        ("X-IDENTITY-HEADER: header-secret-value", "header-secret-value"),
        # the same mid-line, as an identity endpoint's error text may carry it (issue 20)
        (
            "Invalid request (X-IDENTITY-HEADER: header-secret-value) from 10.0.0.4",
            "header-secret-value",
        ),
        ("headers={'Metadata': 'true'}; IDENTITY_HEADER=header-secret-value", "header-secret"),
        # a SAS signature in a URL
        ("GET https://acct.blob.core.windows.net/c/b?sv=2024&sig=abcDEF123%2Bsecret", "abcDEF123"),
        # a JWT anywhere
        (f"token was {JWT}.", "SIGNATUREsignature_-123"),
    ],
)
def test_redact_covers_the_shapes_sdks_log(line: str, secret: str) -> None:
    assert secret in line
    cleaned = redact(line)
    assert secret not in cleaned
    assert MASK in cleaned


@pytest.mark.parametrize(
    "line, internal",
    [
        ("Could not connect to http://169.254.169.254/metadata/identity", "169.254.169.254"),
        ("GET http://localhost:8081/msi/token?api-version=2019-08-01 failed", "localhost:8081"),
        ("upstream http://10.1.2.3:4000/token answered 500", "10.1.2.3"),
        ("proxy at 192.168.7.1:3128 refused", "192.168.7.1"),
        ("Read timeout on endpoint URL: https://127.0.0.1:35775/bucket/key", "127.0.0.1"),
    ],
)
def test_redact_hides_internal_addresses(line: str, internal: str) -> None:
    cleaned = redact(line)
    assert internal not in cleaned
    assert "[internal address]" in cleaned


def test_redact_hides_the_identity_endpoint_wherever_it_lives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", "http://identity.internal.example:8081/msi/token")
    cleaned = redact("token request to identity.internal.example:8081 answered 503")
    assert "identity.internal.example" not in cleaned


def test_redact_leaves_ordinary_text_alone() -> None:
    line = "GET /mycontainer/hello.txt?comp=list HTTP/1.1 200 (x-ms-request-id: 42)"
    assert redact(line) == line


def test_redacting_filter_works_on_a_handler() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token %s", (JWT,), None)
    assert RedactingFilter().filter(record) is True
    assert JWT not in record.getMessage() and MASK in record.getMessage()
