"""No IAM users or keys, no application passwords or certificates, no basic-auth publishing."""

from __future__ import annotations

from collections.abc import Mapping

from pulumi_policy import Severity

from .common import (
    AZUREAD_APPLICATION,
    WEB_APP_FTP_ALLOWED,
    WEB_APP_SCM_ALLOWED,
    Props,
    resource_policy,
)

# Resource types that exist only to hold a long-lived secret, and why each is refused.
CREDENTIAL_TYPES: Mapping[str, str] = {
    "aws:iam/user:User": "an IAM user is a long-lived identity; use a role assumed by federation",
    "aws:iam/accessKey:AccessKey": "an IAM access key is a long-lived secret",
    "aws:iam/userLoginProfile:UserLoginProfile": "an IAM console password is a long-lived secret",
    "aws:iam/serviceSpecificCredential:ServiceSpecificCredential": (
        "a service-specific credential is a long-lived secret"
    ),
    "aws:iam/signingCertificate:SigningCertificate": "an IAM signing certificate is a user key",
    "azuread:index/applicationPassword:ApplicationPassword": (
        "an application password (client secret) is a long-lived secret"
    ),
    "azuread:index/servicePrincipalPassword:ServicePrincipalPassword": (
        "a service principal password (client secret) is a long-lived secret"
    ),
    "azuread:index/applicationCertificate:ApplicationCertificate": (
        "a certificate credential means a private key kept somewhere"
    ),
    "azuread:index/servicePrincipalCertificate:ServicePrincipalCertificate": (
        "a certificate credential means a private key kept somewhere"
    ),
}


def check_long_lived_credentials(resource_type: str, props: Props) -> list[str]:
    """No IAM users or access keys, no app passwords/certificates, no basic-auth publishing."""
    if resource_type in CREDENTIAL_TYPES:
        return [f"{resource_type} is not allowed: {CREDENTIAL_TYPES[resource_type]}"]
    if resource_type == AZUREAD_APPLICATION and props.get("password"):
        return ["the application's password block creates a client secret; use federation"]
    if resource_type in (WEB_APP_FTP_ALLOWED, WEB_APP_SCM_ALLOWED) and props.get("allow"):
        return [
            "basic-auth publishing credentials (a user name and password) must stay off: "
            "set allow to false"
        ]
    return []


POLICY = resource_policy(
    "no-long-lived-credentials",
    "No IAM users or access keys, no Entra application/service principal passwords or "
    "certificates, no basic-auth publishing credentials.",
    check_long_lived_credentials,
    Severity.CRITICAL,
)
