"""A connection string is an address, not a credential, only when its component has local auth
off: then the instrumentation key in it admits nothing. The stack must show that component."""

from __future__ import annotations

from collections.abc import Sequence

from pulumi_policy import Severity

from .app_insights_entra_ingestion import CONNECTION_STRING
from .common import Finding, StackResource, app_settings, prop, stack_policy
from .monitoring_local_auth import COMPONENT

SETTINGS_PROPS = ("siteConfig", "properties")


def _component_of(
    resource: StackResource, value: object, components: Sequence[StackResource]
) -> StackResource | None:
    """The component the setting's value came from: by value, else by dependency (preview)."""
    for component in components:
        if isinstance(value, str) and value and prop(component.props, "connectionString") == value:
            return component
    if value is None:
        for key in SETTINGS_PROPS:
            for dependency in resource.property_dependencies.get(key) or ():
                urn = getattr(dependency, "urn", None)
                match = next((c for c in components if c.urn == urn), None)
                if match is not None:
                    return match
    return None


def check_connection_string_needs_local_auth_off(
    resources: Sequence[StackResource],
) -> list[Finding]:
    """Each APPLICATIONINSIGHTS_CONNECTION_STRING belongs to a component of this stack whose
    local auth is disabled."""
    components = [r for r in resources if r.resource_type == COMPONENT]
    findings = []
    for resource in resources:
        settings = dict(app_settings(resource.resource_type, resource.props))
        if CONNECTION_STRING not in settings:
            continue
        component = _component_of(resource, settings[CONNECTION_STRING], components)
        if component is None:
            findings.append(
                Finding(
                    f"{CONNECTION_STRING} points to no Application Insights component of this "
                    "stack, so nothing shows its local auth is off (with it on, the key in the "
                    "string is a credential); manage the component here with disableLocalAuth",
                    resource.urn,
                )
            )
        elif prop(component.props, "disableLocalAuth") is not True:
            findings.append(
                Finding(
                    f"{CONNECTION_STRING} is allowed only for a component with disableLocalAuth "
                    "true; this one accepts its instrumentation key",
                    resource.urn,
                )
            )
    return findings


POLICY = stack_policy(
    "app-insights-connection-string-local-auth-off",
    "APPLICATIONINSIGHTS_CONNECTION_STRING only for a component of the stack with local auth off.",
    check_connection_string_needs_local_auth_off,
    Severity.HIGH,
)
