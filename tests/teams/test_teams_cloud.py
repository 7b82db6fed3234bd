"""The teams shape end to end in the local cloud: a foundation and two environments (dev, prod)
sharing its federation app and OIDC provider, the real function code in each environment's apps.

Its own package so its cloud never runs beside tests/e2e's (moto's state is process-wide).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest

from localcloud import teams
from localcloud.cloud import LocalCloud
from localcloud.scenarios import Outcome
from localcloud.world import World, teams_worlds


@pytest.fixture(scope="module")
def worlds() -> dict[str, World]:
    return teams_worlds()


@pytest.fixture(scope="module")
def cloud(worlds) -> Iterator[LocalCloud]:
    with teams.start(worlds) as running:
        yield running


@pytest.fixture(scope="module")
def outcomes(cloud: LocalCloud) -> dict[str, Outcome]:
    return {outcome.case.id: outcome for outcome in teams.run(cloud)}


@pytest.mark.parametrize("case_id", [case.id for case in teams.cases("hello.txt")])
def test_the_teams_outcome_is_the_expected_one(outcomes, case_id):
    outcome = outcomes[case_id]
    assert outcome.met, f"{case_id}: {outcome.problem} (got {outcome.got})"


def test_both_environments_share_one_app_and_one_provider(worlds):
    dev, prod = worlds["dev"], worlds["prod"]
    assert dev.audience == prod.audience
    assert dev.oidc_providers == prod.oidc_providers and len(dev.oidc_providers) == 1
    assert dev.role_arn != prod.role_arn and dev.bucket != prod.bucket
    assert not dev.assigned & prod.assigned


def test_entra_does_not_separate_the_environments_sts_does(cloud, outcomes, worlds):
    """Both cross-environment identities got their token from Entra (they hold the shared app
    role); the STS front refused them on the role's trust policy."""
    for case_id in ("dev-identity-prod-role", "prod-identity-dev-role"):
        assert outcomes[case_id].tokens >= 1 and outcomes[case_id].sts == 1
    # The STS front made both refusals; Entra refused nobody.
    assert [r.code for r in cloud.verifier.refusals] == ["AccessDenied", "AccessDenied"]
    assert [r for r in cloud.entra.request_log() if r.status != 200] == []


def test_only_sub_keeps_dev_out_of_prod(cloud, outcomes, worlds):
    """Put dev's identity into prod's `sub` list (everything else unchanged): the very call that
    was refused now reads prod's bucket. `sub` is the only thing between the environments."""
    assert outcomes["dev-identity-prod-role"].reply.status == 502
    prod = worlds["prod"]
    dev_uami = cloud.hosts["uami"].plan.app.identity.principal_id
    document = json.loads(prod.trust_policy)
    condition = document["Statement"][0]["Condition"]["StringEquals"]
    sub_key = next(k for k in condition if k.endswith(":sub"))
    condition[sub_key] = sorted([*condition[sub_key], dev_uami])
    try:
        cloud.update_trust_policy(replace(prod, trust_policy=json.dumps(document)))
        reply = cloud.call("dev-to-prod", "list")
        assert reply.status == 200, reply.body
        assert reply.body["aws"]["bucket"] == prod.bucket
    finally:
        cloud.update_trust_policy(prod)
    # The session it got lasts until it expires, as in AWS; a fresh process asks STS again.
    cloud.restart_app("dev-to-prod")
    assert cloud.call("dev-to-prod", "list").status == 502
