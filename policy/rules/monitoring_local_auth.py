"""Log Analytics workspaces and Application Insights components accept Entra identities only.

Local auth is the workspace's shared keys and the component's instrumentation key: with it on,
anyone holding a connection string can write telemetry (and, for the workspace, agents and the
query API take keys). Azure's default is on for both; the Flex templates
(Azure-Samples/functions-quickstart-python-http-azd, infra/main.bicep) turn it off.
"""

from __future__ import annotations

from collections.abc import Mapping

from pulumi_policy import Severity

from .common import Props, resource_policy

WORKSPACE = "azure-native:operationalinsights:Workspace"
COMPONENT = "azure-native:applicationinsights:Component"


def check_monitoring_local_auth(resource_type: str, props: Props) -> list[str]:
    """The workspace sets features.disableLocalAuth and the component disableLocalAuth."""
    if resource_type == WORKSPACE:
        features = props.get("features")
        if isinstance(features, Mapping) and features.get("disableLocalAuth") is True:
            return []
        return [
            "features.disableLocalAuth must be true: the workspace's shared keys would let "
            "agents and API callers in without an Entra identity"
        ]
    if resource_type == COMPONENT:
        if props.get("disableLocalAuth") is True:
            return []
        return [
            "disableLocalAuth must be true: otherwise the instrumentation key in the connection "
            "string admits telemetry from anyone who has it"
        ]
    return []


POLICY = resource_policy(
    "monitoring-local-auth-disabled",
    "Log Analytics workspaces and Application Insights components have local (key) "
    "authentication disabled.",
    check_monitoring_local_auth,
    Severity.HIGH,
)
