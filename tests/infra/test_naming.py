"""Physical names: deterministic per stack, distinct across stacks, within each service's rules."""

from __future__ import annotations

import re

import pytest

from components.naming import Names, bucket_name_problem

SEED = "sub-1/123456789012"


@pytest.mark.parametrize("stack", ["dev", "Prod_EU.1", "a-very-long-stack-name-indeed"])
@pytest.mark.parametrize("prefix", ["ab", "crosscloud", "acme-2024-xy"])
def test_names_obey_service_rules(prefix, stack):
    names = Names(prefix, stack, SEED)
    for role in ("data", "host"):
        assert re.fullmatch(r"[a-z0-9]{3,24}", names.storage_account(role))
    assert bucket_name_problem(names.bucket) is None
    for kind in ("sami", "uami"):
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]{0,58}[a-z0-9]", names.function_app(kind))
    assert len(names.resource_group) <= 90


def test_names_are_stable_and_differ_between_stacks_and_accounts():
    assert Names("cc", "dev", SEED).bucket == Names("cc", "dev", SEED).bucket
    assert Names("cc", "dev", SEED).bucket != Names("cc", "prod", SEED).bucket
    assert Names("cc", "dev", SEED).storage_account("data") != Names(
        "cc", "dev", "sub-2/123456789012"
    ).storage_account("data")
    assert Names("cc", "dev", SEED).app_role_id == Names("cc", "dev", SEED).app_role_id


@pytest.mark.parametrize(
    "name", ["ab", "-abc", "abc-", "ABC", "a_b", "10.0.0.1", "xn--abc", "abc-s3alias", "a..b"]
)
def test_bucket_rule_violations_are_named(name):
    assert bucket_name_problem(name)
