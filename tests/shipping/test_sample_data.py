"""The sample objects shipped for the two stores: overlapping on exactly one name."""

from __future__ import annotations

from pathlib import Path

from shipping.blob_upload import describe_files

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"


def test_one_name_in_both_stores_and_some_in_only_one() -> None:
    azure = set(describe_files(SAMPLE_DATA / "azure"))
    s3 = set(describe_files(SAMPLE_DATA / "s3"))
    assert azure & s3 == {"hello.txt"}
    assert azure - s3 and s3 - azure


def test_the_shared_name_says_which_cloud_it_came_from() -> None:
    azure = (SAMPLE_DATA / "azure" / "hello.txt").read_text()
    s3 = (SAMPLE_DATA / "s3" / "hello.txt").read_text()
    assert "Azure" in azure and "Amazon S3" in s3
    assert azure != s3
