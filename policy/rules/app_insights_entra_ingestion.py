"""Function apps send telemetry with their identity, never with an instrumentation key.

`APPINSIGHTS_INSTRUMENTATIONKEY` is key-only ingestion. A connection string carries the same
key, so an app may set `APPLICATIONINSIGHTS_CONNECTION_STRING` only together with
`APPLICATIONINSIGHTS_AUTHENTICATION_STRING` = `Authorization=AAD` (plus `ClientId=...` for a
user-assigned identity), as infra/app/api.bicep of Azure-Samples/functions-quickstart-python-
http-azd does; the stack rule `app-insights-connection-string-local-auth-off` checks that the
component it points to refuses the key.
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import Severity

from .common import Props, app_settings, resource_policy

INSTRUMENTATION_KEY = "APPINSIGHTS_INSTRUMENTATIONKEY"
CONNECTION_STRING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
AUTHENTICATION_STRING = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"


def is_entra_authentication(value: Any) -> bool:
    """`Authorization=AAD` among the `;`-separated parts of an authentication string."""
    if not isinstance(value, str):
        return False
    parts = {part.strip().lower() for part in value.split(";")}
    return "authorization=aad" in parts


def check_app_insights_entra_ingestion(resource_type: str, props: Props) -> list[str]:
    """No instrumentation key setting; a connection string only with Entra authentication."""
    settings = dict(app_settings(resource_type, props))
    problems = []
    if INSTRUMENTATION_KEY in settings:
        problems.append(
            f"app setting {INSTRUMENTATION_KEY} ingests with the instrumentation key alone; use "
            f"{CONNECTION_STRING} with {AUTHENTICATION_STRING}=Authorization=AAD and a component "
            "whose local auth is disabled"
        )
    keyed = [
        name
        for name, value in settings.items()
        if isinstance(value, str) and "instrumentationkey=" in value.lower()
    ]
    if (CONNECTION_STRING in settings or keyed) and AUTHENTICATION_STRING not in settings:
        problems.append(
            f"{CONNECTION_STRING} (or another setting holding an InstrumentationKey) without "
            f"{AUTHENTICATION_STRING}: the app would ingest with the key; set "
            "Authorization=AAD (ClientId=<client id>;Authorization=AAD for a user-assigned "
            "identity) and grant it Monitoring Metrics Publisher on the component"
        )
    elif AUTHENTICATION_STRING in settings:
        value = settings[AUTHENTICATION_STRING]
        # None: not known yet (preview); the rule runs again with the value before `up`.
        if value is not None and not is_entra_authentication(value):
            problems.append(f"{AUTHENTICATION_STRING} must contain Authorization=AAD")
    return problems


POLICY = resource_policy(
    "app-insights-entra-ingestion",
    "No APPINSIGHTS_INSTRUMENTATIONKEY; APPLICATIONINSIGHTS_CONNECTION_STRING only with "
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING=Authorization=AAD.",
    check_app_insights_entra_ingestion,
    Severity.HIGH,
)
