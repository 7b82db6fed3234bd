"""Config validation: every rule refuses a bad value with a message naming key, value and rule."""

from __future__ import annotations

import json

import pulumi
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
        ("s3KeyPrefix", "logs/*/", "wildcards"),
        ("s3KeyPrefix", "a/../b/", "without '.' or '..'"),
        ("s3KeyPrefix", "a/./b/", "without '.' or '..'"),
        ("s3KeyPrefix", "reports", "write 'reports/'"),
        ("s3KeyPrefix", "reports/ ", "ending with '/'"),
        ("s3KeyPrefix", "reports /", "white space"),
        ("s3KeyPrefix", "a//b/", "'//'"),
        ("s3KeyPrefix", "a\\b/", "backslashes"),
        ("s3KeyPrefix", "r\u202eports/", "U+202E"),
        ("s3KeyPrefix", "r\x85ports/", "control"),
        ("s3KeyPrefix", "r\u2028ports/", "line-separator"),
        ("s3KeyPrefix", "r\x00ports/", "control"),
        ("s3KeyPrefix", "é" * 257 + "/", "512 bytes"),
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
        ("bucketname", "typo-of-bucketName", "not a setting of this project"),
        ("bucketname", "typo-of-bucketName", "did you mean crosscloud:bucketName?"),
        ("azureLocation", "westeurop", "did you mean 'westeurope'?"),
        ("azureLocation", "westindia", "offers Flex Consumption"),
        ("azureLocation", "westindia", "allowUnlistedAzureLocation"),
        # A canary (Early Updates Access Program) region in the sample's list: opt-in only.
        ("azureLocation", "eastus2euap", "allowUnlistedAzureLocation"),
        ("awsRegion", "eu-wst-1", "did you mean 'eu-west-1'?"),
        ("awsRegion", "eu-west-9", "allowUnlistedAwsRegion"),
        ("pythonVersion", "3.1", "unquoted 3.10"),
        ("pythonVersion", "3.1", "put the version in quotes"),
        ("allowUnlistedAzureLocation", "yes", "true or false"),
        ("allowUnlistedAwsRegion", "1", "true or false"),
        ("foundation", "crosscloud-foundation/shared", "literal word organization"),
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


TRAILING_NEWLINE = {
    "prefix": "abc",
    "azureLocation": "westeurope",
    "awsRegion": "eu-west-1",
    "audience": "api://contoso.example/aws",
    "appDisplayName": "Contoso Federation",
    "awsRoleName": "Reader",
    "bucketName": "contoso-data",
    "s3KeyPrefix": "reports/",
}


@pytest.mark.parametrize(("key", "good"), TRAILING_NEWLINE.items())
def test_validation_is_whole_string_a_trailing_newline_is_refused(key, good):
    """`re.match(r"^...$")` lets "abc\\n" through (`$` matches before a final newline)."""
    assert parse_settings({key: good}) is not None
    with pytest.raises(SettingsError) as error:
        parse_settings({key: good + "\n"})
    assert f"crosscloud:{key} = {good + chr(10)!r}" in str(error.value)


def test_a_trailing_newline_stops_the_program_before_any_resource():
    registered = []
    with pytest.raises(SettingsError, match="crosscloud:prefix"):
        registered = run_program({"prefix": "abc\n"}).resources
    assert registered == []


def test_tags_both_clouds_accept_are_kept():
    tags = {"Kostenstelle": "München 42", "team/owner": "x"}
    with pytest.raises(SettingsError):  # '/' in a name: Azure refuses it
        parse_settings({"tags": tags})
    tags = {"Kostenstelle": "München 42", "cost-center_1.a:b=c+d@e": "path/to:x", "empty": ""}
    assert parse_settings({"tags": tags}).tags == tags


@pytest.mark.parametrize(
    ("tags", "rule"),
    [
        ({"k": 1}, "must be strings"),
        ({"costCenter": 4711}, "YAML read an unquoted value as the number 4711: put it in quotes"),
        ({"k" * 129: "v"}, "1-128 characters"),
        ({"": "v"}, "1-128 characters"),
        ({"k": "v" * 257}, "at most 256 characters"),
        ({"a/b": "v"}, "Azure tag names cannot contain"),
        ({"50%": "v"}, "Azure tag names cannot contain"),
        ({"a<b": "v"}, "Azure tag names cannot contain"),
        ({"owner#1": "v"}, "only letters, digits, spaces"),
        ({"owner": "a,b"}, "only letters, digits, spaces"),
        ({"owner": "line\u2028break"}, "only letters, digits, spaces"),
        ({"env\n": "dev"}, "only letters, digits, spaces"),
        ({"owner": "dev\n"}, "only letters, digits, spaces"),
        ({"AWS:owner": "v"}, "AWS reserves"),
        ({"owner": "Aws:v"}, "AWS reserves"),
        ({f"t{n}": "v" for n in range(11)}, "at most 10 tags"),
    ],
)
def test_each_tag_rule_refuses_a_bad_tag(tags, rule):
    with pytest.raises(SettingsError) as error:
        parse_settings({"tags": tags})
    assert "crosscloud:tags" in str(error.value)
    assert rule in str(error.value)


def test_a_settings_error_is_a_run_error_so_pulumi_prints_no_traceback():
    """pulumi-language-python-exec logs `str(error)` of a RunError without a traceback (any
    other exception is logged as its traceback); the exit code 1 then makes the language host
    add "program exited with non-zero exit code: 1". So `str(error)` must say it all."""
    with pytest.raises(pulumi.RunError) as error:
        parse_settings({"prefix": "X"})
    assert "crosscloud:prefix" in str(error.value) and "'X'" in str(error.value)


def test_a_typo_names_only_the_nearest_key():
    with pytest.raises(SettingsError) as error:
        parse_settings({"awsregion": "eu-west-1"})
    message = str(error.value)
    assert "did you mean crosscloud:awsRegion?" in message
    assert "crosscloud:tags" not in message  # not the whole list of keys


def test_a_key_far_from_every_setting_lists_the_known_keys():
    with pytest.raises(SettingsError) as error:
        parse_settings({"zzzzzz": "1"})
    assert "known keys: crosscloud:prefix" in str(error.value)


@pytest.mark.parametrize("namespace", ["crossclod", "crosscluod", "Crosscloud", "cross-cloud"])
def test_a_key_in_a_mistyped_namespace_is_refused(namespace):
    with pytest.raises(SettingsError) as error:
        parse_settings({}, other_keys=[f"{namespace}:awsRegion", "aws:region"])
    message = str(error.value)
    assert f"{namespace}:awsRegion is in namespace {namespace!r}" in message
    assert "did you mean crosscloud:awsRegion?" in message
    assert "aws:region" not in message


def test_other_providers_namespaces_are_left_alone():
    keys = ["aws:region", "azure-native:location", "azuread:tenantId", "pulumi:template"]
    assert parse_settings({}, other_keys=keys) == Settings()


def test_a_mistyped_namespace_stops_the_program(monkeypatch):
    """The program reads every key of the stack (PULUMI_CONFIG, as the engine passes it)."""
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"crossclod:awsRegion": "us-east-2"}))
    with pytest.raises(SettingsError, match="crossclod:awsRegion is in namespace"):
        run_program({})


def test_the_overrides_admit_a_region_newer_than_the_lists():
    settings = parse_settings(
        {
            "azureLocation": "newzealandnorth",
            "allowUnlistedAzureLocation": "true",
            "awsRegion": "eu-west-9",
            "allowUnlistedAwsRegion": "true",
        }
    )
    assert (settings.azure_location, settings.aws_region) == ("newzealandnorth", "eu-west-9")
    assert settings.allow_unlisted_azure_location and settings.allow_unlisted_aws_region
    canary = {"azureLocation": "eastus2euap", "allowUnlistedAzureLocation": "true"}
    assert parse_settings(canary).azure_location == "eastus2euap"
    # The override admits regions of a known partition's shape, never any text.
    with pytest.raises(SettingsError, match="crosscloud:awsRegion"):
        parse_settings({"awsRegion": "mars-north-1", "allowUnlistedAwsRegion": "true"})


@pytest.mark.parametrize("region", ["us-east-1", "cn-north-1", "us-gov-west-1", "ap-southeast-5"])
def test_listed_aws_regions_of_each_partition_pass(region):
    assert parse_settings({"awsRegion": region}).aws_region == region
