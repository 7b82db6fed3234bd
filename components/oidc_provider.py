"""The IAM OIDC provider for an Entra tenant's v1 issuer, in one AWS account.

IAM holds at most one OIDC provider per issuer URL in an account (CreateOpenIDConnectProvider
answers EntityAlreadyExists for a second one:
https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateOpenIDConnectProvider.html), so the
provider is a per-tenant, per-account fact: a foundation creates it once per account and the
environments' roles name it; a standalone stack creates its own (inside AwsWebIdentityAccess,
through `openid_connect_provider`, so its resource name and URN stay what they were).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import trust


def openid_connect_provider(
    name: str,
    tenant_id: str,
    audiences: Sequence[pulumi.Input[str]],
    opts: pulumi.ResourceOptions,
) -> aws.iam.OpenIdConnectProvider:
    """The provider resource itself: URL = the token's `iss`, client ids = the audiences."""
    # No thumbprints: AWS validates Entra's certificate chain itself, and pinned thumbprints
    # broke users whenever Microsoft rotated certificates.
    return aws.iam.OpenIdConnectProvider(
        name, url=trust.issuer_url(tenant_id), client_id_lists=list(audiences), opts=opts
    )


def url_problem(url: str, tenant_id: str) -> str | None:
    """Why a provider with this URL cannot verify this tenant's tokens (None: it can).

    IAM's GetOpenIDConnectProvider returns the URL without `https://`, as the ARN names it, so
    both spellings are compared without the scheme.
    """
    if url.removeprefix("https://") == trust.issuer_url(tenant_id).removeprefix("https://"):
        return None
    return (
        f"its URL is {url!r}, but this tenant's tokens carry iss = "
        f"{trust.issuer_url(tenant_id)!r}: name the provider for that URL (with the trailing "
        "slash) or unset the key to let the stack create one"
    )


def audience_problem(client_ids: Sequence[str], audience: str) -> str | None:
    """Why a provider with these client ids refuses tokens for `audience` (None: it accepts)."""
    if audience in client_ids:
        return None
    return (
        f"its client ids {sorted(client_ids)} lack the audience {audience!r}: add it "
        f"(aws iam add-client-id-to-open-id-connect-provider --client-id {audience} "
        "--open-id-connect-provider-arn <arn>) or set crosscloud:audience to one it lists"
    )


@dataclass(frozen=True)
class EntraOidcProviderArgs:
    """Inputs of `EntraOidcProvider`."""

    tenant_id: str
    """Entra tenant whose v1 tokens (`iss` = https://sts.windows.net/{tenant}/) AWS accepts."""
    audience: pulumi.Input[str]
    """The federation app's identifier URI: the only client id (`aud`) the provider accepts."""
    account_id: str
    """The AWS account the provider lives in (the explicit provider in `opts` deploys there)."""


class EntraOidcProvider(pulumi.ComponentResource):
    """One account's IAM OIDC provider for the tenant. Pass the account's `aws.Provider` in
    `opts.providers`; the child inherits it."""

    arn: pulumi.Output[str]
    account_id: str

    def __init__(
        self,
        name: str,
        args: EntraOidcProviderArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("crosscloud:aws:EntraOidcProvider", name, None, opts)
        provider = openid_connect_provider(
            f"{name}-oidc", args.tenant_id, [args.audience], pulumi.ResourceOptions(parent=self)
        )
        self.account_id = args.account_id
        self.arn = provider.arn
        self.register_outputs({"arn": self.arn, "account_id": args.account_id})


class ExistingProviderError(pulumi.RunError):
    """`crosscloud:awsOidcProviderArn` names a provider this stack cannot use. A `RunError`:
    Pulumi prints the message alone and the preview or update fails."""


def existing_provider_arn(
    arn: str, tenant_id: str, audience: pulumi.Input[str], opts: pulumi.InvokeOptions
) -> pulumi.Output[str]:
    """The ARN of a provider made elsewhere, once checked against this tenant and audience.

    Looked up now (`aws.iam.get_openid_connect_provider`), so a wrong URL fails the preview
    before anything is registered; the audience is checked as soon as it is known (at once for
    `tenant` and custom audiences; after the app exists for `api://{appId}`). The role's trust
    policy is built from the returned output, so it is never created against a provider that
    would refuse the tokens.
    """
    found = aws.iam.get_open_id_connect_provider(arn=arn, opts=opts)
    problem = url_problem(found.url, tenant_id)
    if problem:
        raise ExistingProviderError(f"crosscloud:awsOidcProviderArn {arn}: {problem}")
    client_ids = tuple(found.client_id_lists)

    def check(audience_value: str) -> str:
        problem = audience_problem(client_ids, audience_value)
        if problem:
            raise ExistingProviderError(f"crosscloud:awsOidcProviderArn {arn}: {problem}")
        return arn

    if isinstance(audience, str):
        return pulumi.Output.from_input(check(audience))
    return pulumi.Output.from_input(audience).apply(check)
