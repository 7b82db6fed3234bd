"""Deploy a package to a Flex Consumption function app with One Deploy, as a Pulumi resource.

Protocol, as the tools Microsoft ships do it for Flex (zip deploy and WEBSITE_RUN_FROM_PACKAGE
are not supported there, and uploading a blob into the deployment container does not deploy;
docs/design.md "Code deployment"):

- `POST https://{scm host}/api/publish?RemoteBuild=false` with the zip as body,
  `Content-Type: application/zip`, `Accept: application/json` and `Authorization: Bearer <ARM
  token>`; the platform answers 202 with the deployment id as a JSON string (Azure/azure-dev
  `cli/azd/pkg/azsdk/funcapp_host_client.go`). `RemoteBuild=false` is our choice, not the az
  CLI's: for Python the az CLI's `enable_zip_deploy_flex` sends `RemoteBuild=True`
  (`build_remote = build_remote or runtime == 'python'`: Oryx builds on the platform from
  requirements.txt), but shipping/build.py already installs the
  dependencies for the target platform into the package, so a remote build would only redo it
  (and could resolve other versions than the ones tested);
- poll `GET /api/deployments/{that id}` every second ("recommended by the service team", azd),
  honouring `Retry-After`: `status` -1 cancelled, 0 pending, 1 building, 2 deploying, 3 failed,
  4 success, 5 conflict, 6 partial success. A few 404s before the record "comes alive" are
  normal (azd tolerates four);
- a 404 *after* progress was seen means the deployment worker was recycled and the record is gone
  (azd's comment on the same loop; Azure/azure-dev#4439 shows the 404 a user got instead of the
  failure). The outcome is then decided through ARM, below, not by waiting;
- on a first `up`, Flex writes the package into the deployment container with the app's own
  identity; its fresh Storage Blob Data Owner grant may not apply yet, and the deployment fails
  with "Azure Storage responded with Forbidden ... 403" in its log (Azure/azure-dev#4439,
  azure-functions-core-tools#4346). Only that failure is republished with bounded backoff; any
  other failure (another 403 or "forbidden" too) fails at once with the log's last lines;
- success is not status 4 alone: ARM must list the app's functions (`GET {arm}{app id}/functions`,
  what `az functionapp function list` reads) and include every expected one within a bounded
  wait. az CLI's `check_flex_app_after_deployment` waits for the trigger sync, then checks the
  host's health; Core Tools (PR #3404) calls an app "unhealthy" after a success the host did not
  load. A package that imports badly deploys "successfully" and serves nothing.

The ARM token (scope https://management.azure.com/.default) is fetched with azure-identity at
create/update time and never becomes an input, output, log line or exception text: in inputs it
would sit in Pulumi state and force a diff on every run (docs/design.md "Credentials in providers").
The deployer needs Website Contributor (or Contributor) on the app; a fresh assignment takes
minutes to apply, so 401/403 on the publish are retried with bounded backoff before failing with
a message that names the role. Every request has a timeout, every answer is read up to a bound.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.dynamic
import requests
from azure.core.credentials import TokenCredential
from pulumi.runtime import rpc

from shipping.build import file_sha256
from shipping.deployment_reads import (
    BearerToken,
    Reader,
    excerpt,
    read_text,
    retry_after,
)
from shipping.identity import EntraIdentityProvider
from shipping.retry import Backoff, retry

ARM_ENDPOINT = "https://management.azure.com"
WEBSITE_CONTRIBUTOR_ROLE_ID = "de139f84-1756-47ae-9be6-808fbbe84772"
"""Built-in "Website Contributor": enough to publish to the app's SCM site and list functions."""

STATUS_SUCCESS = 4
STATUS_FAILED = 3
# Final states that are not a success: cancelled, failed, conflict, partial success.
_FINAL_FAILURES = {-1: "cancelled", STATUS_FAILED: "failed", 5: "conflict", 6: "partial success"}
_AUTH_REFUSALS = (401, 403)
# 409: another deployment is running; 429/5xx: the SCM site is busy or restarting.
_TRANSIENT = (409, 429, 500, 502, 503, 504)
# The first-deploy failure: Flex could not write the package with the app's identity yet. Its
# log says (azure-functions-core-tools#4346, the failure behind Azure/azure-dev#4439):
#   Failed to upload because Azure Storage responded with Forbidden : Response status code does
#   not indicate success: 403 (This request is not authorized to perform this operation.)..
#   Failed to upload blob package to storage account with Error: Response status code does not
#   indicate success: 403 (This request is not authorized to perform this operation.).
# Only that storage refusal is a grant still propagating. Any other 403 or "forbidden" (a
# package the app refuses, a network rule, shared key access in an error text) is not waited on.
_STORAGE_FORBIDDEN = re.compile(
    r"Azure Storage responded with Forbidden\b"
    r"|upload blob package to storage account\b.*\b403 \(This request is not authorized",
    re.IGNORECASE,
)
# Storage answers 403 KeyBasedAuthenticationNotPermitted when something signs with an account
# key: a configuration fault that no waiting fixes.
_NOT_A_GRANT_RACE = re.compile(r"Key based authentication is not permitted", re.IGNORECASE)

_SHA256 = re.compile(r"[0-9a-f]{64}")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::\d{1,5})?")
_APP_ID = re.compile(
    r"/subscriptions/[0-9A-Za-z-]+/resourceGroups/[-\w.()]+/providers/Microsoft\.Web/sites/"
    r"[0-9A-Za-z-]+",
    re.IGNORECASE,
)
_FUNCTION = re.compile(r"[A-Za-z0-9_-]{1,128}")
_REDEPLOY_ON = ("resource_group", "app_name", "scm_host", "package_sha256")
_REPLACE_ON = ("resource_group", "app_name")  # another app is another deployment (and id)


class OneDeployError(RuntimeError):
    """A deployment did not happen or did not succeed; the message says why."""


class DeploymentFailed(OneDeployError):
    """The platform reported a failed deployment; the message carries its log's last lines."""

    def __init__(self, message: str, *, storage_forbidden: bool = False) -> None:
        super().__init__(message)
        self.storage_forbidden = storage_forbidden
        """The log says Flex's package upload was refused by Storage (403 "not authorized"): the
        app's grant on its deployment container may not apply yet."""


class MissingRole(OneDeployError):
    """The SCM site kept refusing the deployer's token."""


class FunctionsNotIndexed(OneDeployError):
    """The package landed, but ARM does not list every expected function of the app."""


@dataclass(frozen=True)
class OneDeployTimeouts:
    """Every wait of a deployment, in seconds; all bounded."""

    connect: float = 15.0
    upload: float = 600.0
    """Read timeout of the publish request (the platform answers once it has stored the zip)."""
    request: float = 60.0
    poll_interval: float = 1.0
    """Between two reads of the deployment record: azd's interval, recommended by the service."""
    deployment: float = 20 * 60.0
    """How long the platform may take from accepting the zip to a final status."""
    unborn_polls: int = 4
    """404s tolerated before the record first appears (azd: "deployments that take awhile")."""
    functions: float = 180.0
    """How long ARM may take to list every expected function after the deployment."""
    functions_interval: float = 5.0


@dataclass(frozen=True)
class _Deployment:
    """What the SCM site said about our deployment when we stopped polling it."""

    id: str
    recycled: bool = False
    """The record vanished after progress was seen: the outcome is unknown to the SCM site."""
    record: Mapping[str, Any] = field(default_factory=dict)


class _ScmError(Exception):
    """An HTTP answer from the SCM site that a retry may cure."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {excerpt(body)}")
        self.status = status


class OneDeployProvider(EntraIdentityProvider):
    """Dynamic provider behind `FlexDeployment` (credential handling: `EntraIdentityProvider`).

    `propagation` bounds the republishing of a deployment that failed with a storage 403 (the
    app's own fresh grant); `backoff` bounds retrying the publish request itself (the deployer's
    grant, a busy SCM site). `sleep` and `clock` are injectable, so tests do not wait for real.
    """

    def __init__(
        self,
        timeouts: OneDeployTimeouts | None = None,
        backoff: Backoff | None = None,
        credential: TokenCredential | None = None,
        *,
        propagation: Backoff | None = None,
        arm_endpoint: str = ARM_ENDPOINT,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(credential)
        self.timeouts = timeouts or OneDeployTimeouts()
        self.backoff = backoff or Backoff()
        # "A few minutes in all": RBAC data-plane grants usually apply within that.
        self.propagation = propagation or Backoff(
            first_delay=15.0, max_delay=60.0, give_up_after=300.0
        )
        self.arm_endpoint = arm_endpoint.rstrip("/")
        self.sleep = sleep
        self.clock = clock

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.CheckResult:
        failures = []
        sha256 = news.get("package_sha256")
        if _known(sha256) and not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
            failures.append(
                pulumi.dynamic.CheckFailure("package_sha256", "must be 64 lowercase hex digits")
            )
        host = news.get("scm_host")
        # A bare host name: the bearer token must only ever go to https://{that host}.
        if _known(host) and not (isinstance(host, str) and _HOST.fullmatch(host)):
            failures.append(
                pulumi.dynamic.CheckFailure(
                    "scm_host", f"must be a bare host name like app.scm.azurewebsites.net: {host!r}"
                )
            )
        app_id = news.get("app_id")
        # The ARM path the token is sent to: nothing but one site's resource id.
        if _known(app_id) and not (isinstance(app_id, str) and _APP_ID.fullmatch(app_id)):
            failures.append(
                pulumi.dynamic.CheckFailure(
                    "app_id",
                    "must be a function app's resource id "
                    f"(/subscriptions/.../providers/Microsoft.Web/sites/NAME): {app_id!r}",
                )
            )
        functions = news.get("functions")
        if _known(functions) and not (
            isinstance(functions, list)
            and functions
            and all(isinstance(f, str) and _FUNCTION.fullmatch(f) for f in functions)
        ):
            failures.append(
                pulumi.dynamic.CheckFailure(
                    "functions", f"must be a non-empty list of function names: {functions!r}"
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
            token = BearerToken(credential)
            reader = Reader(session, token, (self.timeouts.connect, self.timeouts.request))

            def publish_and_wait() -> _Deployment:
                deployment_id = self._publish(session, token, props, package)
                return self._wait(reader, props, deployment_id)

            deployment = retry(
                publish_and_wait,
                retry_if=lambda e: isinstance(e, DeploymentFailed) and e.storage_forbidden,
                give_up=lambda e: DeploymentFailed(
                    f"{e}\nThe deployment kept failing with a storage 403 for "
                    f"{self.propagation.give_up_after:g}s of republishing. Flex writes the "
                    f"package with the app's own identity: {props['app_name']} needs 'Storage "
                    "Blob Data Owner' on its host storage account (its deployment container); "
                    "check that assignment, then run `pulumi up` again."
                ),
                backoff=self.propagation,
                sleep=self.sleep,
                clock=self.clock,
            )
            self._confirm_functions(reader, props, deployment)
        return {
            "resource_group": props["resource_group"],
            "app_name": props["app_name"],
            "app_id": props["app_id"],
            "scm_host": props["scm_host"],
            "functions": list(props["functions"]),
            "package_path": str(package),
            "package_sha256": actual,
            "deployment_id": deployment.id,
        }

    def _publish(
        self,
        session: requests.Session,
        token: BearerToken,
        props: Mapping[str, Any],
        package: Path,
    ) -> str:
        """POST the zip, retrying refusals and busy answers; the deployment id."""
        url = f"https://{props['scm_host']}/api/publish"

        def attempt() -> str:
            with (
                package.open("rb") as body,
                session.post(
                    url,
                    params={"RemoteBuild": "false"},
                    data=body,
                    headers={
                        **token.headers(),
                        "Content-Type": "application/zip",
                        "Accept": "application/json",
                    },
                    timeout=(self.timeouts.connect, self.timeouts.upload),
                    stream=True,
                ) as response,
            ):
                text = read_text(response)
            if response.status_code in _AUTH_REFUSALS or response.status_code in _TRANSIENT:
                raise _ScmError(response.status_code, text)
            if not response.ok:
                raise OneDeployError(
                    f"One Deploy to {props['app_name']} was refused: "
                    f"HTTP {response.status_code}: {excerpt(text)}"
                )
            deployment_id = _deployment_id(text)
            if not deployment_id:
                # Without the id there is nothing to follow (azd: "missing deployment id").
                raise OneDeployError(
                    f"{url} accepted the package (HTTP {response.status_code}) but answered no "
                    f"deployment id: {excerpt(text)}"
                )
            return deployment_id

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
            sleep=self.sleep,
            clock=self.clock,
        )

    def _wait(self, reader: Reader, props: Mapping[str, Any], deployment_id: str) -> _Deployment:
        """Poll /api/deployments/{id} until final or recycled; raise on a failed deployment."""
        base = f"https://{props['scm_host']}"
        url = f"{base}/api/deployments/{deployment_id}"
        deadline = self.clock() + self.timeouts.deployment
        last_seen, record = "no answer yet", None
        not_found = 0
        while True:
            delay = self.timeouts.poll_interval
            try:
                response, text = reader.get(url)
                delay = retry_after(response, delay)
                if response.status_code == 404:
                    if record is not None:
                        # The worker was recycled and took the record with it (azd).
                        return _Deployment(deployment_id, recycled=True, record=record)
                    not_found += 1
                    if not_found > self.timeouts.unborn_polls:
                        raise OneDeployError(
                            f"One Deploy of {props['app_name']}: the SCM site accepted the "
                            f"package but never showed deployment {deployment_id} ({url} "
                            f"answered 404 {not_found} times)"
                        )
                    last_seen = "404: the record has not appeared yet"
                elif response.status_code in (200, 202):
                    answer = json.loads(text)
                    if not isinstance(answer, dict):
                        raise ValueError("the deployment record is not a JSON object")
                    record = answer
                    status = record.get("status")
                    last_seen = f"status {status} {record.get('status_text') or ''}".strip()
                    if status == STATUS_SUCCESS:
                        return _Deployment(deployment_id, record=record)
                    if status in _FINAL_FAILURES:
                        raise self._failure(reader, base, props, record, status)
                else:
                    # 5xx while the site restarts, 429, a refusal while roles flap: the
                    # deadline bounds it.
                    last_seen = f"HTTP {response.status_code}: {excerpt(text)}"
            except (requests.RequestException, ValueError) as error:
                last_seen = f"{type(error).__name__}: {excerpt(str(error))}"
            if self.clock() >= deadline:
                raise OneDeployError(
                    f"One Deploy of {props['app_name']} did not finish within "
                    f"{self.timeouts.deployment:g}s (last seen: {last_seen}); see {url}"
                )
            self.sleep(delay)

    def _failure(
        self,
        reader: Reader,
        base: str,
        props: Mapping[str, Any],
        record: Mapping[str, Any],
        status: int,
    ) -> DeploymentFailed:
        lines = reader.log_lines(base, record)
        status_text = str(record.get("status_text") or "no status text")
        forbidden = status == STATUS_FAILED and storage_grant_race((status_text, *lines))
        return DeploymentFailed(
            f"One Deploy of {props['app_name']} {_FINAL_FAILURES[status]} "
            f"(status {status}: {excerpt(status_text)}). Deployment log, last lines:\n"
            + "\n".join(f"  {line}" for line in lines),
            storage_forbidden=forbidden,
        )

    def _confirm_functions(
        self, reader: Reader, props: Mapping[str, Any], deployment: _Deployment
    ) -> None:
        """Wait until ARM lists every expected function of the app; raise if it never does.

        After a recycled worker this is the only evidence left. It proves the app serves every
        expected function, not which package it runs: a redeploy that failed unseen behind a
        recycle, to an app already serving the same functions, passes. azd, in the same spot,
        takes the last status it saw for the outcome.
        """
        expected = sorted(props["functions"])
        url = f"{self.arm_endpoint}{props['app_id']}/functions"
        deadline = self.clock() + self.timeouts.functions
        listed: set[str] = set()
        last_error = ""
        while True:
            try:
                listed = reader.functions(url, self.arm_endpoint)
                last_error = ""
                if set(expected) <= listed:
                    return
            except (requests.RequestException, ValueError) as error:
                last_error = f" (last ARM answer: {excerpt(str(error))})"
            if self.clock() >= deadline:
                break
            self.sleep(self.timeouts.functions_interval)
        base = f"https://{props['scm_host']}"
        if deployment.recycled:
            outcome = (
                f"The SCM site lost deployment {deployment.id} after it was seen at status "
                f"{deployment.record.get('status')} (its worker was recycled), so its log is gone."
            )
            lines: list[str] = []
        else:
            outcome = f"Deployment {deployment.id} reported success (status 4)."
            lines = reader.log_lines(base, deployment.record)
        raise FunctionsNotIndexed(
            f"{outcome} After {self.timeouts.functions:g}s ARM lists "
            f"{sorted(listed) or 'no functions'} for {props['app_name']}, expected "
            f"{expected}{last_error}. The package did not load: check the app's logs "
            "(Application Insights traces or the Log stream) for an import error in "
            "function_app.py or a missing dependency under .python_packages, that the package "
            "was built for the app's Python version, and that the app's identity holds "
            "'Storage Blob Data Owner' on its host storage account."
            + (
                "\nDeployment log, last lines:\n" + "\n".join(f"  {x}" for x in lines)
                if lines
                else ""
            )
        )


def storage_grant_race(log: Sequence[str]) -> bool:
    """Whether a failed deployment's log shows Storage refusing Flex's package upload (the app's
    fresh grant not applied yet), and nothing that no waiting fixes."""
    return any(_STORAGE_FORBIDDEN.search(line) for line in log) and not any(
        _NOT_A_GRANT_RACE.search(line) for line in log
    )


def _known(value: Any) -> bool:
    """False for a value Pulumi does not know yet (a preview before the app exists)."""
    return value is not None and value != rpc.UNKNOWN


def _deployment_id(body: str) -> str:
    """The id /api/publish answers with: a JSON string, or plain text from some front-ends."""
    try:
        value = json.loads(body)
    except ValueError:
        value = body
    value = value.strip() if isinstance(value, str) else ""
    # It becomes a URL path segment: nothing that could leave /api/deployments/.
    return value if re.fullmatch(r"[A-Za-z0-9._-]{1,128}", value) else ""


def scm_host(host_name_ssl_states: Sequence[Any]) -> str:
    """The SCM (Kudu) host name of an app: its `host_name_ssl_states` entry of type Repository.

    Apps may get unique default host names, so `{name}.scm.azurewebsites.net` is not always
    right (docs/design.md "SCM host for One Deploy"); azd's `functionAppRepositoryHost` reads the
    same entry (Azure/azure-dev `cli/azd/pkg/azapi/function_app.go`).

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
    app_id: pulumi.Input[str]
    """The app's ARM resource id: where the deployment is confirmed (its functions listing)."""
    scm_host: pulumi.Input[str]
    """From `scm_host(app.host_name_ssl_states)`."""
    functions: pulumi.Input[Sequence[str]]
    """Functions (names or HTTP routes) the app must list after the deployment."""
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
            "app_id": args.app_id,
            "scm_host": args.scm_host,
            "functions": args.functions,
            "package_path": (
                str(args.package_path) if isinstance(args.package_path, Path) else args.package_path
            ),
            "package_sha256": args.package_sha256,
            "deployment_id": None,  # an output: declared so the attribute exists
        }
        super().__init__(provider or OneDeployProvider(), resource_name, props, opts)
