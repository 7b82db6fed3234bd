"""AWS readers: a Lambda reads the Azure data container with nothing but its IAM role.

AWS: IAM outbound web identity federation (created and protected, or an existing one read), an
execution role that may only get a token for Entra (`sts:GetWebIdentityToken` for audience
api://AzureADTokenExchange, RS256, a bounded duration) and write its own log group, and the
Lambda (python3.12, no function URL). Azure: a user-assigned identity with one federated identity
credential (issuer = the account's issuer, subject = the role's ARN) and Storage Blob Data Reader
on the data container only.

Facts, with their sources:
- `aws.iam.OutboundWebIdentityFederation` has no inputs and outputs `issuer_identifier`
  (pulumi_aws 7.51 iam/outbound_web_identity_federation.py); creating it enables the feature for
  the whole account and destroying it disables it. It does NOT adopt an already enabled account:
  Create calls EnableOutboundWebIdentityFederation and fails on its FeatureEnabled error
  (terraform-provider-aws internal/service/iam/outbound_web_identity_federation.go, the version
  pulumi_aws 7.51 bundles: import by account id, no `jwt_vending_enabled`; botocore's iam model:
  "You cannot enable the feature multiple times"). Hence `protect=True` when this stack creates
  it, and, on an account that has it, `existing` to only read it
  (`aws.iam.get_outbound_web_identity_federation`) or `pulumi import
  aws:iam/outboundWebIdentityFederation:OutboundWebIdentityFederation <name> <account-id>`.
- The token's `sub` is the calling role's ARN (sts GetWebIdentityToken, SubjectMode AWSIdentity,
  botocore's sts model); condition keys sts:IdentityTokenAudience (multivalued: `Audience` is a
  list, so ForAllValues plus a Null check), sts:SigningAlgorithm, sts:DurationSeconds
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_providers_outbound_policies.html).
- Federated identity credential: issuer and subject must equal the token's exactly, audiences
  `api://AzureADTokenExchange`, at most 20 per identity, no concurrent writes on one identity
  (https://learn.microsoft.com/en-us/entra/workload-id/workload-identity-federation-considerations).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
from pulumi_azure_native import managedidentity

from components.azure_roles import AzureRole, assign_role
from shipping.build import BuiltPackage
from shipping.lambda_build import HANDLER, LAMBDA_RUNTIME

ENTRA_AUDIENCE = "api://AzureADTokenExchange"
SIGNING_ALGORITHM = "RS256"
MAX_TOKEN_DURATION_SECONDS = 900
"""Ceiling on `sts:DurationSeconds` in the role policy (STS allows up to 3600): the token is an
assertion Entra exchanges at once."""
TOKEN_DURATION_SECONDS = 300
"""What the Lambda asks for (CROSSCLOUD_TOKEN_DURATION_SECONDS); STS's own default."""
LAMBDA_TIMEOUT_SECONDS = 30
LAMBDA_MEMORY_MB = 512
LOG_RETENTION_DAYS = 30
OutboundFederation = Literal["create", "existing", "foundation"]


@dataclass(frozen=True)
class AwsReadersArgs:
    """Inputs of `AwsReaders`."""

    function_name: str
    """Lambda function name (naming.py)."""
    role_name: str
    """IAM execution role name; the federated credential's subject is its ARN."""
    identity_name: str
    """Name of the user-assigned identity for AWS readers."""
    package: BuiltPackage
    """The Lambda's zip (shipping/lambda_build.py); its sha256 decides redeployment."""
    partition: str
    """AWS partition from `aws.get_partition()`: every ARN is built in it."""
    account_id: str
    """AWS account of the role, the Lambda and the log group."""
    region: str
    """AWS region of the Lambda (and of the regional STS endpoint it calls)."""
    tenant_id: str
    """Entra tenant of the identity."""
    resource_group_name: pulumi.Input[str]
    """Resource group of the identity."""
    location: str
    """Azure region of the identity."""
    subscription_id: str
    """Subscription; role definition ids are built from it."""
    data_container_id: pulumi.Input[str]
    """Resource id of the data container: the `id` output of its BlobContainer
    (`SecureStorageAccount.container_id`), so the grant waits for the container to exist."""
    blob_endpoint: pulumi.Input[str]
    """The data account's blob endpoint."""
    container: str
    """The one container the identity may read (the role's scope)."""
    outbound_federation: OutboundFederation = "create"
    """`create` (enable it, protected), `existing` (read it), `foundation` (`issuer` given)."""
    issuer: pulumi.Input[str] | None = None
    """The account's issuer, when `outbound_federation` is `foundation`."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for the Azure identity (AWS resources get the provider's default tags)."""


def lambda_role_trust_policy() -> str:
    """Only the Lambda service may assume the execution role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def log_group_name(function_name: str) -> str:
    """Lambda's default log group for a function (it writes there unless told otherwise)."""
    return f"/aws/lambda/{function_name}"


def log_group_arn(partition: str, region: str, account_id: str, function_name: str) -> str:
    return f"arn:{partition}:logs:{region}:{account_id}:log-group:{log_group_name(function_name)}"


def execution_role_policy(partition: str, region: str, account_id: str, function_name: str) -> str:
    """The role's only permissions: an Entra-bound token, and its own log streams."""
    group = log_group_arn(partition, region, account_id, function_name)
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "TokenForEntraOnly",
                    "Effect": "Allow",
                    "Action": "sts:GetWebIdentityToken",
                    # The action has no resource type: "*" is the only resource it takes.
                    "Resource": "*",
                    "Condition": {
                        # Every requested audience must be Entra's, and one must be requested.
                        "ForAllValues:StringEquals": {
                            "sts:IdentityTokenAudience": [ENTRA_AUDIENCE]
                        },
                        "Null": {"sts:IdentityTokenAudience": "false"},
                        "StringEquals": {"sts:SigningAlgorithm": SIGNING_ALGORITHM},
                        "NumericLessThanEquals": {
                            "sts:DurationSeconds": MAX_TOKEN_DURATION_SECONDS
                        },
                    },
                },
                {
                    "Sid": "OwnLogsOnly",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": f"{group}:*",
                },
            ],
        }
    )


def source_code_hash(package: BuiltPackage) -> str:
    """base64 of the zip's sha256, as Lambda reports `CodeSha256`: redeploy only on change."""
    return base64.b64encode(bytes.fromhex(package.sha256)).decode("ascii")


class AwsReaders(pulumi.ComponentResource):
    """The Lambda, its role and the account's outbound federation; the Azure identity that
    trusts the role, with read access to one container."""

    function_name: pulumi.Output[str]
    function_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    reader_client_id: pulumi.Output[str]
    reader_principal_id: pulumi.Output[str]
    issuer: pulumi.Output[str]
    """The AWS account's token issuer (the federated credential's `issuer`)."""

    def __init__(
        self, name: str, args: AwsReadersArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("crosscloud:aws:AwsReaders", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        issuer = self._issuer(name, args)

        # ---- AWS: log group, role, Lambda ----
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=log_group_name(args.function_name),
            retention_in_days=LOG_RETENTION_DAYS,
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-role",
            name=args.role_name,
            assume_role_policy=lambda_role_trust_policy(),
            description="AWS readers Lambda: an Entra-bound token and its own logs, nothing else",
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-role-policy",
            role=role.name,
            name="entra-token-and-own-logs",
            policy=execution_role_policy(
                args.partition, args.region, args.account_id, args.function_name
            ),
            opts=child,
        )

        # ---- Azure: identity, its one federated credential, container-scoped reader ----
        identity = managedidentity.UserAssignedIdentity(
            f"{name}-identity",
            resource_name_=args.identity_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=dict(args.tags),
            opts=child,
        )
        credential = managedidentity.FederatedIdentityCredential(
            f"{name}-federated-credential",
            federated_identity_credential_resource_name="aws-lambda-role",
            resource_name_=identity.name,
            resource_group_name=args.resource_group_name,
            issuer=issuer,
            subject=role.arn,
            audiences=[ENTRA_AUDIENCE],
            # Credentials on one identity must be written one at a time (409 otherwise): any
            # later one chains on this one with depends_on.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[identity]),
        )
        # The container's own id, not a string built beside it: ARM refuses a role assignment
        # whose scope does not exist yet, and on a first `up` the container is created in the
        # same run (the id output makes the grant wait for it).
        reader = assign_role(
            f"{name}-container-reader",
            scope=args.data_container_id,
            principal_id=identity.principal_id,
            role=AzureRole.STORAGE_BLOB_DATA_READER,
            subscription_id=args.subscription_id,
            parent=self,
        )

        function = aws.lambda_.Function(
            f"{name}-function",
            name=args.function_name,
            role=role.arn,
            runtime=LAMBDA_RUNTIME,
            handler=HANDLER,
            architectures=["x86_64"],  # the wheels are manylinux2014_x86_64
            code=pulumi.FileArchive(str(args.package.path)),
            source_code_hash=source_code_hash(args.package),
            timeout=LAMBDA_TIMEOUT_SECONDS,
            memory_size=LAMBDA_MEMORY_MB,
            environment={
                "variables": {
                    "CROSSCLOUD_TENANT_ID": args.tenant_id,
                    "CROSSCLOUD_READER_CLIENT_ID": identity.client_id,
                    "CROSSCLOUD_BLOB_ACCOUNT_URL": args.blob_endpoint,
                    "CROSSCLOUD_BLOB_CONTAINER": args.container,
                    "CROSSCLOUD_EXPECTED_ISSUER": issuer,
                    "CROSSCLOUD_EXPECTED_SUBJECT": role.arn,
                    "CROSSCLOUD_TOKEN_DURATION_SECONDS": str(TOKEN_DURATION_SECONDS),
                }
            },
            # The role must be able to log and the trust must exist before the first invoke.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[policy, log_group, credential, reader]
            ),
        )

        self.function_name = function.name
        self.function_arn = function.arn
        self.role_arn = role.arn
        self.reader_client_id = identity.client_id
        self.reader_principal_id = identity.principal_id
        self.issuer = pulumi.Output.from_input(issuer)
        self.register_outputs(
            {
                "function_name": self.function_name,
                "function_arn": self.function_arn,
                "role_arn": self.role_arn,
                "reader_client_id": self.reader_client_id,
                "reader_principal_id": self.reader_principal_id,
                "issuer": self.issuer,
            }
        )

    def _issuer(self, name: str, args: AwsReadersArgs) -> pulumi.Input[str]:
        if args.outbound_federation == "foundation":
            if args.issuer is None:
                raise ValueError("AwsReadersArgs.issuer is required with a foundation")
            return args.issuer
        if args.outbound_federation == "existing":
            found: Any = aws.iam.get_outbound_web_identity_federation_output(
                opts=pulumi.InvokeOutputOptions(parent=self)
            )
            return found.issuer_identifier
        federation = aws.iam.OutboundWebIdentityFederation(
            f"{name}-outbound-federation",
            # Destroying it disables the feature for the whole account (every workload that
            # uses it); a stack must be told explicitly (docs/aws-readers.md) to let it go.
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        return federation.issuer_identifier
