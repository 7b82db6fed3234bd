"""A fake of IAM outbound web identity federation: STS `GetWebIdentityToken` and the issuer.

What AWS does and this imitates (sources in components/aws_readers.py and docs/aws-readers.md):

- `POST /` with `Action=GetWebIdentityToken` (query protocol, SigV4-signed by a role session's
  credentials). The caller is the role whose session signed the request: the signature is checked
  with botocore's own SigV4 signer against the session's secret key, as AWS would, so a request
  signed with unknown or wrong keys is refused (`InvalidClientTokenId` / `SignatureDoesNotMatch`).
- The role's identity policy decides (taken from the Pulumi program by the caller): the
  `sts:GetWebIdentityToken` statements and their conditions on `sts:IdentityTokenAudience`,
  `sts:SigningAlgorithm` and `sts:DurationSeconds` are evaluated; anything else is an implicit
  deny (`AccessDenied`). A role of an account whose feature is off gets
  `OutboundWebIdentityFederationDisabledException`.
- The token: RS256 (or ES384 when asked) signed by a per-account key, `iss` = the account's
  issuer, `sub` = the role's ARN, `aud` = the audience (a string for one, a list for several),
  `iat`/`exp`/`jti`, and AWS claims under `https://sts.amazonaws.com/` (AWS docs, "Understanding
  token claims": https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_providers_outbound_token_claims.html).
- The issuer serves `/.well-known/openid-configuration` and `/.well-known/jwks.json` over HTTPS
  (IAM EnableOutboundWebIdentityFederation: "hosts the OpenID Connect (OIDC) discovery endpoints
  at /.well-known/openid-configuration and /.well-known/jwks.json").

Calls are counted per role, so tests and the demo measure warm-path caching at the fake.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import jwt
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from localcloud.certs import TlsFiles
from localcloud.https import LoopbackHttpsServer, LoopbackService, QuietHandler
from localcloud.net import LOOPBACK, free_port

ALGORITHMS = ("RS256", "ES384")
MAX_CLOCK_SKEW_SECONDS = 15 * 60
STS_NAMESPACE = "https://sts.amazonaws.com/"
_STS_XMLNS = "https://sts.amazonaws.com/doc/2011-06-15/"


@dataclass(frozen=True)
class RoleSession:
    """Temporary credentials of one role session (what Lambda puts in a function's env)."""

    role_arn: str
    access_key_id: str
    secret_access_key: str
    session_token: str

    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }


@dataclass
class Account:
    account_id: str
    enabled: bool = True
    rsa_key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    ec_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP384R1())
    )
    rsa_kid: str = field(default_factory=lambda: uuid.uuid4().hex)
    ec_kid: str = field(default_factory=lambda: uuid.uuid4().hex)


class StsError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def allows(policy: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    """Whether an identity policy allows `sts:GetWebIdentityToken` with these request values.

    Evaluates Allow statements for the action with the condition operators such policies use
    (ForAllValues:StringEquals, ForAnyValue:StringEquals, StringEquals, Null,
    NumericLessThanEquals); an operator it does not know makes the statement not apply (fail
    closed). An explicit Deny that applies wins, as in IAM.
    """
    allowed = False
    for statement in policy.get("Statement", []):
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if not any(a in ("sts:GetWebIdentityToken", "sts:*", "*") for a in actions):
            continue
        if _conditions_hold(statement.get("Condition", {}), context):
            if statement.get("Effect") == "Deny":
                return False
            allowed = True
    return allowed


def _conditions_hold(
    conditions: Mapping[str, Mapping[str, Any]], context: Mapping[str, Any]
) -> bool:
    for operator, pairs in conditions.items():
        for key, expected in pairs.items():
            wanted = expected if isinstance(expected, list) else [expected]
            present = context.get(key)
            values = present if isinstance(present, list) else [] if present is None else [present]
            if operator == "ForAllValues:StringEquals":
                ok = all(v in wanted for v in values)
            elif operator == "ForAnyValue:StringEquals":
                ok = any(v in wanted for v in values)
            elif operator == "StringEquals":
                ok = len(values) == 1 and values[0] in wanted
            elif operator == "Null":
                ok = (present is None) == (str(wanted[0]).lower() == "true")
            elif operator == "NumericLessThanEquals":
                ok = len(values) == 1 and float(values[0]) <= float(wanted[0])
            else:
                return False
            if not ok:
                return False
    return True


class OutboundFederation(LoopbackService):
    """Context manager: the regional STS endpoint and every account's issuer on one port.

    `sessions` maps access key ids to role sessions; `policies` role ARNs to identity policies.
    """

    _thread_name = "fake-outbound-federation"

    def __init__(self, tls: TlsFiles, region: str = "eu-west-1") -> None:
        self.tls = tls
        self.region = region
        self.port = free_port()
        self.endpoint_url = f"https://{LOOPBACK}:{self.port}"
        self._lock = threading.Lock()
        self._accounts: dict[str, Account] = {}
        self._sessions: dict[str, RoleSession] = {}
        self._policies: dict[str, Mapping[str, Any]] = {}
        self.calls: Counter[str] = Counter()
        """GetWebIdentityToken calls per role ARN (refused ones included)."""
        self.issued: list[str] = []
        """Tokens handed out, kept only so tests can prove none leaks into logs or answers."""

    # ---- the accounts --------------------------------------------------------------------------

    def issuer(self, account_id: str) -> str:
        return f"{self.endpoint_url}/{account_id}"

    def add_account(self, account_id: str, *, enabled: bool = True) -> str:
        """Turn the feature on (or leave it off) for an account; returns its issuer."""
        with self._lock:
            self._accounts.setdefault(account_id, Account(account_id)).enabled = enabled
        return self.issuer(account_id)

    def add_role(self, role_arn: str, policy: Mapping[str, Any]) -> RoleSession:
        """A role with its identity policy; returns a session of it (fresh credentials)."""
        session = RoleSession(
            role_arn,
            "ASIA" + secrets.token_hex(8).upper(),
            secrets.token_urlsafe(30),
            secrets.token_urlsafe(60),
        )
        with self._lock:
            self._policies[role_arn] = policy
            self._sessions[session.access_key_id] = session
        return session

    def jwks(self, account_id: str) -> dict[str, Any]:
        account = self._accounts[account_id]
        rsa_jwk = json.loads(RSAAlgorithm.to_jwk(account.rsa_key.public_key()))
        rsa_jwk.update({"kid": account.rsa_kid, "use": "sig", "alg": "RS256"})
        ec_jwk = json.loads(ECAlgorithm.to_jwk(account.ec_key.public_key()))
        ec_jwk.update({"kid": account.ec_kid, "use": "sig", "alg": "ES384"})
        return {"keys": [rsa_jwk, ec_jwk]}

    def discovery(self, account_id: str) -> dict[str, Any]:
        issuer = self.issuer(account_id)
        return {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": list(ALGORITHMS),
        }

    # ---- GetWebIdentityToken -------------------------------------------------------------------

    def get_web_identity_token(
        self, params: Mapping[str, list[str]], headers: Mapping[str, str], body: bytes, path: str
    ) -> tuple[str, float]:
        session = self._caller(headers, body, path)
        role_arn = session.role_arn
        with self._lock:
            self.calls[role_arn] += 1
            policy = self._policies.get(role_arn, {})
        account_id = role_arn.split(":")[4]
        account = self._accounts.get(account_id)
        if account is None or not account.enabled:
            raise StsError(
                403,
                "OutboundWebIdentityFederationDisabledException",
                "Outbound web identity federation is not enabled for this account.",
            )
        audience = [
            v for k, vs in sorted(params.items()) if k.startswith("Audience.member.") for v in vs
        ]
        algorithm = (params.get("SigningAlgorithm") or [""])[0]
        duration = int((params.get("DurationSeconds") or ["300"])[0])
        if not audience or algorithm not in ALGORITHMS or not 60 <= duration <= 3600:
            raise StsError(400, "ValidationError", "Audience, SigningAlgorithm or DurationSeconds")
        context = {
            "sts:IdentityTokenAudience": audience,
            "sts:SigningAlgorithm": algorithm,
            "sts:DurationSeconds": duration,
        }
        if not allows(policy, context):
            raise StsError(
                403,
                "AccessDenied",
                f"User: {role_arn} is not authorized to perform: sts:GetWebIdentityToken "
                "because no identity-based policy allows the sts:GetWebIdentityToken action",
            )
        now = int(time.time())
        claims = {
            "iss": self.issuer(account_id),
            "sub": role_arn,
            "aud": audience[0] if len(audience) == 1 else audience,
            "iat": now,
            "exp": now + duration,
            "jti": str(uuid.uuid4()),
            STS_NAMESPACE: {"aws_account": account_id, "source_region": self.region},
        }
        if algorithm == "RS256":
            token = jwt.encode(claims, account.rsa_key, "RS256", headers={"kid": account.rsa_kid})
        else:
            token = jwt.encode(claims, account.ec_key, "ES384", headers={"kid": account.ec_kid})
        with self._lock:
            self.issued.append(token)
        return token, float(now + duration)

    def _caller(self, headers: Mapping[str, str], body: bytes, path: str) -> RoleSession:
        """The role session that signed the request (SigV4, checked with botocore's signer)."""
        authorization = headers.get("authorization", "")
        try:
            credential = authorization.split("Credential=", 1)[1].split(",", 1)[0]
            signed = authorization.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")
            signature = authorization.split("Signature=", 1)[1].strip()
            key_id, date, region, service, _ = credential.split("/")
        except (IndexError, ValueError):
            raise StsError(
                403, "MissingAuthenticationToken", "Request is missing a signature"
            ) from None
        with self._lock:
            session = self._sessions.get(key_id)
        if session is None or headers.get("x-amz-security-token") != session.session_token:
            raise StsError(403, "InvalidClientTokenId", "The security token is not valid.")
        request = AWSRequest(
            method="POST",
            url=f"{self.endpoint_url}{path}",
            data=body,
            headers={name: headers.get(name, "") for name in signed},
        )
        stamp = headers.get("x-amz-date", "")
        try:
            signed_at = time.mktime(time.strptime(stamp, "%Y%m%dT%H%M%SZ")) - time.timezone
        except ValueError:
            signed_at = 0.0
        if abs(time.time() - signed_at) > MAX_CLOCK_SKEW_SECONDS:
            # AWS refuses a signature more than 15 minutes off (SigV4: RequestExpired /
            # SignatureDoesNotMatch "Signature expired").
            raise StsError(403, "SignatureDoesNotMatch", "Signature expired or not yet valid.")
        request.context["timestamp"] = stamp
        signer = SigV4Auth(
            Credentials(session.access_key_id, session.secret_access_key, session.session_token),
            service,
            region,
        )
        expected = signer.signature(
            signer.string_to_sign(request, signer.canonical_request(request)), request
        )
        if (
            not secrets.compare_digest(expected, signature)
            or date != request.context["timestamp"][:8]
        ):
            raise StsError(403, "SignatureDoesNotMatch", "The request signature does not match.")
        return session

    # ---- HTTP ----------------------------------------------------------------------------------

    def _handler(self) -> type[QuietHandler]:
        fake = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                if len(parts) == 3 and parts[0] in fake._accounts and parts[1] == ".well-known":
                    if parts[2] == "openid-configuration":
                        self.send_json(200, fake.discovery(parts[0]))
                        return
                    if parts[2] == "jwks.json":
                        self.send_json(200, fake.jwks(parts[0]))
                        return
                self.send_json(404, {"error": "not found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                params = parse_qs(body.decode(), keep_blank_values=True)
                headers = {k.lower(): v for k, v in self.headers.items()}
                if (params.get("Action") or [""])[0] != "GetWebIdentityToken":
                    self._error(StsError(400, "InvalidAction", "Only GetWebIdentityToken here"))
                    return
                try:
                    token, expires = fake.get_web_identity_token(params, headers, body, self.path)
                except StsError as error:
                    self._error(error)
                    return
                stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))
                xml = (
                    f'<GetWebIdentityTokenResponse xmlns="{_STS_XMLNS}">'
                    "<GetWebIdentityTokenResult>"
                    f"<WebIdentityToken>{escape(token)}</WebIdentityToken>"
                    f"<Expiration>{stamp}</Expiration>"
                    "</GetWebIdentityTokenResult>"
                    f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
                    "</GetWebIdentityTokenResponse>"
                )
                self.send_body(200, xml.encode(), "text/xml")

            def _error(self, error: StsError) -> None:
                xml = (
                    f'<ErrorResponse xmlns="{_STS_XMLNS}"><Error><Type>Sender</Type>'
                    f"<Code>{escape(error.code)}</Code><Message>{escape(error.message)}</Message>"
                    f"</Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
                )
                self.send_body(error.status, xml.encode(), "text/xml")

        return Handler

    def _make_server(self) -> LoopbackHttpsServer:
        return LoopbackHttpsServer(self.port, self._handler(), self.tls)
