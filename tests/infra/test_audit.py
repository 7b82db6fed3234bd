"""Monitoring and audit without keys (issue 12): asserted over the program run under mocks."""

from __future__ import annotations

import json

import pytest

from components.azure_roles import AzureRole
from components.settings import SettingsError, parse_settings
from localcloud.mocked_program import AWS_ACCOUNT_ID, ProgramRun, run_program
from tests.infra.conftest import PUBLIC_ACCESS_FLAGS

WORKSPACE = "azure-native:operationalinsights:Workspace"
COMPONENT = "azure-native:applicationinsights:Component"
DIAGNOSTIC = "azure-native:monitor:DiagnosticSetting"
ASSIGNMENT = "azure-native:authorization:RoleAssignment"
APPS = "azure-native:web:WebApp"


def settings_of(app) -> dict[str, str]:
    return {s["name"]: s["value"] for s in app.inputs["siteConfig"]["appSettings"]}


def bucket_inputs(run: ProgramRun, token: str, bucket: str) -> dict:
    (resource,) = [r for r in run.of_type(token) if r.inputs["bucket"] == bucket]
    return resource.inputs


# --- Azure: workspace, Application Insights, ingestion by identity ----------------------------


def test_workspace_and_component_refuse_local_auth(any_run):
    (workspace,) = any_run.of_type(WORKSPACE)
    (component,) = any_run.of_type(COMPONENT)
    assert workspace.inputs["features"]["disableLocalAuth"] is True
    assert component.inputs["disableLocalAuth"] is True
    # Workspace-based: the component stores nothing of its own.
    assert component.inputs["ingestionMode"] == "LogAnalytics"
    assert component.inputs["workspaceResourceId"] == workspace.id


def test_each_app_ingests_with_its_own_identity(any_run):
    component = any_run.named("monitoring-insights")
    uami_client_id = any_run.named("function-uami-identity").state["clientId"]
    expected = {
        "function-sami-app": "Authorization=AAD",
        "function-uami-app": f"ClientId={uami_client_id};Authorization=AAD",
    }
    for app in any_run.of_type(APPS):
        settings = settings_of(app)
        assert (
            settings["APPLICATIONINSIGHTS_CONNECTION_STRING"]
            == (component.state["connectionString"])
        )
        assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == expected[app.name]
        # Key-based ingestion stays out, whatever else changes.
        assert "APPINSIGHTS_INSTRUMENTATIONKEY" not in settings


def test_monitoring_metrics_publisher_for_each_identity_and_nothing_broader(any_run):
    component = any_run.named("monitoring-insights")
    uami = any_run.named("function-uami-identity").state["principalId"]
    sami = any_run.named("function-sami-app").state["identity"]["principalId"]
    publishers = [
        a
        for a in any_run.of_type(ASSIGNMENT)
        if a.inputs["roleDefinitionId"].endswith(AzureRole.MONITORING_METRICS_PUBLISHER.value)
    ]
    assert sorted(a.inputs["principalId"] for a in publishers) == sorted([sami, uami])
    for assignment in publishers:
        assert assignment.inputs["scope"] == component.id  # not the group or subscription
        assert assignment.inputs["principalType"] == "ServicePrincipal"
    # Nothing else is granted on the monitoring resources.
    monitoring_ids = {component.id, any_run.named("monitoring-workspace").id}
    on_monitoring = [a for a in any_run.of_type(ASSIGNMENT) if a.inputs["scope"] in monitoring_ids]
    assert on_monitoring == publishers


def test_blob_reads_of_the_data_account_go_to_the_workspace(any_run):
    data_account = any_run.named("data-storage-account")
    (setting,) = any_run.of_type(DIAGNOSTIC)
    assert setting.inputs["resourceUri"] == f"{data_account.id}/blobServices/default"
    assert setting.inputs["workspaceId"] == any_run.named("monitoring-workspace").id
    enabled = {log["category"] for log in setting.inputs["logs"] if log["enabled"]}
    assert enabled == {"StorageRead", "StorageWrite", "StorageDelete"}


# --- AWS: S3 server access logs ---------------------------------------------------------------


def test_data_bucket_logs_into_a_distinct_hardened_bucket(any_run):
    data = any_run.named("aws-access-bucket").inputs["bucket"]
    log_bucket = any_run.named("s3-access-logs-bucket")
    target = log_bucket.inputs["bucket"]
    assert target != data
    (logging,) = any_run.of_type("aws:s3/bucketLogging:BucketLogging")
    assert logging.inputs["bucket"] == data
    assert logging.inputs["targetBucket"] == target
    # Its delete clears the bucket's only logging configuration: a replacement must delete first.
    assert logging.delete_before_replace is True

    block = bucket_inputs(any_run, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", target)
    assert all(block[k] is True for k in PUBLIC_ACCESS_FLAGS)
    ownership = bucket_inputs(
        any_run, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", target
    )
    assert ownership["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    sse = bucket_inputs(
        any_run,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        target,
    )
    # SSE-KMS is not supported for access-log destinations; SSE-S3 is.
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"


def test_log_bucket_admits_only_the_logging_service_for_this_source(any_run):
    data = any_run.named("aws-access-bucket")
    target = any_run.named("s3-access-logs-bucket").inputs["bucket"]
    policy = json.loads(
        bucket_inputs(any_run, "aws:s3/bucketPolicy:BucketPolicy", target)["policy"]
    )
    deny, allow = policy["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }
    assert allow["Effect"] == "Allow"
    assert allow["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert allow["Action"] == "s3:PutObject"
    assert allow["Resource"] == f"arn:aws:s3:::{target}/s3-access/*"
    assert allow["Condition"] == {
        "ArnLike": {"aws:SourceArn": data.state["arn"]},
        "StringEquals": {"aws:SourceAccount": AWS_ACCOUNT_ID},
    }


# --- Retention and always-ready ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tuned_run() -> ProgramRun:
    return run_program({"auditRetentionDays": 365, "alwaysReadyInstances": 2})


@pytest.mark.parametrize("run_name, days", [("default_run", 90), ("tuned_run", 365)])
def test_retention_applies_to_workspace_and_log_bucket(request, run_name, days):
    run = request.getfixturevalue(run_name)
    assert run.named("monitoring-workspace").inputs["retentionInDays"] == days
    (rule,) = run.named("s3-access-logs-retention").inputs["rules"]
    assert rule["status"] == "Enabled"
    assert rule["expiration"]["days"] == days


def test_always_ready_is_off_by_default_and_sets_the_http_group(default_run, tuned_run):
    for app in default_run.of_type(APPS):
        assert "alwaysReady" not in app.inputs["functionAppConfig"]["scaleAndConcurrency"]
    for app in tuned_run.of_type(APPS):
        scale = app.inputs["functionAppConfig"]["scaleAndConcurrency"]
        assert scale["alwaysReady"] == [{"name": "http", "instanceCount": 2}]


@pytest.mark.parametrize(
    "key, value",
    [
        ("auditRetentionDays", 29),
        ("auditRetentionDays", 731),
        ("auditRetentionDays", "ninety"),
        ("alwaysReadyInstances", -1),
        ("alwaysReadyInstances", 21),
    ],
)
def test_bad_audit_and_scale_values_name_their_key(key, value):
    with pytest.raises(SettingsError, match=f"crosscloud:{key}"):
        parse_settings({key: value})
