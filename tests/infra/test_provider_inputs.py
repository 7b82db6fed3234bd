"""What the providers themselves say about the inputs the program sends (issue 9, 11, 12 review).

Mocks accept every input; the providers do not stay silent about all of them. An input a
provider has deprecated prints a warning on every real `pulumi preview` and `up` (the bridge
reports the schema's deprecation message at Check), and goes away in the provider's next major
version, breaking the program then. The installed SDKs mark such inputs: the resource class's
property getter is wrapped by `_utilities.deprecated`, which tags it `_pulumi_deprecated_callable`
(pulumi_aws/_utilities.py, and the same in pulumi_azure_native and pulumi_azuread).
"""

from __future__ import annotations

import importlib
from functools import cache

import pytest
from pulumi.runtime.rpc import get_resource_module

from localcloud.mocked_program import ProgramRun, run_foundation

SDKS = {"aws": "pulumi_aws", "azure-native": "pulumi_azure_native", "azuread": "pulumi_azuread"}


@cache
def deprecated_inputs(token: str) -> frozenset[str]:
    """Engine (camelCase) names of the top-level properties the SDK marks deprecated for `token`."""
    pkg, mod, _ = token.split(":")
    importlib.import_module(SDKS[pkg])  # importing an SDK registers its resource modules
    module = get_resource_module(pkg, mod, "")
    assert module is not None, f"no SDK module registered for {token}"
    info = module.mod_info  # type: ignore[attr-defined]
    cls = getattr(importlib.import_module(info["fqn"]), info["classes"][token])
    names = set()
    for attribute in vars(cls).values():
        getter = getattr(attribute, "fget", None)
        if getter is not None and hasattr(getter, "_pulumi_deprecated_callable"):
            names.add(getter._pulumi_name)
    return frozenset(names)


def test_the_probe_sees_a_deprecated_input():
    # terraform-provider-aws#46262 deprecated expected_bucket_owner on the bucket configuration
    # resources (removal: #46292); the probe must see it, or the test below proves nothing.
    assert "expectedBucketOwner" in deprecated_inputs("aws:s3/bucketLogging:BucketLogging")


@pytest.fixture(scope="module")
def foundation_run() -> ProgramRun:
    return run_foundation()


@pytest.mark.parametrize("which", ["program", "foundation"])
def test_no_resource_sends_an_input_its_provider_deprecated(which, any_run, foundation_run):
    run = any_run if which == "program" else foundation_run
    sent = {
        (r.type, r.name, name)
        for r in run.resources
        if r.custom and r.type.split(":")[0] in SDKS  # not providers, dynamic resources
        for name in r.inputs
        if name in deprecated_inputs(r.type)
    }
    assert sent == set()
