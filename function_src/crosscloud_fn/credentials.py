"""The managed identity, and AWS credentials that come from it and refresh themselves.

Azure: `ManagedIdentityCredential(client_id=...)` for a user-assigned identity,
`ManagedIdentityCredential()` for the system-assigned one. Its token cache (MSAL's) is per
instance, so one instance lives for the whole process.

AWS: botocore's `AssumeRoleWithWebIdentityCredentialFetcher`, fed with the identity's token for
the federation audience, wrapped in `DeferredRefreshableCredentials`. botocore then calls STS
lazily on first use and again only when the credentials come within 15 minutes of expiry (so
`DurationSeconds` must be well above 900, or every call would refresh). The STS call is
unsigned: the Entra token is the only proof. No AWS key exists anywhere, and the botocore
sessions here are given no other credential source, so an AWS key that somehow appeared in the
environment could never be picked up instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import botocore.session
from azure.identity import ManagedIdentityCredential
from botocore import UNSIGNED
from botocore.config import Config
from botocore.credentials import (
    AssumeRoleWithWebIdentityCredentialFetcher,
    CredentialProvider,
    CredentialResolver,
    DeferredRefreshableCredentials,
)

from crosscloud_fn.aws_services import S3, STS
from crosscloud_fn.settings import Settings

# >= 3600: botocore refreshes 15 minutes before expiry, so 900 s would refresh on every call.
SESSION_DURATION_SECONDS = 3600
CREDENTIAL_METHOD = "crosscloud-web-identity"
Clock = Callable[[], dt.datetime]


def managed_identity_credential(settings: Settings) -> ManagedIdentityCredential:
    """The app's identity, chosen by the app setting (never DefaultAzureCredential's guesswork)."""
    if settings.identity_client_id:
        return ManagedIdentityCredential(client_id=settings.identity_client_id)
    return ManagedIdentityCredential()


def aws_client_config(settings: Settings, **overrides: Any) -> Config:
    """Explicit region (regional STS endpoint), bounded retries and timeouts for every client."""
    options: dict[str, Any] = {
        "region_name": settings.aws_region,
        "retries": {"mode": "standard", "max_attempts": 3},
        "connect_timeout": 5,
        "read_timeout": 20,
        "max_pool_connections": 10,
        "user_agent_extra": "crosscloud-fn",
    }
    options.update(overrides)
    return Config(**options)


def isolated_botocore_session(*providers: CredentialProvider) -> botocore.session.Session:
    """A botocore session whose only credential sources are `providers` (none: unsigned only).

    Endpoint and CA settings (AWS_ENDPOINT_URL, AWS_CA_BUNDLE) still come from the environment,
    as with any botocore session.
    """
    session = botocore.session.Session()
    session.register_component("credential_provider", CredentialResolver(list(providers)))
    return session


class _NeverCache(dict):
    """A fetcher cache that holds nothing: `RefreshableCredentials` alone decides when to
    refresh (with one clock), instead of a second expiry check on the fetcher's own clock."""

    def __contains__(self, key: object) -> bool:
        return False

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


class _StaticProvider(CredentialProvider):
    METHOD = CREDENTIAL_METHOD
    CANONICAL_NAME = "custom-crosscloud-web-identity"

    def __init__(self, credentials: DeferredRefreshableCredentials) -> None:
        self._credentials = credentials

    def load(self) -> DeferredRefreshableCredentials:
        return self._credentials


def web_identity_credentials(
    credential: ManagedIdentityCredential, settings: Settings, *, clock: Clock | None = None
) -> DeferredRefreshableCredentials:
    """Self-refreshing AWS credentials for the role, obtained with the identity's Entra token.

    `clock` replaces botocore's notion of "now" for the refresh decision (tests move it forward
    instead of sleeping); production leaves it None.
    """
    sts = isolated_botocore_session().create_client(
        STS, config=aws_client_config(settings, signature_version=UNSIGNED)
    )

    def sts_client(service_name: str, config: Config | None = None) -> Any:
        # The fetcher asks for an unsigned STS client each refresh; this one is built once.
        if service_name != STS:
            raise ValueError(f"unexpected client {service_name!r} requested by the fetcher")
        return sts

    def entra_token() -> str:
        # Served from the credential's token cache while valid; Entra is only asked when needed.
        return credential.get_token(settings.federation_scope).token

    fetcher = AssumeRoleWithWebIdentityCredentialFetcher(
        client_creator=sts_client,
        web_identity_token_loader=entra_token,
        role_arn=settings.aws_role_arn,
        extra_args={
            "RoleSessionName": settings.role_session_name,
            "DurationSeconds": SESSION_DURATION_SECONDS,
        },
        cache=_NeverCache(),
    )
    if clock is None:
        return DeferredRefreshableCredentials(fetcher.fetch_credentials, CREDENTIAL_METHOD)
    return DeferredRefreshableCredentials(
        fetcher.fetch_credentials, CREDENTIAL_METHOD, time_fetcher=clock
    )


def s3_client(credentials: DeferredRefreshableCredentials, settings: Settings) -> Any:
    """An S3 client that signs only with the web-identity credentials (refreshing as needed)."""
    session = isolated_botocore_session(_StaticProvider(credentials))
    return session.create_client(S3, config=aws_client_config(settings))
