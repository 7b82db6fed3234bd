"""Function apps are HTTPS only and require TLS 1.2 or later, on the site and on SCM."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import Severity

from .common import WEB_APP, Props, is_flex_app, is_function_app, resource_policy

MIN_TLS = (1, 2)


def _tls_version(value: Any) -> tuple[int, ...] | None:
    """`"1.2"` -> (1, 2); None for anything that is not a dotted version."""
    try:
        return tuple(int(part) for part in str(value).split("."))
    except ValueError:
        return None


def check_function_app_transport(resource_type: str, props: Props) -> list[str]:
    """Function apps: HTTPS only, TLS 1.2+ (site and SCM), FTP(S) disabled where FTP exists.

    Flex Consumption has no FTP and refuses `ftpsState` itself (flex_site_config.py forbids it
    there); every other plan has an FTP endpoint that `ftpsState: Disabled` closes.
    """
    if resource_type != WEB_APP or not is_function_app(props):
        return []
    problems: list[str] = []
    if props.get("httpsOnly") is not True:
        problems.append("httpsOnly must be true: plain HTTP would carry function keys in clear")
    site_config = props.get("siteConfig")
    site_config = site_config if isinstance(site_config, Mapping) else {}
    min_tls = site_config.get("minTlsVersion")
    version = _tls_version(min_tls)
    if version is None or version < MIN_TLS:
        problems.append(f"siteConfig.minTlsVersion must be 1.2 or 1.3, not {min_tls!r}")
    # The SCM (Kudu) site takes the deployments; when it is set it must not be weaker.
    if "scmMinTlsVersion" in site_config:
        scm_tls = site_config["scmMinTlsVersion"]
        scm_version = _tls_version(scm_tls)
        if scm_version is None or scm_version < MIN_TLS:
            problems.append(f"siteConfig.scmMinTlsVersion must be 1.2 or 1.3, not {scm_tls!r}")
    if not is_flex_app(props) and site_config.get("ftpsState") != "Disabled":
        problems.append(
            f"siteConfig.ftpsState must be Disabled, not {site_config.get('ftpsState')!r} "
            "(outside Flex Consumption, which has no FTP)"
        )
    return problems


POLICY = resource_policy(
    "function-app-https-tls12-no-ftp",
    "Function apps are HTTPS only, require TLS 1.2 or later and, outside Flex Consumption "
    "(which has no FTP), have FTP(S) disabled.",
    check_function_app_transport,
    Severity.HIGH,
)
