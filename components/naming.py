"""Deterministic, rule-abiding names for every physical resource. Pure: no Pulumi, no I/O.

Globally unique names (storage accounts, S3 buckets, function app host names) get a short hash of
a seed that is stable for one stack in one subscription, so two stacks never collide and the same
stack always gets the same names back (no random suffix in state to lose).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import uuid

# Namespace for the name-based UUIDs below; any fixed UUID works, it only has to never change.
_UUID_NAMESPACE = uuid.UUID("6f1d3b0e-5c57-4b8e-9a51-6a0f2c8e7d11")

# https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules
_STORAGE_ACCOUNT = re.compile(r"[a-z0-9]{3,24}")
_FUNCTION_APP = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,58}[a-z0-9])?")
_BLOB_CONTAINER = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
# https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html (FunctionName, name
# form) and IAM role names (1-64 of [\w+=,.@-]); one pattern satisfies both.
_LAMBDA_AND_ROLE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def short_hash(seed: str, length: int = 8) -> str:
    """Lowercase hex digest prefix of `seed`: stable across runs and machines."""
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def slug(value: str, max_length: int) -> str:
    """Lowercase letters, digits and single hyphens, trimmed to `max_length`."""
    text = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")
    return text[:max_length].rstrip("-")


def bucket_name_problem(name: str) -> str | None:
    """Why `name` breaks the S3 general-purpose bucket naming rules, or None if it is valid."""
    if not _BUCKET.fullmatch(name):
        return (
            "3-63 characters of lowercase letters, digits, '.' and '-', "
            "starting and ending with a letter or digit"
        )
    if ".." in name or ".-" in name or "-." in name:
        return "no two adjacent periods and no period next to a hyphen"
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        return "must not be formatted as an IP address"
    if name.startswith(_BUCKET_RESERVED_PREFIXES) or name.endswith(_BUCKET_RESERVED_SUFFIXES):
        return "no prefix or suffix that S3 reserves (xn--, sthree-, -s3alias, --ol-s3, ...)"
    return None


def foundation_app_role_id(project: str, stack: str) -> str:
    """The foundation's app role id: a GUID that never changes for its stack (Entra keys app
    role assignments on it, and every environment assigns it)."""
    return str(uuid.uuid5(_UUID_NAMESPACE, f"foundation/{project}/{stack}/role"))


def _checked(name: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.fullmatch(name):
        raise ValueError(f"generated {what} name {name!r} breaks its naming rules")
    return name


def _checked_bucket(name: str) -> str:
    """A generated bucket name, or ValueError naming the S3 rule it breaks."""
    problem = bucket_name_problem(name)
    if problem:
        raise ValueError(f"generated bucket name {name!r}: {problem}")
    return name


class Names:
    """All physical names of one stack, derived from the prefix, the stack and a unique seed."""

    def __init__(self, prefix: str, stack: str, unique_seed: str) -> None:
        self.prefix = prefix
        self.stack = slug(stack, 12) or "stack"
        self._hash = short_hash(f"{unique_seed}/{prefix}/{stack}")

    @property
    def resource_group(self) -> str:
        return f"rg-{self.prefix}-{self.stack}"

    def storage_account(self, role: str) -> str:
        """`role` is a short word such as 'data' or 'host' (lowercase letters)."""
        base = re.sub(r"[^a-z0-9]", "", self.prefix)[:10]
        return _checked(f"{base}{role[:4]}{self._hash[:8]}", _STORAGE_ACCOUNT, "storage account")

    def function_app(self, kind: str) -> str:
        return _checked(
            f"{self.prefix}-{self.stack}-{kind}-{self._hash[:6]}", _FUNCTION_APP, "function app"
        )

    def plan(self, kind: str) -> str:
        return f"plan-{self.prefix}-{self.stack}-{kind}"

    def user_assigned_identity(self, kind: str) -> str:
        return f"id-{self.prefix}-{self.stack}-{kind}"

    def deployment_container(self, kind: str) -> str:
        return _checked(f"deploy-{kind}", _BLOB_CONTAINER, "blob container")

    @property
    def bucket(self) -> str:
        return _checked_bucket(f"{self.prefix}-{self.stack}-{self._hash}")

    @property
    def log_workspace(self) -> str:
        return f"log-{self.prefix}-{self.stack}"

    @property
    def app_insights(self) -> str:
        return f"appi-{self.prefix}-{self.stack}"

    @property
    def access_log_bucket(self) -> str:
        """Bucket receiving the data bucket's S3 server access logs (never the data bucket)."""
        return _checked_bucket(f"{self.prefix}-{self.stack}-logs-{self._hash}")

    @property
    def aws_reader(self) -> str:
        """The AWS readers Lambda and its execution role (one name for both: the role's ARN is
        the federated credential's subject, so it must be unique per stack and account)."""
        name = f"{self.prefix}-{self.stack}-awsreader-{self._hash[:6]}"
        return _checked(name, _LAMBDA_AND_ROLE, "Lambda function / IAM role")

    @property
    def app_role_id(self) -> str:
        """The app role's id must be a GUID that never changes for the stack (Entra keys on it)."""
        return str(uuid.uuid5(_UUID_NAMESPACE, f"{self.prefix}/{self.stack}/{self._hash}/role"))

    @property
    def reader_api_display_name(self) -> str:
        """Default display name of the reader API app: one per stack, so environments that
        share a foundation still each have their own front door."""
        return f"{self.prefix}-{self.stack}-reader-api"

    @property
    def reader_api_role_id(self) -> str:
        """The reader API's `CrossCloud.Read` role id (stable: Entra keys assignments on it)."""
        return str(uuid.uuid5(_UUID_NAMESPACE, f"{self.prefix}/{self.stack}/{self._hash}/reader"))

    @property
    def reader_api_scope_id(self) -> str:
        """The reader API's delegated scope id (stable: pre-authorization names it)."""
        return str(uuid.uuid5(_UUID_NAMESPACE, f"{self.prefix}/{self.stack}/{self._hash}/scope"))
