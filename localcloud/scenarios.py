"""What `make demo` runs against the local cloud, and what each call must answer.

The program's two apps (SAMI and UAMI) read both clouds; then four apps that are NOT in the
program stand beside them, each missing exactly one link of the trust chain, so each refusal
comes from the one place meant to refuse it:

| app            | identity                                | missing link              | refused |
|----------------|-----------------------------------------|---------------------------|---------|
| stranger       | its own SAMI, Blob Reader by hand       | the app role              | Entra   |
| intruder       | its own SAMI, app role + Reader by hand | its id in the trust `sub` | STS     |
| wrong-audience | the program's UAMI                      | CROSSCLOUD_AUDIENCE       | STS     |
| other-bucket   | the program's UAMI                      | the role's S3 permission  | S3      |

Then the front door: every call above carries the deployer's Entra token for the stack's reader
API (the program makes the deployer a caller); a person signed in through the Azure CLI reads
too; no token, a function key alone, a token for another audience, an expired one, one from
another tenant, `alg: none` and HS256 "signed" with the public key are refused with 401, and a
valid token without the `CrossCloud.Read` role with 403, before any cloud is called.

The end-to-end tests assert the same outcomes (tests/e2e).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcloud.caller_tokens import alg_none, hs256_with_public_key
from localcloud.cloud import OTHER_BUCKET, ExtraApp, LocalCloud, Reply
from localcloud.entra import STORAGE_RESOURCE, unverified_claims

OTHER_TENANT = "0a0b0c0d-1e1f-4a2b-8c3d-4e5f6a7b8c9d"

EXTRA_APPS: tuple[ExtraApp, ...] = (
    ExtraApp("stranger", copies="sami", new_identity=True, blob_reader=True),
    ExtraApp("intruder", copies="sami", new_identity=True, assigned=True, blob_reader=True),
    # Entra issues this token (storage is a real resource), but its aud is not the federation
    # audience the OIDC provider lists.
    ExtraApp("wrong-audience", copies="uami", settings={"CROSSCLOUD_AUDIENCE": STORAGE_RESOURCE}),
    ExtraApp("other-bucket", copies="uami", settings={"CROSSCLOUD_S3_BUCKET": OTHER_BUCKET}),
)

WHO = {
    "sami": "sami app (program)",
    "uami": "uami app (program)",
    "stranger": "stranger: no app role",
    "intruder": "intruder: not in trust sub",
    "wrong-audience": "uami, audience=storage",
    "other-bucket": "uami, bucket not granted",
}

Check = Callable[[Reply, LocalCloud, "Case"], str | None]
"""Returns what is wrong with a 200 answer, or None."""


@dataclass(frozen=True)
class Case:
    id: str
    app: str
    route: str
    params: Mapping[str, str] = field(default_factory=dict)
    status: int = 200
    code: str | None = None
    """The JSON error code expected when status is not 200."""
    cause: str | None = None
    """Text the error message must contain: the cloud's own refusal code."""
    check: Check | None = None
    warm: bool = False
    """Expects no token and no STS request at the fakes (caches only)."""
    sends: str = "caller"
    """Which bearer token to send (see `TOKENS`): by default the deployer's, a caller."""
    key: bool = False
    """Send the app's function key too (`x-functions-key`)."""

    @property
    def what(self) -> str:
        """The call in short: the route under /api/, its query values, and how it differs."""
        return " ".join(
            [self.route, *self.params.values()]
            + (["(warm)"] if self.warm else [])
            + ([f"[{TOKENS[self.sends]}]"] if self.sends != "caller" else [])
            + (["+ function key"] if self.key else [])
        )

    @property
    def expected(self) -> str:
        if self.status == 200:
            return "200, 0 token/STS calls" if self.warm else "200"
        parts = [str(self.status), self.code or "", self.cause or ""]
        return " ".join(p for p in parts if p)


@dataclass(frozen=True)
class Outcome:
    case: Case
    reply: Reply
    tokens: int
    sts: int
    problem: str | None
    """None when the outcome is the expected one."""

    @property
    def met(self) -> bool:
        return self.problem is None

    @property
    def got(self) -> str:
        body = self.reply.body if isinstance(self.reply.body, dict) else {}
        error = body.get("error") or {}
        if self.reply.status == 200:
            try:
                return f"200 {_summary(self.case.route, body)}"
            except (KeyError, TypeError):
                return "200 (not the documented shape)"
        cause = _cloud_code(error.get("message", ""))
        return " ".join(p for p in (str(self.reply.status), error.get("code"), cause) if p)

    @property
    def hint(self) -> str | None:
        body = self.reply.body if isinstance(self.reply.body, dict) else {}
        return (body.get("error") or {}).get("hint")


def _sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _lists_the_program_samples(reply: Reply, cloud: LocalCloud, case: Case) -> str | None:
    world, body = cloud.world, reply.body
    if sorted(body["azure"]["blobs"]) != sorted(world.blobs):
        return f"blobs {body['azure']['blobs']} are not the program's {sorted(world.blobs)}"
    keys = sorted(k.removeprefix(world.key_prefix) for k in world.s3_objects)
    if sorted(body["aws"]["keys"]) != keys:
        return f"keys {body['aws']['keys']} are not the program's {keys}"
    return _is_the_app(body["identity"].get("principal_id"), cloud, case)


def _reads_the_program_samples(reply: Reply, cloud: LocalCloud, case: Case) -> str | None:
    world, body, name = cloud.world, reply.body, case.params["name"]
    if body["azure"]["sha256"] != _sha256_of(world.blobs[name]):
        return "the Azure copy differs from the program's sample"
    if body["aws"]["sha256"] != _sha256_of(world.s3_objects[world.key_prefix + name]):
        return "the S3 copy differs from the program's sample"
    return None


def _claims_of_the_app(reply: Reply, cloud: LocalCloud, case: Case) -> str | None:
    world, claims = cloud.world, reply.body
    if claims.get("aud") != world.audience:
        return f"aud {claims.get('aud')!r} is not the audience"
    if claims.get("roles") != [world.app_role]:
        return f"roles {claims.get('roles')} are not [{world.app_role}]"
    return _is_the_app(claims.get("sub"), cloud, case)


def _is_the_app(principal_id: str | None, cloud: LocalCloud, case: Case) -> str | None:
    expected = cloud.hosts[case.app].plan.app.identity.principal_id
    return None if principal_id == expected else f"identity {principal_id} is not {expected}"


def cases(shared_name: str) -> list[Case]:
    """Every call of the demo, in order; `shared_name` is in both stores."""
    read = {"name": shared_name}
    found: list[Case] = []
    for app in ("sami", "uami"):
        found += [
            Case(f"{app}-list", app, "list", check=_lists_the_program_samples),
            Case(f"{app}-read", app, "read", read, check=_reads_the_program_samples),
            Case(f"{app}-whoami", app, "whoami", check=_claims_of_the_app),
            Case(
                f"{app}-warm-read", app, "read", read, check=_reads_the_program_samples, warm=True
            ),
        ]
    found += [
        Case("person-read", "uami", "read", read, check=_reads_the_program_samples, sends="person"),
        *(
            Case(
                "function-key-only-read" if key else f"{token}-read",
                "sami",
                "read",
                read,
                status=401,
                code="unauthenticated",
                cause=cause,
                sends=token,
                key=key,
            )
            for token, cause, key in (
                ("none", "No access token", False),
                ("none", "No access token", True),
                ("storage", "aud", False),
                ("expired", "expired", False),
                ("other-tenant", "iss", False),
                ("alg-none", "alg", False),
                ("hs256", "alg", False),
            )
        ),
        Case(
            "no-role-read",
            "uami",
            "read",
            read,
            status=403,
            code="forbidden",
            cause="CrossCloud.Read",
            sends="no-role",
        ),
        Case(
            "stranger-read",
            "stranger",
            "read",
            read,
            status=502,
            code="identity_not_assigned",
            cause="AADSTS501051",
        ),
        Case(
            "intruder-read",
            "intruder",
            "read",
            read,
            status=502,
            code="sts_refused",
            cause="AccessDenied",
        ),
        Case(
            "wrong-audience-read",
            "wrong-audience",
            "read",
            read,
            status=502,
            code="sts_refused",
            cause="InvalidIdentityToken",
        ),
        Case(
            "other-bucket-read",
            "other-bucket",
            "read",
            read,
            status=502,
            code="s3_access_denied",
            cause="AccessDenied",
        ),
    ]
    return found


TOKENS = {
    "caller": "deployer's token",
    "person": "a person's az CLI token",
    "none": "no token",
    "storage": "token for storage",
    "expired": "expired token",
    "other-tenant": "another tenant's token",
    "alg-none": "alg none",
    "hs256": "HS256 with the public key",
    "no-role": "token without the role",
}
"""The bearer tokens a case may send, as the demo table names them."""


def bearer(cloud: LocalCloud, case: Case) -> str | None:
    """The token `case.sends` names, for the case's app ("" = the deployer's, cached)."""
    entra, app = cloud.entra, case.app
    if case.sends == "caller":
        return ""
    if case.sends == "none":
        return None
    if case.sends == "person":
        return cloud.caller_token(app, cloud.person, user=True)
    if case.sends == "storage":  # Entra issues it to anyone: storage is a real resource
        return entra.issue_token(cloud.deployer, STORAGE_RESOURCE)[0]
    if case.sends == "expired":
        return cloud.caller_token(app, expired=True)
    if case.sends == "other-tenant":  # same signing keys (Entra's are shared), other iss/tid
        return cloud.caller_token(app, tenant_id=OTHER_TENANT)
    if case.sends == "no-role":  # as issued when assignment is not required
        return cloud.caller_token(app, entra.new_identity("outsider"), roles=[])
    claims = unverified_claims(cloud.caller_token(app))
    if case.sends == "alg-none":
        return alg_none(claims, kid=entra.key_id)
    if case.sends == "hs256":
        return hs256_with_public_key(claims, entra.public_key, entra.key_id)
    raise ValueError(f"unknown token kind {case.sends!r}")


def run_case(cloud: LocalCloud, case: Case) -> Outcome:
    before = cloud.usage(case.app)
    key = cloud.hosts[case.app].keys.default if case.key else None
    reply = cloud.call(case.app, case.route, case.params, token=bearer(cloud, case), key=key)
    after = cloud.usage(case.app)
    tokens, sts = after.tokens - before.tokens, after.sts - before.sts
    return Outcome(case, reply, tokens, sts, _problem(case, reply, cloud, tokens, sts))


def run(cloud: LocalCloud) -> list[Outcome]:
    shared = cloud.world.shared_names()
    if not shared:
        raise RuntimeError("the program's Azure and S3 samples share no name to read from both")
    return [run_case(cloud, case) for case in cases(shared[0])]


def _problem(case: Case, reply: Reply, cloud: LocalCloud, tokens: int, sts: int) -> str | None:
    if reply.status != case.status:
        return f"status {reply.status}, expected {case.status}"
    if case.status == 200:
        if case.warm and (tokens or sts):
            return f"a warm request made {tokens} token and {sts} STS calls"
        try:
            return case.check(reply, cloud, case) if case.check else None
        except (KeyError, TypeError, AttributeError) as error:
            return f"the answer does not have the documented shape ({error!r})"
    if case.code is None:
        return None
    error = (reply.body or {}).get("error") or {}
    if error.get("code") != case.code:
        return f"error code {error.get('code')!r}, expected {case.code!r}"
    if case.cause and case.cause not in error.get("message", ""):
        return f"the message does not name {case.cause}"
    return None


def _summary(route: str, body: dict[str, Any]) -> str:
    if route == "list":
        return f"{len(body['azure']['blobs'])} blobs + {len(body['aws']['keys'])} keys"
    if route == "read":
        return f"Azure {body['azure']['size']} B + S3 {body['aws']['size']} B"
    return f"sub {str(body.get('sub'))[:8]}... roles {','.join(body.get('roles') or [])}"


def _cloud_code(message: str) -> str:
    """The refusal code the cloud gave (AADSTS..., AccessDenied, InvalidIdentityToken...)."""
    for code in ("AADSTS501051", "InvalidIdentityToken", "ExpiredTokenException", "AccessDenied"):
        if code in message:
            return code
    # The front door's refusals name the failed check.
    for phrase, check in FRONT_DOOR_CHECKS:
        if phrase in message:
            return check
    return ""


FRONT_DOOR_CHECKS = (
    ("No access token", "no token"),
    ("alg must be RS256", "alg"),
    ("aud is not", "aud"),
    ("has expired", "expired"),
    ("iss is not", "iss"),
    ("tenant", "tid"),
    ("does not hold the app role", "no CrossCloud.Read"),
)
