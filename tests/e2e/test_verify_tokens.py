"""`make verify`'s token requests, without a cloud: each is bounded by the timeout, and a failed
one fails its own check with a message saying what to do instead of crashing the run."""

from __future__ import annotations

import json
import stat
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from components.reader_api import AZURE_CLI_CLIENT_ID
from verify.__main__ import operator_credential
from verify.checks import (
    VerifyError,
    caller_token,
    front_door_refuses,
    operator_refused_by_entra,
    read_both_clouds,
)

AUDIENCE = "api://00000000-0000-4000-8000-000000000001/crosscloud-dev-reader-api"
OUTPUTS = {"callerAudience": AUDIENCE, "samiFunctionHostname": "127.0.0.1:9"}
SAMPLE = ("hello.txt", "0" * 64, "0" * 64)
CONSENT = (
    "DefaultAzureCredential failed to retrieve a token from the included credentials.\n"
    "AzurePowerShellCredential: AADSTS65001: The user or administrator has not consented to use "
    "the application with ID '1950a258-227b-4e31-a9cf-717495945fc2' named 'Microsoft Azure "
    "PowerShell'. Send an interactive authorization request for this user and resource."
)


class Refusing:
    """A credential that raises `error` for every scope, and records what it was asked."""

    def __init__(self, error: AzureError) -> None:
        self.error = error
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.extend(scopes)
        raise self.error


NOT_REACHED = [
    ServiceRequestError("Connection timed out"),
    ServiceResponseError("Connection reset by peer"),
    HttpResponseError("(500) Internal Server Error"),
]


@pytest.mark.parametrize("error", NOT_REACHED, ids=lambda e: type(e).__name__)
def test_no_answer_from_entra_fails_each_check_without_crashing(error: AzureError) -> None:
    credential = Refusing(error)
    checks = [
        read_both_clouds(credential, OUTPUTS, "sami", SAMPLE, 1.0),
        front_door_refuses(credential, OUTPUTS, "sami", 1.0),
        operator_refused_by_entra(credential, "api://AWS-Federation-App"),
    ]
    for check in checks:
        assert not check.passed, check
        assert type(error).__name__ in check.detail and "could not get a token" in check.detail


def test_consent_asked_for_says_sign_in_with_the_azure_cli() -> None:
    with pytest.raises(VerifyError) as raised:
        caller_token(Refusing(ClientAuthenticationError(CONSENT)), OUTPUTS)
    message = str(raised.value)
    assert "AADSTS65001" in message and "`az login`" in message
    assert AZURE_CLI_CLIENT_ID in message and AUDIENCE in message
    # Adding the operator as a caller would not help: the client, not the caller, lacks consent.
    assert "callerPrincipalIds" not in message


@pytest.mark.parametrize("code", ["AADSTS50105", "AADSTS501051"])
def test_not_assigned_says_to_add_the_object_id(code: str) -> None:
    error = ClientAuthenticationError(f"{code}: The signed in user is not assigned to a role")
    with pytest.raises(VerifyError, match="crosscloud:callerPrincipalIds"):
        caller_token(Refusing(error), OUTPUTS)


def test_no_sign_in_says_az_login() -> None:
    error = ClientAuthenticationError("AzureCliCredential: Please run 'az login' to set up account")
    with pytest.raises(VerifyError, match="sign in with `az login`"):
        caller_token(Refusing(error), OUTPUTS)


def test_entra_refusing_the_operator_passes_only_with_entra_s_code() -> None:
    refused = ClientAuthenticationError("AADSTS501051: Application 'x' is not assigned to a role")
    check = operator_refused_by_entra(Refusing(refused), "api://AWS-Federation-App")
    assert check.passed and check.detail == "AADSTS501051"
    # No sign-in at all is no refusal by Entra: the check cannot tell, so it fails.
    unsigned = ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")
    assert not operator_refused_by_entra(Refusing(unsigned), "api://AWS-Federation-App").passed


def fake_az(directory: Path, delay: float) -> None:
    """An `az` that answers `account get-access-token` after `delay` seconds (one process, so
    killing it on timeout closes its output at once)."""
    answer = {"accessToken": "fake-token", "expires_on": int(time.time()) + 3600}
    script = directory / "az"
    script.write_text(
        f"#!{sys.executable}\nimport time\ntime.sleep({delay})\nprint({json.dumps(answer)!r})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_the_azure_cli_is_given_the_verify_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "AzureCliCredential")  # that credential only
    fake_az(tmp_path, delay=0)
    assert caller_token(operator_credential(1.0), OUTPUTS) == "fake-token"
    # azure-identity's own default would wait 10 s for this one; verify's timeout is 1 s.
    fake_az(tmp_path, delay=5)
    with pytest.raises(VerifyError, match="no token for the reader API"):
        caller_token(operator_credential(1.0), OUTPUTS)
