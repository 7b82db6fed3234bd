"""The policies of a role that web identities assume name their actions and resources."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import Severity
from pulumi_policy.proxy import UnknownValueError

from .common import (
    IAM_POLICY,
    IAM_POLICY_ATTACHMENT,
    IAM_ROLE,
    IAM_ROLE_POLICY,
    IAM_ROLE_POLICY_ATTACHMENT,
    Finding,
    StackResource,
    as_list,
    document,
    has_wildcard,
    is_allow,
    links,
    names,
    prop,
    stack_policy,
    statements,
    trusts_web_identity,
)


def _resource_too_broad(resource: str) -> bool:
    """`*`, or an ARN whose partition/service/region/account or first resource segment is a
    wildcard (all buckets, all tables...). `arn:aws:s3:::bucket/prefix*` stays allowed: that is
    how S3 grants the keys under a prefix of one bucket.
    """
    if resource.strip() == "*":
        return True
    parts = resource.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return has_wildcard(resource)
    head = parts[1:5]
    first_segment = parts[5].split("/", 1)[0]
    return any(has_wildcard(p) for p in head) or has_wildcard(first_segment)


def permission_problems(document_value: Any, what: str) -> list[str]:
    """Why an identity policy grants more than named actions on named resources."""
    doc = document(document_value)
    if doc is None:
        return [f"{what} is not a JSON policy document, so it cannot be checked"]
    problems: list[str] = []
    for statement in statements(doc):
        if not is_allow(statement):
            continue
        sid = statement.get("Sid")
        where = f"{what} statement {sid!r}" if sid else what
        if "NotAction" in statement or "NotResource" in statement:
            problems.append(f"{where} allows NotAction/NotResource: everything but a few things")
        wild_actions = [str(a) for a in as_list(statement.get("Action")) if has_wildcard(str(a))]
        if wild_actions:
            problems.append(f"{where} allows wildcard actions {wild_actions}; name each action")
        resources = [str(r) for r in as_list(statement.get("Resource"))]
        if "NotResource" not in statement and not resources:
            problems.append(f"{where} allows actions without naming a Resource")
        broad = [r for r in resources if _resource_too_broad(r)]
        if broad:
            problems.append(f"{where} allows wildcard resources {broad}; name the resources")
    return problems


def _is_aws_managed(policy_arn: str) -> bool:
    # arn:{partition}:iam::aws:policy/... ; such policies are written for every bucket/account.
    return ":iam::aws:policy/" in policy_arn


def _web_identity_roles(resources: Sequence[StackResource]) -> list[StackResource]:
    roles = []
    for resource in resources:
        if resource.resource_type != IAM_ROLE:
            continue
        try:
            trust = resource.props.get("assumeRolePolicy")
        except UnknownValueError:
            # Unknown during preview (the provider ARN is new): judge the permissions anyway,
            # which is stricter and keeps this rule running in the pull-request preview.
            roles.append(resource)
            continue
        if trusts_web_identity(trust):
            roles.append(resource)
    return roles


def _attached_policy_problems(
    policy_arn: Any, policy: StackResource | None, what: str
) -> list[str]:
    """Problems of an attached managed policy; `policy` is its definition in this stack, if any."""
    if isinstance(policy_arn, str) and _is_aws_managed(policy_arn):
        return [f"{what} attaches the AWS managed policy {policy_arn}; it is not scoped to us"]
    if policy is None:
        return [
            f"{what} attaches {policy_arn}, which this stack does not define, so its "
            "permissions cannot be checked; define the policy here or inline it"
        ]
    return permission_problems(policy.props.get("policy"), what)


def _role_policy_problems(
    resource: StackResource,
    role: StackResource,
    role_names: set[str],
    policies: Sequence[StackResource],
) -> list[str]:
    """Problems of `resource` if it grants permissions to `role`, else none."""
    kind = resource.resource_type
    if kind == IAM_ROLE_POLICY and links(resource, "role", role, role_names):
        return permission_problems(resource.props.get("policy"), "the role's aws:iam/rolePolicy")
    if (kind == IAM_ROLE_POLICY_ATTACHMENT and links(resource, "role", role, role_names)) or (
        kind == IAM_POLICY_ATTACHMENT and links(resource, "roles", role, role_names)
    ):
        policy = next(
            (p for p in policies if links(resource, "policyArn", p, names(p, "arn", "id"))),
            None,
        )
        what = f"{kind.rsplit(':', 1)[1]} of the role"
        return _attached_policy_problems(prop(resource.props, "policyArn"), policy, what)
    return []


def check_web_identity_role_permissions(resources: Sequence[StackResource]) -> list[Finding]:
    """The policies of a role that web identities assume grant no wildcard action or resource,
    and no AWS managed policy (those are written for every bucket of every account).
    """
    policies = [r for r in resources if r.resource_type == IAM_POLICY]
    findings: list[Finding] = []
    for role in _web_identity_roles(resources):
        role_names = names(role, "name", "id", "arn")
        for inline in as_list(role.props.get("inlinePolicies")):
            if isinstance(inline, Mapping):
                what = f"inline policy {inline.get('name')!r} of the role"
                problems = permission_problems(inline.get("policy"), what)
                findings += [Finding(p, role.urn) for p in problems]
        for arn in as_list(role.props.get("managedPolicyArns")):
            policy = next((p for p in policies if arn in names(p, "arn", "id")), None)
            problems = _attached_policy_problems(arn, policy, "managedPolicyArns of the role")
            findings += [Finding(p, role.urn) for p in problems]
        for resource in resources:
            problems = _role_policy_problems(resource, role, role_names, policies)
            findings += [Finding(p, resource.urn) for p in problems]
    return findings


POLICY = stack_policy(
    "web-identity-role-least-privilege",
    "The policies of a web-identity role grant no wildcard action or resource and attach no "
    "AWS managed policy.",
    check_web_identity_role_permissions,
    Severity.HIGH,
)
