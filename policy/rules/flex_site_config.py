"""Flex Consumption apps set no site property that Flex refuses or ignores.

Flex Consumption answers 400 (ARM extended code 51021) to a site whose siteConfig carries any of
these, e.g. "The following list of 5 site configuration properties (Site.SiteConfig.FtpsState,
Site.SiteConfig.Use32BitWorkerProcess, Site.SiteConfig.PreWarmedInstanceCount,
Site.SiteConfig.NetFrameworkVersion, Site.SiteConfig.FunctionsRuntimeScaleMonitoringEnabled) for
Flex Consumption sites is invalid" (Azure/azure-cli#31414; LinuxFxVersion:
Azure/terraform-azurerm-avm-res-web-site#345; FunctionAppScaleLimit:
Azure/azure-functions-host#10643; NetFrameworkVersion, which web.SiteConfigArgs adds by itself:
pulumi/pulumi-azure-native#4168). The rest are in MicrosoftDocs functions-app-settings.md,
"Flex Consumption plan deprecations": runtime and version moved to functionAppConfig.runtime,
scale to functionAppConfig.scaleAndConcurrency, and "properties.ftpsState - FTPS not supported".
Some regions still ignore what others refuse, so a deployment that worked once proves nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from pulumi_policy import Severity

from .common import WEB_APP, Props, is_flex_app, resource_policy

# siteConfig property -> what Flex does instead.
FLEX_REFUSED_SITE_PROPERTIES: Mapping[str, str] = {
    "ftpsState": "Flex has no FTP(S) endpoint",
    "linuxFxVersion": "the runtime is functionAppConfig.runtime",
    "netFrameworkVersion": "the runtime version is functionAppConfig.runtime.version",
    "javaVersion": "the runtime version is functionAppConfig.runtime.version",
    "powerShellVersion": "the runtime version is functionAppConfig.runtime.version",
    "windowsFxVersion": "Flex runs on Linux only",
    "use32BitWorkerProcess": "Flex runs 64-bit workers only",
    "functionAppScaleLimit": "the limit is functionAppConfig.scaleAndConcurrency."
    "maximumInstanceCount",
    "preWarmedInstanceCount": "always-ready instances are functionAppConfig.scaleAndConcurrency."
    "alwaysReady",
    "minimumElasticInstanceCount": "Elastic Premium only; Flex scales by "
    "functionAppConfig.scaleAndConcurrency",
    "functionsRuntimeScaleMonitoringEnabled": "Flex scales per function by itself",
}


def check_flex_site_config(resource_type: str, props: Props) -> list[str]:
    """No siteConfig property a Flex Consumption app refuses or ignores, whatever its value:
    the service refuses the key itself (even null, microsoft/azure-pipelines-tasks#21032)."""
    if resource_type != WEB_APP or not is_flex_app(props):
        return []
    site_config = props.get("siteConfig")
    if not isinstance(site_config, Mapping):
        return []
    return [
        f"siteConfig.{key} must not be set on a Flex Consumption app ({why}); "
        "Flex answers 400 or ignores it"
        for key, why in FLEX_REFUSED_SITE_PROPERTIES.items()
        if key in site_config
    ]


POLICY = resource_policy(
    "flex-app-site-config-supported",
    "Flex Consumption function apps set none of the siteConfig properties Flex refuses or "
    "ignores (ftpsState, linuxFxVersion, netFrameworkVersion, javaVersion, powerShellVersion, "
    "windowsFxVersion, use32BitWorkerProcess, functionAppScaleLimit, preWarmedInstanceCount, "
    "minimumElasticInstanceCount, functionsRuntimeScaleMonitoringEnabled).",
    check_flex_site_config,
    Severity.MEDIUM,
)
