"""A run of the program under mocks prints no warning: not through Pulumi's log (what `pulumi
preview` shows as warnings), not on stderr, not through Python's warnings module.

A warning on every run teaches people to ignore warnings. The filters of pyproject.toml still
apply (pulumi_aws's own DeprecationWarnings, raised while its modules load, are not ours), and
so do Python's defaults (ResourceWarnings about event loops that the mock runtime itself opens
stay hidden, as they would for anyone running the tests).
"""

from __future__ import annotations

import warnings

import pytest

from localcloud.mocked_program import MockCloud, run_program


@pytest.mark.parametrize(
    ("config", "cloud"),
    [
        ({}, MockCloud()),
        (
            {"s3KeyPrefix": "reports/", "audience": "appId"},
            MockCloud("aws-us-gov", "ServicePrincipal"),
        ),
        ({"deployerPrincipalType": "ServicePrincipal"}, MockCloud(deployer_type=None)),
    ],
    ids=["defaults", "us-gov-prefix-app-id", "ci-override"],
)
def test_the_mocked_program_prints_no_warning(
    capfd: pytest.CaptureFixture[str], config: dict[str, str], cloud: MockCloud
) -> None:
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        run = run_program(config, cloud=cloud)
    _, err = capfd.readouterr()
    assert run.resources  # the program ran
    assert run.warnings == []
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []
    assert err == ""
