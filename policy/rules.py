"""The stack's security rules as plain functions, and the pulumi-policy objects that wrap them.

Resource rules take `(type token, props)` and return violation messages; stack rules take the
stack's resources and return `Finding`s. Props are what the engine sends: camelCase property
names, IAM documents as JSON strings. The engine wraps props in read-only Mapping/Sequence proxies
that raise `UnknownValueError` when a value is not known yet (during preview), so this module tests
for `Mapping`/`Sequence`, never `dict`/`list`, and lets that error through unless a rule says why
it can decide without the value.

Facts behind the rules live in DESIGN.md section 3; the trust-policy shape in components/trust.py.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from pulumi_policy import (
    EnforcementLevel,
    Policy,
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

PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)
WEB_IDENTITY_ACTION = "sts:AssumeRoleWithWebIdentity"
MIN_TLS = (1, 2)

# Resource types that exist only to hold a long-lived secret, and why each is refused.
CREDENTIAL_TYPES: Mapping[str, str] = {
    "aws:iam/user:User": "an IAM user is a long-lived identity; use a role assumed by federation",
    "aws:iam/accessKey:AccessKey": "an IAM access key is a long-lived secret",
    "aws:iam/userLoginProfile:UserLoginProfile": "an IAM console password is a long-lived secret",
    "aws:iam/serviceSpecificCredential:ServiceSpecificCredential": (
        "a service-specific credential is a long-lived secret"
    ),
    "aws:iam/signingCertificate:SigningCertificate": "an IAM signing certificate is a user key",
    "azuread:index/applicationPassword:ApplicationPassword": (
        "an application password (client secret) is a long-lived secret"
    ),
    "azuread:index/servicePrincipalPassword:ServicePrincipalPassword": (
        "a service principal password (client secret) is a long-lived secret"
    ),
    "azuread:index/applicationCertificate:ApplicationCertificate": (
        "a certificate credential means a private key kept somewhere"
    ),
    "azuread:index/servicePrincipalCertificate:ServicePrincipalCertificate": (
        "a certificate credential means a private key kept somewhere"
    ),
}
# Markers of storage account keys and SAS tokens in app settings and connection strings. They are
# how a listKeys/listAccountSas invoke surfaces: policy packs see resources, never invokes.
STORAGE_SECRET_MARKERS = ("accountkey=", "sharedaccesssignature=", "&sig=", "?sig=")


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


# --- helpers ------------------------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    """IAM allows a single value or a list wherever a list is allowed."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        return [value]
    return list(value)


def _document(value: Any) -> Mapping[str, Any] | None:
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


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in _as_list(document.get("Statement")) if isinstance(s, Mapping)]


def _is_allow(statement: Mapping[str, Any]) -> bool:
    return str(statement.get("Effect", "")).lower() == "allow"


def _has_wildcard(value: str) -> bool:
    return "*" in value or "?" in value


def _prop(props: Props, key: str) -> Any:
    """`props.get(key)`, or None for a value not known yet, where a rule can decide without it."""
    try:
        return props.get(key)
    except UnknownValueError:
        return None


# --- Azure storage ------------------------------------------------------------------------------


def check_storage_account(resource_type: str, props: Props) -> list[str]:
    """Every storage account has shared key access (account keys and SAS) turned off."""
    if resource_type != STORAGE_ACCOUNT:
        return []
    if props.get("allowSharedKeyAccess") is False:
        return []
    return [
        "allowSharedKeyAccess must be false: Azure's default is true, and account keys and SAS "
        "tokens would keep working next to Entra ID"
    ]


def _secret_marker(value: Any) -> bool:
    return isinstance(value, str) and any(m in value.lower() for m in STORAGE_SECRET_MARKERS)


def _app_settings(resource_type: str, props: Props) -> Iterable[tuple[str, Any]]:
    """(name, value) of every app setting and connection string a resource sets.

    A value not known yet (preview) is skipped rather than failing the whole rule: the engine runs
    the rule again with every value resolved before `pulumi up` creates the resource.
    """
    if resource_type == WEB_APP:
        site_config = props.get("siteConfig")
        if isinstance(site_config, Mapping):
            for setting in _as_list(site_config.get("appSettings")):
                if isinstance(setting, Mapping):
                    yield str(setting.get("name")), _prop(setting, "value")
            for connection in _as_list(site_config.get("connectionStrings")):
                if isinstance(connection, Mapping):
                    yield str(connection.get("name")), _prop(connection, "connectionString")
    elif resource_type in (WEB_APP_SETTINGS, WEB_APP_CONNECTION_STRINGS):
        properties = props.get("properties")
        if isinstance(properties, Mapping):
            for name in properties:
                value = _prop(properties, name)
                yield name, _prop(value, "value") if isinstance(value, Mapping) else value


def check_key_based_storage_access(resource_type: str, props: Props) -> list[str]:
    """No resource that works with storage account keys: `storage.Blob`, keys or SAS in settings."""
    if resource_type == BLOB:
        return [
            "azure-native:storage:Blob uploads with the account key (KeyBasedAuthenticationNot"
            "Permitted when shared key is off); upload with an Entra token instead"
        ]
    return [
        f"app setting or connection string {name!r} holds a storage account key or SAS token; "
        "use identity-based settings (e.g. AzureWebJobsStorage__accountName + __credential)"
        for name, value in _app_settings(resource_type, props)
        if _secret_marker(value)
    ]


# --- AWS S3 -------------------------------------------------------------------------------------


def check_public_access_block(resource_type: str, props: Props) -> list[str]:
    """A bucket public access block sets all four flags."""
    if resource_type != PUBLIC_ACCESS_BLOCK:
        return []
    missing = [flag for flag in PUBLIC_ACCESS_FLAGS if props.get(flag) is not True]
    if not missing:
        return []
    return [f"the public access block must set {', '.join(missing)} to true"]


def _links(
    resource: StackResource, prop: str, target: StackResource, target_names: set[str]
) -> bool:
    """Whether `resource.<prop>` refers to `target`: by dependency, else by name/id/ARN value."""
    dependencies = resource.property_dependencies.get(prop) or ()
    if any(getattr(d, "urn", None) == target.urn for d in dependencies):
        return True
    return any(v in target_names for v in _as_list(_prop(resource.props, prop)))


def _names(resource: StackResource, *keys: str) -> set[str]:
    values = (_prop(resource.props, key) for key in keys)
    return {v for v in values if isinstance(v, str) and v}


def check_buckets_have_public_access_block(resources: Sequence[StackResource]) -> list[Finding]:
    """Every S3 bucket of the stack has a public access block."""
    blocks = [r for r in resources if r.resource_type == PUBLIC_ACCESS_BLOCK]
    return [
        Finding(
            "the bucket has no aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock; "
            "add one with all four flags true",
            bucket.urn,
        )
        for bucket in resources
        if bucket.resource_type in BUCKET_TYPES
        and not any(_links(b, "bucket", bucket, _names(bucket, "bucket", "id")) for b in blocks)
    ]


# --- AWS IAM: web-identity trust ----------------------------------------------------------------


def _federated(statement: Mapping[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if not isinstance(principal, Mapping):
        return []
    return [str(p) for p in _as_list(principal.get("Federated"))]


def _is_web_identity_provider(federated: str) -> bool:
    # SAML providers federate with AssumeRoleWithSAML; everything else named under Federated is
    # an OIDC issuer (an IAM OIDC provider ARN, or accounts.google.com, cognito-identity...).
    return ":saml-provider/" not in federated


def _grants_web_identity(statement: Mapping[str, Any]) -> bool:
    actions = [str(a).lower() for a in _as_list(statement.get("Action"))]
    return any(fnmatch.fnmatchcase(WEB_IDENTITY_ACTION.lower(), a) for a in actions)


def _web_identity_statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [
        s
        for s in _statements(document)
        if _is_allow(s)
        and (any(_is_web_identity_provider(f) for f in _federated(s)) or _grants_web_identity(s))
    ]


def trusts_web_identity(assume_role_policy: Any) -> bool:
    """Whether a trust policy lets a web-identity (OIDC) token assume the role."""
    document = _document(assume_role_policy)
    return document is not None and bool(_web_identity_statements(document))


def condition_key_prefix(federated: str) -> str:
    """IAM names an OIDC provider's condition keys after its URL without the scheme.

    `arn:aws:iam::123456789012:oidc-provider/sts.windows.net/{tid}/` -> `sts.windows.net/{tid}/`;
    a bare issuer such as `accounts.google.com` is its own prefix.
    """
    marker = ":oidc-provider/"
    return federated.split(marker, 1)[1] if marker in federated else federated


def _pinned_values(value: Any) -> list[str] | None:
    """The values a StringEquals condition pins, or None if it pins nothing usable."""
    values = _as_list(value)
    if not values or not all(isinstance(v, str) and v for v in values):
        return None
    return values


def _statement_trust_problems(statement: Mapping[str, Any]) -> list[str]:
    sid = statement.get("Sid")
    where = f"trust statement {sid!r}" if sid else "a trust statement"
    problems: list[str] = []
    if "NotPrincipal" in statement or "NotAction" in statement:
        problems.append(f"{where} uses NotPrincipal/NotAction; name the principal and action")
    actions = _as_list(statement.get("Action"))
    if [str(a).lower() for a in actions] != [WEB_IDENTITY_ACTION.lower()]:
        problems.append(
            f"{where} must allow exactly {WEB_IDENTITY_ACTION}, not {json.dumps(actions)}"
        )
    providers = [f for f in _federated(statement) if _is_web_identity_provider(f)]
    if not providers:
        problems.append(f"{where} grants web identity without naming a Federated OIDC provider")
    conditions = statement.get("Condition")
    conditions = conditions if isinstance(conditions, Mapping) else {}
    # Condition keys are case-insensitive in IAM; compare operators the same way to be safe.
    equals: dict[str, Any] = {}
    for operator, block in conditions.items():
        if operator.lower() == "stringequals" and isinstance(block, Mapping):
            equals.update({key.lower(): value for key, value in block.items()})
    for provider in providers:
        prefix = condition_key_prefix(provider)
        pinned = {f"{prefix}:aud".lower(), f"{prefix}:sub".lower()}
        for operator, block in conditions.items():
            if operator.lower() == "stringequals" or not isinstance(block, Mapping):
                continue
            # StringLike, StringEqualsIfExists, ForAnyValue:... would loosen the pin.
            problems += [
                f"{where} tests {key} with {operator}; only StringEquals pins it exactly"
                for key in block
                if key.lower() in pinned
            ]
        for claim in ("aud", "sub"):
            key = f"{prefix}:{claim}"
            values = _pinned_values(equals.get(key.lower()))
            if values is None:
                problems.append(
                    f"{where} must pin {key} with StringEquals to one or more exact values"
                )
            elif any(_has_wildcard(v) for v in values):
                problems.append(f"{where} pins {key} to a value with a wildcard: {values}")
    return problems


def check_web_identity_trust(resource_type: str, props: Props) -> list[str]:
    """A role trusting a web-identity provider pins `aud` and `sub` with StringEquals.

    `aud` alone would let every principal of the tenant that can get a token for the audience
    assume the role; `sub` names the managed identities. Custom claims (roles, oid, appid) are
    not IAM condition keys, so nothing else could narrow it.
    """
    if resource_type != IAM_ROLE:
        return []
    raw = props.get("assumeRolePolicy")
    document = _document(raw)
    if document is None:
        return ["assumeRolePolicy is not a JSON policy document, so it cannot be checked"]
    return [p for s in _web_identity_statements(document) for p in _statement_trust_problems(s)]


# --- AWS IAM: what a web-identity role may do ---------------------------------------------------


def _resource_too_broad(resource: str) -> bool:
    """`*`, or an ARN whose partition/service/region/account or first resource segment is a
    wildcard (all buckets, all tables...). `arn:aws:s3:::bucket/prefix*` stays allowed: that is
    how S3 grants the keys under a prefix of one bucket.
    """
    if resource.strip() == "*":
        return True
    parts = resource.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return _has_wildcard(resource)
    head = parts[1:5]
    first_segment = parts[5].split("/", 1)[0]
    return any(_has_wildcard(p) for p in head) or _has_wildcard(first_segment)


def permission_problems(document_value: Any, what: str) -> list[str]:
    """Why an identity policy grants more than named actions on named resources."""
    document = _document(document_value)
    if document is None:
        return [f"{what} is not a JSON policy document, so it cannot be checked"]
    problems: list[str] = []
    for statement in _statements(document):
        if not _is_allow(statement):
            continue
        sid = statement.get("Sid")
        where = f"{what} statement {sid!r}" if sid else what
        if "NotAction" in statement or "NotResource" in statement:
            problems.append(f"{where} allows NotAction/NotResource: everything but a few things")
        wild_actions = [str(a) for a in _as_list(statement.get("Action")) if _has_wildcard(str(a))]
        if wild_actions:
            problems.append(f"{where} allows wildcard actions {wild_actions}; name each action")
        resources = [str(r) for r in _as_list(statement.get("Resource"))]
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
    if kind == IAM_ROLE_POLICY and _links(resource, "role", role, role_names):
        return permission_problems(resource.props.get("policy"), "the role's aws:iam/rolePolicy")
    if (kind == IAM_ROLE_POLICY_ATTACHMENT and _links(resource, "role", role, role_names)) or (
        kind == IAM_POLICY_ATTACHMENT and _links(resource, "roles", role, role_names)
    ):
        policy = next(
            (p for p in policies if _links(resource, "policyArn", p, _names(p, "arn", "id"))),
            None,
        )
        what = f"{kind.rsplit(':', 1)[1]} of the role"
        return _attached_policy_problems(_prop(resource.props, "policyArn"), policy, what)
    return []


def check_web_identity_role_permissions(resources: Sequence[StackResource]) -> list[Finding]:
    """The policies of a role that web identities assume grant no wildcard action or resource,
    and no AWS managed policy (those are written for every bucket of every account).
    """
    policies = [r for r in resources if r.resource_type == IAM_POLICY]
    findings: list[Finding] = []
    for role in _web_identity_roles(resources):
        role_names = _names(role, "name", "id", "arn")
        for inline in _as_list(role.props.get("inlinePolicies")):
            if isinstance(inline, Mapping):
                what = f"inline policy {inline.get('name')!r} of the role"
                problems = permission_problems(inline.get("policy"), what)
                findings += [Finding(p, role.urn) for p in problems]
        for arn in _as_list(role.props.get("managedPolicyArns")):
            policy = next((p for p in policies if arn in _names(p, "arn", "id")), None)
            problems = _attached_policy_problems(arn, policy, "managedPolicyArns of the role")
            findings += [Finding(p, role.urn) for p in problems]
        for resource in resources:
            problems = _role_policy_problems(resource, role, role_names, policies)
            findings += [Finding(p, resource.urn) for p in problems]
    return findings


# --- Azure Functions ----------------------------------------------------------------------------


def _is_function_app(props: Props) -> bool:
    kind = props.get("kind")
    return isinstance(kind, str) and "functionapp" in {k.strip() for k in kind.lower().split(",")}


def _tls_version(value: Any) -> tuple[int, ...] | None:
    """`"1.2"` -> (1, 2); None for anything that is not a dotted version."""
    try:
        return tuple(int(part) for part in str(value).split("."))
    except ValueError:
        return None


def check_function_app_transport(resource_type: str, props: Props) -> list[str]:
    """Function apps: HTTPS only, TLS 1.2+ (site and SCM), FTP(S) disabled."""
    if resource_type != WEB_APP or not _is_function_app(props):
        return []
    problems: list[str] = []
    if props.get("httpsOnly") is not True:
        problems.append("httpsOnly must be true: plain HTTP would carry function keys in clear")
    site_config = props.get("siteConfig")
    site_config = site_config if isinstance(site_config, Mapping) else {}
    min_tls = site_config.get("minTlsVersion")
    version = _tls_version(min_tls)
    if version is None or version < MIN_TLS:
        problems.append(f"siteConfig.minTlsVersion must be 1.2 or 1.3, not {min_tls!r}")
    # The SCM (Kudu) site takes the deployments; when it is set it must not be weaker.
    if "scmMinTlsVersion" in site_config:
        scm_tls = site_config["scmMinTlsVersion"]
        scm_version = _tls_version(scm_tls)
        if scm_version is None or scm_version < MIN_TLS:
            problems.append(f"siteConfig.scmMinTlsVersion must be 1.2 or 1.3, not {scm_tls!r}")
    if site_config.get("ftpsState") != "Disabled":
        problems.append(
            f"siteConfig.ftpsState must be Disabled, not {site_config.get('ftpsState')!r}"
        )
    return problems


# --- long-lived credentials ---------------------------------------------------------------------


def check_long_lived_credentials(resource_type: str, props: Props) -> list[str]:
    """No IAM users or access keys, no app passwords/certificates, no basic-auth publishing."""
    if resource_type in CREDENTIAL_TYPES:
        return [f"{resource_type} is not allowed: {CREDENTIAL_TYPES[resource_type]}"]
    if resource_type == AZUREAD_APPLICATION and props.get("password"):
        return ["the application's password block creates a client secret; use federation"]
    if resource_type in (WEB_APP_FTP_ALLOWED, WEB_APP_SCM_ALLOWED) and props.get("allow"):
        return [
            "basic-auth publishing credentials (a user name and password) must stay off: "
            "set allow to false"
        ]
    return []


# --- pulumi-policy wiring -----------------------------------------------------------------------

ResourceRule = Callable[[str, Props], list[str]]
StackRule = Callable[[Sequence[StackResource]], list[Finding]]


def _resource_policy(
    name: str, description: str, rule: ResourceRule, severity: Severity
) -> ResourceValidationPolicy:
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


def _stack_policy(
    name: str, description: str, rule: StackRule, severity: Severity
) -> StackValidationPolicy:
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


POLICIES: list[Policy] = [
    _resource_policy(
        "storage-account-shared-key-disabled",
        "Storage accounts set allowSharedKeyAccess to false, so only Entra ID can reach data.",
        check_storage_account,
        Severity.HIGH,
    ),
    _resource_policy(
        "no-key-based-storage-access",
        "No azure-native:storage:Blob (it signs with account keys) and no storage account key "
        "or SAS token in app settings or connection strings.",
        check_key_based_storage_access,
        Severity.HIGH,
    ),
    _resource_policy(
        "s3-public-access-block-complete",
        "S3 public access blocks set all four flags to true.",
        check_public_access_block,
        Severity.HIGH,
    ),
    _stack_policy(
        "s3-bucket-has-public-access-block",
        "Every S3 bucket has a public access block.",
        check_buckets_have_public_access_block,
        Severity.HIGH,
    ),
    _resource_policy(
        "web-identity-trust-pins-aud-and-sub",
        "A role trusting a web-identity provider allows only sts:AssumeRoleWithWebIdentity and "
        "pins the provider's aud and sub with StringEquals to exact values.",
        check_web_identity_trust,
        Severity.CRITICAL,
    ),
    _stack_policy(
        "web-identity-role-least-privilege",
        "The policies of a web-identity role grant no wildcard action or resource and attach no "
        "AWS managed policy.",
        check_web_identity_role_permissions,
        Severity.HIGH,
    ),
    _resource_policy(
        "function-app-https-tls12-no-ftp",
        "Function apps are HTTPS only, require TLS 1.2 or later and have FTP(S) disabled.",
        check_function_app_transport,
        Severity.HIGH,
    ),
    _resource_policy(
        "no-long-lived-credentials",
        "No IAM users or access keys, no Entra application/service principal passwords or "
        "certificates, no basic-auth publishing credentials.",
        check_long_lived_credentials,
        Severity.CRITICAL,
    ),
]
