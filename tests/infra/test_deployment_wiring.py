"""Code and sample data ship with the same `pulumi up`, keyed and ordered so the first run works."""

from __future__ import annotations

from localcloud.mocked_program import STAND_IN_PACKAGE, run_program
from shipping.build import BuiltPackage

DEPLOYMENT = "pulumi-python:dynamic/crosscloud:FlexDeployment"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
# Monitoring Metrics Publisher (docs/design.md "Seeing and auditing without keys"): telemetry by
# identity is refused without it.
METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"
UPLOAD = "pulumi-python:dynamic/crosscloud:BlobUpload"


def test_each_app_has_one_deployment_keyed_by_the_package_and_ordered_after_its_grants(
    default_run,
):
    deployments = default_run.of_type(DEPLOYMENT)
    assert len(deployments) == 2
    for kind in ("sami", "uami"):
        app = default_run.named(f"function-{kind}-app")
        grant = default_run.named(f"function-{kind}-host-blob-owner")
        (deployment,) = [d for d in deployments if d.inputs["app_name"] == app.inputs["name"]]
        assert deployment.inputs["package_sha256"] == STAND_IN_PACKAGE.sha256
        assert deployment.inputs["scm_host"] == f"{app.inputs['name']}.scm.azurewebsites.net"
        assert {app.urn, grant.urn} <= set(deployment.dependencies)


def test_each_deployment_waits_for_its_apps_metrics_publisher_grant(default_run):
    """The app ingests telemetry with its identity from its first start; before the grant lands
    Application Insights refuses it, so One Deploy runs only after the grant exists."""
    publishers = [
        a
        for a in default_run.of_type(ROLE_ASSIGNMENT)
        if a.inputs["roleDefinitionId"].endswith(METRICS_PUBLISHER)
    ]
    assert len(publishers) == 2
    for kind in ("sami", "uami"):
        app = default_run.named(f"function-{kind}-app")
        (deployment,) = [
            d for d in default_run.of_type(DEPLOYMENT) if d.inputs["app_name"] == app.inputs["name"]
        ]
        (grant,) = [p for p in publishers if p.urn in deployment.dependencies]
        assert grant.name == f"monitoring-{kind}-publisher"


def test_a_new_package_changes_only_the_deployments_key():
    other = BuiltPackage(path=STAND_IN_PACKAGE.path, sha256="ab" * 32)
    run = run_program(package=other)
    assert {d.inputs["package_sha256"] for d in run.of_type(DEPLOYMENT)} == {other.sha256}


def test_deployments_and_uploads_carry_no_credential(default_run):
    for resource in default_run.of_type(DEPLOYMENT) + default_run.of_type(UPLOAD):
        keys = {k.lower() for k in resource.inputs}
        assert not {k for k in keys if "token" in k or "key" in k or "secret" in k}, keys


def test_sample_blobs_are_uploaded_after_the_deployer_may_write(default_run):
    (upload,) = default_run.of_type(UPLOAD)
    data = default_run.named("data-storage-account")
    assert upload.inputs["account_url"] == data.state["primaryEndpoints"]["blob"]
    assert upload.inputs["container_name"] == "mycontainer"
    assert set(upload.inputs["files"]) >= {"hello.txt"}
    grant = default_run.named("data-storage-deployer-blob-contributor")
    container = default_run.named("data-storage-mycontainer")
    assert {grant.urn, container.urn} <= set(upload.dependencies)
