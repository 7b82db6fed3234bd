"""A user-assigned identity that external workloads sign in as holds no role above Blob Reader.

A federated identity credential lets a workload outside Azure (here the AWS readers' Lambda role)
become the identity with nothing but its own token; whatever the identity may do, that workload
may do. So such an identity gets Storage Blob Data Reader
(2a2b9908-6ea1-4ae2-8e65-a410df84e7d1) and nothing more, on one container
(`…/blobServices/default/containers/<name>`, the narrowest scope Azure RBAC has for blob data):
on the account, its resource group or the subscription the same role reads every container in
reach (components/aws_readers.py grants it on the data container only).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pulumi_policy import Severity

from .common import Finding, StackResource, links, names, prop, stack_policy

USER_ASSIGNED_IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
FEDERATED_CREDENTIAL = "azure-native:managedidentity:FederatedIdentityCredential"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
CONTAINER_SCOPE = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/[^/]+(?:/[^/]+){1,2}"
    r"/blobServices/default/containers/[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$",
    re.IGNORECASE,
)
"""A blob container's ARM id: /subscriptions/<s>/resourceGroups/<g>/providers/Microsoft.Storage/
storageAccounts/<account>/blobServices/default/containers/<name> (container names: 3-63
lowercase letters, digits and hyphens). The account part is any one provider resource: ARM's
`Microsoft.Storage/storageAccounts/<account>`, or the mocks' `<type token>/<name>`."""


def check_reader_only(resources: Sequence[StackResource]) -> list[Finding]:
    identities = [r for r in resources if r.resource_type == USER_ASSIGNED_IDENTITY]
    credentials = [r for r in resources if r.resource_type == FEDERATED_CREDENTIAL]
    federated = [
        identity
        for identity in identities
        if any(
            links(c, "resourceName", identity, names(identity, "resourceName")) for c in credentials
        )
    ]
    findings = []
    for assignment in (r for r in resources if r.resource_type == ROLE_ASSIGNMENT):
        for identity in federated:
            if not links(assignment, "principalId", identity, names(identity, "principalId")):
                continue
            who = identity.urn.rsplit("::", 1)[-1]
            role = str(prop(assignment.props, "roleDefinitionId") or "")
            if role.rsplit("/", 1)[-1].lower() != STORAGE_BLOB_DATA_READER:
                findings.append(
                    Finding(
                        f"{who} has a federated identity credential "
                        f"(an outside workload signs in as it) and must hold no role above "
                        f"Storage Blob Data Reader, but is granted {role.rsplit('/', 1)[-1]}",
                        assignment.urn,
                    )
                )
            # A scope not known yet (preview) is judged when the engine runs the rule again
            # with every value resolved, before `pulumi up` creates the assignment.
            scope = prop(assignment.props, "scope")
            if scope is not None and not CONTAINER_SCOPE.match(str(scope)):
                findings.append(
                    Finding(
                        f"{who} has a federated identity credential (an outside workload signs in "
                        "as it) and may be granted on one blob container only "
                        f"(.../blobServices/default/containers/<name>), but the scope is {scope}",
                        assignment.urn,
                    )
                )
    return findings


POLICY = stack_policy(
    "aws-reader-identity-reader-only",
    "A user-assigned identity with a federated identity credential holds Storage Blob Data "
    "Reader on one blob container and no other role.",
    check_reader_only,
    Severity.HIGH,
)
