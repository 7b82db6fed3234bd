"""An environment's view of its foundation: the shared federation app and OIDC provider.

An environment stack (`crosscloud:foundation: org/project/stack`) creates no application and no
provider. It reads the foundation's outputs through a `pulumi.StackReference`
(https://www.pulumi.com/docs/iac/concepts/stacks/#stackreferences), assigns the shared app role
to its own identities, and hands its AWS role the provider of the account it deploys to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_azuread as azuread

# The foundation's stack outputs (foundation/__main__.py exports exactly these).
TENANT_ID = "tenantId"
AUDIENCE = "audience"
CLIENT_ID = "federationAppClientId"
APP_ROLE_ID = "appRoleId"
SERVICE_PRINCIPAL_OBJECT_ID = "servicePrincipalObjectId"
PROVIDER_ARNS = "awsOidcProviderArns"
OUTBOUND_ISSUERS = "awsOutboundIssuers"
"""Issuer of IAM outbound web identity federation by AWS account (only when the foundation
enables it: `crosscloud:awsOutboundFederation`); read by environments with AWS readers."""
OUTPUTS = (TENANT_ID, AUDIENCE, CLIENT_ID, APP_ROLE_ID, SERVICE_PRINCIPAL_OBJECT_ID, PROVIDER_ARNS)


class FoundationError(pulumi.RunError):
    """The foundation stack cannot serve this environment. A `RunError`: Pulumi prints the
    message alone, without a Python traceback, and the preview or update fails."""


def foundation_problems(
    outputs: Mapping[str, Any], stack: str, tenant_id: str, account_id: str
) -> list[str]:
    """Why the foundation `stack`'s outputs cannot serve an environment deployed to Entra tenant
    `tenant_id` and AWS account `account_id` (empty: they can)."""
    missing = [name for name in OUTPUTS if not outputs.get(name)]
    if missing:
        return [
            f"the foundation stack {stack} has no output {', '.join(missing)}: deploy the "
            "foundation (foundation/, `pulumi up`) before its environments, and check that "
            "crosscloud:foundation names it (with a local backend, `pulumi login --local`, the "
            "organization is the literal word organization: organization/<project>/<stack>)"
        ]
    problems = []
    if outputs[TENANT_ID] != tenant_id:
        problems.append(
            f"the foundation stack {stack} federates Entra tenant {outputs[TENANT_ID]}, but this "
            f"stack deploys to tenant {tenant_id}: name a foundation of this tenant"
        )
    arns = outputs[PROVIDER_ARNS]
    if account_id not in arns:
        listed = ", ".join(sorted(arns)) or "none"
        problems.append(
            f"the foundation stack {stack} has no OIDC provider for AWS account {account_id}, "
            f"the account this stack deploys to (it has: {listed}): add {account_id} to the "
            "foundation's crosscloud:awsAccounts and run `pulumi up` on the foundation first"
        )
    return problems


@dataclass(frozen=True)
class SharedFederationArgs:
    """Inputs of `SharedFederation`."""

    foundation_stack: str
    """`org/project/stack` of the foundation (config `crosscloud:foundation`)."""
    tenant_id: str
    """The Entra tenant this stack deploys to; the foundation must federate the same one."""
    aws_account_id: str
    """The AWS account this stack's role lives in; the foundation must have a provider there."""


class SharedFederation(pulumi.ComponentResource):
    """The foundation's federation app and provider, as an environment uses them.

    Offers what `FederationApp` offers (`client_id`, `audience`, `assign`) plus the provider
    ARN for this stack's account, so the program composes either one the same way. Every
    output passes through `foundation_problems` first: a foundation that cannot serve this
    stack fails the preview with `FoundationError` before anything that uses it is created.
    """

    client_id: pulumi.Output[str]
    audience: pulumi.Output[str]
    app_role_id: pulumi.Output[str]
    service_principal_object_id: pulumi.Output[str]
    provider_arn: pulumi.Output[str]
    """The foundation's IAM OIDC provider in this stack's AWS account."""

    def __init__(
        self,
        name: str,
        args: SharedFederationArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("crosscloud:entra:SharedFederation", name, None, opts)
        self._name = name
        reference = pulumi.StackReference(
            f"{name}-foundation",
            stack_name=args.foundation_stack,
            opts=pulumi.ResourceOptions(parent=self),
        )

        def checked(outputs: Mapping[str, Any]) -> Mapping[str, Any]:
            problems = foundation_problems(
                outputs, args.foundation_stack, args.tenant_id, args.aws_account_id
            )
            if problems:
                raise FoundationError("crosscloud:foundation: " + "; ".join(problems))
            return outputs

        outputs = reference.outputs.apply(checked)
        self._outputs = outputs
        self._stack = args.foundation_stack
        self._account_id = args.aws_account_id
        self.client_id = outputs.apply(lambda o: str(o[CLIENT_ID]))
        self.audience = outputs.apply(lambda o: str(o[AUDIENCE]))
        self.app_role_id = outputs.apply(lambda o: str(o[APP_ROLE_ID]))
        self.service_principal_object_id = outputs.apply(
            lambda o: str(o[SERVICE_PRINCIPAL_OBJECT_ID])
        )
        self.provider_arn = outputs.apply(lambda o: str(o[PROVIDER_ARNS][args.aws_account_id]))
        self.register_outputs(
            {
                "client_id": self.client_id,
                "audience": self.audience,
                "app_role_id": self.app_role_id,
                "service_principal_object_id": self.service_principal_object_id,
                "provider_arn": self.provider_arn,
            }
        )

    def outbound_issuer(self) -> pulumi.Output[str]:
        """The foundation's outbound-federation issuer for this stack's AWS account: enabling the
        feature is an account-wide fact, so the foundation owns it (docs/aws-readers.md)."""

        def issuer(outputs: Mapping[str, Any]) -> str:
            issuers = outputs.get(OUTBOUND_ISSUERS) or {}
            if self._account_id not in issuers:
                raise FoundationError(
                    f"crosscloud:awsReaders: the foundation stack {self._stack} has no outbound "
                    f"federation issuer for AWS account {self._account_id}: set "
                    "crosscloud:awsOutboundFederation on the foundation and run `pulumi up` there "
                    "first"
                )
            return str(issuers[self._account_id])

        return self._outputs.apply(issuer)

    def assign(self, key: str, principal_object_id: pulumi.Input[str]) -> azuread.AppRoleAssignment:
        """Assign the foundation's `AssumeAWSRole` to one of this stack's identities.

        The deployer needs AppRoleAssignment.ReadWrite.All + Application.Read.All (a service
        principal) or Application Administrator (a user), per the azuread docs:
        https://www.pulumi.com/registry/packages/azuread/api-docs/approleassignment/
        """
        return azuread.AppRoleAssignment(
            f"{self._name}-assign-{key}",
            app_role_id=self.app_role_id,
            principal_object_id=principal_object_id,
            resource_object_id=self.service_principal_object_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
