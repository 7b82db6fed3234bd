"""AWS readers on the local cloud: the Lambda's package against fakes that play both sides.

Attached to a running `LocalCloud` (its CA, fake Entra, Azurite and Blob gate): the program is run
under mocks with `crosscloud:awsReaders: true` and what it registers decides everything here —
the Lambda role's ARN and identity policy (enforced by the fake STS), the federated credential's
subject and audiences (the issuer being the local account's, as the program wires the account's
issuer in), the reader identity and its container-scoped role. Then:

- `OutboundFederation` (localcloud/outbound_federation.py): the regional STS endpoint answering
  `GetWebIdentityToken` for SigV4-signed role sessions, and the account's issuer;
- `FederatedTokenEndpoint` (localcloud/entra_federated.py): Entra's token endpoint for
  `client_assertion`, matching federated credentials exactly and fetching the issuer's JWKS;
- one `python -I -S -B localcloud/lambda_host.py` process per role session, running the handler
  from the package `shipping/lambda_build.py` builds (for this Python), with the environment
  Lambda would give it (the role session's keys, AWS_REGION) plus the program's variables, and
  the standard variables that point SDKs at the fakes (AWS_ENDPOINT_URL_STS, AWS_CA_BUNDLE,
  AZURE_AUTHORITY_HOST, REQUESTS_CA_BUNDLE).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import tempfile
import zipfile
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from localcloud.app_hosts import HOST_INTERPRETER, REPO
from localcloud.certs import TlsFiles
from localcloud.entra import Identity
from localcloud.entra_federated import FederatedCredential, FederatedTokenEndpoint
from localcloud.https import LoopbackHttpsServer, LoopbackService, QuietHandler
from localcloud.mocked_program import ProgramRun, run_program
from localcloud.net import LOOPBACK, free_port
from localcloud.outbound_federation import OutboundFederation, RoleSession
from shipping.build import BuiltPackage, local_target
from shipping.lambda_build import build_lambda_package

LAMBDA_HOST = REPO / "localcloud" / "lambda_host.py"
READY_TIMEOUT_SECONDS = 60.0
INVOKE_TIMEOUT_SECONDS = 40.0
REMAINING_MS = 30_000
"""What the Lambda's context says is left (the program's 30 s timeout)."""


@dataclass(frozen=True)
class ReadersSpec:
    """What the program registers for AWS readers, as the local cloud needs it."""

    role_arn: str
    role_policy: dict[str, Any]
    subject: str
    audiences: tuple[str, ...]
    client_id: str
    principal_id: str
    container: str
    variables: Mapping[str, str]
    function_name: str


def readers_spec(run: ProgramRun) -> ReadersSpec:
    """Read the AWS readers' resources from a program run (and check the wiring the local cloud
    relies on: the credential's issuer is the account's, its subject the Lambda's role)."""

    def one(token: str, name: str) -> Any:
        (found,) = [r for r in run.of_type(token) if r.name == name]
        return found

    role = one("aws:iam/role:Role", "aws-readers-role")
    policy = one("aws:iam/rolePolicy:RolePolicy", "aws-readers-role-policy")
    credential = one(
        "azure-native:managedidentity:FederatedIdentityCredential",
        "aws-readers-federated-credential",
    )
    identity = one("azure-native:managedidentity:UserAssignedIdentity", "aws-readers-identity")
    grant = one("azure-native:authorization:RoleAssignment", "aws-readers-container-reader")
    function = one("aws:lambda/function:Function", "aws-readers-function")
    if credential.inputs["issuer"] != run.outputs["awsOutboundIssuer"]:
        raise ValueError("the program's credential issuer is not the account's issuer")
    if credential.inputs["subject"] != role.state["arn"]:
        raise ValueError("the program's credential subject is not the Lambda role's ARN")
    return ReadersSpec(
        role_arn=role.state["arn"],
        role_policy=json.loads(policy.inputs["policy"]),
        subject=credential.inputs["subject"],
        audiences=tuple(credential.inputs["audiences"]),
        client_id=identity.state["clientId"],
        principal_id=identity.state["principalId"],
        container=grant.inputs["scope"].rsplit("/containers/", 1)[1],
        variables=dict(function.inputs["environment"]["variables"]),
        function_name=function.inputs["name"],
    )


def local_lambda_package() -> BuiltPackage:
    python_version, platform = local_target()
    return build_lambda_package(python_version, platform=platform)


class LambdaHost:
    """One execution environment: a process that keeps its module state between invocations."""

    def __init__(self, name: str, app_root: Path, env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            [*HOST_INTERPRETER, str(LAMBDA_HOST)],
            cwd=app_root,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )
        self.log_path = log_path

    def _line(self, timeout: float) -> str:
        assert self._process.stdout is not None
        readable, _, _ = select.select([self._process.stdout], [], [], timeout)
        return self._process.stdout.readline().decode() if readable else ""

    def wait_ready(self) -> None:
        if self._line(READY_TIMEOUT_SECONDS).strip() != "ready":
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"Lambda host {self.name} did not start:\n{tail}")

    def invoke(self, event: Any) -> dict[str, Any]:
        assert self._process.stdin is not None
        request = {"event": event, "remaining_ms": REMAINING_MS}
        self._process.stdin.write(json.dumps(request).encode() + b"\n")
        self._process.stdin.flush()
        line = self._line(INVOKE_TIMEOUT_SECONDS)
        if not line:
            raise RuntimeError(f"Lambda host {self.name} gave no answer")
        return json.loads(line)

    @property
    def running(self) -> bool:
        return self._process.poll() is None

    def stop(self) -> None:
        process = self._process
        if process.poll() is None:
            assert process.stdin is not None
            process.stdin.close()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
        self._log.close()


class LambdaApi(LoopbackService):
    """The Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`, the payload in,
    the handler's JSON out) in front of the hosts, so `make verify`'s boto3 call runs unchanged
    (`AWS_ENDPOINT_URL_LAMBDA`). It requires a SigV4 Authorization header but does not check
    the operator's permissions: IAM on the invoker is AWS's part, not the code under test."""

    _thread_name = "fake-lambda-api"

    def __init__(self, tls: TlsFiles, functions: Mapping[str, LambdaHost]) -> None:
        self.tls = tls
        self.functions = functions
        self.port = free_port()
        self.endpoint_url = f"https://{LOOPBACK}:{self.port}"

    def _handler(self) -> type[QuietHandler]:
        api = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = self.path.split("?", 1)[0].strip("/").split("/")
                host = api.functions.get(parts[2]) if len(parts) == 4 else None
                if not self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 "):
                    self.send_json(403, {"Type": "User", "message": "Missing Authentication"})
                    return
                if host is None or parts[0] != "2015-03-31" or parts[3] != "invocations":
                    self.send_json(
                        404, {"Type": "User", "Message": f"Function not found: {self.path}"}
                    )
                    return
                result = host.invoke(json.loads(body or b"null"))
                if "crash" in result:
                    payload = {"errorType": result["crash"], "errorMessage": "unhandled"}
                    self.send_body(
                        200,
                        json.dumps(payload).encode(),
                        "application/json",
                        headers={"X-Amz-Function-Error": "Unhandled"},
                    )
                    return
                self.send_body(200, json.dumps(result["answer"]).encode(), "application/json")

        return Handler

    def _make_server(self) -> LoopbackHttpsServer:
        return LoopbackHttpsServer(self.port, self._handler(), self.tls)


class AwsReadersLocal:
    """Context manager over a running LocalCloud: `with AwsReadersLocal(cloud) as readers:`."""

    OTHER_ROLE = "other-workload"
    LOOSE_ROLE = "loose-workload"

    def __init__(self, cloud: Any, spec: ReadersSpec | None = None) -> None:
        self.cloud = cloud
        self.spec = spec or readers_spec(run_program({"awsReaders": True}))
        self._stack = ExitStack()
        self.hosts: dict[str, LambdaHost] = {}
        self.sessions: dict[str, RoleSession] = {}
        self.sts: OutboundFederation
        self.entra: FederatedTokenEndpoint
        self.api: LambdaApi
        """The Lambda Invoke API: the program's function name -> the Lambda role's host, and
        `other` -> the other role's."""
        self.identity: Identity
        self.loose_identity: Identity
        """Trusts the loose role (Entra's audience only); holds no storage role."""
        self.issuer = ""
        self.package: BuiltPackage

    def __enter__(self) -> AwsReadersLocal:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def role_arn(self, name: str) -> str:
        return self.spec.role_arn.rsplit("/", 1)[0] + f"/{name}"

    def _start(self) -> None:
        spec, cloud = self.spec, self.cloud
        workdir = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="awsreaders-")))
        self.package = local_lambda_package()
        app_root = workdir / "task"
        with zipfile.ZipFile(self.package.path) as archive:
            archive.extractall(app_root)
        self.sts = self._stack.enter_context(OutboundFederation(cloud.tls))
        account_id = spec.role_arn.split(":")[4]
        self.issuer = self.sts.add_account(account_id)
        self.sessions["lambda"] = self.sts.add_role(spec.role_arn, spec.role_policy)
        # Another workload of the same account with the same permissions: not the subject.
        self.sessions["other"] = self.sts.add_role(self.role_arn(self.OTHER_ROLE), spec.role_policy)
        # A workload whose policy lets it ask for any audience and algorithm.
        loose = {"Statement": [{"Effect": "Allow", "Action": "sts:GetWebIdentityToken"}]}
        self.sessions["loose"] = self.sts.add_role(self.role_arn(self.LOOSE_ROLE), loose)

        self.entra = self._stack.enter_context(FederatedTokenEndpoint(cloud.entra, cloud.tls))
        self.identity = Identity("aws-readers", spec.client_id, spec.principal_id)
        self.entra.add_identity(
            self.identity, [FederatedCredential(self.issuer, spec.subject, spec.audiences)]
        )
        # An identity that trusts the loose role for Entra's audience (and may read nothing):
        # a loose token for another audience then differs in its audience only (AADSTS700212).
        self.loose_identity = cloud.entra.new_identity("loose-reader")
        self.entra.add_identity(
            self.loose_identity,
            [FederatedCredential(self.issuer, self.role_arn(self.LOOSE_ROLE), spec.audiences)],
        )
        cloud.gate.container_readers[spec.principal_id] = {spec.container}
        self._stack.callback(cloud.gate.container_readers.pop, spec.principal_id, None)

        for name in ("lambda", "other"):
            host = LambdaHost(name, app_root, self._env(name, workdir), workdir / f"{name}.log")
            self._stack.callback(host.stop)
            self.hosts[name] = host
        for host in self.hosts.values():
            host.wait_ready()
        self.api = self._stack.enter_context(
            LambdaApi(
                cloud.tls, {spec.function_name: self.hosts["lambda"], "other": self.hosts["other"]}
            )
        )

    def _env(self, session: str, workdir: Path) -> dict[str, str]:
        home = workdir / "home" / session
        home.mkdir(parents=True)
        ca = str(self.cloud.tls.ca_cert)
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "AWS_CONFIG_FILE": str(home / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
            **self.spec.variables,
            "CROSSCLOUD_TENANT_ID": self.cloud.entra.tenant_id,
            "CROSSCLOUD_BLOB_ACCOUNT_URL": self.cloud.gate.endpoint,
            "CROSSCLOUD_EXPECTED_ISSUER": self.issuer,
            **self.sessions[session].env(),
            "AWS_REGION": self.sts.region,
            "AWS_ENDPOINT_URL_STS": self.sts.endpoint_url,
            "AWS_CA_BUNDLE": ca,
            "AZURE_AUTHORITY_HOST": self.entra.authority,
            "REQUESTS_CA_BUNDLE": ca,
        }
