"""The One Deploy provider against a loopback HTTPS stub of the SCM site's documented protocol.

The stub answers `POST /api/publish` with the deployment id and `GET /api/deployments/latest` with
the record fields Kudu documents (id, status, status_text, complete, log_url), and serves the
deployment log with a details_url. Provider methods are called directly, as the Pulumi engine
would; the provider reaches the stub as `https://127.0.0.1:{port}`, trusting the test CA through
REQUESTS_CA_BUNDLE, so no test-only code path exists in the provider.
"""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dill
import pulumi_aws.s3
import pytest
from azure.core.credentials import AccessToken
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc
from pulumi_azure_native.web.outputs import HostNameSslStateResponse

from localcloud.certs import TlsFiles
from localcloud.mocked_program import run_program
from localcloud.net import LOOPBACK, free_port
from shipping.onedeploy import (
    ARM_SCOPE,
    DeploymentFailed,
    MissingRole,
    OneDeployError,
    OneDeployProvider,
    OneDeployTimeouts,
    scm_host,
)
from shipping.retry import Backoff


class FakeArmCredential:
    """A TokenCredential handing out a fixed token and recording the scopes asked for."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


@dataclass
class Scenario:
    """What the stub SCM site does; tests set it, the handler follows it."""

    token: str = "arm-token-1"
    refusals: int = 0  # publish attempts answered 403 before one is accepted
    previous_polls: int = 0  # polls that still show the previous (successful) deployment
    building_polls: int = 1  # polls of ours at status 1 (building) before its final status
    final_status: int | None = 4  # None: never finishes
    status_text: str = ""
    log: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    deployment_id: str | None = None


class StubScmSite(BaseHTTPRequestHandler):
    scenario: Scenario
    port: int

    def log_message(self, *_args: Any) -> None:  # keep pytest output clean
        pass

    def _answer(self, status: int, body: Any) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _record(self, body: bytes = b"") -> dict[str, Any]:
        url = urlsplit(self.path)
        entry = {
            "method": self.command,
            "path": url.path,
            "query": parse_qs(url.query),
            "authorization": self.headers.get("Authorization"),
            "content_type": self.headers.get("Content-Type"),
            "body_sha256": hashlib.sha256(body).hexdigest(),
        }
        self.server.scenario.requests.append(entry)  # type: ignore[attr-defined]
        return entry

    def do_POST(self) -> None:
        scenario: Scenario = self.server.scenario  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        entry = self._record(body)
        if entry["authorization"] != f"Bearer {scenario.token}":
            return self._answer(401, {"Message": "unauthorized"})
        if entry["path"] != "/api/publish":
            return self._answer(404, {"Message": "no such route"})
        if scenario.refusals > 0:
            scenario.refusals -= 1
            return self._answer(403, {"Message": "The client does not have authorization"})
        scenario.deployment_id = f"dep-{len(scenario.requests)}"
        return self._answer(202, scenario.deployment_id)

    def do_GET(self) -> None:
        scenario: Scenario = self.server.scenario  # type: ignore[attr-defined]
        entry = self._record()
        if entry["authorization"] != f"Bearer {scenario.token}":
            return self._answer(401, {"Message": "unauthorized"})
        base = f"https://{LOOPBACK}:{self.server.server_port}"  # type: ignore[attr-defined]
        if entry["path"] == "/api/deployments/latest":
            if scenario.deployment_id is None or scenario.previous_polls > 0:
                scenario.previous_polls -= 1
                return self._answer(200, {"id": "previous", "status": 4, "complete": True})
            if scenario.building_polls > 0 or scenario.final_status is None:
                scenario.building_polls -= 1
                status, complete = 1, False
            else:
                status, complete = scenario.final_status, True
            did = scenario.deployment_id
            return self._answer(
                200,
                {
                    "id": did,
                    "status": status,
                    "status_text": scenario.status_text if complete else "Building",
                    "complete": complete,
                    "url": f"{base}/api/deployments/{did}",
                    "log_url": f"{base}/api/deployments/{did}/log",
                },
            )
        if entry["path"] == f"/api/deployments/{scenario.deployment_id}/log":
            return self._answer(200, scenario.log)
        detail = entry["path"].rsplit("/", 1)[-1]
        if detail in scenario.details:
            return self._answer(200, scenario.details[detail])
        return self._answer(404, {"Message": "no such route"})


@pytest.fixture
def site(tls: TlsFiles, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Scenario]]:
    """(scm host, scenario) of a stub SCM site on 127.0.0.1 over HTTPS."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_cert))
    server = ThreadingHTTPServer((LOOPBACK, 0), StubScmSite)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.server_cert, tls.server_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.scenario = Scenario()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"{LOOPBACK}:{server.server_port}", server.scenario  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


FAST = OneDeployTimeouts(connect=2, upload=5, request=2, poll_interval=0.01, deployment=2)
QUICK_BACKOFF = Backoff(first_delay=0.01, max_delay=0.05, give_up_after=2)


def provider(issues: str = "arm-token-1", **overrides: Any) -> OneDeployProvider:
    """A provider whose credential hands out the token `issues`, with short waits."""
    settings: dict[str, Any] = {"timeouts": FAST, "backoff": QUICK_BACKOFF, **overrides}
    return OneDeployProvider(credential=FakeArmCredential(issues), **settings)


@pytest.fixture
def package(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "app.zip"
    path.write_bytes(b"PK\x05\x06" + b"\x00" * 18)  # an empty zip is enough for the stub
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def inputs(host: str, package: tuple[Path, str]) -> dict[str, Any]:
    return {
        "resource_group": "rg-crosscloud",
        "app_name": "crosscloud-sami",
        "scm_host": host,
        "package_path": str(package[0]),
        "package_sha256": package[1],
    }


def test_create_publishes_the_zip_and_waits_for_success(
    site: tuple[str, Scenario], package: tuple[Path, str]
) -> None:
    host, scenario = site
    scenario.building_polls = 3
    deployer = provider()
    result = deployer.create(inputs(host, package))

    publish, *polls = scenario.requests
    assert publish["method"] == "POST" and publish["path"] == "/api/publish"
    assert publish["query"] == {"RemoteBuild": ["false"]}
    assert publish["content_type"] == "application/zip"
    assert publish["authorization"] == "Bearer arm-token-1"
    assert publish["body_sha256"] == package[1]
    assert [p["path"] for p in polls] == ["/api/deployments/latest"] * 4
    assert deployer._credential.scopes == [(ARM_SCOPE,)]  # one token for the whole deployment
    assert result.id == "rg-crosscloud/crosscloud-sami"
    assert result.outs["deployment_id"] == scenario.deployment_id
    assert result.outs["package_sha256"] == package[1]
    assert "arm-token-1" not in json.dumps(result.outs)


def test_the_previous_deployment_is_not_mistaken_for_ours(
    site: tuple[str, Scenario], package: tuple[Path, str]
) -> None:
    host, scenario = site
    scenario.previous_polls, scenario.building_polls, scenario.final_status = 2, 0, 3
    scenario.status_text = "Deployment failed"
    # If the earlier successful record counted, create() would return instead of raising.
    with pytest.raises(DeploymentFailed):
        provider().create(inputs(host, package))
    assert len(scenario.requests) >= 4


def test_platform_failure_raises_with_the_deployment_log(
    site: tuple[str, Scenario], package: tuple[Path, str]
) -> None:
    host, scenario = site
    base = f"https://{host}"
    scenario.final_status = 3
    scenario.status_text = "Failed to deploy the package"
    scenario.log = [
        {"log_time": "2025-01-01T00:00:01Z", "message": "Starting deployment", "details_url": None},
        {
            "log_time": "2025-01-01T00:00:02Z",
            "message": "Deployment failed",
            "details_url": f"{base}/api/deployments/dep/log/step-2",
        },
        {
            "log_time": "2025-01-01T00:00:03Z",
            "message": "Elsewhere",
            # Another site: the provider must not send the token there (nothing listens).
            "details_url": f"https://{LOOPBACK}:{free_port()}/api/log",
        },
    ]
    scenario.details = {"step-2": [{"message": "Python version 3.10 is not supported"}]}

    with pytest.raises(DeploymentFailed) as failure:
        provider().create(inputs(host, package))

    message = str(failure.value)
    assert "status 3: Failed to deploy the package" in message
    assert "2025-01-01T00:00:01Z Starting deployment" in message
    assert "Python version 3.10 is not supported" in message
    assert "Elsewhere" in message and "could not read" not in message


def test_refusals_while_the_role_propagates_are_retried(
    site: tuple[str, Scenario], package: tuple[Path, str]
) -> None:
    host, scenario = site
    scenario.refusals = 2
    result = provider().create(inputs(host, package))
    publishes = [r for r in scenario.requests if r["method"] == "POST"]
    assert len(publishes) == 3
    assert result.outs["deployment_id"] == scenario.deployment_id


def test_a_refusal_that_outlasts_the_backoff_names_the_missing_role(
    site: tuple[str, Scenario], package: tuple[Path, str]
) -> None:
    host, scenario = site
    scenario.refusals = 10**6
    backoff = Backoff(first_delay=0.01, max_delay=0.02, give_up_after=0.2)
    started = time.monotonic()
    with pytest.raises(MissingRole, match="Website Contributor") as failure:
        provider(backoff=backoff).create(inputs(host, package))
    assert time.monotonic() - started < 2
    assert "crosscloud-sami" in str(failure.value) and "HTTP 403" in str(failure.value)
    assert not any(r["path"].startswith("/api/deployments") for r in scenario.requests)


def test_a_deployment_that_never_finishes_times_out(
    site: tuple[str, Scenario], package: tuple[Path, str]
) -> None:
    host, scenario = site
    scenario.final_status = None
    timeouts = OneDeployTimeouts(connect=2, upload=5, request=2, poll_interval=0.02, deployment=0.3)
    started = time.monotonic()
    with pytest.raises(OneDeployError, match=r"did not finish within 0.3s.*status 1 Building"):
        provider(timeouts=timeouts).create(inputs(host, package))
    assert time.monotonic() - started < 2


def test_a_package_changed_after_hashing_is_not_deployed(
    site: tuple[str, Scenario], package: tuple[Path, str]
) -> None:
    host, scenario = site
    package[0].write_bytes(b"something else")
    with pytest.raises(OneDeployError, match="changed after the program hashed it"):
        provider().create(inputs(host, package))
    assert scenario.requests == []


def test_only_the_package_hash_or_target_triggers_a_redeploy(
    site: tuple[str, Scenario], package: tuple[Path, str], tmp_path: Path
) -> None:
    host, scenario = site
    created = provider(issues="arm-token-1").create(inputs(host, package))
    olds = {**created.outs, "__provider": "serialized-1"}

    # Next run: a new token (another day, another machine) and the package at another path.
    scenario.token = "arm-token-2"
    moved = tmp_path / "elsewhere.zip"
    moved.write_bytes(package[0].read_bytes())
    same = {**inputs(host, (moved, package[1])), "__provider": "serialized-2"}
    later = provider(issues="arm-token-2")
    assert later.diff(created.id, olds, same).changes is False

    new_package = {**same, "package_sha256": "0" * 64}
    diff = later.diff(created.id, olds, new_package)
    assert diff.changes is True and diff.replaces == []

    other_app = later.diff(created.id, olds, {**same, "app_name": "crosscloud-uami"})
    assert other_app.changes is True and other_app.replaces == ["app_name"]

    moved_host = later.diff(created.id, olds, {**same, "scm_host": "app.scm.example.net"})
    assert moved_host.changes is True and moved_host.replaces == []

    updated = later.update(created.id, olds, same)
    assert updated.outs["deployment_id"] != created.outs["deployment_id"]
    assert "arm-token" not in json.dumps(updated.outs)


def test_the_pickled_provider_carries_no_credential() -> None:
    deployer = provider(issues="secret-looking-token")
    pickled = base64.b64decode(serialize_provider(deployer))  # exactly what goes into state
    assert b"secret-looking-token" not in pickled
    assert b"FakeArmCredential" not in pickled
    restored = dill.loads(pickled)  # noqa: S301 - the bytes this test just made
    assert restored._credential is None  # so it uses DefaultAzureCredential at create time
    assert restored.timeouts == FAST and restored.backoff == QUICK_BACKOFF


def test_check_rejects_what_would_misdirect_the_token() -> None:
    good = {
        "resource_group": "rg",
        "app_name": "app",
        "scm_host": "app.scm.azurewebsites.net",
        "package_path": "/x.zip",
        "package_sha256": "a" * 64,
    }
    check = OneDeployProvider().check
    assert check({}, good).failures == []
    assert check({}, {**good, "scm_host": rpc.UNKNOWN}).failures == []
    bad = check({}, {**good, "scm_host": "https://evil.example/x", "package_sha256": "nope"})
    assert sorted(f.property for f in bad.failures) == ["package_sha256", "scm_host"]


def test_delete_leaves_the_app_alone(site: tuple[str, Scenario]) -> None:
    _host, scenario = site
    provider().delete("rg/app", {"app_name": "app"})
    assert scenario.requests == []


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


def test_the_mocked_program_prints_no_warning(capfd: pytest.CaptureFixture) -> None:
    # pulumi_aws.s3 (loaded lazily on first use) warns at import about its V2 classes, whatever
    # a program uses; Python hides DeprecationWarning outside __main__ by default. Load it first,
    # so that what is recorded below is what running the program itself warns about.
    assert pulumi_aws.s3.Bucket
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = run_program()
    assert run.warnings == []  # what `pulumi preview/up` would show as warnings
    assert [str(w.message) for w in caught] == []
    captured = capfd.readouterr()
    assert "warning" not in (captured.err + captured.out).lower()
