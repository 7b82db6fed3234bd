"""`python -m verify [--stack NAME | --outputs FILE]`: exit 0 only when every check passes."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from azure.core.credentials import TokenCredential
from azure.identity import DefaultAzureCredential

from verify.aws_readers import lambda_reads_samples
from verify.checks import (
    APPS,
    Check,
    VerifyError,
    forged_token_refused_by_sts,
    front_door_refuses,
    operator_refused_by_entra,
    read_both_clouds,
    require_outputs,
    shared_sample,
    trust_policy_pins_identities,
)


def stack_outputs(stack: str | None) -> dict[str, Any]:
    pulumi = shutil.which("pulumi")
    if not pulumi:
        raise VerifyError("the Pulumi CLI is not on PATH; pass --outputs FILE instead")
    command = [pulumi, "stack", "output", "--json"] + (["--stack", stack] if stack else [])
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise VerifyError(f"`pulumi stack output` failed: {result.stderr.strip()[:300]}")
    return json.loads(result.stdout)


def outputs_file(path: Path) -> dict[str, Any]:
    try:
        outputs = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise VerifyError(f"cannot read stack outputs from {path}: {error}") from error
    if not isinstance(outputs, dict):
        raise VerifyError(f"{path} does not hold a JSON object of stack outputs")
    return outputs


def operator_credential(timeout: float) -> DefaultAzureCredential:
    """The operator's own sign-in (az login, environment, managed identity...); nothing stored.
    Every way it asks for a token is bounded by `timeout`: the developer tools' processes
    (`process_timeout`, azure-identity's default 10 s) and the HTTP ones (azure-core's
    `connection_timeout`/`read_timeout`, default 300 s, which azure-identity hands to its
    transport)."""
    return DefaultAzureCredential(
        exclude_interactive_browser_credential=True,
        process_timeout=max(1, round(timeout)),
        connection_timeout=timeout,
        read_timeout=timeout,
    )


def run_checks(
    outputs: Mapping[str, Any], credential: TokenCredential, timeout: float = 30.0
) -> list[Check]:
    """Every check, in order; a failing one does not stop the others."""
    require_outputs(outputs)
    sample = shared_sample()
    checks = [read_both_clouds(credential, outputs, app, sample, timeout) for app in APPS]
    checks += [front_door_refuses(credential, outputs, app, timeout) for app in APPS]
    checks.append(operator_refused_by_entra(credential, outputs["audience"]))
    checks.append(forged_token_refused_by_sts(outputs, timeout))
    checks.append(trust_policy_pins_identities(outputs, timeout))
    if outputs.get("awsReaderFunctionName"):  # crosscloud:awsReaders
        checks.append(lambda_reads_samples(outputs, timeout))
    return checks


def report(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = [f"{'PASS' if c.passed else 'FAIL'}  {c.name.ljust(width)}  {c.detail}" for c in checks]
    passed = sum(c.passed for c in checks)
    lines.append(f"verify: {passed}/{len(checks)} checks passed")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verify", description=__doc__)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--stack", help="Pulumi stack to read outputs from (default: current)")
    source.add_argument("--outputs", type=Path, help="JSON file of `pulumi stack output --json`")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per HTTP call")
    args = parser.parse_args(argv)
    try:
        outputs = outputs_file(args.outputs) if args.outputs else stack_outputs(args.stack)
        checks = run_checks(outputs, operator_credential(args.timeout), args.timeout)
    except VerifyError as error:
        print(f"verify: {error}", file=sys.stderr)
        return 2
    print(report(checks))
    return 0 if all(c.passed for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
