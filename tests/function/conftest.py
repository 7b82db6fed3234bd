"""The function tier (docs/design.md "Tests"): the real function code and real SDKs against
loopback fakes.

Started once per session: the fake Entra (MI endpoint + JWKS), moto's server (STS + S3 + IAM),
Azurite over HTTPS with OAuth behind `BlobGate` (signature check + data-role RBAC). Each test
builds a fresh per-process `CrossCloud` from app settings set with monkeypatch, so a test starts
cold and its counts start at zero.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from azure.core.credentials import AccessToken
from azure.storage.blob import BlobServiceClient

from components import trust
from localcloud.azurite import Azurite
from localcloud.blob_gate import BlobGate
from localcloud.certs import TlsFiles, make_tls_files
from localcloud.entra import DEFAULT_TOKEN_LIFETIME, STORAGE_RESOURCE, FakeEntra, Identity
from localcloud.moto_server import MotoServer, StsRefusal

FUNCTION_SRC = Path(__file__).resolve().parents[2] / "function_src"
if str(FUNCTION_SRC) not in sys.path:
    # function_src is deployed as its own root; the tests import it the way the host does.
    sys.path.insert(0, str(FUNCTION_SRC))

import azure.functions as func  # noqa: E402
import function_app  # noqa: E402
from crosscloud_fn import caller_auth, redaction, service  # noqa: E402
from crosscloud_fn.credentials import Clock  # noqa: E402
from crosscloud_fn.settings import Settings  # noqa: E402

# Importing the app installs the redaction process-wide, as in production. Other test tiers share
# this pytest process, so it is switched on only around each test of this tier (below).
INSTALLED_ON_IMPORT = redaction.installed()
redaction.uninstall()

REGION = "eu-west-1"
BUCKET = "crosscloud-data-test"
OTHER_BUCKET = "crosscloud-other-test"
CONTAINER = "mycontainer"
CALLER_ROLE = "CrossCloud.Read"
ROLE_NAME = "crosscloud-reader"
SITE_NAME = "crosscloud-fn-test"

# Same names in both stores, different bytes, so a test can tell which cloud answered.
SAMPLES: dict[str, tuple[bytes, bytes]] = {
    "hello.txt": (b"hello from Azure Blob Storage\n", b"hello from Amazon S3\n"),
    "reports/2025/summary.json": (b'{"cloud": "azure", "n": 1}', b'{"cloud": "aws", "n": 2}'),
    "caf\u00e9 menu.txt": ("cr\u00e8me br\u00fbl\u00e9e\n".encode(), b"tarte tatin\n"),
    "binary.bin": (bytes(range(256)), bytes(reversed(range(256)))),
}
ONLY_IN_AZURE = "only-in-azure.txt"


class TrustGuard:
    """What AWS checks in AssumeRoleWithWebIdentity, as far as tier 2 needs it: the signature
    against the issuer's JWKS, `iss` = a registered provider, `aud` in its client id list, then
    the role's trust policy (`StringEquals` on aud and sub). moto itself checks none of it.
    Mutable so a test can narrow it; the `world` fixture restores it."""

    def __init__(self, entra: FakeEntra, audience: str, subjects: set[str]) -> None:
        self.keys = jwt.PyJWKSet.from_dict(entra.jwks())
        self.issuer = entra.issuer
        self.client_ids = {audience}
        self.trusted_audience = audience
        self.subjects = set(subjects)
        self._defaults = (set(self.client_ids), audience, set(subjects))

    def restore(self) -> None:
        client_ids, audience, subjects = self._defaults
        self.client_ids, self.trusted_audience, self.subjects = (
            set(client_ids),
            audience,
            set(subjects),
        )

    def __call__(self, params: Mapping[str, str]) -> StsRefusal | None:
        token = params.get("WebIdentityToken", "")
        try:
            kid = jwt.get_unverified_header(token).get("kid", "")
            claims = jwt.decode(
                token, self.keys[kid].key, algorithms=["RS256"], options={"verify_aud": False}
            )
        except jwt.ExpiredSignatureError:
            return StsRefusal("ExpiredTokenException", "Token expired: current date/time is past")
        except (jwt.PyJWTError, KeyError):
            return StsRefusal("InvalidIdentityToken", "Couldn't verify the token's signature")
        if claims.get("iss") != self.issuer:
            return StsRefusal(
                "InvalidIdentityToken",
                f"No OpenIDConnect provider found in your account for {claims.get('iss')}",
            )
        if claims.get("aud") not in self.client_ids:
            return StsRefusal("InvalidIdentityToken", "Incorrect token audience")
        if claims.get("aud") != self.trusted_audience or claims.get("sub") not in self.subjects:
            return StsRefusal(
                "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403
            )
        return None


@dataclass
class World:
    entra: FakeEntra
    aws: MotoServer
    gate: BlobGate
    guard: TrustGuard
    tls_ca: Path
    tls: TlsFiles
    host_env: dict[str, str]
    identities: dict[str, Identity]
    audience: str
    other_audience: str
    role_arn: str
    deployer_token: str
    caller_audience: str
    """The reader API's identifier URI (the front door's audience)."""
    caller_client_id: str
    caller_token: str
    """An access token of the assigned caller app for the reader API: sent by default."""
    members: frozenset[str] = field(default_factory=frozenset)
    """Principal ids of the SAMI and UAMI: assigned, trusted and Blob readers by default."""

    def function_env(self, identity: str = "sami") -> dict[str, str]:
        """The app settings the Pulumi program would set, pointed at the fakes."""
        client_id = "" if identity == "sami" else self.identities[identity].client_id
        return {
            **self.host_env,
            **self.aws.env(),
            "REQUESTS_CA_BUNDLE": str(self.tls_ca),
            "AWS_CA_BUNDLE": str(self.tls_ca),
            "WEBSITE_SITE_NAME": SITE_NAME,
            "CROSSCLOUD_IDENTITY_CLIENT_ID": client_id,
            "CROSSCLOUD_AUDIENCE": self.audience,
            "CROSSCLOUD_AWS_ROLE_ARN": self.role_arn,
            "CROSSCLOUD_AWS_REGION": REGION,
            "CROSSCLOUD_S3_BUCKET": BUCKET,
            "CROSSCLOUD_BLOB_ACCOUNT_URL": self.gate.endpoint,
            "CROSSCLOUD_BLOB_CONTAINER": CONTAINER,
            # The front door: its keys come from the fake, as AZURE_AUTHORITY_HOST points there.
            "AZURE_AUTHORITY_HOST": self.entra.base_url,
            "CROSSCLOUD_TENANT_ID": self.entra.tenant_id,
            "CROSSCLOUD_CALLER_AUDIENCE": self.caller_audience,
            "CROSSCLOUD_CALLER_CLIENT_ID": self.caller_client_id,
            "CROSSCLOUD_CALLER_ROLE": CALLER_ROLE,
        }

    def restore(self) -> None:
        """Undo what a test changed in the fakes' policies."""
        self.guard.restore()
        self.entra.token_lifetime = DEFAULT_TOKEN_LIFETIME
        self.entra.latency = self.aws.sts_latency = self.aws.s3_latency = self.gate.latency = 0.0
        self.entra.outage_status = self.entra.keys_outage_status = None
        self.aws.sts_guard = self.guard
        self.aws.s3_guard = None
        self.aws.restore_sessions()
        self.gate.readers.clear()
        self.gate.readers.update(self.members)
        for principal in self.members:
            self.entra.assign(self.audience, principal)

    def reset_counts(self) -> None:
        self.entra.reset_counts()
        self.aws.reset_counts()
        self.gate.reset_counts()

    def secrets(self) -> list[str]:
        """Every credential the fakes handed out so far, and the MI endpoint's header secret."""
        found = [self.host_env["IDENTITY_HEADER"], *self.entra.issued_tokens()]
        found += self.aws.issued_secrets()
        return [s for s in found if s]


class _StaticToken:
    """A TokenCredential for the deployer's seeding (a token issued directly by the fake)."""

    def __init__(self, token: str, expires_on: int) -> None:
        self._token = AccessToken(token, expires_on)

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return self._token


def _seed(world: World) -> None:
    expires_on = jwt.decode(world.deployer_token, options={"verify_signature": False})["exp"]
    # Through the gate: the deployer holds Storage Blob Data Contributor there.
    blob = BlobServiceClient(
        world.gate.endpoint,
        credential=_StaticToken(world.deployer_token, expires_on),
        connection_verify=str(world.tls_ca),
    )
    container = blob.create_container(CONTAINER)
    for name, (azure_bytes, _) in SAMPLES.items():
        container.upload_blob(name, azure_bytes)
    container.upload_blob(ONLY_IN_AZURE, b"azure only\n")
    blob.close()

    s3 = world.aws.client("s3")
    for bucket in (BUCKET, OTHER_BUCKET):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    for name, (_, aws_bytes) in SAMPLES.items():
        s3.put_object(Bucket=BUCKET, Key=name, Body=aws_bytes)
    s3.put_object(Bucket=OTHER_BUCKET, Key="hello.txt", Body=b"not for us\n")


@pytest.fixture(autouse=True)
def _redacted_logging() -> Iterator[None]:
    redaction.install()
    yield
    redaction.uninstall()


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tls = make_tls_files(tmp_path_factory.mktemp("tls"))
    with ExitStack() as stack:
        entra = stack.enter_context(FakeEntra())
        ids = {
            name: entra.new_identity(name)
            for name in ("sami", "uami", "stranger", "deployer", "caller", "outsider")
        }
        ids["person"] = entra.new_user("person")
        host = entra.add_host(
            SITE_NAME,
            system_identity=ids["sami"],
            user_identities=[ids["uami"], ids["stranger"]],
        )
        members = {ids["sami"].principal_id, ids["uami"].principal_id}
        audience = trust.tenant_audience(entra.tenant_id)
        entra.add_federation_app(audience, assigned=members)
        # A second app both identities may get tokens for, which the AWS side does not trust.
        other_audience = trust.tenant_audience(entra.tenant_id, "Other-App")
        entra.add_federation_app(
            other_audience, "Other-App", app_role="Other.Read", assigned=members
        )

        guard = TrustGuard(entra, audience, members)
        # Over TLS like AWS: the function refuses an http endpoint that would receive tokens.
        aws = stack.enter_context(MotoServer(region=REGION, sts_guard=guard, tls=tls))
        iam = aws.client("iam")
        provider = iam.create_open_id_connect_provider(
            Url=entra.issuer, ClientIDList=[audience], ThumbprintList=[]
        )["OpenIDConnectProviderArn"]
        role_arn = iam.create_role(
            RoleName=ROLE_NAME,
            AssumeRolePolicyDocument=json.dumps(
                trust.trust_policy(provider, entra.tenant_id, audience, sorted(members))
            ),
        )["Role"]["Arn"]
        iam.put_role_policy(
            RoleName=ROLE_NAME,
            PolicyName="read-one-bucket",
            PolicyDocument=json.dumps(trust.s3_read_policy(BUCKET, partition="aws")),
        )

        azurite = stack.enter_context(Azurite(tls))
        gate = stack.enter_context(
            BlobGate(
                azurite.blob_endpoint,
                tls,
                jwks=entra.jwks(),
                readers=set(members),
                contributors={ids["deployer"].principal_id},
            )
        )
        deployer_token, _ = entra.issue_token(ids["deployer"], STORAGE_RESOURCE)
        # The reader API: callers (an app and a person) hold its role; "outsider" does not.
        caller_audience = trust.tenant_audience(entra.tenant_id, "CrossCloud-Reader-API")
        reader_api = entra.add_federation_app(
            caller_audience,
            "CrossCloud-Reader-API",
            app_role=CALLER_ROLE,
            assigned={ids["caller"].principal_id, ids["person"].principal_id},
        )
        world = World(
            entra=entra,
            aws=aws,
            gate=gate,
            guard=guard,
            tls_ca=tls.ca_cert,
            tls=tls,
            host_env=host.env(),
            identities=ids,
            audience=audience,
            other_audience=other_audience,
            role_arn=role_arn,
            deployer_token=deployer_token,
            caller_audience=caller_audience,
            caller_client_id=reader_api.app_id,
            caller_token=entra.issue_caller_token(ids["caller"], caller_audience),
            members=frozenset(members),
        )
        _seed(world)
        yield world


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    text: str
    headers: Mapping[str, str]
    mimetype: str


# `app.get_functions()` indexes the app and refuses to run twice (it sees its own names as
# duplicates), exactly like the host indexes once per process: collect them once.
REGISTERED = {fn.get_trigger().route: fn for fn in function_app.app.get_functions()}


AS_CALLER = "as-caller"
"""`FunctionClient.call`'s default: the assigned caller's bearer token."""


class FunctionClient:
    """Invokes the registered functions of `function_app.app` in-process, like the host does."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.functions = {route: fn.get_user_function() for route, fn in REGISTERED.items()}

    def call(
        self,
        route: str,
        *,
        authorization: str | None = AS_CALLER,
        headers: Mapping[str, str] | None = None,
        **params: str,
    ) -> Answer:
        """`authorization`: the header's value; None sends none; by default the caller's token."""
        sent = dict(headers or {})
        if authorization is not None:
            token = self.world.caller_token if authorization == AS_CALLER else None
            sent["Authorization"] = f"Bearer {token}" if token else authorization
        request = func.HttpRequest(
            "GET", f"https://fn.local/api/{route}", params=params, headers=sent, body=b""
        )
        response = self.functions[route](request)
        text = response.get_body().decode()
        # Every answer of every test is checked: no credential ever leaves in a response.
        leaked = [s for s in self.world.secrets() if s in text]
        assert not leaked, f"a credential leaked into the {route} response"
        return Answer(
            response.status_code, json.loads(text), text, dict(response.headers), response.mimetype
        )

    @property
    def runtime(self) -> service.CrossCloud:
        return service.current()


MakeFunction = Callable[..., FunctionClient]


@pytest.fixture
def make_function(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeFunction]:
    """`make_function("uami", clock=..., CROSSCLOUD_AUDIENCE=...)`: a cold function process."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    # Nothing from the machine's AWS config may leak into the run.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(world.tls_ca.parent / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(world.tls_ca.parent / "no-aws-creds"))

    def make(
        identity: str = "sami", *, clock: Clock | None = None, **overrides: str
    ) -> FunctionClient:
        for name, value in {**world.function_env(identity), **overrides}.items():
            monkeypatch.setenv(name, value)
        # None: built lazily from the settings on the first request, as in production.
        service.replace(service.CrossCloud(Settings.from_env(), clock=clock) if clock else None)
        caller_auth.replace(None)  # the front door too: built from these settings, keys cold
        world.reset_counts()
        return FunctionClient(world)

    yield make
    service.replace(None)
    caller_auth.replace(None)
    world.restore()


@pytest.fixture
def sami(make_function: MakeFunction) -> FunctionClient:
    return make_function("sami")
