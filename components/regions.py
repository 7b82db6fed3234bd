"""Where a stack may run: Azure locations that offer Flex Consumption and AWS regions of the
partitions we build ARNs for, each with a named opt-in for a region newer than the list.

Both checks are used by the settings of the environment stacks (components/settings.py) and of
the foundation (components/foundation_settings.py).
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Callable, Iterable
from importlib import resources

import botocore

from components.validation import AWS_REGION, AZURE_LOCATION, config_key

# Where a stack may run. Both lists are checked by `crosscloud:azureLocation` /
# `crosscloud:awsRegion`; a region newer than the list passes with the explicit opt-in
# `crosscloud:allowUnlistedAzureLocation` / `crosscloud:allowUnlistedAwsRegion`, and
# `make preflight` asks ARM which locations offer Flex Consumption today.
#
# Flex Consumption locations: the `@allowed` list of Microsoft's Flex quickstart
# (Azure-Samples/functions-quickstart-python-http-azd infra/main.bicep, commit 0bb0f10), which is
# what `az functionapp list-flexconsumption-locations` (ARM
# `providers/Microsoft.Web/geoRegions?sku=FlexConsumption`) answered when it was written; the
# current list is on https://learn.microsoft.com/azure/azure-functions/flex-consumption-how-to.
# One entry of that list is left out: `eastus2euap` ("East US 2 EUAP"), a canary region of the
# Early Updates Access Program where Azure rolls out changes first; ordinary subscriptions cannot
# deploy there, so it passes only with `crosscloud:allowUnlistedAzureLocation`.
FLEX_CONSUMPTION_LOCATIONS = frozenset(
    {
        "australiaeast",
        "australiasoutheast",
        "brazilsouth",
        "canadacentral",
        "centralindia",
        "centralus",
        "eastasia",
        "eastus",
        "eastus2",
        "francecentral",
        "germanywestcentral",
        "italynorth",
        "japaneast",
        "koreacentral",
        "northcentralus",
        "northeurope",
        "norwayeast",
        "southafricanorth",
        "southcentralus",
        "southeastasia",
        "southindia",
        "spaincentral",
        "swedencentral",
        "uaenorth",
        "uksouth",
        "ukwest",
        "westcentralus",
        "westeurope",
        "westus",
        "westus2",
        "westus3",
    }
)
# The AWS partitions an ARN of ours may name (components/foundation_settings.py, the OIDC provider
# ARN above): a region outside them has no IAM OIDC federation with Entra we can build.
AWS_PARTITIONS = ("aws", "aws-cn", "aws-us-gov")


@functools.cache
def _aws_partitions() -> dict[str, tuple[re.Pattern[str], frozenset[str]]]:
    """Each partition's region pattern and regions, from botocore's `data/partitions.json`: the
    file the AWS SDK's endpoint rules resolve regions with, updated with every botocore release
    (botocore is pinned in requirements.txt), so a new region arrives with an upgrade."""
    data = json.loads((resources.files(botocore) / "data" / "partitions.json").read_text())
    return {
        partition["id"]: (
            re.compile(partition["regionRegex"]),
            frozenset(name for name in partition["regions"] if not name.endswith("-global")),
        )
        for partition in data["partitions"]
        if partition["id"] in AWS_PARTITIONS
    }


def aws_partition(region: str) -> str | None:
    """The partition (`aws`, `aws-cn`, `aws-us-gov`) a region code belongs to, listed or not."""
    partitions = _aws_partitions()
    for name, (_pattern, regions) in partitions.items():
        if region in regions:
            return name
    for name, (pattern, _regions) in partitions.items():
        if pattern.fullmatch(region):
            return name
    return None


def _nearest(value: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def aws_region_problem(allow_unlisted: bool) -> Callable[[str], str | None]:
    """A check for `crosscloud:awsRegion`: a region of a partition botocore lists, or - with
    `crosscloud:allowUnlistedAwsRegion` - one shaped like a region of such a partition."""

    def problem(value: str) -> str | None:
        shape = "an AWS region code such as eu-west-1 or us-east-2"
        if not AWS_REGION.fullmatch(value):
            return shape
        partitions = _aws_partitions()
        listed = {r for _pattern, regions in partitions.values() for r in regions}
        if value in listed:
            return None
        if allow_unlisted and aws_partition(value):
            return None
        return (
            f"a region of the {', '.join(AWS_PARTITIONS)} partitions (botocore's partitions.json)"
            + _nearest(value, listed)
            + f"; for a region newer than that list, set {config_key('allowUnlistedAwsRegion')}"
            " to true"
        )

    return problem


def azure_location_problem(allow_unlisted: bool) -> Callable[[str], str | None]:
    """A check for `crosscloud:azureLocation`: a location that offers Flex Consumption, or - with
    `crosscloud:allowUnlistedAzureLocation` - any Azure location name."""

    def problem(value: str) -> str | None:
        if not AZURE_LOCATION.fullmatch(value):
            return "an Azure region name such as westeurope or eastus2 (lowercase, no spaces)"
        if value in FLEX_CONSUMPTION_LOCATIONS or allow_unlisted:
            return None
        return (
            "a location that offers Flex Consumption"
            + _nearest(value, FLEX_CONSUMPTION_LOCATIONS)
            + "; `az functionapp list-flexconsumption-locations` (or `make preflight`) lists "
            f"today's; for one newer than our list, set {config_key('allowUnlistedAzureLocation')}"
            " to true"
        )

    return problem
