"""storage-account-shared-key-disabled: shared key access off."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from policy.rules import common
from policy.tests.engine import Resource, evaluate, not_run


def test_storage_account_with_shared_key_off_passes() -> None:
    account = Resource(common.STORAGE_ACCOUNT, {"accountName": "a", "allowSharedKeyAccess": False})
    assert evaluate([account]) == []


@pytest.mark.parametrize("props", [{"allowSharedKeyAccess": True}, {}], ids=["true", "unset"])
def test_storage_account_with_shared_key_on_or_unset_is_refused(props: dict[str, Any]) -> None:
    found = evaluate([Resource(common.STORAGE_ACCOUNT, props)])
    assert [v.policy for v in found] == ["storage-account-shared-key-disabled"]
    assert "allowSharedKeyAccess must be false" in found[0].message


def test_unknown_value_is_left_to_the_engine() -> None:
    # The analyzer turns UnknownValueError into "can't run during preview" and runs the rule
    # again with the real value before `pulumi up` creates the resource.
    account = Resource(common.STORAGE_ACCOUNT, {"allowSharedKeyAccess": UNKNOWN_STRING_VALUE})
    assert evaluate([account]) == []
    assert [(v.policy, v.urn) for v in not_run([account])] == [
        ("storage-account-shared-key-disabled", account.urn)
    ]
