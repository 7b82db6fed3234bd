"""What the local cloud must look like, read from the Pulumi program run under mocks.

Everything the local cloud enforces or serves comes from `run_program()`'s records: the tenant and
audience, the federation app's "assignment required" flag and its app-role assignments, the IAM
OIDC providers, the role's trust policy and inline policy (the exact JSON the program would send
to IAM), the bucket and its objects, the data container and its blobs, the data-plane role
assignments, and each function app's identity and app settings. Nothing is copied by hand, so a
change to the program is a change to the local cloud - which is what lets the demo and the
end-to-end tests catch a weakened trust policy.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from components.azure_roles import AzureRole
from localcloud.mocked_program import ProgramRun, Registered, run_foundation, run_program

APPLICATION = "azuread:index/application:Application"
IDENTIFIER_URI = "azuread:index/applicationIdentifierUri:ApplicationIdentifierUri"
SERVICE_PRINCIPAL = "azuread:index/servicePrincipal:ServicePrincipal"
APP_ROLE_ASSIGNMENT = "azuread:index/appRoleAssignment:AppRoleAssignment"
WEB_APP = "azure-native:web:WebApp"
USER_ASSIGNED_IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
BLOB_UPLOAD = "pulumi-python:dynamic/crosscloud:BlobUpload"
OIDC_PROVIDER = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
IAM_ROLE = "aws:iam/role:Role"
IAM_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
S3_OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"

T = TypeVar("T")


def _one(items: Iterable[T], what: str) -> T:
    found = list(items)
    if len(found) != 1:
        raise ValueError(f"the program should register exactly one {what}, found {len(found)}")
    return found[0]


def stable_client_id(principal_id: str) -> str:
    """A client id for an identity whose client id the program never sees (a system-assigned
    identity, the deployer): only its object id matters to the trust chain."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"localcloud/client/{principal_id}"))


@dataclass(frozen=True)
class ManagedId:
    """A managed identity as the program knows it."""

    principal_id: str
    """Service-principal object id: `oid` and `sub` of its tokens."""
    client_id: str


@dataclass(frozen=True)
class FunctionAppSpec:
    """One function app of the program."""

    kind: str
    """Key in the `functionAppNames` output: `sami` or `uami`."""
    name: str
    settings: Mapping[str, str]
    """Its app settings, exactly as the program sets them."""
    system_identity: ManagedId | None
    user_identities: tuple[ManagedId, ...]

    @property
    def identity(self) -> ManagedId:
        """The identity the function code uses: selected by CROSSCLOUD_IDENTITY_CLIENT_ID."""
        client_id = self.settings.get("CROSSCLOUD_IDENTITY_CLIENT_ID")
        if client_id:
            return _one((i for i in self.user_identities if i.client_id == client_id), "UAMI")
        if self.system_identity is None:
            raise ValueError(f"app {self.name} has neither a client id setting nor a SAMI")
        return self.system_identity


@dataclass(frozen=True)
class OidcProviderSpec:
    url: str
    arn: str
    client_ids: tuple[str, ...]


@dataclass(frozen=True)
class World:
    """The deployment the program describes, in the terms the local cloud needs."""

    outputs: Mapping[str, Any]
    """The program's stack outputs."""
    tenant_id: str
    subscription_id: str
    resource_group: str
    audience: str
    federation_display_name: str
    app_role: str
    """Value of the app role the assignments grant (`roles` claim)."""
    assignment_required: bool
    assigned: frozenset[str]
    """Principal ids the program assigns the app role to."""
    oidc_providers: tuple[OidcProviderSpec, ...]
    role_name: str
    role_arn: str
    role_max_session_seconds: int
    trust_policy: str
    """The role's trust policy, the exact JSON text the program sends to IAM."""
    read_policy_name: str
    read_policy: str
    """The role's inline permission policy (JSON text)."""
    region: str
    bucket: str
    key_prefix: str
    """Prefix the read policy limits GetObject to (empty: the whole bucket)."""
    s3_objects: Mapping[str, Path]
    """Key -> file, from the program's bucket objects."""
    s3_content_types: Mapping[str, str]
    container: str
    blobs: Mapping[str, Path]
    """Blob name -> file, from the program's blob upload."""
    blob_readers: frozenset[str]
    """Principal ids with Storage Blob Data Reader on the data account."""
    blob_writers: frozenset[str]
    """Principal ids with Storage Blob Data Contributor or Owner on the data account."""
    deployer: ManagedId
    """Who runs `pulumi up` (and `make verify`): holds Blob Data Contributor on the data account
    to upload the samples, and is not assigned the app role."""
    apps: Mapping[str, FunctionAppSpec]
    """By kind (`sami`, `uami`)."""
    caller_audience: str = ""
    """The reader API's identifier URI: `aud` of the tokens the apps let in (components/
    reader_api.py)."""
    caller_client_id: str = ""
    caller_role: str = "CrossCloud.Read"
    callers: frozenset[str] = frozenset()
    """Principal ids the program assigns the reader API's role (the deployer by default)."""

    @property
    def extra_principal_ids(self) -> frozenset[str]:
        """Assigned identities that are not one of the program's apps (config extraPrincipalIds)."""
        return self.assigned - {app.identity.principal_id for app in self.apps.values()}

    def shared_names(self) -> list[str]:
        """Names /api/read finds in both stores (the function reads name N at key prefix+N)."""
        names = {
            k.removeprefix(self.key_prefix)
            for k in self.s3_objects
            if k.startswith(self.key_prefix)
        }
        return sorted(set(self.blobs) & names)


def derive(run: ProgramRun, foundation: ProgramRun | None = None) -> World:
    """Read a `World` out of one run of the program. For an environment stack, `foundation` is
    the run of the foundation it names: the federation app and the OIDC providers are there."""
    outputs = run.outputs
    tenant_id = outputs["tenantId"]
    audience = outputs["audience"]
    shared = foundation or run

    uri = _one(
        (r for r in shared.of_type(IDENTIFIER_URI) if r.inputs["identifierUri"] == audience),
        f"identifier URI {audience}",
    )
    application = _one(
        (r for r in shared.of_type(APPLICATION) if r.id == uri.inputs["applicationId"]),
        "federation application",
    )
    principal = _one(
        (
            r
            for r in shared.of_type(SERVICE_PRINCIPAL)
            if r.inputs["clientId"] == application.state["clientId"]
        ),
        "federation service principal",
    )
    roles = {role["id"]: role["value"] for role in application.inputs.get("appRoles", [])}
    assignments = [
        r
        for r in run.of_type(APP_ROLE_ASSIGNMENT)
        if r.inputs["resourceObjectId"] == principal.state["objectId"]
    ]
    app_role = _one({roles[a.inputs["appRoleId"]] for a in assignments}, "assigned app role")

    role = _one(
        (r for r in run.of_type(IAM_ROLE) if r.state["arn"] == outputs["awsRoleArn"]), "IAM role"
    )
    read_policy = _one(
        (r for r in run.of_type(IAM_ROLE_POLICY) if r.inputs["role"] == role.inputs["name"]),
        "inline policy on the role",
    )
    bucket = outputs["bucketName"]
    objects = [r for r in run.of_type(S3_OBJECT) if r.inputs["bucket"] == bucket]

    data_account = _one(
        (
            r
            for r in run.of_type(STORAGE_ACCOUNT)
            if r.state.get("primaryEndpoints", {}).get("blob") == outputs["dataBlobUrl"]
        ),
        "data storage account",
    )
    upload = _one(
        (r for r in run.of_type(BLOB_UPLOAD) if r.inputs["account_url"] == outputs["dataBlobUrl"]),
        "blob upload into the data account",
    )
    readers = _principals_with(run, data_account, {AzureRole.STORAGE_BLOB_DATA_READER})
    writers = _principals_with(
        run,
        data_account,
        {AzureRole.STORAGE_BLOB_DATA_CONTRIBUTOR, AzureRole.STORAGE_BLOB_DATA_OWNER},
    )
    deployer_id = _one(writers, "principal that writes the data account (the deployer)")

    app_kinds = {name: kind for kind, name in outputs["functionAppNames"].items()}
    apps = [_app(run, web_app, app_kinds) for web_app in run.of_type(WEB_APP)]
    settings = apps[0].settings
    reader = _one(
        (
            r
            for r in run.of_type(APPLICATION)
            if outputs["callerAudience"] in (r.inputs.get("identifierUris") or ())
        ),
        "reader API application",
    )
    reader_sp = _one(
        (
            r
            for r in run.of_type(SERVICE_PRINCIPAL)
            if r.inputs["clientId"] == reader.state["clientId"]
        ),
        "reader API service principal",
    )
    callers = frozenset(
        r.inputs["principalObjectId"]
        for r in run.of_type(APP_ROLE_ASSIGNMENT)
        if r.inputs["resourceObjectId"] == reader_sp.state["objectId"]
    )
    return World(
        outputs=dict(outputs),
        tenant_id=tenant_id,
        subscription_id=outputs["subscriptionId"],
        resource_group=outputs["resourceGroupName"],
        audience=audience,
        federation_display_name=application.inputs["displayName"],
        app_role=app_role,
        assignment_required=bool(principal.inputs.get("appRoleAssignmentRequired")),
        assigned=frozenset(a.inputs["principalObjectId"] for a in assignments),
        oidc_providers=tuple(
            OidcProviderSpec(
                url=r.inputs["url"],
                arn=r.state["arn"],
                client_ids=tuple(r.inputs.get("clientIdLists", ())),
            )
            for r in shared.of_type(OIDC_PROVIDER)
        ),
        role_name=role.inputs["name"],
        role_arn=role.state["arn"],
        role_max_session_seconds=int(role.inputs.get("maxSessionDuration", 3600)),
        trust_policy=role.inputs["assumeRolePolicy"],
        read_policy_name=read_policy.name,
        read_policy=read_policy.inputs["policy"],
        region=settings["CROSSCLOUD_AWS_REGION"],
        bucket=bucket,
        key_prefix=_get_object_prefix(read_policy.inputs["policy"], bucket),
        s3_objects={r.inputs["key"]: Path(r.inputs["source"].path) for r in objects},
        s3_content_types={
            r.inputs["key"]: r.inputs.get("contentType", "binary/octet-stream") for r in objects
        },
        container=upload.inputs["container_name"],
        blobs={name: Path(file["path"]) for name, file in upload.inputs["files"].items()},
        blob_readers=frozenset(readers),
        blob_writers=frozenset(writers),
        deployer=ManagedId(principal_id=deployer_id, client_id=stable_client_id(deployer_id)),
        apps={app.kind: app for app in apps},
        caller_audience=outputs["callerAudience"],
        caller_client_id=outputs["callerClientId"],
        caller_role=settings["CROSSCLOUD_CALLER_ROLE"],
        callers=callers,
    )


def world_from_program(config: Mapping[str, Any] | None = None) -> World:
    """Run `__main__.py` under mocks with `crosscloud:*` config and derive the world."""
    return derive(run_program(config))


TEAMS_FOUNDATION = "localcloud/crosscloud-foundation/shared"
TEAMS_ENVIRONMENTS = ("dev", "prod")


def teams_worlds(
    environments: tuple[str, ...] = TEAMS_ENVIRONMENTS,
) -> dict[str, World]:
    """The foundation (foundation/__main__.py) and one environment stack per name, each run
    under mocks, the environments' StackReference answered with the foundation's outputs.

    All in one AWS account (the mocks' ambient one), as teams that put dev and prod side by side
    do: one OIDC provider there, and a role per environment (so each sets its own awsRoleName).
    """
    foundation = run_foundation({"awsAccounts": []})
    return {
        name: derive(
            run_program(
                {"foundation": TEAMS_FOUNDATION, "awsRoleName": f"S3ReadFromAzure-{name}"},
                stack=name,
                stack_outputs={TEAMS_FOUNDATION: foundation.outputs},
            ),
            foundation,
        )
        for name in environments
    }


def _principals_with(run: ProgramRun, scope: Registered, roles: set[AzureRole]) -> set[str]:
    wanted = {role.value for role in roles}
    return {
        r.inputs["principalId"]
        for r in run.of_type(ROLE_ASSIGNMENT)
        if r.inputs["scope"] == scope.id
        and r.inputs["roleDefinitionId"].rsplit("/", 1)[-1] in wanted
    }


def _app(run: ProgramRun, web_app: Registered, kinds: Mapping[str, str]) -> FunctionAppSpec:
    name = web_app.inputs["name"]
    identity = web_app.inputs.get("identity") or {}
    identity_type = str(identity.get("type", ""))
    system = None
    if "SystemAssigned" in identity_type:
        principal_id = web_app.state["identity"]["principalId"]
        system = ManagedId(principal_id=principal_id, client_id=stable_client_id(principal_id))
    attached = set(identity.get("userAssignedIdentities") or ())
    users = tuple(
        ManagedId(principal_id=r.state["principalId"], client_id=r.state["clientId"])
        for r in run.of_type(USER_ASSIGNED_IDENTITY)
        if r.id in attached
    )
    settings = {s["name"]: s["value"] for s in web_app.inputs["siteConfig"]["appSettings"]}
    return FunctionAppSpec(
        kind=kinds[name],
        name=name,
        settings=settings,
        system_identity=system,
        user_identities=users,
    )


def _get_object_prefix(policy_json: str, bucket: str) -> str:
    """The key prefix of the policy's GetObject resource `arn:aws:s3:::{bucket}/{prefix}*`."""
    statements = json.loads(policy_json)["Statement"]
    resource = _one(
        (s["Resource"] for s in statements if s.get("Action") == "s3:GetObject"),
        "GetObject statement",
    )
    head = f"arn:aws:s3:::{bucket}/"
    if not (resource.startswith(head) and resource.endswith("*")):
        raise ValueError(f"unexpected GetObject resource {resource!r}")
    return resource[len(head) : -1]
