"""No FTP basic-auth policy on a Flex Consumption app: Flex has no FTP endpoint.

azurerm's `function_app_flex_consumption` (internal/services/appservice/
function_app_flex_consumption_resource.go) sets only the SCM policy (UpdateScmAllowed) and never
the FTP one; MicrosoftDocs' Flex deprecations: "FTPS not supported". A
`basicPublishingCredentialsPolicies/ftp` resource has nothing to govern there, and it would
suggest an FTP door that a reader then believes is closed by it.
"""

from __future__ import annotations

from collections.abc import Sequence

from pulumi_policy import Severity

from .common import (
    WEB_APP,
    WEB_APP_FTP_ALLOWED,
    Finding,
    StackResource,
    is_flex_app,
    links,
    names,
    stack_policy,
)


def check_no_ftp_policy_on_flex(resources: Sequence[StackResource]) -> list[Finding]:
    """A WebAppFtpAllowed that refers to a Flex app (by dependency, or by the app's name)."""
    flex_apps = [r for r in resources if r.resource_type == WEB_APP and is_flex_app(r.props)]
    return [
        Finding(
            "azure-native:web:WebAppFtpAllowed on a Flex Consumption app: Flex has no FTP; "
            "keep only the SCM basic-auth policy (WebAppScmAllowed, allow false)",
            policy.urn,
        )
        for policy in resources
        if policy.resource_type == WEB_APP_FTP_ALLOWED
        and any(links(policy, "name", app, names(app, "name")) for app in flex_apps)
    ]


POLICY = stack_policy(
    "flex-app-no-ftp-policy",
    "No FTP basic-auth publishing policy (WebAppFtpAllowed) on a Flex Consumption app, which "
    "has no FTP endpoint; only the SCM policy applies.",
    check_no_ftp_policy_on_flex,
    Severity.LOW,
)
