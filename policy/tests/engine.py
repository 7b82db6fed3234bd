"""Run the pack's policies the way the pulumi-policy analyzer does, without the Pulumi CLI.

Props are wrapped in the analyzer's own unknown-checking proxies, so rules see the same
Mapping/Sequence types (and the same `UnknownValueError` for unknown values) as under the engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from policy.rules import POLICIES


@dataclass(frozen=True)
class Resource:
    """A resource as a test describes it: type token, props and dependencies."""

    type: str
    props: Mapping[str, Any]
    """Inputs: what resource policies see."""
    name: str = "r"
    property_dependencies: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Property name -> URNs of the resources that property's value came from."""
    outputs: Mapping[str, Any] | None = None
    """What stack policies see; the inputs when not given (as for a resource in preview)."""
    urn: str = ""

    def __post_init__(self) -> None:
        if not self.urn:
            object.__setattr__(
                self, "urn", f"urn:pulumi:test::crosscloud::{self.type}::{self.name}"
            )


@dataclass(frozen=True)
class Violation:
    policy: str
    message: str
    urn: str | None


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
    )


def _stack_resources(resources: Sequence[Resource]) -> list[PolicyResource]:
    by_urn = {
        r.urn: PolicyResource(
            r.type,
            unknown_checking_proxy(dict(r.props if r.outputs is None else r.outputs)),
            r.urn,
            r.name,
            _options(),
            None,
            None,
            [],
            {},
        )
        for r in resources
    }
    for r in resources:
        by_urn[r.urn].property_dependencies = {
            prop: [by_urn[urn] for urn in urns if urn in by_urn]
            for prop, urns in r.property_dependencies.items()
        }
    return list(by_urn.values())


class _Report:
    """The `report_violation` callback: collects (message, urn) pairs."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str | None]] = []

    def __call__(self, message: str, urn: str | None = None) -> None:
        self.items.append((message, urn))


def _run(resources: Iterable[Resource]) -> tuple[list[Violation], list[Violation]]:
    """(violations, policies that could not run on an unknown value), as the analyzer sees them.

    Like the analyzer, an `UnknownValueError` skips that policy for that resource (for a stack
    policy, for the stack) instead of failing: the engine reports it as "can't run during preview".
    """
    resources = list(resources)
    found: list[Violation] = []
    not_run: list[Violation] = []
    for policy in POLICIES:
        if isinstance(policy, ResourceValidationPolicy):
            calls = [
                (
                    ResourceValidationArgs(
                        r.type,
                        unknown_checking_proxy(dict(r.props)),
                        r.urn,
                        r.name,
                        _options(),
                        None,
                    ),
                    r.urn,
                )
                for r in resources
            ]
        else:
            calls = [(StackValidationArgs(_stack_resources(resources)), None)]
        for args, urn in calls:
            report = _Report()
            try:
                policy.validate(args, report)
            except UnknownValueError as e:
                not_run.append(Violation(policy.name, e.message, urn))
            # The analyzer ties a resource policy's violations to the resource itself.
            found += [Violation(policy.name, message, urn or at) for message, at in report.items]
    return found, not_run


def evaluate(resources: Iterable[Resource]) -> list[Violation]:
    """Every violation the pack reports for these resources (resource and stack policies)."""
    return _run(resources)[0]


def not_run(resources: Iterable[Resource]) -> list[Violation]:
    """Policies the analyzer could not run because a value they read is unknown (preview)."""
    return _run(resources)[1]


def policies_violated(resources: Iterable[Resource]) -> set[str]:
    """Names of the policies that report at least one violation."""
    return {v.policy for v in evaluate(resources)}
