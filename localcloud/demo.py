"""`make demo` (`python -m localcloud.demo`): the whole flow on 127.0.0.1, no cloud account.

Runs the Pulumi program under mocks, starts the local cloud it describes (localcloud/cloud.py),
calls the real function code as the program's SAMI and UAMI apps, then as four apps that each
miss one link of the trust chain (localcloud/scenarios.py), prints what happened, stops
everything and checks that nothing is left running. Then the same for the teams shape: a
foundation and two environments sharing its app and provider, each reading only its own bucket
(localcloud/teams.py). Exit 0 only when every outcome is the
expected one.
"""

from __future__ import annotations

import sys
import textwrap
import time

from localcloud import aws_readers_scenarios, demo_table, teams
from localcloud.cloud import LocalCloud, leftovers
from localcloud.scenarios import EXTRA_APPS, WHO, Outcome, run
from localcloud.world import World, teams_worlds, world_from_program


def _short(principal_id: str) -> str:
    return principal_id[:8]


def describe_world(world: World, seconds: float) -> str:
    names = {app.identity.principal_id: kind for kind, app in world.apps.items()}

    def who(principal_id: str) -> str:
        return f"{names.get(principal_id, 'extra')} {_short(principal_id)}"

    trust = "sub in [" + ", ".join(_short(p) for p in sorted(world.assigned)) + "]"
    if ":sub" not in world.trust_policy:
        trust = "NO sub condition"
    lines = [
        f"From the Pulumi program (__main__.py under mocks, {seconds:.1f} s):",
        f"  Entra  tenant {world.tenant_id}, audience {world.audience}",
        f"         assignment required: {world.assignment_required}; {world.app_role} assigned "
        f"to {', '.join(who(p) for p in sorted(world.assigned))}",
        f"  AWS    role {world.role_arn}",
        f"         trust: aud = the audience, {trust}",
        f"         may read s3://{world.bucket}/{world.key_prefix}* ({len(world.s3_objects)} "
        "objects)",
        f"  Azure  container {world.container} ({len(world.blobs)} blobs); Storage Blob Data "
        f"Reader: {', '.join(who(p) for p in sorted(world.blob_readers))}",
    ]
    return "\n".join(lines)


def table(outcomes: list[Outcome], who: dict[str, str] = WHO) -> str:
    """The outcomes as a table no wider than `demo_table.WIDTH` (localcloud/demo_table.py)."""
    return demo_table.render([demo_table.row_of(o, who) for o in outcomes])


def explanations(outcomes: list[Outcome]) -> str:
    lines = ["What the function told each refused caller (its hint):"]
    for outcome in outcomes:
        if outcome.reply.status >= 500 and outcome.hint:
            lines += textwrap.wrap(
                outcome.hint,
                width=demo_table.WIDTH,
                initial_indent=f"  {outcome.case.app}: ",
                subsequent_indent="    ",
            )
    problems = [o for o in outcomes if not o.met]
    if problems:
        lines.append("Unexpected outcomes:")
        lines += [f"  {o.case.id}: {o.problem}" for o in problems]
    return "\n".join(lines)


def fake_counts(cloud: LocalCloud) -> str:
    requests = cloud.entra.request_log()
    refused = sum(1 for r in requests if r.status != 200)
    stats = cloud.verifier.stats
    return (
        f"Calls the fakes received: {len(requests)} managed-identity token requests "
        f"({refused} refused by Entra), {stats.accepted + stats.refused} STS exchanges "
        f"({stats.accepted} accepted, {stats.refused} refused by the STS front), "
        f"{cloud.aws.calls('s3')} S3 requests, {cloud.gate.requests} blob requests (RBAC gate)"
    )


def _stop_report(ports: list[int], process_count: int) -> tuple[str, bool]:
    """After a cloud stopped: the line saying what is left running, and whether nothing is."""
    left = leftovers(ports)
    if left:
        return "Stopped, but still running:\n  " + "\n  ".join(left), False
    return (
        f"Stopped: {len(ports)} listeners closed, {process_count} processes ended; nothing left "
        "running",
        True,
    )


def say(text: str = "") -> None:
    """Print `text` fitted to the demo's width, at once (the demo runs for about half a minute)."""
    print(demo_table.fit(text), flush=True)


def progress(started: float):
    """A `LocalCloud` progress callback: one indented line per start-up step, with the time."""

    def report(step: str) -> None:
        say(f"  {time.perf_counter() - started:5.1f} s  {step}")

    return report


def teams_part() -> tuple[int, int]:
    """Foundation + dev + prod on one local cloud: (expected outcomes met, outcomes)."""
    started = time.perf_counter()
    worlds = teams_worlds()
    say("\n" + teams.describe(worlds, time.perf_counter() - started))
    say("\nStarting the teams' local cloud:")
    cloud = teams.start(worlds, progress=progress(time.perf_counter()))
    with cloud:
        say(
            f"Local cloud up in {cloud.startup_s:.1f} s: one federation app and one OIDC "
            f"provider, {len(worlds)} environments, {len(cloud.hosts)} function hosts\n"
        )
        outcomes = teams.run(cloud)
        say(table(outcomes, teams.WHO))
        say()
        say(explanations(outcomes))
        ports = cloud.listening_ports()
        process_count = len(cloud.hosts) + 1
    report, clean = _stop_report(ports, process_count)
    say(report)
    return sum(o.met for o in outcomes) + clean, len(outcomes) + 1


def main() -> int:
    started = time.perf_counter()
    say("make demo: the real function code through the real trust chain on 127.0.0.1\n")
    world = world_from_program()
    program_s = time.perf_counter() - started
    say(describe_world(world, program_s))

    say("\nStarting the local cloud (most of it: each function host importing the app):")
    cloud = LocalCloud(world, extra_apps=EXTRA_APPS, progress=progress(time.perf_counter()))
    with cloud:
        say(
            f"Local cloud up in {cloud.startup_s:.1f} s: fake Entra, STS front + moto (auth "
            f"mode), Azurite + RBAC gate, fake ARM, {len(cloud.hosts)} function hosts\n"
        )
        calls_started = time.perf_counter()
        outcomes = run(cloud)
        calls_s = time.perf_counter() - calls_started
        say(demo_table.legend())
        say()
        say(table(outcomes))
        say()
        say(explanations(outcomes))
        say()
        say(fake_counts(cloud))
        blobs = {name: path.read_bytes() for name, path in world.blobs.items()}
        readers_met, readers_total = aws_readers_scenarios.part(cloud, blobs)
        ports = cloud.listening_ports()
        process_count = len(cloud.hosts) + 1  # the hosts and Azurite
        stop_started = time.perf_counter()
    stop_s = time.perf_counter() - stop_started
    report, clean = _stop_report(ports, process_count)
    say(
        f"Timings: program {program_s:.1f} s, start {cloud.startup_s:.1f} s, "
        f"{len(outcomes)} calls {calls_s:.1f} s, stop {stop_s:.1f} s"
    )
    say(report)
    met, total = sum(o.met for o in outcomes) + clean, len(outcomes) + 1
    met, total = met + readers_met, total + readers_total
    teams_met, teams_total = teams_part()
    met, total = met + teams_met, total + teams_total
    say(f"Total {time.perf_counter() - started:.1f} s")
    say(f"demo: {met}/{total} expected outcomes")
    return 0 if met == total else 1


if __name__ == "__main__":
    sys.exit(main())
