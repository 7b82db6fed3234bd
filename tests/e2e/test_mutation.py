"""The mutation check: the local cloud takes its trust policy from the program, so a program
whose trust policy drops the `sub` condition lets the "assigned but not trusted" identity in -
the demo's intruder case is no longer refused, and this is what would catch it."""

from __future__ import annotations

from typing import Any

import pytest

from components import trust
from localcloud.cloud import LocalCloud
from localcloud.scenarios import cases, run_case
from localcloud.world import world_from_program

PROGRAM_TRUST_POLICY = trust.trust_policy


def trust_policy_without_sub(
    provider_arn: str, tenant_id: str, audience: str, subjects: Any
) -> dict[str, Any]:
    policy = PROGRAM_TRUST_POLICY(provider_arn, tenant_id, audience, subjects)
    for statement in policy["Statement"]:
        del statement["Condition"]["StringEquals"][f"{trust.condition_key_prefix(tenant_id)}:sub"]
    return policy


def test_without_sub_the_intruder_is_no_longer_refused(
    cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_id = {case.id: case for case in cases(cloud.world.shared_names()[0])}
    monkeypatch.setattr(trust, "trust_policy", trust_policy_without_sub)
    weakened = world_from_program()
    monkeypatch.undo()
    assert ":sub" in cloud.world.trust_policy
    assert ":sub" not in weakened.trust_policy, "the mutation must reach the program's output"

    try:
        cloud.update_trust_policy(weakened)
        intruder = run_case(cloud, by_id["intruder-read"])
        stranger = run_case(cloud, by_id["stranger-read"])
    finally:
        cloud.update_trust_policy(cloud.world)
        # It now holds AWS credentials (valid for an hour, as in AWS): start it afresh.
        cloud.restart_app("intruder")

    assert not intruder.met
    assert intruder.reply.status == 200, intruder.got  # it read the bucket
    assert stranger.met, "Entra's assignment check does not depend on the trust policy"
    # With the program's own policy the intruder is refused again.
    assert run_case(cloud, by_id["intruder-read"]).met
