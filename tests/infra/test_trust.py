"""`trust.pinning_problems`: what `make verify` says about a deployed trust policy."""

from __future__ import annotations

from components import trust

TENANT = "11111111-2222-3333-4444-555555555555"
AUDIENCE = f"api://{TENANT}/AWS-Federation-App"
PROVIDER = f"arn:aws:iam::123456789012:oidc-provider/sts.windows.net/{TENANT}/"
IDS = ["aaaaaaaa-0000-4000-8000-000000000001", "aaaaaaaa-0000-4000-8000-000000000002"]


def policy(subjects=IDS):
    return trust.trust_policy(PROVIDER, TENANT, AUDIENCE, subjects)


def test_the_programs_own_policy_has_no_problem():
    assert trust.pinning_problems(policy(), TENANT, AUDIENCE, IDS) == []


def test_a_missing_sub_condition_is_named():
    document = policy()
    del document["Statement"][0]["Condition"]["StringEquals"][f"sts.windows.net/{TENANT}/:sub"]
    (problem,) = trust.pinning_problems(document, TENANT, AUDIENCE, IDS)
    assert "no StringEquals on sub" in problem


def test_extra_and_missing_ids_and_a_wrong_audience_are_named():
    stranger = "bbbbbbbb-0000-4000-8000-000000000003"
    problems = trust.pinning_problems(policy([IDS[0], stranger]), TENANT, "api://other", IDS)
    assert any("aud is" in p for p in problems)
    assert any(stranger in p and "does not" in p for p in problems)
    assert any(IDS[1] in p and "lacks" in p for p in problems)


def test_a_policy_that_allows_nothing_is_named():
    document = {"Version": "2012-10-17", "Statement": []}
    assert trust.pinning_problems(document, TENANT, AUDIENCE, IDS) == [
        "no statement allows sts:AssumeRoleWithWebIdentity"
    ]
