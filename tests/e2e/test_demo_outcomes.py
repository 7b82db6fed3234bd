"""Every outcome `make demo` shows, asserted: both apps read both clouds, warm requests cost no
token or STS call, and each app missing one link of the trust chain is refused where it should
be, with a hint naming the cause."""

from __future__ import annotations

import pytest

from localcloud.cloud import LocalCloud
from localcloud.scenarios import Outcome, cases, run_case

CASE_IDS = [case.id for case in cases("any-name")]


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_the_demo_outcome_is_the_expected_one(outcomes: dict[str, Outcome], case_id: str) -> None:
    outcome = outcomes[case_id]
    assert outcome.met, (
        f"{case_id}: expected {outcome.case.expected}, got {outcome.got}: {outcome.problem}"
    )


def test_refusal_hints_name_the_missing_link(
    outcomes: dict[str, Outcome], cloud: LocalCloud
) -> None:
    world = cloud.world
    assert world.app_role in outcomes["stranger-read"].hint
    intruder = cloud.hosts["intruder"].plan.app.identity.principal_id
    assert intruder in outcomes["intruder-read"].hint
    assert "':sub'" in outcomes["intruder-read"].hint
    assert "aud='https://storage.azure.com'" in outcomes["wrong-audience-read"].hint
    assert "localcloud-not-granted" in outcomes["other-bucket-read"].hint


def test_each_refusal_comes_from_the_fake_meant_to_make_it(cloud: LocalCloud) -> None:
    by_id = {case.id: case for case in cases(cloud.world.shared_names()[0])}

    def refusals_during(case_id: str) -> tuple[Outcome, set[str | None], list[str]]:
        entra_seen, sts_seen = len(cloud.entra.request_log()), len(cloud.verifier.refusals)
        outcome = run_case(cloud, by_id[case_id])
        by_entra = {
            r.principal_id for r in cloud.entra.request_log()[entra_seen:] if r.status != 200
        }
        by_sts = [r.code for r in cloud.verifier.refusals[sts_seen:]]
        return outcome, by_entra, by_sts

    stranger = cloud.hosts["stranger"].plan.app.identity.principal_id
    assert refusals_during("stranger-read")[1:] == ({stranger}, [])
    assert refusals_during("intruder-read")[1:] == (set(), ["AccessDenied"])
    assert refusals_during("wrong-audience-read")[1:] == (set(), ["InvalidIdentityToken"])
    outcome, by_entra, by_sts = refusals_during("other-bucket-read")
    assert (by_entra, by_sts) == (set(), [])  # the role was assumed; S3 said no
    assert outcome.met


def test_no_credential_reaches_an_answer_or_a_log(
    outcomes: dict[str, Outcome], cloud: LocalCloud
) -> None:
    secrets = [*cloud.entra.issued_tokens(), *cloud.aws.issued_secrets()]
    for host in cloud.hosts.values():
        secrets += [host.keys.default, host.keys.master, host.env["IDENTITY_HEADER"]]
    assert len(secrets) > 20  # tokens and AWS credentials were handed out
    answers = [repr(o.reply.body) for o in outcomes.values()]
    logs = [host.log_path.read_text() for host in cloud.hosts.values()]
    assert all(logs), "every app logged its requests"
    for text in answers + logs:
        assert not [s for s in secrets if s in text]
