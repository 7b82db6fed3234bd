"""The foundation: what a tenant has once, shared by every environment stack.

The federation application (identifier URI = the audience, app role `AssumeAWSRole`, v1 tokens,
service principal with assignment required) and, in every AWS account of
`crosscloud:awsAccounts`, the IAM OIDC provider for the tenant's issuer. Environments (the root
project with `crosscloud:foundation`) read the outputs below through a StackReference.
docs/teams.md has the picture and the order of operations; docs/permissions.md who needs what.
"""

import sys
from pathlib import Path

# Pulumi runs this file with foundation/ as working directory and first on sys.path; the shared
# components/ live one level up in the same repository and virtualenv. Putting the repository
# root on the path (once, here) reuses them as they are instead of copying or packaging them.
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import pulumi  # noqa: E402
import pulumi_aws as aws  # noqa: E402
import pulumi_azuread as azuread  # noqa: E402

from components import shared_federation as outputs  # noqa: E402
from components.federation_app import FederationApp, FederationAppArgs  # noqa: E402
from components.foundation_settings import load_foundation_settings  # noqa: E402
from components.naming import foundation_app_role_id  # noqa: E402
from components.oidc_provider import EntraOidcProvider, EntraOidcProviderArgs  # noqa: E402

settings = load_foundation_settings(pulumi.get_project())
client = azuread.get_client_config()

federation = FederationApp(
    "federation",
    FederationAppArgs(
        display_name=settings.app_display_name,
        tenant_id=client.tenant_id,
        audience=settings.audience,
        app_role_id=settings.app_role_id
        or foundation_app_role_id(pulumi.get_project(), pulumi.get_stack()),
        owner_object_ids=(client.object_id,),
    ),
)

default_tags = {"tags": {"managed-by": "pulumi", "project": pulumi.get_project(), **settings.tags}}
providers: dict[str, aws.Provider] = {}
for account in settings.aws_accounts:
    providers[account.account_id] = aws.Provider(
        f"aws-{account.account_id}",
        region=settings.aws_region,
        assume_roles=[
            aws.ProviderAssumeRoleArgs(
                role_arn=account.deployment_role_arn, session_name="crosscloud-foundation"
            )
        ],
        # Refuse to touch any other account, should the role ever lead elsewhere.
        allowed_account_ids=[account.account_id],
        default_tags=default_tags,
    )
if not providers:
    ambient = aws.Provider("aws", region=settings.aws_region, default_tags=default_tags)
    account_id = aws.get_caller_identity(opts=pulumi.InvokeOptions(provider=ambient)).account_id
    providers[account_id] = ambient

oidc = {
    account_id: EntraOidcProvider(
        f"oidc-{account_id}",
        EntraOidcProviderArgs(
            tenant_id=client.tenant_id, audience=federation.audience, account_id=account_id
        ),
        opts=pulumi.ResourceOptions(providers={"aws": provider}),
    )
    for account_id, provider in providers.items()
}

# IAM outbound web identity federation is account-wide (one issuer per account; destroying the
# resource turns it off for every workload of the account), so the foundation owns it for the
# environments' AWS readers. `create` fails on an account that already has it (no adoption):
# use `existing` there (components/aws_readers.py has the facts and their sources).
issuers: dict[str, pulumi.Output[str]] = {}
for account_id, provider in providers.items():
    if settings.aws_outbound_federation == "create":
        issuers[account_id] = aws.iam.OutboundWebIdentityFederation(
            f"outbound-federation-{account_id}",
            opts=pulumi.ResourceOptions(provider=provider, protect=True),
        ).issuer_identifier
    elif settings.aws_outbound_federation == "existing":
        issuers[account_id] = aws.iam.get_outbound_web_identity_federation_output(
            opts=pulumi.InvokeOutputOptions(provider=provider)
        ).issuer_identifier

pulumi.export(outputs.TENANT_ID, client.tenant_id)
pulumi.export(outputs.AUDIENCE, federation.audience)
pulumi.export(outputs.CLIENT_ID, federation.client_id)
pulumi.export(outputs.APP_ROLE_ID, federation.app_role_id)
pulumi.export(outputs.SERVICE_PRINCIPAL_OBJECT_ID, federation.service_principal_object_id)
pulumi.export(outputs.PROVIDER_ARNS, {account_id: p.arn for account_id, p in oidc.items()})
if issuers:
    pulumi.export(outputs.OUTBOUND_ISSUERS, issuers)
