"""Compliant resources the rule tests start from and break one property at a time."""

from __future__ import annotations

import json
from typing import Any

from components import trust
from policy.rules.common import IAM_ROLE, PUBLIC_ACCESS_BLOCK, WEB_APP
from policy.rules.s3_public_access_block_complete import PUBLIC_ACCESS_FLAGS
from policy.tests.engine import Resource, evaluate

TENANT = "11111111-2222-3333-4444-555555555555"
PROVIDER_ARN = f"arn:aws:iam::123456789012:oidc-provider/sts.windows.net/{TENANT}/"
PREFIX = f"sts.windows.net/{TENANT}/"
AUDIENCE = f"api://{TENANT}/AWS-Federation-App"
SUBJECTS = ["0f0e0d0c-0b0a-4909-8807-060504030201", "1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d"]
BUCKET = "crosscloud-dev-19cdf400"

IDENTITY_SETTINGS = [
    {"name": "AzureWebJobsStorage__accountName", "value": "crosscloudhost19cdf400"},
    {"name": "AzureWebJobsStorage__credential", "value": "managedidentity"},
    # Who may call (policy/rules/function_app_front_door.py).
    {"name": "CROSSCLOUD_TENANT_ID", "value": TENANT},
    {"name": "CROSSCLOUD_CALLER_AUDIENCE", "value": f"api://{TENANT}/crosscloud-dev-reader-api"},
    {"name": "CROSSCLOUD_CALLER_CLIENT_ID", "value": "3bbe8844-e4c7-50a1-9de4-aa94d93154d0"},
]
FUNCTION_APP = {
    "kind": "functionapp,linux",
    "httpsOnly": True,
    "siteConfig": {
        "appSettings": IDENTITY_SETTINGS,
        "minTlsVersion": "1.2",
        "scmMinTlsVersion": "1.2",
        "ftpsState": "Disabled",
    },
}
# A Flex Consumption app as the program sends it: functionAppConfig, and a siteConfig without
# anything Flex refuses (components/function_app.py).
FLEX_APP = {
    "name": "crosscloud-dev-sami-19cdf400",
    "kind": "functionapp,linux",
    "httpsOnly": True,
    "functionAppConfig": {
        "deployment": {
            "storage": {
                "type": "blobContainer",
                "value": "https://crosscloudhost19cdf400.blob.core.windows.net/deploy-sami",
                "authentication": {"type": "SystemAssignedIdentity"},
            }
        },
        "runtime": {"name": "python", "version": "3.12"},
        "scaleAndConcurrency": {"instanceMemoryMB": 2048, "maximumInstanceCount": 40},
    },
    "siteConfig": {
        "appSettings": IDENTITY_SETTINGS,
        "minTlsVersion": "1.2",
        "scmMinTlsVersion": "1.2",
        "http20Enabled": True,
    },
}
ALL_BLOCKED = dict.fromkeys(PUBLIC_ACCESS_FLAGS, True)


def messages(resource: Resource) -> list[str]:
    return [v.message for v in evaluate([resource])]


def function_app(**site_config: Any) -> dict[str, Any]:
    """FUNCTION_APP (a function app outside Flex) with some site config properties changed."""
    return {**FUNCTION_APP, "siteConfig": {**FUNCTION_APP["siteConfig"], **site_config}}


def flex_app(**site_config: Any) -> dict[str, Any]:
    """FLEX_APP with some site config properties changed."""
    return {**FLEX_APP, "siteConfig": {**FLEX_APP["siteConfig"], **site_config}}


def web_app(props: dict[str, Any]) -> Resource:
    return Resource(WEB_APP, props)


def bucket_and_block(block: dict[str, Any] | None, *, by_dependency: bool) -> list[Resource]:
    bucket = Resource("aws:s3/bucket:Bucket", {"bucket": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}"})
    if block is None:
        return [bucket]
    deps = {"bucket": [bucket.urn]} if by_dependency else {}
    pab = Resource(PUBLIC_ACCESS_BLOCK, block, name="pab", property_dependencies=deps)
    return [bucket, pab]


def project_trust(**changes: Any) -> dict[str, Any]:
    """The program's own trust policy (components/trust.py), with one statement's keys changed."""
    document = trust.trust_policy(PROVIDER_ARN, TENANT, AUDIENCE, SUBJECTS)
    document["Statement"][0].update(changes)
    return document


def role(document: Any) -> Resource:
    policy = document if isinstance(document, str) else json.dumps(document)
    return Resource(IAM_ROLE, {"name": "S3AccessRoleFromAzure", "assumeRolePolicy": policy})
