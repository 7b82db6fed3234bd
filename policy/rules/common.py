"""What every rule shares: type tokens, the engine's property shapes, IAM-document helpers and
the wrappers that turn a plain check function into a pulumi-policy object.

Resource rules take `(type token, props)` and return violation messages; stack rules take the
stack's resources and return `Finding`s. Props are what the engine sends: camelCase property
names, IAM documents as JSON strings. The engine wraps props in read-only Mapping/Sequence proxies
that raise `UnknownValueError` when a value is not known yet (during preview), so rules test for
`Mapping`/`Sequence`, never `dict`/`list`, and let that error through unless a rule says why it
can decide without the value.

Facts behind the rules live in docs/design.md "Decisions"; the trust-policy shape in
components/trust.py.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

Props = Mapping[str, Any]

STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
BLOB = "azure-native:storage:Blob"
WEB_APP = "azure-native:web:WebApp"
WEB_APP_SETTINGS = "azure-native:web:WebAppApplicationSettings"
WEB_APP_CONNECTION_STRINGS = "azure-native:web:WebAppConnectionStrings"
WEB_APP_FTP_ALLOWED = "azure-native:web:WebAppFtpAllowed"
WEB_APP_SCM_ALLOWED = "azure-native:web:WebAppScmAllowed"
AZUREAD_APPLICATION = "azuread:index/application:Application"
# pulumi-aws v7: `s3.Bucket` is the former BucketV2; the deprecated BucketV2 alias still exists.
BUCKET_TYPES = frozenset({"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"})
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
IAM_ROLE = "aws:iam/role:Role"
IAM_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
IAM_ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
IAM_POLICY_ATTACHMENT = "aws:iam/policyAttachment:PolicyAttachment"
IAM_POLICY = "aws:iam/policy:Policy"

WEB_IDENTITY_ACTION = "sts:AssumeRoleWithWebIdentity"


class Finding(NamedTuple):
    """A stack-rule violation and the URN of the resource it is about."""

    message: str
    urn: str | None


class StackResource(Protocol):
    """What stack rules read of a resource; `pulumi_policy.PolicyResource` has it."""

    @property
    def resource_type(self) -> str: ...
    @property
    def props(self) -> Props: ...
    @property
    def urn(self) -> str: ...
    @property
    def property_dependencies(self) -> Mapping[str, Sequence[Any]]: ...


# --- property helpers ---------------------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    """IAM allows a single value or a list wherever a list is allowed."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        return [value]
    return list(value)


def prop(props: Props, key: str) -> Any:
    """`props.get(key)`, or None for a value not known yet, where a rule can decide without it."""
    try:
        return props.get(key)
    except UnknownValueError:
        return None


def app_settings(resource_type: str, props: Props) -> Iterable[tuple[str, Any]]:
    """(name, value) of every app setting and connection string a resource sets.

    A value not known yet (preview) is skipped rather than failing the whole rule: the engine runs
    the rule again with every value resolved before `pulumi up` creates the resource.
    """
    if resource_type == WEB_APP:
        site_config = props.get("siteConfig")
        if isinstance(site_config, Mapping):
            for setting in as_list(site_config.get("appSettings")):
                if isinstance(setting, Mapping):
                    yield str(setting.get("name")), prop(setting, "value")
            for connection in as_list(site_config.get("connectionStrings")):
                if isinstance(connection, Mapping):
                    yield str(connection.get("name")), prop(connection, "connectionString")
    elif resource_type in (WEB_APP_SETTINGS, WEB_APP_CONNECTION_STRINGS):
        properties = props.get("properties")
        if isinstance(properties, Mapping):
            for name in properties:
                value = prop(properties, name)
                yield name, prop(value, "value") if isinstance(value, Mapping) else value


def has_wildcard(value: str) -> bool:
    return "*" in value or "?" in value


def links(resource: StackResource, key: str, target: StackResource, target_names: set[str]) -> bool:
    """Whether `resource.<key>` refers to `target`: by dependency, else by name/id/ARN value."""
    dependencies = resource.property_dependencies.get(key) or ()
    if any(getattr(d, "urn", None) == target.urn for d in dependencies):
        return True
    return any(v in target_names for v in as_list(prop(resource.props, key)))


def names(resource: StackResource, *keys: str) -> set[str]:
    """The non-empty string values of `keys`: what other resources may refer to it by."""
    values = (prop(resource.props, key) for key in keys)
    return {v for v in values if isinstance(v, str) and v}


def is_function_app(props: Props) -> bool:
    kind = props.get("kind")
    return isinstance(kind, str) and "functionapp" in {k.strip() for k in kind.lower().split(",")}


def is_flex_app(props: Props) -> bool:
    """A function app with `functionAppConfig`: that block exists for Flex Consumption only
    (deployment storage, runtime and scale live there), and Flex requires it."""
    return is_function_app(props) and isinstance(props.get("functionAppConfig"), Mapping)


# --- IAM documents ------------------------------------------------------------------------------


def document(value: Any) -> Mapping[str, Any] | None:
    """An IAM policy document given as JSON text (as the engine sends it) or as an object."""
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, Mapping) else None
    return None


def statements(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in as_list(doc.get("Statement")) if isinstance(s, Mapping)]


def is_allow(statement: Mapping[str, Any]) -> bool:
    return str(statement.get("Effect", "")).lower() == "allow"


def federated(statement: Mapping[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if not isinstance(principal, Mapping):
        return []
    return [str(p) for p in as_list(principal.get("Federated"))]


def is_web_identity_provider(federated_principal: str) -> bool:
    # SAML providers federate with AssumeRoleWithSAML; everything else named under Federated is
    # an OIDC issuer (an IAM OIDC provider ARN, or accounts.google.com, cognito-identity...).
    return ":saml-provider/" not in federated_principal


def _grants_web_identity(statement: Mapping[str, Any]) -> bool:
    actions = [str(a).lower() for a in as_list(statement.get("Action"))]
    return any(fnmatch.fnmatchcase(WEB_IDENTITY_ACTION.lower(), a) for a in actions)


def web_identity_statements(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The Allow statements of a trust policy that let a web-identity token in."""
    return [
        s
        for s in statements(doc)
        if is_allow(s)
        and (any(is_web_identity_provider(f) for f in federated(s)) or _grants_web_identity(s))
    ]


def trusts_web_identity(assume_role_policy: Any) -> bool:
    """Whether a trust policy lets a web-identity (OIDC) token assume the role."""
    doc = document(assume_role_policy)
    return doc is not None and bool(web_identity_statements(doc))


# --- pulumi-policy wiring -----------------------------------------------------------------------

ResourceRule = Callable[[str, Props], list[str]]
StackRule = Callable[[Sequence[StackResource]], list[Finding]]


def resource_policy(
    name: str, description: str, rule: ResourceRule, severity: Severity
) -> ResourceValidationPolicy:
    """A mandatory resource policy reporting each message `rule` returns."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule(args.resource_type, args.props):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
        severity=severity,
    )


def stack_policy(
    name: str, description: str, rule: StackRule, severity: Severity
) -> StackValidationPolicy:
    """A mandatory stack policy reporting each finding `rule` returns, at its resource."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for finding in rule(args.resources):
            report_violation(finding.message, finding.urn)

    return StackValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
        severity=severity,
    )
