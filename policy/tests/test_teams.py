"""The pack over both projects of the teams shape: the foundation (foundation/__main__.py) and an
environment stack that uses it (the root program with `crosscloud:foundation`), each run under
Pulumi mocks. Both must pass every rule; an environment's role weakened to trust any identity of
the tenant must still be caught, though the provider it names is in another stack.
"""

from __future__ import annotations

import pytest

from localcloud.mocked_program import run_foundation, run_program
from policy.tests.engine import evaluate, policies_violated
from policy.tests.test_program import Resources, as_resources, changed, drop_sub, trust_change

FOUNDATION_STACK = "acme/crosscloud-foundation/shared"


@pytest.fixture(scope="module")
def foundation_run():
    return run_foundation({"awsAccounts": []})


@pytest.fixture(scope="module")
def environment(foundation_run) -> Resources:
    return as_resources(
        run_program(
            {"foundation": FOUNDATION_STACK},
            stack_outputs={FOUNDATION_STACK: foundation_run.outputs},
        )
    )


def test_the_foundation_passes_every_rule(foundation_run) -> None:
    resources = as_resources(foundation_run)
    assert any(r.type == "aws:iam/openIdConnectProvider:OpenIdConnectProvider" for r in resources)
    assert evaluate(resources) == []


def test_an_environment_passes_every_rule(environment: Resources) -> None:
    assert any(r.type == "aws:iam/role:Role" for r in environment)
    assert evaluate(environment) == []


def test_an_environment_role_without_sub_is_caught(environment: Resources) -> None:
    broken = changed(environment, "aws:iam/role:Role", trust_change(drop_sub))
    assert "web-identity-trust-pins-aud-and-sub" in policies_violated(broken)
