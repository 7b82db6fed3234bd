"""`make diagram`: the trust chain the current config would deploy, as a Mermaid flowchart.

The program runs under mocks (localcloud/mocked_program.py, no cloud) with the stack's config;
the picture is drawn from what it registered, by resource type, so it shows what would really be
trusted: which identities hold the federation app's role, which `sub`s the IAM role trusts,
which store each identity can read, and where telemetry and audit logs go. Mock ids are
name-based UUIDs, so the same config always draws the same diagram.

    python -m localcloud.diagram [--stack-config Pulumi.dev.yaml] [--readme README.md]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from components.azure_roles import AzureRole
from localcloud.mocked_program import REPO, ProgramRun, Registered, run_program

BEGIN = "<!-- trust-diagram:begin (make diagram) -->"
END = "<!-- trust-diagram:end -->"

WEB_APP = "azure-native:web:WebApp"
UAMI = "azure-native:managedidentity:UserAssignedIdentity"
APP_ROLE_ASSIGNMENT = "azuread:index/appRoleAssignment:AppRoleAssignment"
APPLICATION = "azuread:index/application:Application"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
IAM_ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_LOGGING = "aws:s3/bucketLogging:BucketLogging"
WORKSPACE = "azure-native:operationalinsights:Workspace"
COMPONENT = "azure-native:applicationinsights:Component"
DIAGNOSTIC = "azure-native:monitor:DiagnosticSetting"


def stack_config(path: Path) -> dict[str, Any]:
    """`crosscloud:*` values of a stack file, keys without the namespace."""
    config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    return {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("crosscloud:")}


def _short(guid: str) -> str:
    return guid[:8] + "…"


def _settings(app: Registered) -> dict[str, Any]:
    return {s["name"]: s.get("value") for s in app.inputs["siteConfig"]["appSettings"]}


class _Graph:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def node(self, node_id: str, label: str, shape: str = "box") -> None:
        text = label.replace('"', "'")
        opening, closing = {"box": ("[", "]"), "store": ("[(", ")]"), "round": ("(", ")")}[shape]
        self.lines.append(f'    {node_id}{opening}"{text}"{closing}')

    def edge(self, source: str, target: str, label: str, dotted: bool = False) -> None:
        arrow = "-.->" if dotted else "-->"
        self.lines.append(f'  {source} {arrow}|"{label}"| {target}')


def _identities(run: ProgramRun) -> dict[str, str]:
    """Principal id -> label of every identity of the program's function apps."""
    labels: dict[str, str] = {}
    uamis = {r.id: r for r in run.of_type(UAMI)}
    for app in run.of_type(WEB_APP):
        identity = app.state.get("identity") or {}
        name = app.inputs["name"]
        if identity.get("type") == "SystemAssigned":
            labels[identity["principalId"]] = f"{name}<br/>system-assigned identity"
        for uid in identity.get("userAssignedIdentities") or {}:
            uami = uamis.get(uid)
            if uami is not None:
                labels[uami.state["principalId"]] = (
                    f"{name}<br/>user-assigned {uami.inputs['resourceName']}"
                )
    return labels


def draw(run: ProgramRun) -> str:
    """The Mermaid flowchart of `run`'s trust chain."""
    graph = _Graph()
    labels = _identities(run)
    # The federation app's role holders; the reader API's callers (components/reader_api.py,
    # children named reader-api-*) never reach AWS.
    role_holders = sorted(
        a.inputs["principalObjectId"]
        for a in run.of_type(APP_ROLE_ASSIGNMENT)
        if not a.name.startswith("reader-api-")
    )
    (role,) = run.of_type(IAM_ROLE)
    trust = json.loads(role.inputs["assumeRolePolicy"])
    subs: list[str] = []
    audience = ""
    for statement in trust["Statement"]:
        for key, value in statement.get("Condition", {}).get("StringEquals", {}).items():
            values = value if isinstance(value, list) else [value]
            if key.endswith(":sub"):
                subs.extend(values)
            elif key.endswith(":aud"):
                audience = values[0]
    principals = sorted(
        set(role_holders) | set(subs), key=lambda p: (p not in labels, labels.get(p, p))
    )
    ids = {p: f"id{i}" for i, p in enumerate(principals, 1)}

    out = [
        "flowchart LR",
        "  %% Drawn by `make diagram` from the program under mocks: ids and names are the",
        "  %% mocks' stand-ins; the edges are what the config would deploy.",
    ]
    graph.lines.append("  subgraph Azure")
    for principal in principals:
        graph.node(
            ids[principal],
            f"{labels.get(principal, 'service principal (extraPrincipalIds)')}"
            f"<br/>object id {_short(principal)}",
            "round",
        )
    # The federation app (the reader API, reader-api-app, is the apps' front door, not AWS's).
    applications = [a for a in run.of_type(APPLICATION) if not a.name.startswith("reader-api-")]
    app_name = applications[0].inputs["displayName"] if applications else "of the foundation stack"
    graph.node("fed", f"Entra app {app_name}<br/>role AssumeAWSRole, assignment required")
    readers = [
        a
        for a in run.of_type(ROLE_ASSIGNMENT)
        if a.inputs["roleDefinitionId"].endswith(AzureRole.STORAGE_BLOB_DATA_READER.value)
    ]
    accounts = {a.id: a for a in run.of_type(STORAGE_ACCOUNT)}
    read_accounts = sorted({a.inputs["scope"] for a in readers})
    for index, scope in enumerate(read_accounts, 1):
        graph.node(f"blob{index}", f"storage {accounts[scope].inputs['accountName']}", "store")
    workspaces = run.of_type(WORKSPACE)
    components = run.of_type(COMPONENT)
    for workspace in workspaces:
        graph.node(
            "law",
            f"Log Analytics {workspace.inputs['workspaceName']}<br/>"
            f"{workspace.inputs['retentionInDays']:.0f} days, local auth off",
            "store",
        )
    for component in components:
        graph.node("appi", f"App Insights {component.inputs['resourceName']}<br/>Entra ingestion")
    graph.lines.append("  end")

    graph.lines.append("  subgraph AWS")
    graph.node("role", f"IAM role {role.inputs['name']}<br/>aud = {audience}")
    buckets = {b.inputs["bucket"]: b for b in run.of_type(BUCKET)}
    loggings = run.of_type(BUCKET_LOGGING)
    log_targets = {lg.inputs["targetBucket"] for lg in loggings}
    data_buckets = sorted(set(buckets) - log_targets)
    for index, name in enumerate(data_buckets, 1):
        graph.node(f"s3_{index}", f"S3 {name}", "store")
    for index, name in enumerate(sorted(log_targets), 1):
        graph.node(f"s3log{index}", f"S3 {name}<br/>access logs", "store")
    graph.lines.append("  end")

    for principal in principals:
        if principal in role_holders:
            graph.edge(ids[principal], "fed", "holds AssumeAWSRole")
        if principal in subs:
            graph.edge(ids[principal], "role", "token sub trusted")
        for index, scope in enumerate(read_accounts, 1):
            if any(
                a.inputs["principalId"] == principal and a.inputs["scope"] == scope for a in readers
            ):
                graph.edge(ids[principal], f"blob{index}", "Blob Data Reader")
    graph.edge("fed", "role", "token aud")
    policies = [p for p in run.of_type(ROLE_POLICY) if p.inputs["role"] == role.inputs["name"]]
    for policy in policies:
        text = policy.inputs["policy"]
        for index, name in enumerate(data_buckets, 1):
            if re.search(rf":::{re.escape(name)}[\"/]", text):
                graph.edge("role", f"s3_{index}", "List + GetObject")
    if components:
        for principal in principals:
            if principal in labels:
                graph.edge(ids[principal], "appi", "telemetry", dotted=True)
        if workspaces:
            graph.edge("appi", "law", "stored in", dotted=True)
    for setting in run.of_type(DIAGNOSTIC):
        for index, scope in enumerate(read_accounts, 1):
            if setting.inputs["resourceUri"].startswith(scope + "/") and workspaces:
                categories = ", ".join(log["category"] for log in setting.inputs["logs"])
                graph.edge(f"blob{index}", "law", categories, dotted=True)
    for logging_ in loggings:
        if logging_.inputs["bucket"] in data_buckets:
            source = f"s3_{data_buckets.index(logging_.inputs['bucket']) + 1}"
            target = f"s3log{sorted(log_targets).index(logging_.inputs['targetBucket']) + 1}"
            graph.edge(source, target, "server access logs", dotted=True)
    return "\n".join(out + graph.lines) + "\n"


def readme_block(diagram: str) -> str:
    return f"{BEGIN}\n```mermaid\n{diagram}```\n{END}"


def embedded(readme: str) -> str | None:
    """The diagram currently embedded in README text, or None."""
    match = re.search(re.escape(BEGIN) + r"\n```mermaid\n(.*?)```\n" + re.escape(END), readme, re.S)
    return match.group(1) if match else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack-config", type=Path, default=REPO / "Pulumi.dev.yaml")
    parser.add_argument("--readme", type=Path, help="replace the diagram embedded in this file")
    args = parser.parse_args(argv)
    diagram = draw(run_program(stack_config(args.stack_config)))
    if args.readme is None:
        sys.stdout.write(diagram)
        return 0
    text = args.readme.read_text()
    if BEGIN not in text or END not in text:
        print(f"{args.readme}: no {BEGIN} ... {END} block to replace", file=sys.stderr)
        return 1
    start, end = text.index(BEGIN), text.index(END) + len(END)
    args.readme.write_text(text[:start] + readme_block(diagram) + text[end:])
    print(f"{args.readme}: diagram updated for {args.stack_config.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
