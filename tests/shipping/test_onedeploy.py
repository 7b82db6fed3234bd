"""The One Deploy provider against the local cloud's fake SCM site and fake ARM, over HTTPS.

The fake SCM site (`localcloud/scm.py`) speaks the protocol azd and Core Tools use for Flex and
can misbehave as the real one does (a recycled worker, the first-deploy storage 403, a failed
deployment, an app that indexes too few functions); the fake ARM (`localcloud/arm.py`) lists the
functions the app indexed. Both check real RS256 tokens of a fake Entra tenant. Provider methods
are called directly, as the Pulumi engine would; the provider reaches the fakes as
`https://127.0.0.1:{port}`, trusting the test CA through REQUESTS_CA_BUNDLE, so no test-only
code path exists in the provider. Waits are injected (`sleep`), so no test sleeps for real.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import json
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dill
import pytest
import requests
import urllib3
from azure.core.credentials import AccessToken
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc
from pulumi_azure_native.web.outputs import HostNameSslStateResponse

from components.function_app import FUNCTION_ROUTES
from localcloud.arm import FakeArm, SiteKeys
from localcloud.certs import TlsFiles
from localcloud.entra import FakeEntra, Identity
from localcloud.mocked_program import run_program
from localcloud.scm import OUR_FUNCTIONS, STORAGE_FORBIDDEN_LOG, FakeScm, ScmScript
from shipping.deployment_reads import ARM_SCOPE, read_text
from shipping.onedeploy import (
    DeploymentFailed,
    FunctionsNotIndexed,
    MissingRole,
    OneDeployError,
    OneDeployProvider,
    OneDeployTimeouts,
    scm_host,
    storage_grant_race,
)
from shipping.retry import Backoff

SUBSCRIPTION = "00000000-0000-4000-8000-000000000001"
GROUP = "rg-crosscloud"
APP = "crosscloud-sami"
APP_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}/providers/Microsoft.Web/sites/{APP}"


class EntraCredential:
    """A TokenCredential for one identity of the fake tenant; records the scopes asked for."""

    def __init__(self, entra: FakeEntra, identity: Identity) -> None:
        self.entra, self.identity = entra, identity
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        token, expires_on = self.entra.issue_token(self.identity, scopes[0])
        return AccessToken(token, expires_on)


@dataclass
class Cloud:
    entra: FakeEntra
    arm: FakeArm
    scm: FakeScm
    deployer: Identity
    sleeps: list[float] = field(default_factory=list)
    now: float = 0.0
    """The provider's clock: it only moves when the provider sleeps."""

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now

    @property
    def script(self) -> ScmScript:
        return self.scm.script

    def provider(self, identity: Identity | None = None, **overrides: Any) -> OneDeployProvider:
        """A provider signed in as `identity` (the deployer), with short, recorded waits."""
        settings: dict[str, Any] = {
            "timeouts": FAST,
            "backoff": QUICK_BACKOFF,
            "arm_endpoint": self.arm.base_url,
            "sleep": self.sleep,
            "clock": self.clock,
            **overrides,
        }
        credential = EntraCredential(self.entra, identity or self.deployer)
        return OneDeployProvider(credential=credential, **settings)

    def inputs(self, package: tuple[Path, str]) -> dict[str, Any]:
        return {
            "resource_group": GROUP,
            "app_name": APP,
            "app_id": APP_ID,
            "scm_host": self.scm.host,
            "functions": list(FUNCTION_ROUTES),
            "package_path": str(package[0]),
            "package_sha256": package[1],
        }

    def polls(self) -> list[str]:
        return [r.path for r in self.scm.requests() if r.method == "GET"]

    def publishes(self) -> int:
        return sum(1 for r in self.scm.requests() if r.method == "POST")

    def functions_listings(self) -> int:
        return sum(1 for c in self.arm.calls() if c.path.endswith("/functions"))


# Real-sized waits on a fake clock, except the socket timeouts (loopback answers at once).
FAST = OneDeployTimeouts(connect=2, upload=5, request=2)
QUICK_BACKOFF = Backoff(first_delay=5, max_delay=60, give_up_after=120)


@pytest.fixture
def cloud(tls: TlsFiles, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_cert))
    entra = FakeEntra()  # only signs tokens here; its endpoints are not needed
    deployer = entra.new_identity("deployer")
    arm = FakeArm(
        tls,
        jwks=entra.jwks(),
        issuer=entra.issuer,
        subscription_id=SUBSCRIPTION,
        resource_group=GROUP,
        sites={APP: SiteKeys(master="m", default="d")},
        operators={deployer.principal_id},
    )
    with arm:
        scm = FakeScm(
            tls,
            arm=arm,
            site=APP,
            jwks=entra.jwks(),
            issuer=entra.issuer,
            deployers={deployer.principal_id},
        )
        with scm:
            yield Cloud(entra, arm, scm, deployer)


@pytest.fixture
def package(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "app.zip"
    path.write_bytes(b"PK\x05\x06" + b"\x00" * 18)  # an empty zip is enough for the fake
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_create_publishes_polls_its_own_record_and_confirms_through_arm(
    cloud: Cloud, package: tuple[Path, str]
) -> None:
    deployer = cloud.provider()
    result = deployer.create(cloud.inputs(package))

    publish, *polls = cloud.scm.requests()
    assert publish.method == "POST" and publish.path == "/api/publish"
    assert publish.query == {"RemoteBuild": ["false"]}
    assert publish.content_type == "application/zip" and publish.accept == "application/json"
    assert publish.principal_id == cloud.deployer.principal_id
    assert publish.body_sha256 == package[1]
    deployment_id = result.outs["deployment_id"]
    # The record the publish answered, not `latest`: 2 in progress, then the final one.
    assert [p.path for p in polls] == [f"/api/deployments/{deployment_id}"] * 3
    assert cloud.sleeps == [1.0, 1.0]  # every second between polls, as azd does
    assert 1 <= OneDeployTimeouts().poll_interval <= 2
    assert cloud.functions_listings() == 1
    assert deployer._credential.scopes == [(ARM_SCOPE,)]  # one token for SCM and ARM
    assert result.id == f"{GROUP}/{APP}"
    assert result.outs["package_sha256"] == package[1]
    issued = cloud.entra.issued_tokens()
    assert issued and not any(token in json.dumps(result.outs) for token in issued)


def test_a_recycled_worker_ends_as_success_when_arm_lists_the_functions(
    cloud: Cloud, package: tuple[Path, str]
) -> None:
    cloud.script.recycle_after = 1  # one poll shows progress, then the record is gone
    result = cloud.provider().create(cloud.inputs(package))
    statuses = [r.status for r in cloud.scm.requests() if r.method == "GET"]
    assert statuses == [200, 404]  # no waiting on a record that is gone
    assert cloud.functions_listings() == 1
    assert result.outs["deployment_id"]


def test_a_recycled_worker_whose_app_lists_nothing_fails_saying_the_log_is_gone(
    cloud: Cloud, package: tuple[Path, str]
) -> None:
    cloud.script.recycle_after, cloud.script.indexes = 1, {}
    with pytest.raises(FunctionsNotIndexed, match="worker was recycled") as failure:
        cloud.provider().create(cloud.inputs(package))
    assert "no functions" in str(failure.value)
    assert cloud.functions_listings() >= 1


def test_a_few_404s_before_the_record_appears_are_not_a_recycle(
    cloud: Cloud, package: tuple[Path, str]
) -> None:
    cloud.script.unborn_polls = 2
    cloud.provider().create(cloud.inputs(package))
    statuses = [r.status for r in cloud.scm.requests() if r.method == "GET"]
    assert statuses == [404, 404, 200, 200, 200]


def test_a_record_that_never_appears_fails_without_waiting_out_the_deadline(
    cloud: Cloud, package: tuple[Path, str]
) -> None:
    cloud.script.unborn_polls = 100
    with pytest.raises(OneDeployError, match="never showed deployment"):
        cloud.provider().create(cloud.inputs(package))
    assert len(cloud.polls()) == FAST.unborn_polls + 1


def test_the_first_deploy_storage_403_is_republished_until_it_succeeds(
    cloud: Cloud, package: tuple[Path, str]
) -> None:
    cloud.script.storage_forbidden = 1  # the app's Blob Data Owner grant applies after one try
    result = cloud.provider().create(cloud.inputs(package))
    assert cloud.publishes() == 2
    assert cloud.sleeps == [1.0, 1.0, 15.0, 1.0, 1.0]  # polls, the republish pause, polls
    assert result.outs["deployment_id"]
    assert cloud.functions_listings() == 1


def test_a_storage_403_that_outlasts_the_republishing_names_the_apps_grant(
    cloud: Cloud, package: tuple[Path, str]
) -> None:
    cloud.script.storage_forbidden = 10**6
    with pytest.raises(DeploymentFailed, match="Storage Blob Data Owner") as failure:
        cloud.provider().create(cloud.inputs(package))
    # "A few minutes in all": the default propagation bound, on the fake clock.
    assert 120 <= OneDeployProvider().propagation.give_up_after <= 600
    assert cloud.now <= OneDeployProvider().propagation.give_up_after + 10
    assert 3 <= cloud.publishes() <= 10
    assert STORAGE_FORBIDDEN_LOG[:60] in str(failure.value)
    assert not any(token in str(failure.value) for token in cloud.entra.issued_tokens())


def test_any_other_failure_fails_at_once_with_the_logs_last_lines(
    cloud: Cloud, package: tuple[Path, str]
) -> None:
    cloud.script.failure = "Python version 3.10 is not supported by Flex Consumption"
    with pytest.raises(DeploymentFailed) as failure:
        cloud.provider().create(cloud.inputs(package))
    message = str(failure.value)
    assert cloud.publishes() == 1  # not republished
    assert failure.value.storage_forbidden is False
    assert not any(token in message for token in cloud.entra.issued_tokens())
    assert "status 3: Deployment failed." in message
    assert "2026-01-01T00:00:00Z Starting deployment pipeline." in message
    # The last entry and its details (details_url on the same SCM site).
    assert message.count("Python version 3.10 is not supported") == 2
    assert cloud.functions_listings() == 0


def test_missing_functions_fail_with_what_arm_lists_and_what_to_check(
    cloud: Cloud, package: tuple[Path, str]
) -> None:
    cloud.script.indexes = {"whoami": "whoami"}  # e.g. list/read failed to import
    with pytest.raises(FunctionsNotIndexed) as failure:
        cloud.provider().create(cloud.inputs(package))
    message = str(failure.value)
    assert "reported success (status 4)" in message
    assert "lists ['whoami']" in message and "expected ['list', 'read', 'whoami']" in message
    assert "import error" in message and "Storage Blob Data Owner" in message
    assert "Deployment successful." in message  # the log's last lines
    # Waited for the indexing, every 5 s up to the bound, then stopped.
    assert cloud.functions_listings() == 1 + FAST.functions // FAST.functions_interval
    assert cloud.sleeps == [1.0, 1.0] + [FAST.functions_interval] * 36  # 2 polls, then 180 s


def test_functions_are_matched_by_route_or_name(cloud: Cloud, package: tuple[Path, str]) -> None:
    assert set(OUR_FUNCTIONS.values()) == set(FUNCTION_ROUTES)  # the names differ
    cloud.provider().create({**cloud.inputs(package), "functions": ["whoami", "read_object"]})


def test_retry_after_is_honoured_within_a_cap(cloud: Cloud, package: tuple[Path, str]) -> None:
    cloud.script.retry_after = "3"
    cloud.provider().create(cloud.inputs(package))
    assert cloud.sleeps == [3.0, 3.0]
    cloud.script.retry_after, cloud.sleeps[:] = "86400", []
    cloud.provider().create(cloud.inputs(package))
    assert cloud.sleeps == [10.0, 10.0]


def test_refusals_while_the_deployers_role_propagates_are_retried(
    cloud: Cloud, package: tuple[Path, str]
) -> None:
    cloud.script.refuse_publishes = 2
    cloud.provider().create(cloud.inputs(package))
    assert cloud.publishes() == 3


def test_a_refusal_that_outlasts_the_backoff_names_the_missing_role(
    cloud: Cloud, package: tuple[Path, str]
) -> None:
    stranger = cloud.entra.new_identity("not-a-contributor")
    with pytest.raises(MissingRole, match="Website Contributor") as failure:
        cloud.provider(stranger).create(cloud.inputs(package))
    assert cloud.now <= QUICK_BACKOFF.give_up_after
    assert APP in str(failure.value) and "HTTP 403" in str(failure.value)
    assert cloud.polls() == []


def test_a_deployment_that_never_finishes_times_out(
    cloud: Cloud, package: tuple[Path, str]
) -> None:
    cloud.script.never_finishes = True
    timeouts = OneDeployTimeouts(connect=2, upload=5, request=2, deployment=30)
    with pytest.raises(OneDeployError, match=r"did not finish within 30s.*status 2 Deploying"):
        cloud.provider(timeouts=timeouts).create(cloud.inputs(package))
    assert len(cloud.polls()) == 31 and cloud.now == 30


def test_a_package_changed_after_hashing_is_not_deployed(
    cloud: Cloud, package: tuple[Path, str]
) -> None:
    package[0].write_bytes(b"something else")
    with pytest.raises(OneDeployError, match="changed after the program hashed it"):
        cloud.provider().create(cloud.inputs(package))
    assert cloud.scm.requests() == []


def test_only_the_package_hash_or_target_triggers_a_redeploy(
    cloud: Cloud, package: tuple[Path, str], tmp_path: Path
) -> None:
    created = cloud.provider().create(cloud.inputs(package))
    olds = {**created.outs, "__provider": "serialized-1"}

    # Next run: another token (another day, another machine) and the package at another path.
    moved = tmp_path / "elsewhere.zip"
    moved.write_bytes(package[0].read_bytes())
    same = {**cloud.inputs((moved, package[1])), "__provider": "serialized-2"}
    later = cloud.provider()
    assert later.diff(created.id, olds, same).changes is False
    # Inputs this version added do not redeploy what an older version deployed.
    older = {k: v for k, v in olds.items() if k not in ("app_id", "functions")}
    assert later.diff(created.id, older, same).changes is False

    new_package = {**same, "package_sha256": "0" * 64}
    diff = later.diff(created.id, olds, new_package)
    assert diff.changes is True and diff.replaces == []

    other_app = later.diff(created.id, olds, {**same, "app_name": "crosscloud-uami"})
    assert other_app.changes is True and other_app.replaces == ["app_name"]

    moved_host = later.diff(created.id, olds, {**same, "scm_host": "app.scm.example.net"})
    assert moved_host.changes is True and moved_host.replaces == []

    updated = later.update(created.id, olds, same)
    assert updated.outs["deployment_id"] != created.outs["deployment_id"]
    assert not any(token in json.dumps(updated.outs) for token in cloud.entra.issued_tokens())


class _SecretCredential:
    def get_token(self, *_scopes: str, **_kwargs: Any) -> AccessToken:
        return AccessToken("secret-looking-token", int(time.time()) + 3600)


def test_the_pickled_provider_carries_no_credential() -> None:
    deployer = OneDeployProvider(
        credential=_SecretCredential(), timeouts=FAST, backoff=QUICK_BACKOFF
    )
    deployer._credential.get_token(ARM_SCOPE)
    pickled = base64.b64decode(serialize_provider(deployer))  # exactly what goes into state
    assert b"secret-looking-token" not in pickled
    assert b"_SecretCredential" not in pickled
    restored = dill.loads(pickled)  # noqa: S301 - the bytes this test just made
    assert restored._credential is None  # so it uses DefaultAzureCredential at create time
    assert restored.timeouts == FAST and restored.backoff == QUICK_BACKOFF


def test_check_rejects_what_would_misdirect_the_token() -> None:
    good = {
        "resource_group": "rg",
        "app_name": "app",
        "app_id": APP_ID,
        "scm_host": "app.scm.azurewebsites.net",
        "functions": ["list", "read", "whoami"],
        "package_path": "/x.zip",
        "package_sha256": "a" * 64,
    }
    check = OneDeployProvider().check
    assert check({}, good).failures == []
    unknown = {**good, "scm_host": rpc.UNKNOWN, "app_id": rpc.UNKNOWN}
    assert check({}, unknown).failures == []
    bad = check(
        {},
        {
            **good,
            "scm_host": "https://evil.example/x",
            "package_sha256": "nope",
            "app_id": f"{APP_ID}/../../../../providers/Microsoft.Authorization/x",
            "functions": [],
        },
    )
    assert sorted(f.property for f in bad.failures) == [
        "app_id",
        "functions",
        "package_sha256",
        "scm_host",
    ]


def test_delete_leaves_the_app_alone(cloud: Cloud) -> None:
    cloud.provider().delete("rg/app", {"app_name": "app"})
    assert cloud.scm.requests() == [] and cloud.arm.calls() == []


def test_the_program_confirms_the_routes_function_app_py_serves() -> None:
    source = Path(__file__).parents[2] / "function_src" / "function_app.py"
    routes = {
        keyword.value.value
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.Call)
        for keyword in node.keywords
        if keyword.arg == "route" and isinstance(keyword.value, ast.Constant)
    }
    assert routes == set(FUNCTION_ROUTES)


class _SslState:
    def __init__(self, name: str, host_type: str) -> None:
        self.name, self.host_type = name, host_type


def test_scm_host_is_the_repository_host_name() -> None:
    states = [
        _SslState("app-abc123.westeurope-01.azurewebsites.net", "Standard"),
        _SslState("app-abc123.scm.westeurope-01.azurewebsites.net", "Repository"),
    ]
    assert scm_host(states) == "app-abc123.scm.westeurope-01.azurewebsites.net"
    as_dicts = [
        {"name": "a.example", "hostType": "Standard"},
        {"name": "s", "hostType": "Repository"},
    ]
    assert scm_host(as_dicts) == "s"
    with pytest.raises(OneDeployError, match="Repository"):
        scm_host([{"name": "a.example", "host_type": "Standard"}])


def test_scm_host_reads_the_sdk_output_without_a_warning(capfd: pytest.CaptureFixture) -> None:
    # The typed output the SDK gives: a dict subclass that logs a warning on item access by the
    # wire name (pulumi_azure_native/web/outputs.py, HostNameSslStateResponse.__key_warning).
    states = [
        HostNameSslStateResponse(host_type="Standard", name="app.azurewebsites.net"),
        HostNameSslStateResponse(host_type="Repository", name="app.scm.azurewebsites.net"),
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert scm_host(states) == "app.scm.azurewebsites.net"
    assert caught == []
    assert "not found in HostNameSslStateResponse" not in capfd.readouterr().err


def test_each_deployment_confirms_its_own_app_and_routes() -> None:
    # That the mocked run prints no warning is tests/infra/test_quiet_run.py's job.
    run = run_program()
    apps = {app.inputs["name"]: app.id for app in run.of_type("azure-native:web:WebApp")}
    deployments = run.of_type("pulumi-python:dynamic/crosscloud:FlexDeployment")
    assert len(deployments) == len(apps) == 2
    for deployment in deployments:
        assert deployment.inputs["functions"] == list(FUNCTION_ROUTES)
        assert deployment.inputs["app_id"] == apps[deployment.inputs["app_name"]]


def test_answers_are_read_up_to_a_bound() -> None:
    response = requests.Response()
    response.status_code = 200
    response.raw = urllib3.HTTPResponse(
        body=io.BytesIO(b'"' + b"x" * (4 << 20)), preload_content=False
    )
    text = read_text(response)
    assert len(text) == 1 << 20  # 1 MiB of a 4 MiB answer; json.loads of it then fails


# The second line Flex writes for the same refusal (azure-functions-core-tools#4346).
BLOB_PACKAGE_403 = (
    "Failed to upload blob package to storage account with Error: Response status code does not "
    "indicate success: 403 (This request is not authorized to perform this operation.)."
)


@pytest.mark.parametrize("line", [STORAGE_FORBIDDEN_LOG, BLOB_PACKAGE_403])
def test_the_storage_refusal_of_the_package_upload_is_the_grant_race(line: str) -> None:
    assert storage_grant_race(["2026-01-01T00:00:00Z Starting deployment pipeline.", line])


@pytest.mark.parametrize(
    "line",
    [
        "Response status code does not indicate success: 403 (Forbidden).",
        "Forbidden: the extension bundle feed refused the request",
        "Oryx build failed: pip install returned 403 Forbidden from the package index",
        # Shared key off and something signed with a key: no grant will ever fix it.
        "Failed to upload because Azure Storage responded with Forbidden : Response status code "
        "does not indicate success: 403 (Key based authentication is not permitted on this "
        "storage account.).",
    ],
)
def test_any_other_403_or_forbidden_is_not_the_grant_race(line: str) -> None:
    assert not storage_grant_race(["2026-01-01T00:00:00Z Starting deployment pipeline.", line])


def test_a_failure_with_another_403_is_not_republished(
    cloud: Cloud, package: tuple[Path, str]
) -> None:
    cloud.script.failure = "Response status code does not indicate success: 403 (Forbidden)."
    with pytest.raises(DeploymentFailed) as failure:
        cloud.provider().create(cloud.inputs(package))
    assert cloud.publishes() == 1
    assert failure.value.storage_forbidden is False
    assert "403 (Forbidden)" in str(failure.value)
