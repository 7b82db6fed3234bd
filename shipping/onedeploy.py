"""Deploy a package to a Flex Consumption function app with One Deploy, as a Pulumi resource.

Protocol (what `az functionapp deployment source config-zip` and Core Tools do for Flex; zip
deploy and WEBSITE_RUN_FROM_PACKAGE are not supported there, and uploading a blob into the
deployment container does not deploy; DESIGN.md "code deployment"):

- `POST https://{scm host}/api/publish?RemoteBuild=false` with the zip as body,
  `Content-Type: application/zip` and `Authorization: Bearer <ARM token>`; the answer's body is
  the deployment id (https://github.com/Azure/azure-dev/issues/3658);
- poll `GET https://{scm host}/api/deployments/latest` until its `status` is final:
  -1 cancelled, 0 pending, 1 building, 2 deploying, 3 failed, 4 success, 5 conflict,
  6 partial success (same issue). On failure, `log_url` (or `/api/deployments/{id}/log`) lists
  the entries, each with a `message` and maybe a `details_url` with more lines.

The ARM token (scope https://management.azure.com/.default) is fetched with azure-identity at
create/update time and never becomes an input or output: in inputs it would sit in Pulumi state
and force a diff on every run (DESIGN.md "credentials in providers"). The deployer needs Website
Contributor (or Contributor) on the app; a fresh assignment takes minutes to apply, so 401/403
are retried with bounded backoff before failing with a message that names the role.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi.dynamic
import requests
from azure.core.credentials import AccessToken, TokenCredential
from pulumi.runtime import rpc

from shipping.build import file_sha256
from shipping.identity import EntraIdentityProvider
from shipping.retry import Backoff, retry

ARM_SCOPE = "https://management.azure.com/.default"
WEBSITE_CONTRIBUTOR_ROLE_ID = "de139f84-1756-47ae-9be6-808fbbe84772"
"""Built-in "Website Contributor": enough to publish to the app's SCM site."""

STATUS_SUCCESS = 4
STATUS_FAILED = 3
# Final states that are not a success: cancelled, failed, conflict, partial success.
_FINAL_FAILURES = {-1: "cancelled", STATUS_FAILED: "failed", 5: "conflict", 6: "partial success"}
_AUTH_REFUSALS = (401, 403)
# 409: another deployment is running; 429/5xx: the SCM site is busy or restarting.
_TRANSIENT = (409, 429, 500, 502, 503, 504)
_TOKEN_REFRESH_MARGIN = 300  # seconds before expiry at which a cached token is renewed
_MAX_LOG_LINES = 60

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::\d{1,5})?$")
_REDEPLOY_ON = ("resource_group", "app_name", "scm_host", "package_sha256")
_REPLACE_ON = ("resource_group", "app_name")  # another app is another deployment (and id)


class OneDeployError(RuntimeError):
    """A deployment did not happen or did not succeed; the message says why."""


class DeploymentFailed(OneDeployError):
    """The platform reported a failed deployment; the message carries its log lines."""


class MissingRole(OneDeployError):
    """The SCM site kept refusing the deployer's token."""


@dataclass(frozen=True)
class OneDeployTimeouts:
    """Every wait of a deployment, in seconds; all bounded."""

    connect: float = 15.0
    upload: float = 600.0
    """Read timeout of the publish request (the platform answers once it has stored the zip)."""
    request: float = 60.0
    poll_interval: float = 5.0
    deployment: float = 20 * 60.0
    """How long the platform may take from accepting the zip to a final status."""


class _ScmError(Exception):
    """An HTTP answer from the SCM site that a retry may cure."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {_excerpt(body)}")
        self.status = status


class _BearerToken:
    """An ARM token fetched on first use and renewed shortly before it expires."""

    def __init__(self, credential: TokenCredential) -> None:
        self._credential = credential
        self._token: AccessToken | None = None

    def headers(self) -> dict[str, str]:
        if self._token is None or self._token.expires_on - time.time() < _TOKEN_REFRESH_MARGIN:
            self._token = self._credential.get_token(ARM_SCOPE)
        return {"Authorization": f"Bearer {self._token.token}"}


class OneDeployProvider(EntraIdentityProvider):
    """Dynamic provider behind `FlexDeployment` (credential handling: `EntraIdentityProvider`)."""

    def __init__(
        self,
        timeouts: OneDeployTimeouts | None = None,
        backoff: Backoff | None = None,
        credential: TokenCredential | None = None,
    ) -> None:
        super().__init__(credential)
        self.timeouts = timeouts or OneDeployTimeouts()
        self.backoff = backoff or Backoff()

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.CheckResult:
        failures = []
        sha256 = news.get("package_sha256")
        if _known(sha256) and not (isinstance(sha256, str) and _SHA256.match(sha256)):
            failures.append(
                pulumi.dynamic.CheckFailure("package_sha256", "must be 64 lowercase hex digits")
            )
        host = news.get("scm_host")
        # A bare host name: the bearer token must only ever go to https://{that host}.
        if _known(host) and not (isinstance(host, str) and _HOST.match(host)):
            failures.append(
                pulumi.dynamic.CheckFailure(
                    "scm_host", f"must be a bare host name like app.scm.azurewebsites.net: {host!r}"
                )
            )
        for key in ("resource_group", "app_name", "package_path"):
            if _known(news.get(key)) and not news.get(key):
                failures.append(pulumi.dynamic.CheckFailure(key, "must not be empty"))
        return pulumi.dynamic.CheckResult(news, failures)

    def diff(
        self, _id: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.DiffResult:
        # Only what decides which bytes go where: not the package's path on this machine, and
        # never anything about the token (it is not an input at all).
        changed = [key for key in _REDEPLOY_ON if olds.get(key) != news.get(key)]
        return pulumi.dynamic.DiffResult(
            changes=bool(changed),
            replaces=[key for key in _REPLACE_ON if key in changed],
            stables=[],
            delete_before_replace=False,
        )

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        outs = self._deploy(props)
        return pulumi.dynamic.CreateResult(f"{props['resource_group']}/{props['app_name']}", outs)

    def update(
        self, _id: str, _olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.UpdateResult:
        return pulumi.dynamic.UpdateResult(self._deploy(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to undo: One Deploy has no "undeploy".

        The code stays until the app is deleted (its own resource) or another package lands.
        """

    def _deploy(self, props: Mapping[str, Any]) -> dict[str, Any]:
        package = Path(props["package_path"])
        actual = file_sha256(package)
        if actual != props["package_sha256"]:
            raise OneDeployError(
                f"{package} changed after the program hashed it ({actual} != "
                f"{props['package_sha256']}); run the deployment again"
            )
        with self.signed_in() as credential, requests.Session() as session:
            token = _BearerToken(credential)
            deployment_id = self._publish(session, token, props, package)
            self._wait(session, token, props, deployment_id)
        return {
            "resource_group": props["resource_group"],
            "app_name": props["app_name"],
            "scm_host": props["scm_host"],
            "package_path": str(package),
            "package_sha256": actual,
            "deployment_id": deployment_id,
        }

    def _publish(
        self,
        session: requests.Session,
        token: _BearerToken,
        props: Mapping[str, Any],
        package: Path,
    ) -> str:
        """POST the zip, retrying refusals and busy answers; the deployment id ('' if none)."""
        url = f"https://{props['scm_host']}/api/publish"

        def attempt() -> str:
            with package.open("rb") as body:
                response = session.post(
                    url,
                    params={"RemoteBuild": "false"},
                    data=body,
                    headers={**token.headers(), "Content-Type": "application/zip"},
                    timeout=(self.timeouts.connect, self.timeouts.upload),
                )
            if response.status_code in _AUTH_REFUSALS or response.status_code in _TRANSIENT:
                raise _ScmError(response.status_code, response.text)
            if not response.ok:
                raise OneDeployError(
                    f"One Deploy to {props['app_name']} was refused: "
                    f"HTTP {response.status_code}: {_excerpt(response.text)}"
                )
            return _deployment_id(response.text)

        def give_up(error: Exception) -> Exception:
            waited = f"after retrying for {self.backoff.give_up_after:g}s"
            if isinstance(error, _ScmError) and error.status in _AUTH_REFUSALS:
                return MissingRole(
                    f"{props['scm_host']} refused to deploy to {props['app_name']} {waited} "
                    f"({error}). The deploying principal needs 'Website Contributor' (role "
                    f"{WEBSITE_CONTRIBUTOR_ROLE_ID}) or 'Contributor' on the function app "
                    f"{props['app_name']} in resource group {props['resource_group']}; a new "
                    "assignment can take several minutes to apply."
                )
            return OneDeployError(f"{url} kept failing {waited}: {error}")

        return retry(
            attempt,
            # Re-sending the same package after a dropped connection or timeout is harmless.
            retry_if=lambda e: isinstance(
                e, (_ScmError, requests.ConnectionError, requests.Timeout)
            ),
            give_up=give_up,
            backoff=self.backoff,
        )

    def _wait(
        self,
        session: requests.Session,
        token: _BearerToken,
        props: Mapping[str, Any],
        deployment_id: str,
    ) -> None:
        """Poll /api/deployments/latest until our deployment is final; raise unless success."""
        base = f"https://{props['scm_host']}"
        deadline = time.monotonic() + self.timeouts.deployment
        last_seen = "no answer yet"
        while True:
            try:
                response = session.get(
                    f"{base}/api/deployments/latest",
                    headers=token.headers(),
                    timeout=(self.timeouts.connect, self.timeouts.request),
                )
                # Anything but a 200 (404 before the first record, 5xx while the site restarts)
                # is "not known yet"; the deadline bounds it.
                latest = response.json() if response.status_code == 200 else None
                if latest is None:
                    last_seen = f"HTTP {response.status_code}: {_excerpt(response.text)}"
            except (requests.RequestException, ValueError) as error:
                latest, last_seen = None, f"{type(error).__name__}: {error}"
            if isinstance(latest, dict) and _is_ours(latest, deployment_id):
                status = latest.get("status")
                last_seen = f"status {status} {latest.get('status_text') or ''}".strip()
                if status == STATUS_SUCCESS:
                    return
                if status in _FINAL_FAILURES:
                    lines = self._log_lines(session, token, base, latest)
                    raise DeploymentFailed(
                        f"One Deploy of {props['app_name']} {_FINAL_FAILURES[status]} "
                        f"(status {status}: {latest.get('status_text') or 'no status text'}). "
                        "Deployment log:\n" + "\n".join(f"  {line}" for line in lines)
                    )
            elif isinstance(latest, dict):
                last_seen = f"latest is still the previous deployment {latest.get('id')}"
            if time.monotonic() >= deadline:
                raise OneDeployError(
                    f"One Deploy of {props['app_name']} did not finish within "
                    f"{self.timeouts.deployment:g}s (last seen: {last_seen}); "
                    f"see {base}/api/deployments/latest"
                )
            time.sleep(self.timeouts.poll_interval)

    def _log_lines(
        self,
        session: requests.Session,
        token: _BearerToken,
        base: str,
        deployment: Mapping[str, Any],
    ) -> list[str]:
        """The deployment's log messages, with their details; best effort, bounded."""
        log_url = deployment.get("log_url")
        if not _same_site(log_url, base):
            log_url = f"{base}/api/deployments/{deployment.get('id')}/log"
        lines: list[str] = []
        try:
            for entry in self._get_list(session, token, log_url):
                lines.append(_log_line(entry))
                details_url = entry.get("details_url")
                if _same_site(details_url, base):
                    lines.extend(
                        "  " + _log_line(detail)
                        for detail in self._get_list(session, token, details_url)
                    )
        except (requests.RequestException, ValueError) as error:
            lines.append(f"(could not read the deployment log at {log_url}: {error})")
        if len(lines) > _MAX_LOG_LINES:
            lines = ["...", *lines[-_MAX_LOG_LINES:]]
        return lines or ["(the deployment log is empty)"]

    def _get_list(
        self, session: requests.Session, token: _BearerToken, url: str
    ) -> list[dict[str, Any]]:
        response = session.get(
            url, headers=token.headers(), timeout=(self.timeouts.connect, self.timeouts.request)
        )
        response.raise_for_status()
        entries = response.json()
        return [entry for entry in entries if isinstance(entry, dict)]


def _known(value: Any) -> bool:
    """False for a value Pulumi does not know yet (a preview before the app exists)."""
    return value is not None and value != rpc.UNKNOWN


def _excerpt(text: str, limit: int = 500) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _deployment_id(body: str) -> str:
    """The id /api/publish answers with: a JSON string, or plain text from some front-ends."""
    try:
        value = json.loads(body)
    except ValueError:
        value = body
    return value.strip() if isinstance(value, str) else ""


def _is_ours(latest: Mapping[str, Any], deployment_id: str) -> bool:
    """Whether /api/deployments/latest already describes the deployment we started.

    Right after the publish, `latest` can still be the previous deployment (a final state that
    is not ours); when the publish answered with an id, only the record with that id counts.
    """
    their_id = str(latest.get("id") or "").strip().lower()
    return not deployment_id or not their_id or their_id == deployment_id.lower()


def _same_site(url: Any, base: str) -> bool:
    """Only URLs on the app's own SCM site get the bearer token."""
    return isinstance(url, str) and url.startswith(base + "/")


def _log_line(entry: Mapping[str, Any]) -> str:
    return f"{entry.get('log_time') or ''} {entry.get('message') or ''}".strip()


def scm_host(host_name_ssl_states: Sequence[Any]) -> str:
    """The SCM (Kudu) host name of an app: its `host_name_ssl_states` entry of type Repository.

    Apps may get unique default host names, so `{name}.scm.azurewebsites.net` is not always
    right (DESIGN.md "SCM host for One Deploy"); azd's `functionAppRepositoryHost` reads the same
    entry (Azure/azure-dev `cli/azd/pkg/azapi/function_app.go`).

    The SDK hands `HostNameSslStateResponse` objects: a dict subclass whose item access by the
    wire name (`["hostType"]`, `.get("hostType")`) logs "Key 'hostType' not found in
    HostNameSslStateResponse" on every preview and up; its typed getter `.host_type` does not.
    Plain dicts (camelCase or snake_case keys) are accepted too, for callers outside the SDK.
    """
    for state in host_name_ssl_states or ():
        if type(state) is dict:
            host_type = state.get("hostType") or state.get("host_type")
            name = state.get("name")
        else:
            host_type, name = getattr(state, "host_type", None), getattr(state, "name", None)
        if str(host_type).lower() == "repository" and name:
            return str(name)
    raise OneDeployError("the app has no host name of type Repository (its SCM site)")


@dataclass
class FlexDeploymentArgs:
    """Inputs of a `FlexDeployment`: which app, where its SCM site is, and which package."""

    resource_group: pulumi.Input[str]
    app_name: pulumi.Input[str]
    scm_host: pulumi.Input[str]
    """From `scm_host(app.host_name_ssl_states)`."""
    package_path: pulumi.Input[str] | Path
    package_sha256: pulumi.Input[str]
    """From `shipping.build.build_package`: the deployment is redone only when this changes."""


class FlexDeployment(pulumi.dynamic.Resource, module="crosscloud", name="FlexDeployment"):
    """The package deployed to one Flex Consumption app by One Deploy.

    Type token: `pulumi-python:dynamic/crosscloud:FlexDeployment`. Give it `depends_on` the app
    and the deployer's role assignment on it, so the first run does not start before they exist.
    """

    resource_group: pulumi.Output[str]
    app_name: pulumi.Output[str]
    scm_host: pulumi.Output[str]
    package_sha256: pulumi.Output[str]
    deployment_id: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        args: FlexDeploymentArgs,
        opts: pulumi.ResourceOptions | None = None,
        provider: OneDeployProvider | None = None,
    ) -> None:
        props = {
            "resource_group": args.resource_group,
            "app_name": args.app_name,
            "scm_host": args.scm_host,
            "package_path": (
                str(args.package_path) if isinstance(args.package_path, Path) else args.package_path
            ),
            "package_sha256": args.package_sha256,
            "deployment_id": None,  # an output: declared so the attribute exists
        }
        super().__init__(provider or OneDeployProvider(), resource_name, props, opts)
