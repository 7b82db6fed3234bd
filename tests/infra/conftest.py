"""Runs of the real program under Pulumi mocks, shared by the infra tests (each takes ~1 s)."""

from __future__ import annotations

import pytest

from localcloud.mocked_program import ProgramRun, run_program

PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)
"""Every setting of an S3 public access block; each must be on."""

EXTRA_IDS = (
    "0f0e0d0c-0b0a-4909-8807-060504030201",
    "1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d",
)


@pytest.fixture(scope="session")
def default_run() -> ProgramRun:
    """The program with no configuration at all: every default."""
    return run_program()


@pytest.fixture(scope="session")
def extended_run() -> ProgramRun:
    """Extra trusted identities, a key prefix and the `api://{appId}` audience."""
    return run_program(
        {
            "extraPrincipalIds": list(EXTRA_IDS),
            "s3KeyPrefix": "reports/",
            "audience": "appId",
            "tags": {"costCenter": "platform"},
        }
    )


@pytest.fixture(scope="session", params=["default", "extended"])
def any_run(request: pytest.FixtureRequest, default_run, extended_run) -> ProgramRun:
    """Both runs, for invariants that must hold whatever the configuration."""
    return default_run if request.param == "default" else extended_run
