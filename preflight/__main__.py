"""`python -m preflight --subscription ID [--location NAME | --stack NAME]`: read-only checks
of a subscription before `pulumi up`, with the operator's own sign-in (az login); exit 0 only
when every check passes ("????": ARM's answer cannot tell, check by hand). The ARM endpoint
(`CROSSCLOUD_ARM_ENDPOINT`, default https://management.azure.com) must be https."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import DefaultAzureCredential

from components.settings import Settings
from preflight.checks import arm_client, run_checks

REPO = Path(__file__).resolve().parents[1]


def stack_location(stack: str) -> str:
    """`crosscloud:azureLocation` of `Pulumi.{stack}.yaml`, or the default."""
    path = REPO / f"Pulumi.{stack}.yaml"
    config = (yaml.safe_load(path.read_text()) or {}).get("config", {}) if path.exists() else {}
    return str(config.get("crosscloud:azureLocation", Settings().azure_location))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m preflight", description=__doc__)
    parser.add_argument("--subscription", default=os.environ.get("AZURE_SUBSCRIPTION_ID"))
    parser.add_argument("--location", help="Azure location (default: the stack's)")
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml to read")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per ARM request")
    args = parser.parse_args(argv)
    if not args.subscription:
        parser.error("give --subscription or set AZURE_SUBSCRIPTION_ID (az account show)")
    location = args.location or stack_location(args.stack)
    endpoint = os.environ.get("CROSSCLOUD_ARM_ENDPOINT", "https://management.azure.com")
    parts = urlsplit(endpoint)
    if parts.scheme != "https" or not parts.hostname:
        # The operator's ARM bearer token goes there: never in clear text.
        parser.error(f"CROSSCLOUD_ARM_ENDPOINT={endpoint!r} must be an https:// URL")
    credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
    arm = arm_client(credential, endpoint, args.subscription, (5.0, args.timeout))
    try:
        checks = run_checks(arm, location)
    except ClientAuthenticationError as error:
        print(f"FAIL sign-in: no ARM token ({str(error).splitlines()[0][:200]}); run `az login`")
        return 1
    for check in checks:
        label = "ok  " if check.ok else "????" if check.unknown else "FAIL"
        print(f"{label} {check.name}: {check.detail}")
    return 0 if all(check.ok for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
