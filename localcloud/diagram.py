"""`make diagram`: the trust chain a stack's config would deploy, as a Mermaid flowchart.

The program runs under mocks (localcloud/mocked_program.py, no cloud) with the stack's config;
the picture is drawn from what it registered, by resource type, so it shows what would really be
trusted: which identities hold the federation app's role, which `sub`s the IAM role trusts,
which store each identity can read, and where telemetry and audit logs go. Mock ids are
name-based UUIDs, so the same config always draws the same diagram.

    python -m localcloud.diagram [--stack-config Pulumi.dev.yaml]    # your stack, to stdout
    python -m localcloud.diagram --readme README.md                   # the example, into README

README.md shows the fixed example configuration (docs/examples/Pulumi.example.yaml), not
Pulumi.dev.yaml: a user's own stack file changes what `make diagram` prints, never the README or
the test that keeps the README current.
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

BEGIN = "<!-- trust-diagram:begin (make readme-diagram) -->"
EXAMPLE_STACK = REPO / "docs" / "examples" / "Pulumi.example.yaml"
"""The configuration README.md's diagram is drawn for."""
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
LAMBDA = "aws:lambda/function:Function"
FEDERATED_CREDENTIAL = "azure-native:managedidentity:FederatedIdentityCredential"


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
    # The role Entra identities assume (its trust names a federated principal); the AWS readers'
    # Lambda role, trusted by the Lambda service, is drawn by `_aws_readers`.
    (role,) = [r for r in run.of_type(IAM_ROLE) if "Federated" in r.inputs["assumeRolePolicy"]]
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
        "  %% Drawn by localcloud/diagram.py from the program under mocks: ids and names are the",
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
    read_accounts = sorted({a.inputs["scope"] for a in readers if a.inputs["scope"] in accounts})
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
    readers_drawn = _aws_readers_azure(run, graph, accounts)
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
    if readers_drawn:
        _aws_readers_aws(run, graph)
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
    if readers_drawn:
        graph.edge("lambda", "issuer", "GetWebIdentityToken aud api://AzureADTokenExchange, RS256")
    for source, target, label in readers_drawn:
        graph.edge(source, target, label)
    for logging_ in loggings:
        if logging_.inputs["bucket"] in data_buckets:
            source = f"s3_{data_buckets.index(logging_.inputs['bucket']) + 1}"
            target = f"s3log{sorted(log_targets).index(logging_.inputs['targetBucket']) + 1}"
            graph.edge(source, target, "server access logs", dotted=True)
    return "\n".join(out + graph.lines) + "\n"


def _aws_readers_azure(
    run: ProgramRun, graph: _Graph, accounts: dict[str, Registered]
) -> list[tuple[str, str, str]]:
    """Nodes of the AWS readers' identity and the container it reads (crosscloud:awsReaders);
    returns the edges, drawn after both subgraphs (an edge inside a subgraph would pull a node
    not yet declared into it)."""
    credentials = run.of_type(FEDERATED_CREDENTIAL)
    edges: list[tuple[str, str, str]] = []
    if not credentials or not run.of_type(LAMBDA):
        return edges
    uamis = {u.inputs["resourceName"]: u for u in run.of_type(UAMI)}
    for index, credential in enumerate(credentials, 1):
        identity = uamis[credential.inputs["resourceName"]]
        principal = identity.state["principalId"]
        graph.node(
            f"awsid{index}",
            f"{identity.inputs['resourceName']}<br/>federated credential: sub = the Lambda role",
            "round",
        )
        for grant in run.of_type(ROLE_ASSIGNMENT):
            if grant.inputs["principalId"] != principal:
                continue
            account_id, _, container = grant.inputs["scope"].partition(
                "/blobServices/default/containers/"
            )
            where = f"storage {accounts[account_id].inputs['accountName']}" if container else ""
            graph.node(f"awsblob{index}", f"{where}<br/>container {container}", "store")
            role = grant.inputs["roleDefinitionId"].rsplit("/", 1)[-1]
            label = "Blob Data Reader" if role == AzureRole.STORAGE_BLOB_DATA_READER.value else role
            edges.append((f"awsid{index}", f"awsblob{index}", f"{label} (container only)"))
        edges.append(("lambda", f"awsid{index}", "AWS token = client assertion"))
    return edges


def _aws_readers_aws(run: ProgramRun, graph: _Graph) -> None:
    (function,) = run.of_type(LAMBDA)
    graph.node(
        "lambda", f"Lambda {function.inputs['name']}<br/>{function.inputs['runtime']}, no URL"
    )
    graph.node("issuer", "IAM outbound web identity federation<br/>account issuer")


def readme_block(diagram: str) -> str:
    return f"{BEGIN}\n```mermaid\n{diagram}```\n{END}"


def embedded(readme: str) -> str | None:
    """The diagram currently embedded in README text, or None."""
    match = re.search(re.escape(BEGIN) + r"\n```mermaid\n(.*?)```\n" + re.escape(END), readme, re.S)
    return match.group(1) if match else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--stack-config",
        type=Path,
        help="the stack file to draw (default: Pulumi.dev.yaml; with --readme, the example "
        "docs/examples/Pulumi.example.yaml)",
    )
    parser.add_argument("--readme", type=Path, help="replace the diagram embedded in this file")
    args = parser.parse_args(argv)
    if args.stack_config is None:
        args.stack_config = EXAMPLE_STACK if args.readme else REPO / "Pulumi.dev.yaml"
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
