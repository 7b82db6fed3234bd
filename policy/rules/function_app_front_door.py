"""No function app of the stack is left open: each is told who may call it (the reader API's
app settings), and App Service authentication ("Easy Auth"), where used, requires it.

The routes run at `AuthLevel.ANONYMOUS` and the function checks an Entra token itself
(function_src/crosscloud_fn/caller_auth.py, docs/callers.md). Without
`CROSSCLOUD_TENANT_ID`, `CROSSCLOUD_CALLER_AUDIENCE` and `CROSSCLOUD_CALLER_CLIENT_ID` it answers
500 to everyone rather than let anyone in; this rule stops such an app before it is deployed.
An `AZURE_AUTHORITY_HOST` other than Entra's would choose the keys the function trusts, and a
caller audience equal to the federation audience would admit tokens meant for AWS.
An Easy Auth configuration that lets anonymous callers through (`requireAuthentication` false
or `unauthenticatedClientAction: AllowAnonymous`) would look like a door while being open.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from pulumi_policy import Severity

from .common import (
    WEB_APP,
    WEB_APP_SETTINGS,
    Finding,
    StackResource,
    app_settings,
    is_function_app,
    links,
    names,
    prop,
    stack_policy,
)

CALLER_SETTINGS = (
    "CROSSCLOUD_TENANT_ID",
    "CROSSCLOUD_CALLER_AUDIENCE",
    "CROSSCLOUD_CALLER_CLIENT_ID",
)
"""What the front door needs; the role has a default (`CrossCloud.Read`)."""
AUTHORITY_HOST = "AZURE_AUTHORITY_HOST"
"""Where the function fetches the keys it trusts callers' tokens with (caller_keys.py)."""
ENTRA_AUTHORITY_HOSTS = frozenset(
    {
        # azure-identity's AzureAuthorityHosts (azure/identity/_constants.py): AZURE_PUBLIC_CLOUD,
        # AZURE_GOVERNMENT, AZURE_CHINA; and China's other name, an alias of AZURE_CHINA in
        # azure-identity's KNOWN_ALIASES (azure/identity/_internal/shared_token_cache.py).
        "login.microsoftonline.com",
        "login.microsoftonline.us",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
    }
)
"""The Entra authority hosts an app may name: any other host would pick the keys, and so
who gets in."""
FEDERATION_AUDIENCE = "CROSSCLOUD_AUDIENCE"
AUTH_SETTINGS_V2 = "azure-native:web:WebAppAuthSettingsV2"
AUTH_SETTINGS_V1 = "azure-native:web:WebAppAuthSettings"
OPEN_ACTION = "AllowAnonymous"


def _settings_of(app: StackResource, resources: Sequence[StackResource]) -> dict[str, object]:
    """The app's settings: inline, and from WebAppApplicationSettings resources naming it."""
    found = dict(app_settings(WEB_APP, app.props))
    app_names = names(app, "name")
    for other in resources:
        if other.resource_type == WEB_APP_SETTINGS and links(other, "name", app, app_names):
            found.update(app_settings(WEB_APP_SETTINGS, other.props))
    return found


def _missing_callers(app: StackResource, resources: Sequence[StackResource]) -> list[str]:
    settings = _settings_of(app, resources)
    # None: not known yet (preview); the engine checks again with the value before `up`.
    return [
        name
        for name in CALLER_SETTINGS
        if name not in settings or (settings[name] is not None and not str(settings[name]))
    ]


def authority_host_problem(value: str) -> str | None:
    """Why an AZURE_AUTHORITY_HOST value is not an Entra authority host (given as azure-identity
    takes it: a host name, or an https:// URL without path, normalize_authority), or None."""
    text = value.strip().rstrip("/")
    if not text:
        return None  # the function then uses the public cloud's (caller_auth.authority_host)
    url = urlsplit(text if "://" in text else f"https://{text}")
    try:
        port = url.port
    except ValueError:
        port = -1
    if (
        url.scheme != "https"
        or url.path
        or url.query
        or url.fragment
        or url.username is not None
        or port is not None
        or (url.hostname or "") not in ENTRA_AUTHORITY_HOSTS
    ):
        return (
            f"{AUTHORITY_HOST} {value!r} is not an Entra authority host (one of "
            f"{', '.join(sorted(ENTRA_AUTHORITY_HOSTS))}, optionally as https://<host>): the app "
            "would trust that host's signing keys for its callers"
        )
    return None


def _settings_problems(app: StackResource, resources: Sequence[StackResource]) -> list[str]:
    """Values that open the door: an authority host that is not Entra's, and a caller audience
    that is the federation audience (callers would present tokens for AWS's audience, the one
    the apps' identities hold the AWS role with). Unknown values (preview) pass."""
    settings = _settings_of(app, resources)
    problems = []
    authority = settings.get(AUTHORITY_HOST)
    if authority is not None and (problem := authority_host_problem(str(authority))):
        problems.append(problem)
    caller = str(settings.get("CROSSCLOUD_CALLER_AUDIENCE") or "").strip()
    federation = settings.get(FEDERATION_AUDIENCE)
    if (
        caller
        and federation is not None
        and caller.casefold() == str(federation).strip().casefold()
    ):
        problems.append(
            f"CROSSCLOUD_CALLER_AUDIENCE equals {FEDERATION_AUDIENCE} ({caller!r}): a caller "
            "must never present the AWS audience; use the reader API's audience"
        )
    return problems


def _easy_auth_problem(resource: StackResource) -> str | None:
    props = resource.props
    if resource.resource_type == AUTH_SETTINGS_V2:
        platform = prop(props, "platform")
        if not (isinstance(platform, Mapping) and prop(platform, "enabled") is True):
            return None  # not used
        validation = prop(props, "globalValidation")
        validation = validation if isinstance(validation, Mapping) else {}
        if prop(validation, "requireAuthentication") is not True:
            return "globalValidation.requireAuthentication must be true"
        if prop(validation, "unauthenticatedClientAction") == OPEN_ACTION:
            return f"globalValidation.unauthenticatedClientAction must not be {OPEN_ACTION}"
        return None
    if (
        resource.resource_type == AUTH_SETTINGS_V1
        and prop(props, "enabled") is True
        and prop(props, "unauthenticatedClientAction") in (None, OPEN_ACTION)
    ):
        return f"unauthenticatedClientAction must be set and not {OPEN_ACTION}"
    return None


def check_front_door(resources: Sequence[StackResource]) -> list[Finding]:
    findings = [
        Finding(
            f"function app without the reader API's settings ({', '.join(missing)}): it could "
            "not tell who may call; set them from the ReaderApi component "
            "(components/reader_api.py)",
            app.urn,
        )
        for app in resources
        if app.resource_type == WEB_APP
        and is_function_app(app.props)
        and (missing := _missing_callers(app, resources))
    ]
    findings.extend(
        Finding(f"function app {problem}", app.urn)
        for app in resources
        if app.resource_type == WEB_APP and is_function_app(app.props)
        for problem in _settings_problems(app, resources)
    )
    for resource in resources:
        problem = _easy_auth_problem(resource)
        if problem:
            findings.append(
                Finding(
                    f"{resource.resource_type} lets anonymous callers in: {problem} "
                    "(Return401 for a function API)",
                    resource.urn,
                )
            )
    return findings


POLICY = stack_policy(
    "function-app-callers-authenticated",
    "Every function app is told who may call it (CROSSCLOUD_TENANT_ID, CROSSCLOUD_CALLER_AUDIENCE, "
    "CROSSCLOUD_CALLER_CLIENT_ID) with an Entra authority host and a caller audience other than "
    "the federation audience, and App Service authentication, where used, requires "
    "authentication: no HTTP-triggered app of the stack is left open.",
    check_front_door,
    Severity.CRITICAL,
)
