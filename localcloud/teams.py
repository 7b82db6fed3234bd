"""The teams shape in the local cloud: one foundation, two environments (`dev`, `prod`).

The foundation (foundation/__main__.py) and both environment stacks (the root program with
`crosscloud:foundation`) run under mocks (world.teams_worlds); the local cloud then serves one
federation app and one OIDC provider, and each environment's own apps, role and bucket.

With one audience for both environments, Entra gives any assigned identity - dev's or prod's - a
token the shared provider accepts. What keeps dev out of prod is each role's `sub` list, and
that is what the refused rows show: an app with a dev identity configured with prod's role (and
the other way round) is refused by STS with AccessDenied.

| app          | identity      | asks for   | refused |
|--------------|---------------|------------|---------|
| dev-to-prod  | dev's UAMI    | prod role  | STS     |
| prod-to-dev  | prod's UAMI   | dev role   | STS     |
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from localcloud.cloud import ExtraApp, LocalCloud, Reply
from localcloud.scenarios import Case, Outcome, run_case
from localcloud.world import TEAMS_ENVIRONMENTS, World, teams_worlds

PRIMARY, NEIGHBOUR = TEAMS_ENVIRONMENTS

WHO = {
    "sami": f"{PRIMARY} sami app",
    "uami": f"{PRIMARY} uami app",
    f"{NEIGHBOUR}-sami": f"{NEIGHBOUR} sami app",
    f"{NEIGHBOUR}-uami": f"{NEIGHBOUR} uami app",
    f"{PRIMARY}-to-{NEIGHBOUR}": f"{PRIMARY} uami -> {NEIGHBOUR} role",
    f"{NEIGHBOUR}-to-{PRIMARY}": f"{NEIGHBOUR} uami -> {PRIMARY} role",
}


def extra_apps(worlds: dict[str, World]) -> tuple[ExtraApp, ...]:
    """An app per direction that holds one environment's identity and the other's settings."""

    def pointed_at(target: World) -> dict[str, str]:
        return {"CROSSCLOUD_AWS_ROLE_ARN": target.role_arn, "CROSSCLOUD_S3_BUCKET": target.bucket}

    return (
        ExtraApp(
            f"{PRIMARY}-to-{NEIGHBOUR}", copies="uami", settings=pointed_at(worlds[NEIGHBOUR])
        ),
        ExtraApp(
            f"{NEIGHBOUR}-to-{PRIMARY}",
            copies=f"{NEIGHBOUR}-uami",
            settings=pointed_at(worlds[PRIMARY]),
        ),
    )


def start(
    worlds: dict[str, World] | None = None, progress: Callable[[str], None] | None = None
) -> LocalCloud:
    """A (not yet started) local cloud for the foundation and both environments; `progress` as
    in `LocalCloud`."""
    worlds = worlds or teams_worlds()
    return LocalCloud(
        worlds[PRIMARY],
        extra_apps=extra_apps(worlds),
        neighbours={NEIGHBOUR: worlds[NEIGHBOUR]},
        progress=progress,
    )


def _world_of(cloud: LocalCloud, app: str) -> World:
    env = app.split("-", 1)[0]
    return cloud.neighbours.get(env, cloud.world)


def _lists_its_own_environment(reply: Reply, cloud: LocalCloud, case: Case) -> str | None:
    world, body = _world_of(cloud, case.app), reply.body
    if body["aws"]["bucket"] != world.bucket:
        return f"listed {body['aws']['bucket']}, not its environment's bucket {world.bucket}"
    keys = sorted(k.removeprefix(world.key_prefix) for k in world.s3_objects)
    if sorted(body["aws"]["keys"]) != keys:
        return f"keys {body['aws']['keys']} are not its environment's {keys}"
    expected = cloud.hosts[case.app].plan.app.identity.principal_id
    got = body["identity"].get("principal_id")
    return None if got == expected else f"identity {got} is not {expected}"


def _reads_its_environment_samples(reply: Reply, cloud: LocalCloud, case: Case) -> str | None:
    world, body, name = _world_of(cloud, case.app), reply.body, case.params["name"]
    expected = hashlib.sha256(world.s3_objects[world.key_prefix + name].read_bytes()).hexdigest()
    return None if body["aws"]["sha256"] == expected else "the S3 copy is not its environment's"


def cases(shared_name: str) -> list[Case]:
    """Every call of the teams part of the demo, in order; `shared_name` is in both stores."""
    read = {"name": shared_name}
    found: list[Case] = []
    for env, app in ((PRIMARY, "sami"), (NEIGHBOUR, f"{NEIGHBOUR}-uami")):
        found += [
            Case(f"{env}-lists-{env}", app, "list", check=_lists_its_own_environment),
            Case(f"{env}-reads-{env}", app, "read", read, check=_reads_its_environment_samples),
        ]
    found += [
        Case(
            f"{source}-identity-{target}-role",
            f"{source}-to-{target}",
            "list",
            status=502,
            code="sts_refused",
            cause="AccessDenied",
        )
        for source, target in ((PRIMARY, NEIGHBOUR), (NEIGHBOUR, PRIMARY))
    ]
    return found


def run(cloud: LocalCloud) -> list[Outcome]:
    shared = cloud.world.shared_names()
    if not shared:
        raise RuntimeError("the program's Azure and S3 samples share no name to read from both")
    return [run_case(cloud, case) for case in cases(shared[0])]


def describe(worlds: dict[str, World], seconds: float) -> str:
    any_world = worlds[PRIMARY]
    (provider,) = {p.arn for w in worlds.values() for p in w.oidc_providers}
    lines = [
        f"Teams: foundation + {', '.join(worlds)} (foundation/ and __main__.py with "
        f"crosscloud:foundation, under mocks, {seconds:.1f} s):",
        f"  shared  audience {any_world.audience}; one OIDC provider {provider}",
    ]
    for env, world in worlds.items():
        subs = ", ".join(p[:8] for p in sorted(world.assigned))
        lines.append(f"  {env:<6}  role {world.role_arn}: sub in [{subs}]; bucket {world.bucket}")
    return "\n".join(lines)
