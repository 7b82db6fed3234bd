"""The end-to-end tier (docs/design.md "Tests"): the local cloud end to end, started once for this
package.

Package scope, not session: moto's backends and auth switch are process-wide, so the cloud must
be stopped (and moto left as found) before the function tier starts its own moto server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localcloud.cloud import LocalCloud
from localcloud.scenarios import EXTRA_APPS, Outcome, run
from localcloud.world import world_from_program


@pytest.fixture(scope="package")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(world_from_program(), extra_apps=EXTRA_APPS) as running:
        yield running


@pytest.fixture(scope="package")
def outcomes(cloud: LocalCloud) -> dict[str, Outcome]:
    """The demo's calls, run once, by case id."""
    return {outcome.case.id: outcome for outcome in run(cloud)}
