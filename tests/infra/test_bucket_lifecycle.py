"""Every bucket aborts incomplete multipart uploads (checkov CKV_AWS_300): their parts are stored
and billed until aborted, and no object listing shows them."""

from __future__ import annotations

import pytest

from components.settings import SettingsError
from localcloud.mocked_program import run_program

BUCKET = "aws:s3/bucket:Bucket"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"


def _lifecycles_by_bucket(run) -> dict[str, list[dict]]:
    by_bucket: dict[str, list[dict]] = {}
    for config in run.of_type(LIFECYCLE):
        by_bucket.setdefault(config.inputs["bucket"], []).extend(config.inputs["rules"])
    return by_bucket


def test_every_bucket_aborts_incomplete_multipart_uploads(any_run):
    rules = _lifecycles_by_bucket(any_run)
    buckets = any_run.of_type(BUCKET)
    assert len(buckets) == 2  # the data bucket and its access-log bucket
    for bucket in buckets:
        aborts = [
            rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"]
            for rule in rules.get(bucket.inputs["bucket"], [])
            if rule["status"] == "Enabled" and rule.get("abortIncompleteMultipartUpload")
        ]
        assert aborts, f"{bucket.name} keeps incomplete multipart uploads forever"
        assert all(1 <= days <= 7 for days in aborts), (bucket.name, aborts)


def test_the_data_bucket_rule_expires_nothing(default_run):
    """The data bucket only drops upload leftovers; its objects are kept."""
    (data,) = [b for b in default_run.of_type(BUCKET) if "log" not in b.name]
    for rule in _lifecycles_by_bucket(default_run)[data.inputs["bucket"]]:
        assert not rule.get("expiration") and not rule.get("noncurrentVersionExpiration")


def test_a_bucket_name_equal_to_the_log_buckets_is_a_config_error(default_run):
    """Logs delivered into the bucket they log would be logged again, forever."""
    log_bucket = default_run.outputs["accessLogBucket"]
    with pytest.raises(SettingsError, match=f"crosscloud:bucketName = '{log_bucket}'"):
        run_program({"bucketName": log_bucket})
