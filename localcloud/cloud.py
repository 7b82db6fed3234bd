"""`LocalCloud`: the deployment the Pulumi program describes, running on 127.0.0.1.

Built from a `World` (the program run under mocks, see world.py), it starts:

- a throw-away CA; every endpoint below speaks HTTPS with its server certificate;
- the fake Entra ID (localcloud/entra.py): the federation app with the program's audience, app
  role, "assignment required" flag and assignments; one managed-identity host per function app
  (its own IDENTITY_HEADER and identities), and an "operator" host for the deployer;
- moto over HTTPS in auth mode, behind the STS front (`WebIdentityVerifier` built from the
  program's OIDC providers, with the fake Entra's JWKS, and the role's trust policy): the IAM role
  with the program's exact trust policy and inline policy, the bucket and its objects, and a
  second bucket the role is not granted;
- Azurite (`--oauth basic`) behind `BlobGate`, which grants Storage Blob Data Reader to the
  principals the program grants it on the data account, and Contributor to the deployer, who
  seeds the container with the program's sample blobs;
- one function host per function app (localcloud/function_host.py): the deployment package
  `shipping/build.py` makes from function_src (built for the running Python, cached by content
  hash), unpacked and run in an interpreter that sees only the standard library and the package,
  with the app's own environment and function keys;
- a fake ARM endpoint that hands those keys to the operator (`listkeys`), as ARM would; nothing
  on a user's path needs them any more: the apps' routes are anonymous at the host and let in
  only callers with an Entra token for the stack's reader API (every world's reader API is
  registered in the fake Entra, with the program's assignments; `AZURE_AUTHORITY_HOST` points
  the function's key fetch at the fake).

The function code is pointed at all this only through the variables the SDKs honour
(IDENTITY_ENDPOINT/IDENTITY_HEADER, REQUESTS_CA_BUNDLE, AWS_ENDPOINT_URL_STS/_S3, AWS_CA_BUNDLE)
and CROSSCLOUD_BLOB_ACCOUNT_URL, which is the one app setting that must name the gate.

moto keeps its backends and its auth switch process-wide: run one `LocalCloud` per process.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import socket
import ssl
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from azure.core.credentials import AccessToken
from azure.storage.blob import BlobServiceClient

from localcloud.app_hosts import (
    HOST_INTERPRETER,
    HOST_SCRIPT,
    REPO,
    FunctionHost,
    local_package,
    unpack,
)
from localcloud.app_plans import OPERATOR, AppPlan, ExtraApp, app_plans
from localcloud.arm import FakeArm, SiteKeys
from localcloud.aws_front import OTHER_BUCKET, CloudMoto, same_as_program, seed_aws, sts_front
from localcloud.azurite import Azurite
from localcloud.blob_gate import BlobGate
from localcloud.certs import TlsFiles, make_tls_files
from localcloud.entra import STORAGE_RESOURCE, AppHost, FakeEntra, Identity
from localcloud.moto_server import WEB_IDENTITY
from localcloud.net import LOOPBACK
from localcloud.sts_verifier import WebIdentityVerifier
from localcloud.world import ManagedId, World
from shipping.build import BuiltPackage

# What other modules import from here, some of it defined beside this module: the apps to run in
# app_plans.py, moto and the STS front in aws_front.py, the hosts and their package in app_hosts.py.
__all__ = [
    "HOST_INTERPRETER",
    "HOST_SCRIPT",
    "OTHER_BUCKET",
    "REPO",
    "ExtraApp",
    "LocalCloud",
    "Reply",
    "Usage",
    "leftovers",
    "local_package",
    "unpack",
]


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    """Parsed JSON, or None for an empty body (the host's 401/404)."""
    ms: float


@dataclass(frozen=True)
class Usage:
    """Calls the fakes received on behalf of one app."""

    tokens: int
    """Managed-identity token requests from the app's host (any resource, refused ones too)."""
    sts: int
    """AssumeRoleWithWebIdentity requests made with the app's role session name."""


class _IssuedToken:
    """A TokenCredential holding one token the fake Entra issued (for the deployer's seeding)."""

    def __init__(self, token: str, expires_on: int) -> None:
        self._token = AccessToken(token, expires_on)

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return self._token


class LocalCloud:
    """Context manager: `with LocalCloud(world_from_program()) as cloud: cloud.call(...)`."""

    def __init__(
        self,
        world: World,
        *,
        extra_apps: Sequence[ExtraApp] = (),
        neighbours: Mapping[str, World] | None = None,
        package: BuiltPackage | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        """`neighbours`: other environment stacks on the same foundation as `world` (same
        tenant, audience and OIDC provider), by environment name. Their apps run as
        `{name}-{kind}`, their roles and buckets sit beside this world's in the one local AWS
        account, and the one Azurite account stands in for each environment's data account.
        `package`: the deployment package every host runs (default: `local_package()`).
        `progress`: called with a short line at each start-up step (`make demo` prints them: a
        start takes several seconds)."""
        self.world = world
        self.neighbours = dict(neighbours or {})
        for name, other in self.neighbours.items():
            if (other.tenant_id, other.audience, other.container) != (
                world.tenant_id,
                world.audience,
                world.container,
            ):
                raise ValueError(
                    f"environment {name} does not share this world's tenant, audience and "
                    "container: it is not on the same foundation"
                )
        self.plans = app_plans(world, extra_apps, self.neighbours)
        self._package = package
        self._progress = progress or (lambda step: None)
        self.package: BuiltPackage
        self._stack = ExitStack()
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self.tls: TlsFiles
        self.entra: FakeEntra
        self.aws: CloudMoto
        self.verifier: WebIdentityVerifier
        self.azurite: Azurite
        self.gate: BlobGate
        self.arm: FakeArm
        self.operator: AppHost
        self.deployer: Identity
        """Who runs `pulumi up` and `make verify`; a caller of the apps by default."""
        self.person: Identity
        """A person assigned the reader API's role by hand (signs in through the Azure CLI)."""
        self._caller_tokens: dict[str, str] = {}
        self._operator_aws: dict[str, str] = {}
        """The operator's moto keys (iam:GetRole only), for `make verify`."""
        self.hosts: dict[str, FunctionHost] = {}
        self.startup_s = 0.0

    # ---- lifecycle -----------------------------------------------------------------------------

    def start(self) -> LocalCloud:
        started = time.perf_counter()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.perf_counter() - started
        return self

    def _start(self) -> None:
        world = self.world
        self._workdir = tempfile.TemporaryDirectory(prefix="localcloud-")
        workdir = Path(self._workdir.name)
        self.tls = tls = make_tls_files(workdir / "tls")
        self._progress("deployment package: built from function_src unless cached (.build/)")
        self.package = self._package or local_package()
        app_root = unpack(self.package.path, workdir / "wwwroot")
        self._progress(f"deployment package unpacked ({self.package.path.name})")

        # Everything is wired before anything starts (ports are picked in the constructors), so
        # the slow parts - Azurite's Node start and the hosts' imports - overlap with the rest.
        entra = self.entra = FakeEntra(world.tenant_id, tls=tls)
        entra.add_federation_app(
            world.audience,
            world.federation_display_name,
            app_role=world.app_role,
            assigned=frozenset().union(*(w.assigned for w in self._worlds()))
            | self._assigned_by_hand(),
            assignment_required=world.assignment_required,
        )
        deployer = _identity(OPERATOR, world.deployer)
        self.deployer = deployer
        # Each stack's reader API (the front door's audience), with the program's assignments;
        # plus, by hand, a person who signs in through the Azure CLI (as one named in
        # crosscloud:callerPrincipalIds would).
        self.person = entra.new_user("person")
        for other in self._worlds():
            reader_api = entra.add_federation_app(
                other.caller_audience,
                "reader-api",
                app_role=other.caller_role,
                assigned=other.callers
                | ({self.person.principal_id} if other is world else frozenset()),
            )
            reader_api.app_id = other.caller_client_id
        self.operator = entra.add_host(OPERATOR, system_identity=deployer)
        self.verifier = sts_front(world, entra.jwks_url, tls.ca_cert, self.neighbours.values())
        self.aws = CloudMoto(tls, region=world.region, sts_guard=self.verifier)
        azurite = self.azurite = Azurite(tls)
        self.gate = BlobGate(
            azurite.blob_endpoint,
            tls,
            jwks=entra.jwks(),
            readers=set().union(*(w.blob_readers for w in self._worlds()))
            | self._readers_by_hand(),
            contributors=set(world.blob_writers),
        )
        for plan in self.plans:
            sami = plan.app.system_identity
            host = entra.add_host(
                plan.name,
                system_identity=_identity(plan.name, sami) if sami else None,
                user_identities=[_identity(plan.name, i) for i in plan.app.user_identities],
            )
            keys = SiteKeys(master=secrets.token_urlsafe(32), default=secrets.token_urlsafe(32))
            self.hosts[plan.name] = FunctionHost(
                plan, self._host_env(plan, host, workdir), keys, workdir, app_root
            )
        self.arm = FakeArm(
            tls,
            jwks=entra.jwks(),
            issuer=entra.issuer,
            subscription_id=world.subscription_id,
            resource_group=world.resource_group,
            sites={world.apps[kind].name: self.hosts[kind].keys for kind in world.apps},
            operators={world.deployer.principal_id},
        )

        stack = self._stack
        for host in self.hosts.values():
            stack.callback(host.stop)
            host.launch(tls)
        self._progress(f"{len(self.hosts)} function hosts launched: each imports the app")
        stack.callback(azurite.stop)
        with ThreadPoolExecutor(max_workers=1) as pool:
            azurite_up = pool.submit(azurite.start)
            stack.enter_context(entra)
            stack.enter_context(self.aws)
            self._operator_aws = seed_aws(self.aws, world, self._worlds())
            self._progress("fake Entra up; STS front + moto up, role and bucket seeded")
            azurite_up.result()
        stack.enter_context(self.gate)
        self._seed_blobs(deployer)
        stack.enter_context(self.arm)
        self._progress("Azurite + RBAC gate up, sample blobs uploaded; fake ARM up")
        for ready, host in enumerate(self.hosts.values(), start=1):
            host.wait_ready()
            self._progress(f"function host {host.name} ready ({ready}/{len(self.hosts)})")

    def stop(self) -> None:
        """Stop everything started, in reverse order; safe to call twice."""
        self._stack.close()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- set-up --------------------------------------------------------------------------------

    def _worlds(self) -> list[World]:
        return [self.world, *self.neighbours.values()]

    def _assigned_by_hand(self) -> frozenset[str]:
        return frozenset(
            p.app.identity.principal_id for p in self.plans if p.extra and p.extra.assigned
        )

    def _readers_by_hand(self) -> frozenset[str]:
        return frozenset(
            p.app.identity.principal_id for p in self.plans if p.extra and p.extra.blob_reader
        )

    def _host_env(self, plan: AppPlan, host: AppHost, workdir: Path) -> dict[str, str]:
        """The process environment App Service would give the app, pointed at the fakes."""
        home = workdir / "home" / plan.name
        home.mkdir(parents=True)
        ca = str(self.tls.ca_cert)
        return {
            # Nothing from this machine's environment or AWS/Azure config reaches the app.
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "AWS_CONFIG_FILE": str(home / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
            **plan.app.settings,
            "CROSSCLOUD_BLOB_ACCOUNT_URL": self.gate.endpoint,
            # The front door reads the tenant's signing keys from here (as azure-identity does).
            "AZURE_AUTHORITY_HOST": self.entra.base_url,
            "WEBSITE_SITE_NAME": plan.app.name,
            **host.env(),
            "REQUESTS_CA_BUNDLE": ca,
            "AWS_CA_BUNDLE": ca,
            "AWS_ENDPOINT_URL_STS": self.aws.endpoint_url,
            "AWS_ENDPOINT_URL_S3": self.aws.endpoint_url,
        }

    def _seed_blobs(self, deployer: Identity) -> None:
        """What the program's BlobUpload does: the deployer uploads with its own Entra token,
        through the gate, where it holds Storage Blob Data Contributor."""
        token, expires_on = self.entra.issue_token(deployer, STORAGE_RESOURCE)
        with BlobServiceClient(
            self.gate.endpoint,
            credential=_IssuedToken(token, expires_on),
            connection_verify=str(self.tls.ca_cert),
        ) as blob:
            container = blob.create_container(self.world.container)
            for name, path in sorted(self.world.blobs.items()):
                container.upload_blob(name, path.read_bytes())

    # ---- using it ------------------------------------------------------------------------------

    def call(
        self,
        app: str,
        route: str,
        params: Mapping[str, str] | None = None,
        *,
        token: str | None = "",
        key: str | None = None,
    ) -> Reply:
        """GET /api/{route} on an app's host over HTTPS. `token` "" sends the deployer's access
        token for the app's reader API (`Authorization: Bearer`); None sends none; any other
        value is sent as the bearer token. `key`, when given, is sent in `x-functions-key` (the
        host ignores it: the routes are anonymous there and guarded in code)."""
        host = self.hosts[app]
        headers: dict[str, str] = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token or self.caller_token(app)}"
        if key is not None:
            headers["x-functions-key"] = key
        path = f"/api/{route}" + (f"?{urlencode(params)}" if params else "")
        context = ssl.create_default_context(cafile=str(self.tls.ca_cert))
        connection = http.client.HTTPSConnection(LOOPBACK, host.port, context=context, timeout=90)
        started = time.perf_counter()
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        ms = (time.perf_counter() - started) * 1e3
        return Reply(response.status, json.loads(data) if data else None, ms)

    def caller_audience(self, app: str) -> str:
        """The reader API audience the app's front door accepts (from its app settings)."""
        return self.hosts[app].env["CROSSCLOUD_CALLER_AUDIENCE"]

    def caller_token(self, app: str, caller: Identity | None = None, **claims: Any) -> str:
        """An access token for the app's reader API, issued by the fake Entra to `caller` (the
        deployer by default, cached), applying its assignment rules; `claims` as
        `FakeEntra.issue_caller_token` takes them (user, roles, tenant_id, expired)."""
        audience = self.caller_audience(app)
        if caller is None and not claims:
            if audience not in self._caller_tokens:
                self._caller_tokens[audience] = self.entra.issue_caller_token(
                    self.deployer, audience
                )
            return self._caller_tokens[audience]
        return self.entra.issue_caller_token(caller or self.deployer, audience, **claims)

    def usage(self, app: str) -> Usage:
        session_prefix = f"crosscloud-{self.hosts[app].plan.app.name}-"
        tokens = sum(1 for r in self.entra.request_log() if r.host == app)
        sts = sum(
            1
            for c in self.aws.call_log("sts")
            if c.action == WEB_IDENTITY
            and c.params.get("RoleSessionName", "").startswith(session_prefix)
        )
        return Usage(tokens=tokens, sts=sts)

    def outputs(self) -> dict[str, Any]:
        """The program's stack outputs, with the hosts and the blob endpoint made local."""
        outputs = dict(self.world.outputs)
        for kind in self.world.apps:
            outputs[f"{kind}FunctionHostname"] = f"{LOOPBACK}:{self.hosts[kind].port}"
        outputs["dataBlobUrl"] = f"{self.gate.endpoint}/"
        return outputs

    def verify_environment(self) -> dict[str, str]:
        """What `make verify` needs beside `outputs()`: the ARM endpoint, trust in the local CA,
        the STS, S3 and IAM endpoints, the operator's managed-identity endpoint and its moto keys
        (iam:GetRole on the role only). The operator is the deployer: not assigned the app role,
        allowed to list the apps' keys."""
        ca = str(self.tls.ca_cert)
        return {
            "CROSSCLOUD_ARM_ENDPOINT": self.arm.base_url,
            "REQUESTS_CA_BUNDLE": ca,
            "AWS_CA_BUNDLE": ca,
            "SSL_CERT_FILE": ca,
            "AWS_ENDPOINT_URL_STS": self.aws.endpoint_url,
            "AWS_ENDPOINT_URL_S3": self.aws.endpoint_url,
            "AWS_ENDPOINT_URL_IAM": self.aws.endpoint_url,
            **self._operator_aws,
            **self.operator.env(),
        }

    def unassign(self, app: str, *, restart: bool = True) -> None:
        """Remove the app role from the app's identity in Entra. A running app keeps the token it
        already holds (Azure caches managed-identity tokens for up to a day), so by default the
        app is restarted: its next request asks Entra again and is refused."""
        self.entra.unassign(self.world.audience, self.hosts[app].plan.app.identity.principal_id)
        if restart:
            self.restart_app(app)

    def assign(self, app: str, *, restart: bool = True) -> None:
        """Give the app role back (undo `unassign`)."""
        self.entra.assign(self.world.audience, self.hosts[app].plan.app.identity.principal_id)
        if restart:
            self.restart_app(app)

    def restart_app(self, app: str) -> None:
        """A fresh process on the same port: empty token and credential caches."""
        host = self.hosts[app]
        host.stop()
        host.launch(self.tls)
        host.wait_ready()

    def update_trust_policy(self, world: World) -> None:
        """Apply another program run's trust policy, as `pulumi up` would
        (iam:UpdateAssumeRolePolicy); the STS front enforces it from the next exchange on.
        `world` is a run of this cloud's stack or of one of its neighbours (same role ARN)."""
        primary = world
        neighbour = [name for name, w in self.neighbours.items() if w.role_arn == world.role_arn]
        if neighbour:
            self.neighbours[neighbour[0]] = world
            primary = self.world
        else:
            same_as_program("role ARN", world.role_arn, self.world.role_arn)
        self.aws.client("iam").update_assume_role_policy(
            RoleName=world.role_name, PolicyDocument=world.trust_policy
        )
        self.verifier = sts_front(
            primary, self.entra.jwks_url, self.tls.ca_cert, self.neighbours.values()
        )
        self.aws.sts_guard = self.verifier

    def listening_ports(self) -> list[int]:
        """Every port the cloud listens on (for checks that it let go of all of them)."""
        ports = [self.entra.port, self.aws.port, self.azurite.port, self.gate.port, self.arm.port]
        return ports + [host.port for host in self.hosts.values()]


def leftovers(ports: Iterable[int]) -> list[str]:
    """What still runs after a stop: ports still accepting connections on 127.0.0.1, and child
    processes of this process (Linux /proc; the cloud's Azurite and hosts are its children)."""
    found = []
    for port in ports:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                found.append(f"port {port} still listening")
        except OSError:
            pass
    for task in Path(f"/proc/{os.getpid()}/task").glob("*"):
        for pid in (task / "children").read_text().split():
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue  # it has just gone
            found.append(f"process {pid} still running: {command.decode().strip()[:120]}")
    return found


def _identity(name: str, identity: ManagedId) -> Identity:
    return Identity(name=name, client_id=identity.client_id, principal_id=identity.principal_id)
