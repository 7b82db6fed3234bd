"""What `make verify` relies on when pointed at the local cloud: outputs shaped like the stack's,
hosts that let in only callers with an Entra token for the reader API (a function key, which ARM
still lists for the operator only, opens nothing) - and verify itself passing, then failing once
an app loses its app role or STS stops checking the signature of the worthless token verify
sends it (it never sends a live one)."""

from __future__ import annotations

import http.client
import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jwt
import pytest

from components import trust
from localcloud.cloud import REPO, LocalCloud
from localcloud.entra import MANAGEMENT_RESOURCE, STORAGE_RESOURCE, Identity
from localcloud.moto_server import StsRefusal
from localcloud.world import world_from_program
from tests.e2e.test_mutation import trust_policy_without_sub


def arm_post(cloud: LocalCloud, app_name: str, token: str | None) -> tuple[int, dict[str, Any]]:
    world = cloud.world
    path = (
        f"/subscriptions/{world.subscription_id}/resourceGroups/{world.resource_group}"
        f"/providers/Microsoft.Web/sites/{app_name}/host/default/listkeys?api-version=2024-04-01"
    )
    context = ssl.create_default_context(cafile=str(cloud.tls.ca_cert))
    connection = http.client.HTTPSConnection("127.0.0.1", cloud.arm.port, context=context)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        connection.request("POST", path, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def token_for(cloud: LocalCloud, app: str, resource: str) -> str:
    if app == "operator":
        identity = cloud.operator.system_identity
    else:
        plan = cloud.hosts[app].plan.app.identity
        identity = Identity(app, plan.client_id, plan.principal_id)
    assert identity is not None
    return cloud.entra.issue_token(identity, resource)[0]


def test_outputs_are_the_programs_with_local_hosts(cloud: LocalCloud) -> None:
    outputs = cloud.outputs()
    assert outputs.keys() == cloud.world.outputs.keys()
    for kind in ("sami", "uami"):
        assert outputs[f"{kind}FunctionHostname"] == f"127.0.0.1:{cloud.hosts[kind].port}"
    assert outputs["tenantId"] == cloud.entra.tenant_id
    assert outputs["awsRoleArn"] == cloud.world.role_arn


def test_arm_lists_keys_for_the_operator_only(cloud: LocalCloud) -> None:
    sami_site = cloud.world.apps["sami"].name
    status, body = arm_post(cloud, sami_site, token_for(cloud, "operator", MANAGEMENT_RESOURCE))
    assert status == 200
    # The platform still has keys, but they open nothing: the routes want an Entra token.
    for key in (body["functionKeys"]["default"], body["masterKey"]):
        refused = cloud.call("sami", "whoami", token=None, key=key)
        assert (refused.status, refused.body["error"]["code"]) == (401, "unauthenticated")

    status, body = arm_post(cloud, sami_site, token_for(cloud, "sami", MANAGEMENT_RESOURCE))
    assert (status, body["error"]["code"]) == (403, "AuthorizationFailed")
    status, body = arm_post(cloud, sami_site, token_for(cloud, "operator", STORAGE_RESOURCE))
    assert (status, body["error"]["code"]) == (401, "InvalidAuthenticationToken")
    status, body = arm_post(cloud, sami_site, None)
    assert (status, body["error"]["code"]) == (401, "InvalidAuthenticationToken")
    status, body = arm_post(cloud, "no-such-app", token_for(cloud, "operator", MANAGEMENT_RESOURCE))
    assert (status, body["error"]["code"]) == (404, "ResourceNotFound")


def test_hosts_let_in_only_callers_with_an_entra_token(cloud: LocalCloud) -> None:
    assert cloud.call("uami", "whoami", token=None).status == 401
    assert (
        cloud.call("uami", "whoami", token=None, key=cloud.hosts["uami"].keys.default).status == 401
    )
    code = {"code": cloud.hosts["uami"].keys.default}
    assert cloud.call("uami", "whoami", code, token=None).status == 401
    answer = cloud.call("uami", "whoami")
    assert answer.status == 200
    assert answer.body["caller"]["oid"] == cloud.world.deployer.principal_id
    assert cloud.call("uami", "nothing-here").status == 404


def run_verify(cloud: LocalCloud, outputs_file: Path) -> subprocess.CompletedProcess[str]:
    outputs_file.write_text(json.dumps(cloud.outputs()))
    # Only what a shell on an operator's machine would have, plus the local cloud's endpoints.
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(outputs_file.parent)}
    return subprocess.run(
        [sys.executable, "-m", "verify", "--outputs", str(outputs_file)],
        cwd=REPO,
        env={**env, **cloud.verify_environment()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class RecordingGuard:
    """Sits in front of the STS front and keeps the web identity tokens `make verify` sends."""

    def __init__(self, inner: Callable[[Mapping[str, str]], StsRefusal | None]) -> None:
        self.inner = inner
        self.tokens: list[str] = []

    def __call__(self, params: Mapping[str, str]) -> StsRefusal | None:
        if params.get("RoleSessionName") == "crosscloud-verify":
            self.tokens.append(params.get("WebIdentityToken", ""))
        return self.inner(params)


@contextmanager
def sts_guard(cloud: LocalCloud, guard: Callable[[Mapping[str, str]], StsRefusal | None]):
    try:
        cloud.aws.sts_guard = guard
        yield guard
    finally:
        cloud.aws.sts_guard = cloud.verifier


def test_make_verify_passes_then_fails_when_an_app_loses_its_role(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    with sts_guard(cloud, RecordingGuard(cloud.verifier)) as recorder:
        passed = run_verify(cloud, tmp_path / "outputs.json")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "PASS  AWS STS refuses a token with trusted claims signed by a stranger" in passed.stdout

    # What verify sent STS is worthless: trusted claims, but no key of Entra's signs it.
    (sent,) = recorder.tokens
    claims = jwt.decode(sent, options={"verify_signature": False})
    assert claims["iss"] == trust.issuer_url(cloud.world.tenant_id)
    assert claims["aud"] == cloud.world.audience
    assert claims["sub"] in cloud.outputs()["trustedPrincipalIds"]
    assert claims["nbf"] <= time.time() < claims["exp"]
    keys = jwt.PyJWKSet.from_dict(cloud.entra.jwks())
    kid = jwt.get_unverified_header(sent)["kid"]
    assert kid not in [key.key_id for key in keys.keys]
    for key in keys.keys:
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(sent, key.key, algorithms=["RS256"], audience=claims["aud"])
    try:
        cloud.unassign("uami")
        failed = run_verify(cloud, tmp_path / "outputs.json")
    finally:
        cloud.assign("uami")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "FAIL  uami" in failed.stdout
    assert "identity_not_assigned" in failed.stdout
    # The front door checks passed, with the operator's own token and no function key.
    assert "PASS  sami: no token and a token for another audience get 401" in passed.stdout
    assert "PASS  uami: no token and a token for another audience get 401" in passed.stdout


def test_make_verify_fails_when_an_app_lets_anyone_in(cloud: LocalCloud, tmp_path: Path) -> None:
    """An app without its reader API settings would be open: verify names it (the app itself
    answers 500 misconfigured rather than let anyone in)."""
    host = cloud.hosts["sami"]
    saved = dict(host.env)
    try:
        host.env.pop("CROSSCLOUD_CALLER_AUDIENCE")
        cloud.restart_app("sami")
        failed = run_verify(cloud, tmp_path / "outputs.json")
    finally:
        host.env.clear()
        host.env.update(saved)
        cloud.restart_app("sami")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "FAIL  sami: no token and a token for another audience get 401" in failed.stdout
    assert "HTTP 500 misconfigured" in failed.stdout


def test_make_verify_fails_when_the_deployed_trust_policy_drops_sub(
    cloud: LocalCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trust, "trust_policy", trust_policy_without_sub)
    weakened = world_from_program()
    monkeypatch.undo()
    try:
        cloud.update_trust_policy(weakened)
        failed = run_verify(cloud, tmp_path / "outputs.json")
    finally:
        cloud.update_trust_policy(cloud.world)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "FAIL  the IAM trust policy pins aud" in failed.stdout
    assert "no StringEquals on sub" in failed.stdout


@pytest.mark.parametrize("app", ["sami", "uami"])
def test_unassigning_refuses_the_app_and_assigning_restores_it(cloud: LocalCloud, app: str) -> None:
    read = {"name": cloud.world.shared_names()[0]}
    try:
        cloud.unassign(app)
        refused = cloud.call(app, "read", read)
    finally:
        cloud.assign(app)
    assert (refused.status, refused.body["error"]["code"]) == (502, "identity_not_assigned")
    assert cloud.call(app, "read", read).status == 200


def test_make_verify_fails_when_sts_does_not_check_signatures(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    """A provider that takes any well-formed token with trusted claims: moto alone, no front."""
    with sts_guard(cloud, lambda params: None):
        failed = run_verify(cloud, tmp_path / "outputs.json")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "FAIL  AWS STS refuses a token with trusted claims" in failed.stdout
    assert "does not check signatures" in failed.stdout


def test_make_verify_fails_when_sts_refuses_only_on_the_trust_policy(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    """AccessDenied means STS took the signature and only the trust policy said no."""
    denied = StsRefusal(
        "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403
    )

    def refuse_verify_only(params: Mapping[str, str]) -> StsRefusal | None:
        if params.get("RoleSessionName") == "crosscloud-verify":
            return denied
        return cloud.verifier(params)

    with sts_guard(cloud, refuse_verify_only):
        failed = run_verify(cloud, tmp_path / "outputs.json")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "AccessDenied: STS should refuse the signature" in failed.stdout


# ---- verify's own refusals (issue 20): no cloud needed --------------------------------------


class _Refusing:
    """A TokenCredential that fails the way `error` says."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        self.scopes.extend(scopes)
        raise self.error


def test_the_entra_refusal_check_fails_when_it_could_not_run() -> None:
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import CredentialUnavailableError

    from verify.checks import operator_refused_by_entra

    no_sign_in = ClientAuthenticationError(
        "DefaultAzureCredential failed to retrieve a token from the included credentials."
    )
    for error in (no_sign_in, CredentialUnavailableError("Please run 'az login'")):
        check = operator_refused_by_entra(_Refusing(error), "api://tenant/AWS-Federation-App")
        assert not check.passed
        assert "could not run" in check.detail
    mfa = ClientAuthenticationError("AADSTS50076: multi-factor authentication required")
    assert not operator_refused_by_entra(_Refusing(mfa), "api://a").passed

    refused = ClientAuthenticationError("(invalid_scope) 403, AADSTS501051: not assigned")
    check = operator_refused_by_entra(_Refusing(refused), "api://a")
    assert check.passed and check.detail == "AADSTS501051"


def test_verify_refuses_an_http_iam_endpoint_for_the_operators_aws_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from verify.checks import trust_policy_pins_identities

    monkeypatch.setenv("AWS_ENDPOINT_URL_IAM", "http://127.0.0.1:9")  # nothing listens there
    outputs = {"awsRegion": "eu-west-1", "awsRoleArn": "arn:aws:iam::123456789012:role/r"}
    check = trust_policy_pins_identities(outputs, timeout=1)
    assert not check.passed
    assert "must be https" in check.detail
