"""Run the real Pulumi program (`__main__.py`) under Pulumi mocks and record what it registers.

The infra tests assert over these records, and the local cloud takes its trust policy, S3 policy,
identities and sample data from them, so neither copies anything from the program by hand.

The mocks play the cloud's part only where the program reads computed outputs (ids, ARNs,
principal ids, endpoints); every input is recorded exactly as the engine would receive it
(camelCase property names, resolved values), together with parents and dependencies.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import runpy
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.settings import SETTINGS, get_root_resource
from pulumi.runtime.sync_await import _ensure_event_loop

from shipping import build, lambda_build
from shipping.build import BuiltPackage

REPO = Path(__file__).resolve().parents[1]
PROGRAM = REPO / "__main__.py"
PROJECT = "crosscloud"
FOUNDATION_PROGRAM = REPO / "foundation" / "__main__.py"
FOUNDATION_PROJECT = "crosscloud-foundation"

TENANT_ID = "11111111-2222-3333-4444-555555555555"
SUBSCRIPTION_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
DEPLOYER_OBJECT_ID = "99999999-8888-7777-6666-555555555555"
AWS_ACCOUNT_ID = "123456789012"
STAND_IN_PACKAGE = BuiltPackage(
    path=REPO / ".build" / "stand-in.zip", sha256=hashlib.sha256(b"stand-in package").hexdigest()
)


REGION = "eu-west-1"
"""Region in the ARNs the mocks hand out (the example stack's crosscloud:awsRegion)."""


def outbound_issuer(account_id: str) -> str:
    """An account's outbound-federation issuer, shaped as AWS's
    (`https://<id>.tokens.sts.global.api.aws`, IAM EnableOutboundWebIdentityFederation)."""
    return f"https://{fake_guid('issuer', account_id)}.tokens.sts.global.api.aws"


STAND_IN_LAMBDA = BuiltPackage(
    path=REPO / ".build" / "stand-in-lambda.zip",
    sha256=hashlib.sha256(b"stand-in lambda package").hexdigest(),
)


def fake_guid(*parts: str) -> str:
    """A stable GUID per resource, like the ids the cloud would hand out."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)))


@dataclass
class Registered:
    """One resource (or component) the program registered."""

    type: str
    name: str
    urn: str
    id: str
    inputs: dict[str, Any]
    custom: bool
    parent: str
    dependencies: list[str]
    state: dict[str, Any] = field(default_factory=dict)
    ignore_changes: list[str] = field(default_factory=list)
    """Property paths the engine was told to ignore (`ResourceOptions.ignore_changes`), as
    they reach the engine: translated to the provider's camelCase names."""
    delete_before_replace: bool = False
    """`ResourceOptions.delete_before_replace`: a replacement deletes the old resource first."""
    protect: bool = False
    """`ResourceOptions.protect`: the engine refuses to delete it."""


@dataclass
class ProgramRun:
    """Everything one run of the program registered, with its stack outputs."""

    resources: list[Registered]
    outputs: dict[str, Any]
    component_outputs: dict[str, dict[str, Any]]
    warnings: list[str]
    """Messages the program logged with `pulumi.log.warn`."""
    invokes: list[str] = field(default_factory=list)
    """Tokens of the invokes (data sources) the program called, in order."""

    def of_type(self, token: str) -> list[Registered]:
        return [r for r in self.resources if r.type == token]

    def named(self, name: str) -> Registered:
        matches = [r for r in self.resources if r.name == name]
        assert len(matches) == 1, f"expected one resource named {name!r}, found {len(matches)}"
        return matches[0]

    def by_urn(self, urn: str) -> Registered:
        return next(r for r in self.resources if r.urn == urn)

    def children_of(self, component: Registered) -> Iterator[Registered]:
        return (r for r in self.resources if r.parent == component.urn)


_AZURE_NAME_INPUTS = ("name", "resourceName", "accountName", "containerName", "resourceGroupName")
# What aws.get_partition() answers in each partition (dnsSuffix per the AWS SDKs' endpoints.json).
_DNS_SUFFIX = {"aws": "amazonaws.com", "aws-us-gov": "amazonaws.com", "aws-cn": "amazonaws.com.cn"}
# What the azuread provider's data sources answer, as the invoke's error (the engine raises it in
# the program). Not found: terraform-provider-azuread v3.x
# internal/services/serviceprincipals/service_principal_data_source.go (`"%s was not found"` with
# go-azure-sdk's ServicePrincipalId, which prints `Service Principal (Service Principal: "<id>")`)
# and internal/services/users/user_data_source.go (`"User not found with object ID: %q"`).
# Forbidden: `"Retrieving %s"` plus go-azure-sdk's "unexpected status 403 (403 Forbidden) with
# error: <code>: <message>", Graph's Authorization_RequestDenied.
GRAPH_FORBIDDEN = (
    "unexpected status 403 (403 Forbidden) with error: "
    "Authorization_RequestDenied: Insufficient privileges to complete the operation."
)


def _service_principal_not_found(object_id: str) -> str:
    return f'Service Principal (Service Principal: "{object_id}") was not found'


def _user_not_found(object_id: str) -> str:
    return f'User not found with object ID: "{object_id}"'


@dataclass(frozen=True)
class MockCloud:
    """What the mocked clouds answer, where a test needs another cloud than the default."""

    partition: str = "aws"
    """AWS partition `aws.get_partition()` answers; the mocked ARNs are in it too."""
    deployer_type: str | None = "User"
    """What the deployer's directory object is: `User`, `ServicePrincipal` (an app's),
    `ManagedIdentity` (a service principal too), or any other type (`Group`, `Device`: neither
    `get_service_principal` nor `get_user` finds it); None: Graph refuses its lookups (403)."""


_ACCOUNT_IN_ROLE_ARN = re.compile(r"^arn:[\w-]+:iam::(\d{12}):role/")


class _Mocks(pulumi.runtime.Mocks):
    """Computed outputs the program depends on, per resource type.

    `aws_account_id` is the account of the ambient AWS credentials; an explicit `aws.Provider`
    that assumes a role deploys into the role's account. `stack_outputs` answers
    `pulumi.StackReference` by fully qualified stack name, as the Pulumi service would.
    """

    def __init__(
        self,
        stack: str,
        aws_account_id: str,
        stack_outputs: Mapping[str, Mapping[str, Any]],
        oidc_providers: Mapping[str, Mapping[str, Any]],
        cloud: MockCloud,
    ) -> None:
        super().__init__()
        self.cloud = cloud
        self.invokes: list[str] = []
        """Tokens of every invoke, in order."""
        self.oidc_providers = oidc_providers
        self.stack = stack
        self.aws_account_id = aws_account_id
        self.stack_outputs = stack_outputs
        self.storage_accounts: dict[str, str] = {}
        """Account name -> the mock id of the StorageAccount (a container's id nests in it)."""

    def _account(self, provider_reference: str | None) -> str:
        """The AWS account a resource or invoke deploys to, from its provider's id."""
        provider_id = (provider_reference or "").rsplit("::", 1)[-1]
        if provider_id.startswith("aws-account-"):
            return provider_id.removeprefix("aws-account-")
        return self.aws_account_id

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        inputs, name, typ = dict(args.inputs), args.name, args.typ
        partition = self.cloud.partition
        if typ == "pulumi:pulumi:StackReference":
            stack = inputs["name"]
            if stack not in self.stack_outputs:
                raise ValueError(
                    f"no stack {stack} to reference (the mocks know none by that name)"
                )
            outputs = dict(self.stack_outputs[stack])
            return stack, {"name": stack, "outputs": outputs, "secretOutputNames": []}
        if typ == "pulumi:providers:aws":
            roles = inputs.get("assumeRoles") or []
            roles = json.loads(roles) if isinstance(roles, str) else roles
            accounts = {
                match.group(1)
                for role in roles
                if (match := _ACCOUNT_IN_ROLE_ARN.match(role.get("roleArn", "")))
            }
            account = accounts.pop() if len(accounts) == 1 else self.aws_account_id
            return f"aws-account-{account}", inputs
        account_id = self._account(args.provider)
        # Ids differ between stacks, as the cloud's do (dev and prod identities are not one).
        guid = fake_guid(self.stack, typ, name)
        state: dict[str, Any] = dict(inputs)
        rid = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/rg/providers/{typ}/{name}"
        if typ.startswith("azure-native:"):
            # ARM echoes the resource's own name back as the `name` output.
            physical = [inputs.get(k) for k in _AZURE_NAME_INPUTS if inputs.get(k)]
            state["name"] = physical[0] if physical else name
        if typ == "azure-native:storage:StorageAccount":
            self.storage_accounts[inputs["accountName"]] = rid
            state["primaryEndpoints"] = {
                "blob": f"https://{inputs['accountName']}.blob.core.windows.net/"
            }
        elif typ == "azure-native:storage:BlobContainer" and inputs["accountName"] in (
            self.storage_accounts
        ):
            # ARM nests a container's id under its account's (Microsoft.Storage REST API,
            # Blob Containers - Get: .../storageAccounts/{a}/blobServices/default/containers/{c}).
            account = self.storage_accounts[inputs["accountName"]]
            rid = f"{account}/blobServices/default/containers/{inputs['containerName']}"
        elif typ == "azure-native:managedidentity:UserAssignedIdentity":
            state.update(principalId=fake_guid(self.stack, "principal", name), clientId=guid)
        elif typ == "azure-native:web:WebApp":
            app = inputs["name"]
            identity = dict(inputs.get("identity") or {})
            if identity.get("type") == "SystemAssigned":
                identity["principalId"] = fake_guid(self.stack, "principal", name)
            elif identity.get("userAssignedIdentities"):
                # The input is a list of ids; ARM (and the SDK's output type) use a map.
                identity["userAssignedIdentities"] = {
                    uid: {
                        "principalId": fake_guid(self.stack, uid),
                        "clientId": fake_guid(self.stack, "c", uid),
                    }
                    for uid in identity["userAssignedIdentities"]
                }
            state.update(
                identity=identity,
                defaultHostName=f"{app}.azurewebsites.net",
                hostNameSslStates=[
                    {"name": f"{app}.azurewebsites.net", "hostType": "Standard"},
                    {"name": f"{app}.scm.azurewebsites.net", "hostType": "Repository"},
                ],
            )
        elif typ == "azure-native:operationalinsights:Workspace":
            state["customerId"] = guid
        elif typ == "azure-native:applicationinsights:Component":
            # The shape Azure returns; with local auth off the key in it admits nothing.
            state["connectionString"] = (
                f"InstrumentationKey={guid};IngestionEndpoint="
                f"https://{inputs['location']}-0.in.applicationinsights.azure.com/;"
                f"ApplicationId={fake_guid('appinsights-app', name)}"
            )
        elif typ == "azuread:index/application:Application":
            rid = f"/applications/{guid}"
            state.update(clientId=fake_guid("client", name), objectId=guid)
        elif typ == "azuread:index/servicePrincipal:ServicePrincipal":
            state["objectId"] = guid
        elif typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            host = inputs["url"].removeprefix("https://")
            state["arn"] = f"arn:{partition}:iam::{account_id}:oidc-provider/{host}"
        elif typ == "aws:iam/role:Role":
            rid = inputs["name"]
            state["arn"] = f"arn:{partition}:iam::{account_id}:role/{inputs['name']}"
        elif typ == "aws:iam/outboundWebIdentityFederation:OutboundWebIdentityFederation":
            state["issuerIdentifier"] = outbound_issuer(account_id)
        elif typ == "aws:lambda/function:Function":
            rid = inputs["name"]
            state["arn"] = f"arn:{partition}:lambda:{REGION}:{account_id}:function:{rid}"
        elif typ == "aws:cloudwatch/logGroup:LogGroup":
            state["arn"] = f"arn:{partition}:logs:{REGION}:{account_id}:log-group:{inputs['name']}"
        elif typ == "aws:s3/bucket:Bucket":
            rid = inputs["bucket"]
            state["arn"] = f"arn:{partition}:s3:::{inputs['bucket']}"
        return rid, state

    def _service_principal(self, object_id: str) -> tuple[dict, list]:
        """`GET /servicePrincipals/{id}`: a service principal reads itself with no permission."""
        kind = self.cloud.deployer_type if object_id == DEPLOYER_OBJECT_ID else None
        if object_id == DEPLOYER_OBJECT_ID and kind is None:
            sp = f'Service Principal (Service Principal: "{object_id}")'
            return {}, [("objectId", f"Retrieving {sp}: {GRAPH_FORBIDDEN}")]
        if kind not in ("ServicePrincipal", "ManagedIdentity"):
            return {}, [("objectId", _service_principal_not_found(object_id))]
        return {
            "id": f"/servicePrincipals/{object_id}",
            "objectId": object_id,
            "clientId": fake_guid("deployer-client"),
            "displayName": "crosscloud-ci-deploy",
            "accountEnabled": True,
            # servicePrincipalType: "Application" for an app registration's, else ManagedIdentity.
            "type": "Application" if kind == "ServicePrincipal" else kind,
        }, []

    def _user(self, object_id: str) -> tuple[dict, list]:
        """`GET /users/{id}`: a signed-in user reads itself with User.Read."""
        kind = self.cloud.deployer_type if object_id == DEPLOYER_OBJECT_ID else None
        if object_id == DEPLOYER_OBJECT_ID and kind is None:
            why = f'Retrieving user with object ID: "{object_id}": {GRAPH_FORBIDDEN}'
            return {}, [("objectId", why)]
        if kind != "User":
            return {}, [("objectId", _user_not_found(object_id))]
        return {
            "id": f"/users/{object_id}",
            "objectId": object_id,
            "userPrincipalName": "deployer@contoso.example",
            "displayName": "Deployer",
            "userType": "Member",
            "accountEnabled": True,
        }, []

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
        self.invokes.append(args.token)
        if args.token == "azuread:index/getServicePrincipal:getServicePrincipal":
            return self._service_principal(args.args["objectId"])
        if args.token == "azuread:index/getUser:getUser":
            return self._user(args.args["objectId"])
        if args.token == "azure-native:authorization:getClientConfig":
            return {
                "clientId": fake_guid("deployer-client"),
                "objectId": DEPLOYER_OBJECT_ID,
                "subscriptionId": SUBSCRIPTION_ID,
                "tenantId": TENANT_ID,
            }, []
        if args.token == "azuread:index/getClientConfig:getClientConfig":
            return {
                "clientId": fake_guid("deployer-client"),
                "objectId": DEPLOYER_OBJECT_ID,
                "tenantId": TENANT_ID,
                "id": f"{TENANT_ID}-deployer",
            }, []
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            account_id = self._account(args.provider)
            return {
                "accountId": account_id,
                "arn": f"arn:{self.cloud.partition}:iam::{account_id}:role/deployer",
                "userId": "AROAEXAMPLE:deployer",
                "id": account_id,
            }, []
        if args.token == "aws:iam/getOpenIdConnectProvider:getOpenIdConnectProvider":
            arn = args.args["arn"]
            if arn not in self.oidc_providers:
                raise ValueError(f"NoSuchEntity: OpenIDConnect provider not found for arn {arn}")
            return {
                "arn": arn,
                "tags": {},
                "thumbprintLists": [],
                "id": arn,
                **self.oidc_providers[arn],
            }, []
        if args.token == (
            "aws:iam/getOutboundWebIdentityFederation:getOutboundWebIdentityFederation"
        ):
            account_id = self._account(args.provider)
            return {"issuerIdentifier": outbound_issuer(account_id), "id": account_id}, []
        if args.token == "aws:index/getPartition:getPartition":
            partition = self.cloud.partition
            return {
                "partition": partition,
                "dnsSuffix": _DNS_SUFFIX[partition],
                "id": partition,
            }, []
        raise NotImplementedError(f"the mocks do not answer invoke {args.token}")


class _RecordingMonitor(MockMonitor):
    """Also keeps parents, dependencies and registered outputs, which `Mocks` does not see."""

    def __init__(self, mocks: _Mocks, registered: list[Registered]) -> None:
        super().__init__(mocks)
        self.registered = registered
        self.outputs: dict[str, dict[str, Any]] = {}

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            registration = self.resources[response.urn]
            self.registered.append(
                Registered(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    id=response.id,
                    inputs=rpc.deserialize_properties(request.object),
                    custom=request.custom,
                    parent=request.parent,
                    dependencies=list(request.dependencies),
                    state=dict(registration.state),
                    ignore_changes=list(request.ignoreChanges),
                    delete_before_replace=request.deleteBeforeReplace,
                    protect=request.protect,
                )
            )
        return response

    def RegisterResourceOutputs(self, request):
        self.outputs[request.urn] = rpc.deserialize_properties(request.outputs)
        return super().RegisterResourceOutputs(request)


class _WarningCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _settle() -> None:
    """After a failed run, let the program's other pending tasks finish (or cancel them), so
    their errors do not surface in the next run in this process. A program that fails inside
    an `apply` (FoundationError, ExistingProviderError) leaves such tasks behind."""
    loop = _ensure_event_loop()
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    if pending:
        _done, stuck = loop.run_until_complete(asyncio.wait(pending, timeout=5))
        for task in stuck:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()
    # The failing output's other consumers hold the same error; asyncio would log each as
    # "Future exception was never retrieved" when collected, though the caller got it raised.
    loop.set_exception_handler(_drop_raised_run_errors)


def _drop_raised_run_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    if not isinstance(context.get("exception"), pulumi.RunError):
        loop.default_exception_handler(context)


def run_program(
    config: Mapping[str, Any] | None = None,
    *,
    stack: str = "dev",
    package: BuiltPackage = STAND_IN_PACKAGE,
    aws_account_id: str = AWS_ACCOUNT_ID,
    stack_outputs: Mapping[str, Mapping[str, Any]] | None = None,
    oidc_providers: Mapping[str, Mapping[str, Any]] | None = None,
    program: Path = PROGRAM,
    project: str = PROJECT,
    cloud: MockCloud = MockCloud(),
    registered: list[Registered] | None = None,
) -> ProgramRun:
    """Run `__main__.py` with `crosscloud:*` config (keys without namespace) under mocks.

    Lists and maps are passed as JSON text, as the Pulumi CLI hands structured config to programs.
    `package` stands in for the function package: building the real one installs wheels from
    PyPI, which tests/shipping covers; here only its sha256 matters. `aws_account_id` is the
    account of the ambient AWS credentials; `stack_outputs` the outputs of the stacks a
    StackReference may name (e.g. a foundation run's `outputs`, under its org/project/stack);
    `oidc_providers` the IAM OIDC providers that exist already, by ARN (`url`, `clientIdLists`
    as IAM reports them). `cloud` sets what the mocked clouds answer (AWS partition, the
    deployer's directory type). `registered`, when given, receives each registration as it
    happens, so a test can see what a failed run registered.
    Raises whatever the program raises (e.g. `SettingsError` for bad config).
    """
    mocks = _Mocks(stack, aws_account_id, stack_outputs or {}, oidc_providers or {}, cloud)
    monitor = _RecordingMonitor(mocks, [] if registered is None else registered)
    warnings = _WarningCollector()
    engine_log = logging.getLogger(f"crosscloud.mock-engine.{id(warnings)}")
    engine_log.propagate = False
    engine_log.addHandler(warnings)
    # A fresh root stack per run: set_mocks keeps the previous run's, with its exports.
    pulumi.runtime.reset_options(project=project, stack=stack)
    pulumi.runtime.set_mocks(
        mocks, project=project, stack=stack, preview=False, monitor=monitor, logger=engine_log
    )
    pulumi.runtime.set_all_config(
        {
            f"crosscloud:{key}": value if isinstance(value, str) else json.dumps(value)
            for key, value in (config or {}).items()
        }
    )

    stack_outputs: dict[str, Any] = {}

    @pulumi.runtime.test
    def run() -> pulumi.Output[None]:
        with (
            patch.object(build, "build_package", lambda *_args, **_kwargs: package),
            patch.object(
                lambda_build, "build_lambda_package", lambda *_args, **_kwargs: STAND_IN_LAMBDA
            ),
        ):
            runpy.run_path(str(program), run_name="__main__")
        # `pulumi.export` only records outputs on the root stack; resolve them for the tests.
        exported = pulumi.Output.from_input(get_root_resource().outputs)
        return exported.apply(stack_outputs.update)

    try:
        run()
    except BaseException:
        _settle()
        raise
    return ProgramRun(
        resources=monitor.registered,
        outputs=stack_outputs,
        component_outputs=monitor.outputs,
        warnings=warnings.messages,
        invokes=mocks.invokes,
    )


def run_foundation(
    config: Mapping[str, Any] | None = None,
    *,
    stack: str = "shared",
    aws_account_id: str = AWS_ACCOUNT_ID,
) -> ProgramRun:
    """Run the foundation (foundation/__main__.py) under the same mocks."""
    return run_program(
        config,
        stack=stack,
        aws_account_id=aws_account_id,
        program=FOUNDATION_PROGRAM,
        project=FOUNDATION_PROJECT,
    )
