"""Rules of issue 12 over the program's own resources: the program passes them, and each broken
copy is caught by exactly the rule meant for it."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from localcloud.mocked_program import run_program
from policy.rules.app_insights_entra_ingestion import is_entra_authentication
from policy.tests.engine import Resource, evaluate, policies_violated
from policy.tests.test_program import Resources, as_resources

Props = dict[str, Any]


@pytest.fixture(scope="module")
def program() -> Resources:
    return as_resources(run_program())


def changed(resources: Resources, name: str, change: Callable[[Props], None]) -> Resources:
    """A copy with `change` applied to the inputs and outputs of the resource called `name`."""
    target = next(r for r in resources if r.name == name)
    props, outputs = copy.deepcopy(dict(target.props)), copy.deepcopy(dict(target.outputs or {}))
    change(props)
    change(outputs)
    replacement = Resource(target.type, props, name=target.name, outputs=outputs, urn=target.urn)
    return [replacement if r is target else r for r in resources]


def without(resources: Resources, name: str) -> Resources:
    return [r for r in resources if r.name != name]


def setting(name: str, edit: Callable[[list[dict]], None]) -> Callable[[Props], None]:
    return lambda props: edit(props["siteConfig"]["appSettings"])


def drop(setting_name: str) -> Callable[[list[dict]], None]:
    return lambda settings: settings.remove(next(s for s in settings if s["name"] == setting_name))


def set_value(setting_name: str, value: str) -> Callable[[list[dict]], None]:
    def edit(settings: list[dict]) -> None:
        next(s for s in settings if s["name"] == setting_name)["value"] = value

    return edit


def log_policy(edit: Callable[[dict], None]) -> Callable[[Props], None]:
    def change(props: Props) -> None:
        document = json.loads(props["policy"])
        edit(document)
        props["policy"] = json.dumps(document)

    return change


def logging_statement(document: dict) -> dict:
    return next(s for s in document["Statement"] if s["Effect"] == "Allow")


def test_the_program_passes_the_new_rules(program: Resources) -> None:
    assert evaluate(program) == []
    # Not vacuous: the rules' resources are in the program.
    types = {r.type for r in program}
    assert {
        "azure-native:operationalinsights:Workspace",
        "azure-native:applicationinsights:Component",
        "aws:s3/bucketLogging:BucketLogging",
    } <= types


BROKEN: dict[str, tuple[str, Callable[[Props], None] | None, str]] = {
    "workspace-local-auth-on": (
        "monitoring-workspace",
        lambda p: p["features"].update(disableLocalAuth=False),
        "monitoring-local-auth-disabled",
    ),
    "component-local-auth-unset": (
        "monitoring-insights",
        lambda p: p.pop("disableLocalAuth"),
        "app-insights-connection-string-local-auth-off",
    ),
    "instrumentation-key-setting": (
        "function-sami-app",
        setting("", lambda s: s.append({"name": "APPINSIGHTS_INSTRUMENTATIONKEY", "value": "k"})),
        "app-insights-entra-ingestion",
    ),
    "connection-string-without-entra": (
        "function-uami-app",
        setting("", drop("APPLICATIONINSIGHTS_AUTHENTICATION_STRING")),
        "app-insights-entra-ingestion",
    ),
    "authentication-string-not-aad": (
        "function-uami-app",
        setting("", set_value("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "ClientId=x")),
        "app-insights-entra-ingestion",
    ),
    "connection-string-of-a-foreign-component": (
        "function-sami-app",
        setting(
            "",
            set_value(
                "APPLICATIONINSIGHTS_CONNECTION_STRING",
                "InstrumentationKey=00000000-0000-0000-0000-000000000000",
            ),
        ),
        "app-insights-connection-string-local-auth-off",
    ),
    "data-bucket-not-logged": ("s3-access-logs-source", None, "s3-access-logging"),
    "logs-into-the-data-bucket": (
        "s3-access-logs-source",
        lambda p: p.update(targetBucket=p["bucket"]),
        "s3-access-logging",
    ),
    "log-bucket-acls-on": (
        "s3-access-logs-ownership",
        lambda p: p.update(rule={"objectOwnership": "ObjectWriter"}),
        "s3-access-logging",
    ),
    "log-bucket-not-encrypted": ("s3-access-logs-encryption", None, "s3-access-logging"),
    "logging-service-without-source-arn": (
        "s3-access-logs-policy",
        log_policy(lambda d: logging_statement(d)["Condition"].pop("ArnLike")),
        "s3-access-logging",
    ),
    "logging-service-without-source-account": (
        "s3-access-logs-policy",
        log_policy(lambda d: logging_statement(d)["Condition"].pop("StringEquals")),
        "s3-access-logging",
    ),
    "log-bucket-readable-by-anyone-in-the-account": (
        "s3-access-logs-policy",
        log_policy(
            lambda d: d["Statement"].append(
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                    "Action": "s3:GetObject",
                    "Resource": "*",
                }
            )
        ),
        "s3-access-logging",
    ),
    "log-bucket-without-tls-deny": (
        "s3-access-logs-policy",
        log_policy(lambda d: d["Statement"].remove(d["Statement"][0])),
        "s3-access-logging",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_broken_variant_is_caught_by_its_rule(program: Resources, case: str) -> None:
    name, change, rule = BROKEN[case]
    broken = without(program, name) if change is None else changed(program, name, change)
    assert rule in policies_violated(broken)
    # The component rule also fires in the resource rule when local auth is off; every other
    # case is caught by exactly one rule.
    if case == "component-local-auth-unset":
        assert policies_violated(broken) == {rule, "monitoring-local-auth-disabled"}
    else:
        assert policies_violated(broken) == {rule}


@pytest.mark.parametrize(
    "value, expected",
    [
        ("Authorization=AAD", True),
        ("ClientId=0f0e0d0c-0b0a-4909-8807-060504030201;Authorization=AAD", True),
        ("authorization=aad", True),
        ("ClientId=x", False),
        ("Authorization=AADX", False),
        (None, False),
    ],
)
def test_entra_authentication_string(value: str | None, expected: bool) -> None:
    assert is_entra_authentication(value) is expected
