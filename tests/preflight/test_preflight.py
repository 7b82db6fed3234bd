"""`make preflight` against a fake ARM on loopback: what a fresh subscription lacks is named with
its fix, every request is a GET with the operator's token, and a busy ARM is retried once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.credentials import AccessToken

from preflight.checks import (
    REQUIRED_ACTIONS,
    REQUIRED_PROVIDERS,
    Arm,
    arm_client,
    deployer_rights,
    flex_offered,
    providers_registered,
    run_checks,
)

SUBSCRIPTION = "00000000-0000-4000-8000-000000000001"
TOKEN = "operator-arm-token"
CONTRIBUTOR = {
    "actions": ["*"],
    "notActions": [
        "Microsoft.Authorization/*/Delete",
        "Microsoft.Authorization/*/Write",
        "Microsoft.Authorization/elevateAccess/Action",
    ],
}
USER_ACCESS_ADMINISTRATOR = {"actions": ["*/read", "Microsoft.Authorization/*"], "notActions": []}


class FakeArm:
    """Answers the three reads of the preflight from `state`; records every request."""

    def __init__(self) -> None:
        self.registered = set(REQUIRED_PROVIDERS)
        self.flex_regions = ["East US", "West Europe", "Sweden Central"]
        self.permissions: list[dict[str, Any]] = [CONTRIBUTOR, USER_ACCESS_ADMINISTRATOR]
        self.busy = 0
        self.requests: list[tuple[str, str, dict[str, list[str]], str | None]] = []

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        if self.busy:
            self.busy -= 1
            return 503, {"error": {"code": "ServerBusy", "message": "try later"}}
        prefix = f"/subscriptions/{SUBSCRIPTION}/providers/"
        if not path.startswith(prefix):
            return 404, {"error": {"code": "SubscriptionNotFound", "message": path}}
        rest = path.removeprefix(prefix)
        if rest == "Microsoft.Web/geoRegions":
            if query.get("sku") != ["FlexConsumption"]:
                return 200, {"value": [{"name": "Everywhere"}]}
            return 200, {
                "value": [{"name": n, "properties": {"name": n}} for n in self.flex_regions]
            }
        if rest == "Microsoft.Authorization/permissions":
            return 200, {"value": self.permissions}
        state = "Registered" if rest in self.registered else "NotRegistered"
        return 200, {"namespace": rest, "registrationState": state}


@pytest.fixture
def fake() -> Iterator[tuple[FakeArm, str]]:
    arm = FakeArm()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            pass

        def _serve(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            arm.requests.append((self.command, url.path, query, self.headers.get("Authorization")))
            status, body = arm.answer(url.path, query) if self.command == "GET" else (405, {})
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = _serve

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield arm, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class OperatorCredential:
    def get_token(self, *scopes: str, **_kwargs: Any) -> AccessToken:
        assert scopes == ("https://management.azure.com/.default",)
        return AccessToken(TOKEN, 2**31)


def client(url: str) -> Arm:
    arm = arm_client(OperatorCredential(), url, SUBSCRIPTION, (2.0, 5.0))
    arm.sleep = lambda _seconds: None
    return arm


def test_a_ready_subscription_passes_every_check_with_reads_only(fake):
    arm, url = fake
    checks = run_checks(client(url), "westeurope")
    assert [c.ok for c in checks] == [True] * len(checks)
    assert len(checks) == len(REQUIRED_PROVIDERS) + 2
    assert {method for method, *_ in arm.requests} == {"GET"}
    assert {auth for *_, auth in arm.requests} == {f"Bearer {TOKEN}"}
    flex = [q for _m, path, q, _a in arm.requests if path.endswith("/geoRegions")]
    assert flex == [{"sku": ["FlexConsumption"], "api-version": ["2023-01-01"]}]


@pytest.mark.parametrize("namespace", ["Microsoft.Insights", "Microsoft.OperationalInsights"])
def test_an_unregistered_provider_is_named_with_the_register_command(fake, namespace):
    arm, url = fake
    arm.registered.discard(namespace)
    checks = {c.name: c for c in providers_registered(client(url))}
    failed = checks[f"provider {namespace}"]
    assert not failed.ok
    assert f"az provider register --namespace {namespace}" in failed.detail
    assert sum(not c.ok for c in checks.values()) == 1


def test_a_location_without_flex_is_refused_naming_where_it_runs(fake):
    _arm, url = fake
    check = flex_offered(client(url), "westindia")
    assert not check.ok
    assert "eastus, swedencentral, westeurope" in check.detail
    assert flex_offered(client(url), "swedencentral").ok  # "Sweden Central" compares as name


def test_contributor_alone_cannot_create_the_role_assignments(fake):
    arm, url = fake
    arm.permissions = [CONTRIBUTOR]
    check = deployer_rights(client(url))
    assert not check.ok
    assert "Microsoft.Authorization/roleAssignments/write" in check.detail
    assert "Microsoft.Web/sites/write" not in check.detail


def test_a_reader_misses_every_write(fake):
    arm, url = fake
    arm.permissions = [{"actions": ["*/read"], "notActions": []}]
    check = deployer_rights(client(url))
    assert not check.ok
    assert all(action in check.detail for action in REQUIRED_ACTIONS)


def test_owner_has_every_action(fake):
    arm, url = fake
    arm.permissions = [{"actions": ["*"], "notActions": []}]
    assert deployer_rights(client(url)).ok


def test_a_busy_answer_is_retried_once_then_reported(fake):
    arm, url = fake
    arm.busy = 1
    assert flex_offered(client(url), "eastus").ok
    arm.busy = 2
    check = flex_offered(client(url), "eastus")
    assert not check.ok and "HTTP 503" in check.detail


def test_an_unreachable_arm_fails_each_check_without_stopping_the_others():
    arm = client("http://127.0.0.1:9")  # discard port: nothing listens
    checks = run_checks(arm, "westeurope")
    assert len(checks) == len(REQUIRED_PROVIDERS) + 2
    assert not any(c.ok for c in checks)
    assert all("no answer" in c.detail for c in checks)
