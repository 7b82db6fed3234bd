"""A fake Microsoft Entra ID for loopback: the App Service managed-identity endpoint, an OIDC
issuer (discovery document + JWKS) and "assignment required" federation apps.

What it imitates, and why each part matters to the code under test:

- The App Service MI protocol that azure-identity's `ManagedIdentityCredential` speaks when
  `IDENTITY_ENDPOINT`/`IDENTITY_HEADER` are set: `GET {endpoint}?api-version=2019-08-01&resource=R
  [&client_id=C]` with header `X-IDENTITY-HEADER`; the answer is JSON with `access_token`,
  `expires_on` (epoch seconds, a string), `resource`, `token_type`, `client_id`.
- Tokens are RS256 JWTs shaped like Entra v1 access tokens: `iss = https://sts.windows.net/{tid}/`
  (Azurite only accepts that prefix; AWS needs it to equal the OIDC provider URL), `aud` = the
  requested resource without `/.default`, `sub = oid` = the identity's service-principal object
  id, `appid` = its client id, `roles` = the app role for federation apps, `ver = "1.0"`.
- Federation apps have "assignment required": an identity without the app role is refused with
  HTTP 400 and an AADSTS501051 message, as Entra does. The App Service endpoint relays Entra's
  failure as `{"statusCode", "message", "correlationId"}` - that is the shape MSAL (and so
  azure-identity) reads; a body with only `error`/`error_description` would surface to the caller
  as "None, None" and lose the AADSTS code. The body carries both shapes.
- One fake serves several function apps: each `AppHost` has its own `IDENTITY_HEADER` secret and
  only the identities attached to it, like App Service (a user-assigned identity must be attached
  to the app that asks for its token; the system-assigned one is the default).

Token requests are counted (thread-safe) and a per-request latency can be injected, so benches
and tests measure caching at the fake rather than trusting the client.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from localcloud.certs import TlsFiles
from localcloud.https import LoopbackHttpsServer, LoopbackService, QuietHandler
from localcloud.net import LOOPBACK, free_port

STORAGE_RESOURCE = "https://storage.azure.com"
MANAGEMENT_RESOURCE = "https://management.azure.com"
MI_API_VERSION = "2019-08-01"
MI_PATH = "/msi/token"
JWKS_PATH = "/discovery/keys"
# Where a resource server (the function's front door) reads the tenant's signing keys.
V2_JWKS_PATH = "/discovery/v2.0/keys"
# The Azure CLI's public client id: what `appid` says in a person's `az account get-access-token`.
AZURE_CLI_CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
DEFAULT_APP_ROLE = "AssumeAWSRole"
# Entra hands managed identities tokens valid for about a day (and caches them on its side).
DEFAULT_TOKEN_LIFETIME = 24 * 3600


def resource_to_audience(resource: str) -> str:
    """Entra v1: `aud` is the resource as asked for, minus a `/.default` scope suffix."""
    return resource.removesuffix("/.default")


@dataclass(frozen=True)
class Identity:
    """A managed identity: what the tokens say about it."""

    name: str
    client_id: str
    """`appid`: what a user-assigned identity is selected by (`client_id=` in the MI request)."""
    principal_id: str
    """The service principal's object id: `oid` and `sub` in its tokens."""


@dataclass
class FederationApp:
    """An Entra app registration + service principal used as a token audience."""

    audience: str
    """The identifier URI (`api://...`): the `resource` asked for and the token's `aud`."""
    display_name: str
    app_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    app_role: str = DEFAULT_APP_ROLE
    assignment_required: bool = True
    assigned: set[str] = field(default_factory=set)
    """Principal ids holding `app_role`."""


@dataclass
class AppHost:
    """One function app's view of the MI endpoint: its header secret and attached identities."""

    name: str
    identity_endpoint: str
    identity_header: str
    system_identity: Identity | None = None
    user_identities: dict[str, Identity] = field(default_factory=dict)
    """Attached user-assigned identities by client id."""

    def env(self) -> dict[str, str]:
        """The variables App Service sets for this app; azure-identity reads exactly these."""
        return {
            "IDENTITY_ENDPOINT": self.identity_endpoint,
            "IDENTITY_HEADER": self.identity_header,
        }


@dataclass(frozen=True)
class TokenRequest:
    """One request the MI endpoint answered (for counting and assertions; never the token)."""

    host: str | None
    resource: str
    client_id: str | None
    principal_id: str | None
    status: int


class EntraRefusal(Exception):
    """Entra would not issue this token; carries the status and AADSTS message it would send."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


class FakeEntra(LoopbackService):
    """Context manager: `with FakeEntra() as entra: host = entra.add_host(...); host.env()`."""

    _thread_name = "fake-entra"

    def __init__(
        self,
        tenant_id: str | None = None,
        *,
        token_lifetime: int = DEFAULT_TOKEN_LIFETIME,
        latency: float = 0.0,
        tls: TlsFiles | None = None,
        known_resources: tuple[str, ...] = (STORAGE_RESOURCE, MANAGEMENT_RESOURCE),
    ) -> None:
        self.tenant_id = tenant_id or str(uuid.uuid4())
        self.token_lifetime = token_lifetime
        self.latency = latency
        """Seconds to wait before answering each MI token request (simulated network + Entra);
        a large value is an endpoint that accepts connections and never answers (ended by stop)."""
        self.outage_status: int | None = None
        """When set (e.g. 503), MI token requests are answered with this status and a non-JSON
        body, as a front end does while the identity service behind it is down."""
        self._stopping = threading.Event()
        self.tls = tls
        self.port = free_port()
        scheme = "https" if tls else "http"
        self.base_url = f"{scheme}://{LOOPBACK}:{self.port}"
        self.known_resources = {resource_to_audience(r) for r in known_resources}
        self._private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_id = uuid.uuid4().hex
        self._retired_keys: list[tuple[str, rsa.RSAPrivateKey]] = []
        self._lock = threading.Lock()
        self._hosts: dict[str, AppHost] = {}  # by identity header
        self._apps: dict[str, FederationApp] = {}  # by audience
        self._requests: list[TokenRequest] = []
        self._by_resource: Counter[str] = Counter()
        # Recent tokens, kept only so tests can prove that none of them leaks into logs/responses.
        self._issued: deque[str] = deque(maxlen=10_000)
        self.keys_requests = 0
        """Requests to `{tenant}/discovery/v2.0/keys`: the front door's key fetches."""
        self.keys_outage_status: int | None = None
        """When set, that path answers this status (the keys endpoint is down)."""

    # ---- the directory -------------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        """`iss` of every token: the Entra v1 issuer, which AWS needs as the OIDC provider URL."""
        return f"https://sts.windows.net/{self.tenant_id}/"

    @property
    def jwks_url(self) -> str:
        return f"{self.base_url}{JWKS_PATH}"

    @property
    def discovery_url(self) -> str:
        return f"{self.base_url}/{self.tenant_id}/.well-known/openid-configuration"

    @property
    def identity_endpoint(self) -> str:
        return f"{self.base_url}{MI_PATH}"

    def new_identity(self, name: str) -> Identity:
        """A managed identity with fresh GUIDs (attach it to a host with `add_host`)."""
        return Identity(name=name, client_id=str(uuid.uuid4()), principal_id=str(uuid.uuid4()))

    def add_host(
        self,
        name: str,
        *,
        system_identity: Identity | None = None,
        user_identities: tuple[Identity, ...] | list[Identity] = (),
    ) -> AppHost:
        """Register a function app: its own header secret, its SAMI and attached UAMIs."""
        host = AppHost(
            name=name,
            identity_endpoint=self.identity_endpoint,
            identity_header=secrets.token_urlsafe(24),
            system_identity=system_identity,
            user_identities={i.client_id: i for i in user_identities},
        )
        with self._lock:
            self._hosts[host.identity_header] = host
        return host

    def add_federation_app(
        self,
        audience: str,
        display_name: str = "AWS-Federation-App",
        *,
        app_role: str = DEFAULT_APP_ROLE,
        assigned: tuple[str, ...] | list[str] | set[str] = (),
        assignment_required: bool = True,
    ) -> FederationApp:
        """Register an app whose identifier URI is `audience` ("assignment required" by default)."""
        app = FederationApp(
            audience=resource_to_audience(audience),
            display_name=display_name,
            app_role=app_role,
            assignment_required=assignment_required,
            assigned=set(assigned),
        )
        with self._lock:
            self._apps[app.audience] = app
        return app

    def assign(self, audience: str, principal_id: str) -> None:
        """Grant the app role of the app at `audience` to a principal (an app-role assignment)."""
        with self._lock:
            self._apps[resource_to_audience(audience)].assigned.add(principal_id)

    def unassign(self, audience: str, principal_id: str) -> None:
        with self._lock:
            self._apps[resource_to_audience(audience)].assigned.discard(principal_id)

    def federation_app(self, audience: str) -> FederationApp:
        with self._lock:
            return self._apps[resource_to_audience(audience)]

    # ---- tokens --------------------------------------------------------------------------------

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self._private_key.public_key()

    def jwks(self) -> dict[str, Any]:
        """The signing keys, shaped like Entra's `/discovery/keys` (newest first)."""
        keys = []
        for key_id, private_key in [(self.key_id, self._private_key), *self._retired_keys]:
            jwk = json.loads(RSAAlgorithm.to_jwk(private_key.public_key()))
            jwk.update({"kid": key_id, "use": "sig", "alg": "RS256", "kty": "RSA"})
            keys.append(jwk)
        return {"keys": keys}

    def rotate_signing_key(self) -> str:
        """Sign with a new key from now on, still publishing the old one (as Entra rolls keys
        over); returns the new `kid`."""
        with self._lock:
            self._retired_keys.insert(0, (self.key_id, self._private_key))
            self._private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.key_id = uuid.uuid4().hex
            return self.key_id

    def sign(self, claims: dict[str, Any], *, kid: str | None = None) -> str:
        """`claims` signed RS256 with the current key (tests craft edge cases with it)."""
        token = jwt.encode(
            claims, self._private_key, algorithm="RS256", headers={"kid": kid or self.key_id}
        )
        with self._lock:
            self._issued.append(token)
        return token

    def discovery_document(self) -> dict[str, Any]:
        """The OIDC discovery document an AWS OIDC provider (or an STS front) reads."""
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_url,
            "token_endpoint": f"{self.base_url}/{self.tenant_id}/oauth2/token",
            "authorization_endpoint": f"{self.base_url}/{self.tenant_id}/oauth2/authorize",
            "response_types_supported": ["code", "id_token", "code id_token", "token id_token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "tenant_region_scope": "EU",
        }

    def issue_token(
        self, identity: Identity, resource: str, *, lifetime: int | None = None
    ) -> tuple[str, int]:
        """Sign a token for `identity` and `resource` as Entra would; returns (token, expires_on).

        Applies the same rules as the MI endpoint (unknown resource, assignment required) and
        raises `EntraRefusal` when Entra would refuse. Does not count as an MI request.
        """
        audience = resource_to_audience(resource)
        with self._lock:
            app = self._apps.get(audience)
            roles: list[str] = []
            if app is not None:
                assigned = identity.principal_id in app.assigned
                if app.assignment_required and not assigned:
                    raise EntraRefusal(400, "invalid_request", self._not_assigned(identity, app))
                if assigned:
                    roles = [app.app_role]
            elif audience not in self.known_resources:
                raise EntraRefusal(400, "invalid_resource", self._no_such_resource(audience))
        now = int(time.time())
        expires_on = now + (self.token_lifetime if lifetime is None else lifetime)
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": expires_on,
            "aio": secrets.token_urlsafe(16),
            "appid": identity.client_id,
            "appidacr": "2",
            "idp": self.issuer,
            "oid": identity.principal_id,
            "rh": "0.fake.",
            "sub": identity.principal_id,
            "tid": self.tenant_id,
            "uti": secrets.token_urlsafe(16),
            "ver": "1.0",
            "xms_mirid": f"/fake/{identity.name}",
        }
        if roles:
            claims["roles"] = roles
        token = jwt.encode(
            claims, self._private_key, algorithm="RS256", headers={"kid": self.key_id}
        )
        with self._lock:
            self._issued.append(token)
        return token, expires_on

    def new_user(self, name: str) -> Identity:
        """A person: `oid` is the user's object id; their tokens come through the Azure CLI."""
        return Identity(name=name, client_id=AZURE_CLI_CLIENT_ID, principal_id=str(uuid.uuid4()))

    def issue_caller_token(
        self,
        caller: Identity,
        audience: str,
        *,
        user: bool = False,
        roles: list[str] | None = None,
        tenant_id: str | None = None,
        expired: bool = False,
    ) -> str:
        """A v1 access token for the reader API at `audience`, as Entra issues one to an app or
        managed identity (client credentials) or to a person through the Azure CLI (`user`,
        delegated: `scp`).

        `roles` None applies the app's rules (assignment required: an unassigned caller is
        refused with `EntraRefusal`, as Entra does); a list forces the claim, which is what a
        token looks like when assignment is not required. `tenant_id` issues it as another tenant
        would (Entra signs every tenant's tokens with the same keys: only `iss`/`tid` differ);
        `expired` makes `exp` ten minutes past (beyond any allowed clock skew).
        """
        aud = resource_to_audience(audience)
        if roles is None:
            with self._lock:
                app = self._apps.get(aud)
                if app is None:
                    raise EntraRefusal(400, "invalid_resource", self._no_such_resource(aud))
                assigned = caller.principal_id in app.assigned
                if app.assignment_required and not assigned:
                    raise EntraRefusal(400, "invalid_request", self._not_assigned(caller, app))
                roles = [app.app_role] if assigned else []
        tenant = tenant_id or self.tenant_id
        issuer = f"https://sts.windows.net/{tenant}/"
        now = int(time.time())
        expires = now - 600 if expired else now + 3600
        claims: dict[str, Any] = {
            "aud": aud,
            "iss": issuer,
            "iat": expires - 3600,
            "nbf": expires - 3600,
            "exp": expires,
            "appid": caller.client_id,
            "appidacr": "0" if user else "2",
            "idp": issuer,
            "oid": caller.principal_id,
            "sub": caller.principal_id,
            "tid": tenant,
            "uti": secrets.token_urlsafe(16),
            "ver": "1.0",
        }
        if user:
            claims.update({"scp": "user_impersonation", "name": caller.name, "amr": ["pwd"]})
        if roles:
            claims["roles"] = roles
        return self.sign(claims)

    def issued_tokens(self) -> list[str]:
        """Tokens issued so far (most recent 10,000): for leak checks only."""
        with self._lock:
            return list(self._issued)

    def _not_assigned(self, identity: Identity, app: FederationApp) -> str:
        return (
            f"AADSTS501051: Application '{identity.client_id}'({identity.name}) is not assigned to "
            f"a role for the application '{app.audience}'({app.display_name}). "
            f"Trace ID: {uuid.uuid4()} Correlation ID: {uuid.uuid4()} "
            f"Timestamp: {time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime())}"
        )

    def _no_such_resource(self, audience: str) -> str:
        return (
            f"AADSTS500011: The resource principal named {audience} was not found in the tenant "
            f"named {self.tenant_id}. This can happen if the application has not been installed "
            "by the administrator of the tenant or consented to by any user in the tenant. "
            f"Trace ID: {uuid.uuid4()}"
        )

    # ---- counting ------------------------------------------------------------------------------

    @property
    def token_requests(self) -> int:
        """MI token requests answered so far (successful or not)."""
        with self._lock:
            return len(self._requests)

    def requests_for(self, resource: str) -> int:
        """MI token requests for one resource/audience."""
        with self._lock:
            return self._by_resource[resource_to_audience(resource)]

    def request_log(self) -> list[TokenRequest]:
        with self._lock:
            return list(self._requests)

    def reset_counts(self) -> None:
        with self._lock:
            self._requests.clear()
            self._by_resource.clear()
            self.keys_requests = 0

    def _record(self, request: TokenRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._by_resource[resource_to_audience(request.resource)] += 1

    # ---- the MI endpoint -----------------------------------------------------------------------

    def _answer_mi(self, query: dict[str, list[str]], header: str | None) -> tuple[int, dict]:
        """Status and JSON body for one MI request (App Service 2019-08-01 semantics)."""
        resource = (query.get("resource") or [""])[0]
        client_id = (query.get("client_id") or [None])[0]
        with self._lock:
            host = self._hosts.get(header or "")
        if host is None:
            self._record(TokenRequest(None, resource, client_id, None, 401))
            return 401, _app_service_error(401, "The identity header is missing or invalid.")
        if (query.get("api-version") or [""])[0] != MI_API_VERSION or not resource:
            self._record(TokenRequest(host.name, resource, client_id, None, 400))
            return 400, _app_service_error(400, "api-version 2019-08-01 and resource are required.")
        # App Service selects a user-assigned identity by client_id, object_id/principal_id or
        # mi_res_id; none of them means the system-assigned one.
        object_id = (query.get("object_id") or query.get("principal_id") or [None])[0]
        if client_id:
            identity = host.user_identities.get(client_id)
        elif object_id:
            identity = next(
                (i for i in host.user_identities.values() if i.principal_id == object_id), None
            )
        elif query.get("mi_res_id"):
            identity = None  # resource ids are not modelled: refuse rather than guess
        else:
            identity = host.system_identity
        if identity is None:
            self._record(TokenRequest(host.name, resource, client_id, None, 400))
            # What App Service says when the requested identity is not on the app.
            return 400, _app_service_error(400, "Unable to load the proper Managed Identity.")
        try:
            token, expires_on = self.issue_token(identity, resource)
        except EntraRefusal as refusal:
            self._record(
                TokenRequest(host.name, resource, client_id, identity.principal_id, refusal.status)
            )
            body = _app_service_error(refusal.status, refusal.description)
            body.update({"error": refusal.error, "error_description": refusal.description})
            return refusal.status, body
        self._record(TokenRequest(host.name, resource, client_id, identity.principal_id, 200))
        return 200, {
            "access_token": token,
            "expires_on": str(expires_on),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": identity.client_id,
        }

    def _handler(self) -> type[QuietHandler]:
        entra = self

        class Handler(QuietHandler):
            server_version = "FakeEntra/1"

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                path = url.path.rstrip("/")
                if path == MI_PATH:
                    if entra.latency and entra._stopping.wait(entra.latency):
                        self.close_connection = True  # stopped while "hung": no answer at all
                        return
                    outage = entra.outage_status
                    if outage is not None:
                        self.send_body(outage, b"Service Unavailable", "text/plain")
                        return
                    status, body = entra._answer_mi(
                        parse_qs(url.query), self.headers.get("X-IDENTITY-HEADER")
                    )
                elif path == f"/{entra.tenant_id}{V2_JWKS_PATH}":
                    with entra._lock:
                        entra.keys_requests += 1
                    outage = entra.keys_outage_status
                    if outage is not None:
                        self.send_body(outage, b"Service Unavailable", "text/plain")
                        return
                    status, body = 200, entra.jwks()
                elif path in (JWKS_PATH, f"/{entra.tenant_id}{JWKS_PATH}"):
                    status, body = 200, entra.jwks()
                elif path in (
                    "/.well-known/openid-configuration",
                    f"/{entra.tenant_id}/.well-known/openid-configuration",
                ):
                    status, body = 200, entra.discovery_document()
                else:
                    status, body = 404, {"error": "not_found"}
                self.send_json(status, body)

        return Handler

    # ---- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeEntra:
        self._stopping.clear()
        return super().start()

    def stop(self) -> None:
        self._stopping.set()
        super().stop()

    def _make_server(self) -> LoopbackHttpsServer:
        return LoopbackHttpsServer(self.port, self._handler(), self.tls)


def _app_service_error(status: int, message: str) -> dict[str, Any]:
    return {"statusCode": status, "message": message, "correlationId": str(uuid.uuid4())}


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT without checking it (for displays and tests, never for trust)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
