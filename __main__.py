"""Secretless cross-cloud access: settings -> components -> stack outputs.

Two Flex Consumption function apps (system- and user-assigned identity) read Azure Blob Storage
with Entra RBAC and S3 through an IAM role that trusts only their Entra tokens. README.md has
the picture; docs/design.md the reasons.
"""

from pathlib import Path

import pulumi
import pulumi_aws as aws
from pulumi_azure_native import authorization, resources

from components import trust
from components.access_logs import S3AccessLogs, S3AccessLogsArgs
from components.aws_access import AwsWebIdentityAccess, AwsWebIdentityAccessArgs
from components.aws_readers import AwsReaders, AwsReadersArgs
from components.azure_roles import AzureRole
from components.deployer import deployer_principal_type
from components.federation_app import FederationApp, FederationAppArgs
from components.function_app import FlexFunctionApp, FlexFunctionAppArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.naming import Names
from components.oidc_provider import existing_provider_arn
from components.reader_api import ReaderApi, ReaderApiArgs
from components.settings import load_settings
from components.shared_federation import SharedFederation, SharedFederationArgs
from components.storage_account import SecureStorageAccount, SecureStorageAccountArgs
from components.validation import MAX_AUDIENCE_LENGTH
from shipping import build, lambda_build

DATA_CONTAINER = "mycontainer"
HERE = Path(__file__).parent
SAMPLE_DATA = HERE / "sample_data"
FUNCTION_SOURCE = HERE / "function_src"

settings = load_settings()

azure = authorization.get_client_config()
# Before any resource: a deployer whose type cannot be found out stops the run here.
deployer_type = deployer_principal_type(azure.object_id, settings.deployer_principal_type)
aws_provider = aws.Provider(
    "aws", region=settings.aws_region, default_tags={"tags": dict(settings.tags)}
)
aws_invoke = pulumi.InvokeOptions(provider=aws_provider)
aws_account_id = aws.get_caller_identity(opts=aws_invoke).account_id
aws_partition = aws.get_partition(opts=aws_invoke).partition

names = Names(
    settings.prefix, pulumi.get_stack(), unique_seed=f"{azure.subscription_id}/{aws_account_id}"
)
tags = {"managed-by": "pulumi", "project": pulumi.get_project(), **settings.tags}

group = resources.ResourceGroup(
    "group", resource_group_name=names.resource_group, location=settings.azure_location, tags=tags
)

host_storage = SecureStorageAccount(
    "host-storage",
    SecureStorageAccountArgs(
        account_name=names.storage_account("host"),
        resource_group_name=group.name,
        location=settings.azure_location,
        subscription_id=azure.subscription_id,
        containers=(names.deployment_container("sami"), names.deployment_container("uami")),
        tags=tags,
    ),
)
data_storage = SecureStorageAccount(
    "data-storage",
    SecureStorageAccountArgs(
        account_name=names.storage_account("data"),
        resource_group_name=group.name,
        location=settings.azure_location,
        subscription_id=azure.subscription_id,
        containers=(DATA_CONTAINER,),
        tags=tags,
    ),
)

# Telemetry and the data account's blob audit log; nothing here accepts a key.
monitoring = Monitoring(
    "monitoring",
    MonitoringArgs(
        workspace_name=names.log_workspace,
        component_name=names.app_insights,
        resource_group_name=group.name,
        location=settings.azure_location,
        subscription_id=azure.subscription_id,
        retention_days=settings.audit_retention_days,
        tags=tags,
    ),
)
monitoring.audit_blob_service("data-blob-audit", data_storage.account_id)

# The federation app and the OIDC provider: this stack's own (standalone, the default), or a
# foundation's shared by every environment of the tenant
# (docs/design.md "Teams: a foundation and environments").
federation: FederationApp | SharedFederation
provider_arn: pulumi.Input[str] | None = None
if settings.foundation:
    federation = SharedFederation(
        "federation",
        SharedFederationArgs(settings.foundation, azure.tenant_id, aws_account_id),
    )
    provider_arn = federation.provider_arn
    audience_length = MAX_AUDIENCE_LENGTH  # the foundation's audience is an output
else:
    federation = FederationApp(
        "federation",
        FederationAppArgs(
            display_name=settings.app_display_name,
            tenant_id=azure.tenant_id,
            audience=settings.audience,
            app_role_id=names.app_role_id,
            owner_object_ids=(azure.object_id,),
        ),
    )
    audience_length = federation.audience_length
    if settings.aws_oidc_provider_arn:
        provider_arn = existing_provider_arn(
            settings.aws_oidc_provider_arn,
            azure.tenant_id,
            federation.audience_in_advance or federation.audience,
            aws_invoke,
        )

# The front door: callers present an Entra token for this stack's own reader API (never the
# federation app; with a foundation too, each environment has its own).
# Keyed by object id (resource `reader-api-caller-<id>`). A deployer listed already gets no
# second assignment: Graph refuses two for one principal, role and resource ("EntitlementGrant
# entry already exists", microsoftgraph/msgraph-bicep-types#161). Settings lowercase the ids.
callers = {object_id: object_id for object_id in settings.caller_principal_ids}
if settings.deployer_is_caller and azure.object_id.lower() not in callers:
    callers["deployer"] = azure.object_id
reader_api = ReaderApi(
    "reader-api",
    ReaderApiArgs(
        display_name=settings.caller_app_display_name or names.reader_api_display_name,
        tenant_id=azure.tenant_id,
        app_role_id=names.reader_api_role_id,
        scope_id=names.reader_api_scope_id,
        callers=callers,
        owner_object_ids=(azure.object_id,),
    ),
)

# Built (or taken from the cache) on every preview: the deployments are keyed by its sha256.
package = build.build_package(FUNCTION_SOURCE, settings.python_version)

bucket_name = settings.bucket_name or names.bucket
role_arn = trust.role_arn(aws_partition, aws_account_id, settings.aws_role_name)
function_settings = {
    "CROSSCLOUD_AUDIENCE": federation.audience,
    "CROSSCLOUD_AWS_ROLE_ARN": role_arn,
    "CROSSCLOUD_AWS_REGION": settings.aws_region,
    "CROSSCLOUD_S3_BUCKET": bucket_name,
    "CROSSCLOUD_BLOB_ACCOUNT_URL": data_storage.blob_endpoint,
    "CROSSCLOUD_BLOB_CONTAINER": DATA_CONTAINER,
    "CROSSCLOUD_TENANT_ID": azure.tenant_id,
    "CROSSCLOUD_CALLER_AUDIENCE": reader_api.audience,
    "CROSSCLOUD_CALLER_CLIENT_ID": reader_api.client_id,
    "CROSSCLOUD_CALLER_ROLE": reader_api.role,
}
if settings.s3_key_prefix:
    function_settings["CROSSCLOUD_S3_KEY_PREFIX"] = settings.s3_key_prefix

apps: dict[str, FlexFunctionApp] = {}
for kind, identity in (("sami", "SystemAssigned"), ("uami", "UserAssigned")):
    apps[kind] = FlexFunctionApp(
        f"function-{kind}",
        FlexFunctionAppArgs(
            app_name=names.function_app(kind),
            plan_name=names.plan(kind),
            identity=identity,
            identity_name=names.user_assigned_identity(kind)
            if identity == "UserAssigned"
            else None,
            resource_group_name=group.name,
            location=settings.azure_location,
            subscription_id=azure.subscription_id,
            host_account_name=host_storage.account_name,
            host_account_id=host_storage.account_id,
            host_blob_endpoint=host_storage.blob_endpoint,
            deployment_container=names.deployment_container(kind),
            python_version=settings.python_version,
            instance_memory_mb=settings.instance_memory_mb,
            maximum_instance_count=settings.maximum_instance_count,
            app_settings=function_settings,
            app_insights_connection_string=monitoring.connection_string,
            always_ready_instances=settings.always_ready_instances,
            package=package,
            tags=tags,
        ),
    )

# Every trusted identity: both apps plus any extra service principals from config.
trusted = {kind: app.principal_id for kind, app in apps.items()}
trusted.update({f"extra-{object_id}": object_id for object_id in settings.extra_principal_ids})

for key, principal_id in trusted.items():
    federation.assign(key, principal_id)
for kind, app in apps.items():
    data_storage.grant(f"{kind}-blob-reader", app.principal_id, AzureRole.STORAGE_BLOB_DATA_READER)
    publisher = monitoring.allow_publisher(f"{kind}-publisher", app.principal_id)
    # The code sends telemetry once deployed: the publisher grant is created before One Deploy
    # runs. Only the creation is ordered; RBAC may take minutes to apply, so the first
    # telemetry can still be refused briefly (docs/operations.md).
    app.deploy(after=[publisher])
# The deployer uploads the sample blobs with its own Entra token; shared key is off.
deployer_grant = data_storage.grant(
    "deployer-blob-contributor",
    azure.object_id,
    AzureRole.STORAGE_BLOB_DATA_CONTRIBUTOR,
    principal_type=deployer_type,
)
data_storage.upload("samples", DATA_CONTAINER, SAMPLE_DATA / "azure", deployer_grant)

aws_access = AwsWebIdentityAccess(
    "aws-access",
    AwsWebIdentityAccessArgs(
        tenant_id=azure.tenant_id,
        audience=federation.audience,
        audience_length=audience_length,
        provider_arn=provider_arn,
        trusted_principal_ids=list(trusted.values()),
        role_name=settings.aws_role_name,
        bucket_name=bucket_name,
        partition=aws_partition,
        key_prefix=settings.s3_key_prefix,
        sample_objects={p.name: p for p in sorted((SAMPLE_DATA / "s3").glob("*")) if p.is_file()},
    ),
    opts=pulumi.ResourceOptions(providers={"aws": aws_provider}),
)

access_logs = S3AccessLogs(
    "s3-access-logs",
    S3AccessLogsArgs(
        log_bucket_name=names.access_log_bucket,
        source_bucket_name=aws_access.bucket_name,
        account_id=aws_account_id,
        partition=aws_partition,
        retention_days=settings.audit_retention_days,
    ),
    opts=pulumi.ResourceOptions(providers={"aws": aws_provider}),
)

# The other direction (opt-in): an AWS Lambda reads the data container with its IAM role only.
if settings.aws_readers:
    readers = AwsReaders(
        "aws-readers",
        AwsReadersArgs(
            function_name=names.aws_reader,
            role_name=names.aws_reader,
            identity_name=names.user_assigned_identity("awsreaders"),
            package=lambda_build.build_lambda_package(),
            partition=aws_partition,
            account_id=aws_account_id,
            region=settings.aws_region,
            tenant_id=azure.tenant_id,
            resource_group_name=group.name,
            location=settings.azure_location,
            subscription_id=azure.subscription_id,
            data_container_id=data_storage.container_id(DATA_CONTAINER),
            blob_endpoint=data_storage.blob_endpoint,
            container=DATA_CONTAINER,
            outbound_federation="foundation"
            if isinstance(federation, SharedFederation)
            else settings.aws_outbound_federation,
            issuer=federation.outbound_issuer()
            if isinstance(federation, SharedFederation)
            else None,
            tags=tags,
        ),
        opts=pulumi.ResourceOptions(providers={"aws": aws_provider}),
    )
    pulumi.export("awsReaderFunctionName", readers.function_name)
    pulumi.export("awsReaderFunctionArn", readers.function_arn)
    pulumi.export("awsReaderClientId", readers.reader_client_id)
    pulumi.export("awsOutboundIssuer", readers.issuer)

pulumi.export("tenantId", azure.tenant_id)
pulumi.export("audience", federation.audience)
pulumi.export("federationAppClientId", federation.client_id)
pulumi.export("awsRoleArn", aws_access.role_arn)
pulumi.export("awsRegion", settings.aws_region)
pulumi.export("trustedPrincipalIds", pulumi.Output.all(*trusted.values()).apply(sorted))
pulumi.export("bucketName", aws_access.bucket_name)
pulumi.export("dataBlobUrl", data_storage.blob_endpoint)
pulumi.export("uamiClientId", apps["uami"].client_id)
pulumi.export("samiFunctionHostname", apps["sami"].default_host_name)
pulumi.export("uamiFunctionHostname", apps["uami"].default_host_name)
pulumi.export("subscriptionId", azure.subscription_id)
pulumi.export("resourceGroupName", group.name)
pulumi.export("functionAppNames", {kind: app.app_name for kind, app in apps.items()})
pulumi.export("logAnalyticsWorkspaceId", monitoring.workspace_customer_id)
pulumi.export("accessLogBucket", access_logs.log_bucket_name)
pulumi.export("callerAudience", reader_api.audience)
pulumi.export("callerClientId", reader_api.client_id)
