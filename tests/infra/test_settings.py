"""Config validation: every rule refuses a bad value with a message naming key, value and rule."""

from __future__ import annotations

import pytest

from components.settings import Settings, SettingsError, parse_settings
from localcloud.mocked_program import run_program

GUID = "0f0e0d0c-0b0a-4909-8807-060504030201"


def test_no_config_gives_the_documented_defaults():
    settings = parse_settings({})
    assert settings == Settings()
    assert settings.audience.kind == "tenant"
    assert settings.aws_role_name == "S3AccessRoleFromAzure"
    assert settings.python_version == "3.12"


def test_valid_values_are_parsed():
    settings = parse_settings(
        {
            "prefix": "acme-x1",
            "azureLocation": "swedencentral",
            "awsRegion": "us-east-2",
            "audience": "api://contoso.onmicrosoft.com/aws",
            "appDisplayName": "Contoso AWS Federation",
            "awsRoleName": "Reader@Azure",
            "bucketName": "contoso.cross-cloud",
            "s3KeyPrefix": "reports/2026/",
            "extraPrincipalIds": f'["{GUID.upper()}"]',
            "pythonVersion": "3.11",
            "instanceMemoryMb": "4096",
            "maximumInstanceCount": "100",
            "tags": '{"env": "dev"}',
        }
    )
    assert settings.audience.kind == "custom"
    assert settings.audience.uri == "api://contoso.onmicrosoft.com/aws"
    assert settings.extra_principal_ids == (GUID,)  # normalised to lowercase
    assert settings.instance_memory_mb == 4096
    assert settings.maximum_instance_count == 100
    assert settings.tags == {"env": "dev"}
    assert parse_settings({"audience": "appId"}).audience.kind == "appId"


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [
        ("prefix", "Cross", "lowercase"),
        ("prefix", "a", "2-12"),
        ("prefix", "9lives", "starting with a letter"),
        ("prefix", "way-too-long-prefix", "2-12"),
        ("azureLocation", "West Europe", "Azure region"),
        ("awsRegion", "europe", "AWS region"),
        ("audience", "api://AWS-Federation-App/", "trailing slash"),
        ("audience", "urn:aws-federation", "api:// or https://"),
        ("audience", "api://*.contoso.com", "wildcards"),
        ("appDisplayName", "-leading-dash", "starting with a letter or digit"),
        ("awsRoleName", "role with spaces", "1-64 characters"),
        ("awsRoleName", "r" * 65, "1-64 characters"),
        ("bucketName", "Upper_Case", "lowercase letters"),
        ("bucketName", "192.168.1.1", "IP address"),
        ("bucketName", "xn--bucket", "reserves"),
        ("bucketName", "a..b", "adjacent periods"),
        ("s3KeyPrefix", "/rooted/", "not starting with '/'"),
        ("s3KeyPrefix", "logs/*", "wildcards"),
        ("s3KeyPrefix", "a/../b", "without '..'"),
        ("extraPrincipalIds", "not json", "structured"),
        ("extraPrincipalIds", '"0f0e0d0c-0b0a-4909-8807-060504030201"', "list of object ids"),
        ("extraPrincipalIds", '["not-a-guid"]', "GUID"),
        ("extraPrincipalIds", f'["{GUID}", "{GUID}"]', "only once"),
        ("pythonVersion", "3.9", "3.11, 3.12"),
        ("pythonVersion", "3.13", "3.11, 3.12"),
        ("instanceMemoryMb", "512", "2048 or 4096"),
        ("instanceMemoryMb", "lots", "whole number"),
        ("maximumInstanceCount", "5000", "40 to 1000"),
        ("tags", '["a"]', "map of tag names"),
        ("tags", '{"k": 1}', "names 1-128"),
        ("bucketname", "typo-of-bucketName", "not a setting of this project"),
    ],
)
def test_each_rule_refuses_a_bad_value(key, value, rule):
    with pytest.raises(SettingsError) as error:
        parse_settings({key: value})
    message = str(error.value)
    assert f"crosscloud:{key}" in message
    assert rule in message
    if "not a setting" not in message:
        assert value[:20] in message or repr(value)[:20] in message


def test_every_problem_is_reported_at_once():
    with pytest.raises(SettingsError) as error:
        parse_settings({"prefix": "X", "awsRegion": "nowhere", "pythonVersion": "2.7"})
    message = str(error.value)
    assert all(f"crosscloud:{k}" in message for k in ("prefix", "awsRegion", "pythonVersion"))


def test_bad_config_stops_the_program_before_any_resource():
    registered = []
    with pytest.raises(SettingsError, match="crosscloud:awsRoleName"):
        registered = run_program({"awsRoleName": "no spaces allowed"}).resources
    assert registered == []
