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

from preflight import __main__ as preflight_main
from preflight.checks import (
    MAX_PERMISSION_PAGES,
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
        self.pages: list[list[dict[str, Any]]] = []
        """When set, the permissions list in these pages, joined by `nextLink`s."""
        self.next_link_base = ""
        """Where the `nextLink`s point (the fake's own URL unless a test says otherwise)."""
        self.odd_bodies: dict[str, Any] = {}
        """Path rest -> a 200 body that is not what ARM sends (a list, a string...)."""
        self.requests: list[tuple[str, str, dict[str, list[str]], str | None]] = []

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        if self.busy:
            self.busy -= 1
            return 503, {"error": {"code": "ServerBusy", "message": "try later"}}
        prefix = f"/subscriptions/{SUBSCRIPTION}/providers/"
        if not path.startswith(prefix):
            return 404, {"error": {"code": "SubscriptionNotFound", "message": path}}
        rest = path.removeprefix(prefix)
        if rest in self.odd_bodies:
            return 200, self.odd_bodies[rest]
        if rest == "Microsoft.Web/geoRegions":
            if query.get("sku") != ["FlexConsumption"]:
                return 200, {"value": [{"name": "Everywhere"}]}
            return 200, {
                "value": [{"name": n, "properties": {"name": n}} for n in self.flex_regions]
            }
        if rest == "Microsoft.Authorization/permissions":
            if not self.pages:
                return 200, {"value": self.permissions}
            page = int(query.get("page", ["0"])[0])
            body: dict[str, Any] = {"value": self.pages[page]}
            if page + 1 < len(self.pages):
                body["nextLink"] = (
                    f"{self.next_link_base}{path}?api-version=2022-04-01&page={page + 1}"
                )
            return 200, body
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
    # A short poll interval: shutdown() waits up to one (0.5 s by default) per test.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    arm.next_link_base = url
    try:
        yield arm, url
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
    writes = [a for a in REQUIRED_ACTIONS if not a.endswith("/read")]
    assert all(action in check.detail for action in writes)
    assert "Microsoft.Web/sites/functions/read" not in check.detail  # */read grants it


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


def _permission_paths(arm: FakeArm) -> list[dict[str, list[str]]]:
    return [q for _m, path, q, _a in arm.requests if path.endswith("/permissions")]


@pytest.mark.parametrize(
    "action",
    [
        "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
        "Microsoft.Storage/storageAccounts/blobServices/containers/write",
        "Microsoft.Web/sites/basicPublishingCredentialsPolicies/write",
        "Microsoft.Web/sites/publish/Action",
        "Microsoft.Web/sites/functions/read",
    ],
)
def test_a_role_without_one_needed_action_is_refused_naming_it(fake, action):
    arm, url = fake
    arm.permissions = [{"actions": ["*"], "notActions": [action]}]
    check = deployer_rights(client(url))
    assert not check.ok and not check.unknown
    assert check.detail.startswith(f"missing {action} (")


def test_a_role_granting_the_action_by_a_wildcard_passes(fake):
    arm, url = fake
    arm.permissions = [
        {"actions": [a.rsplit("/", 1)[0] + "/*" for a in REQUIRED_ACTIONS], "notActions": []}
    ]
    check = deployer_rights(client(url))
    assert check.ok
    assert check.detail.startswith(f"the {len(REQUIRED_ACTIONS)} actions checked are granted")
    assert "deny assignments are not evaluated" in check.detail


def test_a_conditioned_rbac_administrator_is_unknown_not_granted(fake):
    """docs/permissions.md's CI deploy identity: RBAC Administrator with an ABAC condition on
    the roles it may assign. ARM lists the condition; whether our assignments pass it is not
    visible here."""
    arm, url = fake
    arm.permissions = [
        CONTRIBUTOR,
        {
            "actions": ["Microsoft.Authorization/roleAssignments/write"],
            "notActions": [],
            "condition": "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'}))"
            " OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId]"
            " ForAnyOfAnyValues:GuidEquals {ba92f5b4-2d11-453d-a403-e96b0029c9fe}))",
            "conditionVersion": "2.0",
        },
    ]
    check = deployer_rights(client(url))
    assert not check.ok and check.unknown
    assert "unknown, check manually: Microsoft.Authorization/roleAssignments/write" in check.detail
    assert "missing" not in check.detail


def test_a_condition_never_hides_a_missing_action(fake):
    arm, url = fake
    arm.permissions = [{"actions": ["*/read"], "notActions": [], "condition": "true"}]
    check = deployer_rights(client(url))
    assert not check.ok and not check.unknown
    assert "missing Microsoft.Resources/subscriptions/resourceGroups/write" in check.detail
    assert "unknown, check manually: Microsoft.Web/sites/functions/read" in check.detail


def test_the_permissions_list_is_read_across_next_links(fake):
    arm, url = fake
    arm.pages = [[{"actions": ["*/read"], "notActions": []}], [], [CONTRIBUTOR]]
    arm.pages.append([USER_ACCESS_ADMINISTRATOR])
    check = deployer_rights(client(url))
    assert check.ok, check.detail
    assert [q.get("page") for q in _permission_paths(arm)] == [None, ["1"], ["2"], ["3"]]
    assert {auth for *_, auth in arm.requests} == {f"Bearer {TOKEN}"}


def test_a_next_link_off_arm_gets_no_token_and_leaves_the_rest_unknown(fake):
    arm, url = fake
    arm.pages = [[CONTRIBUTOR], [USER_ACCESS_ADMINISTRATOR]]
    arm.next_link_base = url.replace("127.0.0.1", "localhost")  # another host
    check = deployer_rights(client(url))
    assert not check.ok and check.unknown
    assert "nextLink off ARM was not followed" in check.detail
    assert "Microsoft.Authorization/roleAssignments/write" in check.detail
    assert len(_permission_paths(arm)) == 1


def test_a_plain_http_next_link_from_an_https_arm_is_not_followed():
    arm = Arm(reader=None, endpoint="https://management.azure.com", subscription_id="s")  # type: ignore[arg-type]
    assert arm.same_origin("https://management.azure.com/subscriptions/s/x?page=2")
    assert not arm.same_origin("http://management.azure.com/subscriptions/s/x?page=2")
    assert not arm.same_origin("https://management.azure.com.evil.example/x")
    assert not arm.same_origin("https://management.azure.com:8443/x")
    assert not arm.same_origin(["https://management.azure.com/x"])


def test_the_permission_pages_are_bounded(fake):
    arm, url = fake
    arm.pages = [[]] * (MAX_PERMISSION_PAGES + 5)
    check = deployer_rights(client(url))
    assert not check.ok and check.unknown
    assert f"more than {MAX_PERMISSION_PAGES} pages" in check.detail
    assert len(_permission_paths(arm)) == MAX_PERMISSION_PAGES


@pytest.mark.parametrize("body", [[], "Registered", 42, None])
def test_a_200_that_is_not_an_object_fails_each_check_clearly(fake, body):
    arm, url = fake
    arm.odd_bodies = {
        "Microsoft.Web": body,
        "Microsoft.Web/geoRegions": body,
        "Microsoft.Authorization/permissions": body,
    }
    checks = {c.name: c for c in run_checks(client(url), "westeurope")}
    assert len(checks) == len(REQUIRED_PROVIDERS) + 2
    for name in ("provider Microsoft.Web", "Flex Consumption in westeurope"):
        assert not checks[name].ok
        assert "HTTP 200 but not the expected JSON object" in checks[name].detail
    rights = checks["deployer's rights on the subscription"]
    assert not rights.ok and "HTTP 200 but not the expected JSON object" in rights.detail
    assert checks["provider Microsoft.Storage"].ok  # the others still ran


@pytest.mark.parametrize(
    "endpoint", ["http://management.azure.com", "management.azure.com", "https://"]
)
def test_the_cli_refuses_an_arm_endpoint_that_is_not_https(monkeypatch, capsys, endpoint):
    monkeypatch.setenv("CROSSCLOUD_ARM_ENDPOINT", endpoint)
    monkeypatch.setattr(
        preflight_main, "arm_client", lambda *a: pytest.fail("no request without https")
    )
    with pytest.raises(SystemExit) as exit_:
        preflight_main.main(["--subscription", SUBSCRIPTION, "--location", "westeurope"])
    assert exit_.value.code == 2
    assert (
        f"CROSSCLOUD_ARM_ENDPOINT={endpoint!r} must be an https:// URL" in capsys.readouterr().err
    )
