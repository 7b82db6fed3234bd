"""Security invariants of docs/design.md "Decisions", asserted over every resource of each type."""

from __future__ import annotations

import json

from components.azure_roles import AzureRole
from localcloud.mocked_program import DEPLOYER_OBJECT_ID, TENANT_ID, ProgramRun
from policy.rules.flex_site_config import FLEX_REFUSED_SITE_PROPERTIES
from tests.infra.conftest import EXTRA_IDS, PUBLIC_ACCESS_FLAGS

ISSUER = f"https://sts.windows.net/{TENANT_ID}/"
KEY_PREFIX = f"sts.windows.net/{TENANT_ID}/"

SECRET_BEARING_TYPES = {
    "azure-native:storage:Blob",  # signs uploads with account keys
    "aws:iam/user:User",
    "aws:iam/accessKey:AccessKey",
    "aws:iam/userLoginProfile:UserLoginProfile",
    "azuread:index/applicationPassword:ApplicationPassword",
    "azuread:index/servicePrincipalPassword:ServicePrincipalPassword",
    "azuread:index/applicationCertificate:ApplicationCertificate",
    "azure-native:web:WebAppPublishingCredentialsPolicy",
}
SECRET_MARKERS = ("AccountKey=", "SharedAccessSignature", "sig=", "aws_secret_access_key")


def role_definition_guid(assignment) -> str:
    return assignment.inputs["roleDefinitionId"].rsplit("/", 1)[1]


def principal_ids(run: ProgramRun) -> dict[str, str]:
    """Principal (object) id of each app's identity, as the cloud reported it."""
    uami = run.named("function-uami-identity").state["principalId"]
    sami = run.named("function-sami-app").state["identity"]["principalId"]
    return {"sami": sami, "uami": uami}


def trusted_ids(run: ProgramRun, extra: tuple[str, ...] = ()) -> set[str]:
    return set(principal_ids(run).values()) | set(extra)


def expected_extra(run: ProgramRun, extended_run: ProgramRun) -> tuple[str, ...]:
    return EXTRA_IDS if run is extended_run else ()


def trust_document(run: ProgramRun) -> dict:
    (role,) = run.of_type("aws:iam/role:Role")
    return json.loads(role.inputs["assumeRolePolicy"])


# --- Azure storage ---------------------------------------------------------------------------


def test_every_storage_account_refuses_keys_and_anonymous_access(any_run):
    accounts = any_run.of_type("azure-native:storage:StorageAccount")
    assert len(accounts) == 2  # data + host: the runtime never shares the data account
    for account in accounts:
        inputs = account.inputs
        assert inputs["allowSharedKeyAccess"] is False, account.name
        assert inputs["allowBlobPublicAccess"] is False, account.name
        assert inputs["minimumTlsVersion"] == "TLS1_2", account.name
        assert inputs["enableHttpsTrafficOnly"] is True, account.name
        assert inputs["allowCrossTenantReplication"] is False, account.name
        assert inputs["defaultToOAuthAuthentication"] is True, account.name
        assert inputs["isLocalUserEnabled"] is False, account.name


def test_every_container_is_private(any_run):
    containers = any_run.of_type("azure-native:storage:BlobContainer")
    assert {c.inputs["containerName"] for c in containers} == {
        "mycontainer",
        "deploy-sami",
        "deploy-uami",
    }
    assert all(c.inputs["publicAccess"] == "None" for c in containers)


def test_data_account_grants_read_only_to_each_app_and_write_only_to_the_deployer(any_run):
    data_account = any_run.named("data-storage-account")
    on_data = [
        a
        for a in any_run.of_type("azure-native:authorization:RoleAssignment")
        if a.inputs["scope"] == data_account.id
        or a.inputs["scope"].endswith("/data-storage-account")
    ]
    grants = {(a.inputs["principalId"], role_definition_guid(a)) for a in on_data}
    ids = principal_ids(any_run)
    assert grants == {
        (ids["sami"], AzureRole.STORAGE_BLOB_DATA_READER.value),
        (ids["uami"], AzureRole.STORAGE_BLOB_DATA_READER.value),
        (DEPLOYER_OBJECT_ID, AzureRole.STORAGE_BLOB_DATA_CONTRIBUTOR.value),
    }


def test_host_account_owner_role_goes_to_each_app_identity_only(any_run):
    on_host = [
        a
        for a in any_run.of_type("azure-native:authorization:RoleAssignment")
        if a.inputs["scope"] == any_run.named("host-storage-account").id
    ]
    ids = principal_ids(any_run)
    assert {(a.inputs["principalId"], role_definition_guid(a)) for a in on_host} == {
        (ids["sami"], AzureRole.STORAGE_BLOB_DATA_OWNER.value),
        (ids["uami"], AzureRole.STORAGE_BLOB_DATA_OWNER.value),
    }


def test_role_assignments_to_managed_identities_declare_their_principal_type(any_run):
    ids = set(principal_ids(any_run).values())
    for assignment in any_run.of_type("azure-native:authorization:RoleAssignment"):
        if assignment.inputs["principalId"] in ids:
            assert assignment.inputs["principalType"] == "ServicePrincipal", assignment.name
        assert assignment.inputs["roleDefinitionId"].startswith("/subscriptions/")


# --- Entra federation app ------------------------------------------------------------------


def test_a_refresh_cannot_remove_the_audience(any_run):
    # pulumi_azuread's ApplicationIdentifierUri docs: used together with Application, the
    # application must ignore changes to identifierUris, or a refresh plans `identifierUris: []`
    # and deletes the URI. The option is read as the engine received it (RegisterResource).
    app = any_run.named("federation-app")
    assert app.ignore_changes == ["identifierUris"]
    assert "identifierUris" not in app.inputs
    (uri,) = any_run.of_type("azuread:index/applicationIdentifierUri:ApplicationIdentifierUri")
    assert uri.inputs["applicationId"] == app.id
    others = [r for r in any_run.resources if r.ignore_changes and r is not app]
    assert others == []


def test_federation_app_issues_v1_tokens_with_an_application_only_role(any_run):
    app = any_run.named("federation-app")
    assert app.inputs["api"]["requestedAccessTokenVersion"] == 1
    assert app.inputs["signInAudience"] == "AzureADMyOrg"
    (role,) = app.inputs["appRoles"]
    assert role["value"] == "AssumeAWSRole"
    assert role["allowedMemberTypes"] == ["Application"]
    assert DEPLOYER_OBJECT_ID in app.inputs["owners"]


def test_service_principal_requires_assignment(any_run):
    sp = any_run.named("federation-sp")
    assert sp.inputs["appRoleAssignmentRequired"] is True


def test_every_trusted_identity_is_assigned_the_app_role(any_run, extended_run):
    app = any_run.named("federation-app")
    sp = any_run.named("federation-sp")
    role_id = app.inputs["appRoles"][0]["id"]
    assignments = [
        a
        for a in any_run.of_type("azuread:index/appRoleAssignment:AppRoleAssignment")
        if a.name.startswith("federation-")  # the reader API's: tests/infra/test_reader_api.py
    ]
    assert all(a.inputs["appRoleId"] == role_id for a in assignments)
    assert all(a.inputs["resourceObjectId"] == sp.state["objectId"] for a in assignments)
    assigned = [a.inputs["principalObjectId"] for a in assignments]
    assert len(assigned) == len(set(assigned))
    assert set(assigned) == trusted_ids(any_run, expected_extra(any_run, extended_run))
    # ... and exactly those identities are the `sub` values AWS trusts.
    statement = trust_document(any_run)["Statement"][0]
    assert set(statement["Condition"]["StringEquals"][f"{KEY_PREFIX}:sub"]) == set(assigned)


def test_default_audience_is_the_tenant_scoped_identifier_uri(default_run):
    (uri,) = default_run.of_type("azuread:index/applicationIdentifierUri:ApplicationIdentifierUri")
    assert uri.inputs["identifierUri"] == f"api://{TENANT_ID}/AWS-Federation-App"
    assert default_run.outputs["audience"] == uri.inputs["identifierUri"]


def test_app_id_audience_uses_the_apps_own_client_id(extended_run):
    app = extended_run.named("federation-app")
    (uri,) = extended_run.of_type("azuread:index/applicationIdentifierUri:ApplicationIdentifierUri")
    assert uri.inputs["identifierUri"] == f"api://{app.state['clientId']}"
    assert uri.inputs["applicationId"] == app.id


# --- AWS trust ------------------------------------------------------------------------------


def test_oidc_provider_matches_the_v1_issuer_and_the_audience(any_run):
    (provider,) = any_run.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert provider.inputs["url"] == ISSUER  # trailing slash: must equal `iss` exactly
    assert provider.inputs["clientIdLists"] == [any_run.outputs["audience"]]
    assert not provider.inputs.get("thumbprintLists")


def test_trust_policy_is_exact(any_run, extended_run):
    (provider,) = any_run.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    document = trust_document(any_run)
    (statement,) = document["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Federated": provider.state["arn"]}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert list(statement["Condition"]) == ["StringEquals"]
    conditions = statement["Condition"]["StringEquals"]
    assert set(conditions) == {f"{KEY_PREFIX}:aud", f"{KEY_PREFIX}:sub"}
    assert conditions[f"{KEY_PREFIX}:aud"] == any_run.outputs["audience"]
    assert set(conditions[f"{KEY_PREFIX}:sub"]) == trusted_ids(
        any_run, expected_extra(any_run, extended_run)
    )


def test_role_has_only_its_inline_read_policy(any_run):
    (role,) = any_run.of_type("aws:iam/role:Role")
    assert not role.inputs.get("managedPolicyArns")
    assert not any_run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert not any_run.of_type("aws:iam/policyAttachment:PolicyAttachment")
    (policy,) = any_run.of_type("aws:iam/rolePolicy:RolePolicy")
    assert policy.inputs["role"] == role.id


def test_read_policy_covers_one_bucket_and_two_actions(default_run):
    bucket = default_run.outputs["bucketName"]
    (policy,) = default_run.of_type("aws:iam/rolePolicy:RolePolicy")
    statements = json.loads(policy.inputs["policy"])["Statement"]
    assert [(s["Effect"], s["Action"], s["Resource"]) for s in statements] == [
        ("Allow", "s3:ListBucket", f"arn:aws:s3:::{bucket}"),
        ("Allow", "s3:GetObject", f"arn:aws:s3:::{bucket}/*"),
    ]
    assert all("Condition" not in s for s in statements)


def test_read_policy_honours_the_key_prefix(extended_run):
    bucket = extended_run.outputs["bucketName"]
    (policy,) = extended_run.of_type("aws:iam/rolePolicy:RolePolicy")
    listing, reading = json.loads(policy.inputs["policy"])["Statement"]
    assert listing["Resource"] == f"arn:aws:s3:::{bucket}"
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["reports/*"]}}
    assert reading["Resource"] == f"arn:aws:s3:::{bucket}/reports/*"
    keys = [o.inputs["key"] for o in extended_run.of_type("aws:s3/bucketObjectv2:BucketObjectv2")]
    assert keys and all(key.startswith("reports/") for key in keys)


def test_bucket_is_private_encrypted_versioned_and_tls_only(any_run):
    bucket = any_run.named("aws-access-bucket")  # the data bucket (the log bucket: test_audit)
    bucket_id = bucket.id

    def for_bucket(token):
        (resource,) = [r for r in any_run.of_type(token) if r.inputs["bucket"] == bucket_id]
        return resource.inputs

    block = for_bucket("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert all(block[k] is True for k in PUBLIC_ACCESS_FLAGS)
    ownership = for_bucket("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert ownership["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    sse = for_bucket(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] in (
        "AES256",
        "aws:kms",
    )
    versioning = for_bucket("aws:s3/bucketVersioning:BucketVersioning")
    assert versioning["versioningConfiguration"]["status"] == "Enabled"
    (statement,) = json.loads(for_bucket("aws:s3/bucketPolicy:BucketPolicy")["policy"])["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert set(statement["Resource"]) == {bucket.state["arn"], bucket.state["arn"] + "/*"}


# --- Function apps ----------------------------------------------------------------------------


def settings_of(app) -> dict[str, str]:
    return {s["name"]: s["value"] for s in app.inputs["siteConfig"]["appSettings"]}


def test_function_apps_are_https_only_and_tls12(any_run):
    apps = any_run.of_type("azure-native:web:WebApp")
    assert len(apps) == 2
    for app in apps:
        assert app.inputs["kind"] == "functionapp,linux"
        assert app.inputs["httpsOnly"] is True
        site = app.inputs["siteConfig"]
        assert site["minTlsVersion"] in ("1.2", "1.3")
        assert site["scmMinTlsVersion"] in ("1.2", "1.3")


def test_basic_auth_publishing_is_off_through_scm_only(any_run):
    # Flex has no FTP: azurerm's function_app_flex_consumption sets only the SCM policy
    # (UpdateScmAllowed); an FTP policy resource has nothing to govern.
    apps = {a.inputs["name"] for a in any_run.of_type("azure-native:web:WebApp")}
    assert not any_run.of_type("azure-native:web:WebAppFtpAllowed")
    policies = any_run.of_type("azure-native:web:WebAppScmAllowed")
    assert sorted(p.inputs["name"] for p in policies) == sorted(apps)
    assert all(p.inputs["allow"] is False for p in policies)


def test_flex_site_config_sends_only_what_flex_accepts(any_run):
    # Flex answers 400 to ftpsState, netFrameworkVersion, use32BitWorkerProcess... (Azure/azure-cli
    # #31414, MicrosoftDocs functions-app-settings.md "Flex Consumption plan deprecations"); azurerm
    # sends min TLS, SCM min TLS, HTTP/2 and app settings. The SDK adds nothing to a plain dict.
    for app in any_run.of_type("azure-native:web:WebApp"):
        site = app.inputs["siteConfig"]
        assert not set(site) & set(FLEX_REFUSED_SITE_PROPERTIES), app.name
        assert set(site) == {"appSettings", "minTlsVersion", "scmMinTlsVersion", "http20Enabled"}


def test_the_sdk_adds_only_the_site_defaults_checked_against_flex(any_run):
    # web.WebApp fills in these top-level site properties itself (pulumi_azure_native/web/
    # web_app.py: `if hyper_v is None: hyper_v = False`, ...). Flex's 51021 validation is on
    # siteConfig properties; these false values go out with every azure-native Flex app, e.g. in
    # pulumi-azure-native#4168 where only Site.SiteConfig.NetFrameworkVersion was refused. A
    # new SDK default must be checked against Flex before it is added here.
    ours = {
        "resourceGroupName", "location", "name", "kind", "serverFarmId", "httpsOnly",
        "identity", "functionAppConfig", "siteConfig", "tags",
    }  # fmt: skip
    for app in any_run.of_type("azure-native:web:WebApp"):
        added = {k: v for k, v in app.inputs.items() if k not in ours}
        assert added == dict.fromkeys(
            ("hyperV", "isXenon", "scmSiteAlsoStopped", "clientAffinityEnabled"), False
        )


def test_flex_apps_carry_nothing_flex_rejects(any_run):
    for app in any_run.of_type("azure-native:web:WebApp"):
        names = set(settings_of(app))
        assert not names & {
            "FUNCTIONS_WORKER_RUNTIME",
            "FUNCTIONS_EXTENSION_VERSION",
            "WEBSITE_RUN_FROM_PACKAGE",
            "AzureWebJobsStorage",  # the connection-string form
        }


def test_flex_plans_and_runtime(any_run):
    plans = any_run.of_type("azure-native:web:AppServicePlan")
    assert len(plans) == 2
    for plan in plans:
        assert plan.inputs["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
        assert plan.inputs["reserved"] is True
    plan_ids = {p.id for p in plans}
    apps = any_run.of_type("azure-native:web:WebApp")
    assert {a.inputs["serverFarmId"] for a in apps} == plan_ids  # one plan per app
    for app in apps:
        config = app.inputs["functionAppConfig"]
        assert config["runtime"] == {"name": "python", "version": "3.12"}
        assert config["scaleAndConcurrency"]["instanceMemoryMB"] == 2048


def test_host_and_deployment_storage_use_the_app_identity(any_run):
    host = any_run.named("host-storage-account")
    blob = host.state["primaryEndpoints"]["blob"]
    for kind in ("sami", "uami"):
        app = any_run.named(f"function-{kind}-app")
        settings = settings_of(app)
        assert settings["AzureWebJobsStorage__accountName"] == host.inputs["accountName"]
        assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
        storage = app.inputs["functionAppConfig"]["deployment"]["storage"]
        assert storage["value"] == f"{blob}deploy-{kind}"
        assert "storageAccountConnectionStringName" not in storage["authentication"]
    uami = any_run.named("function-uami-identity")
    uami_app = any_run.named("function-uami-app")
    auth = uami_app.inputs["functionAppConfig"]["deployment"]["storage"]["authentication"]
    assert auth == {"type": "UserAssignedIdentity", "userAssignedIdentityResourceId": uami.id}
    assert settings_of(uami_app)["AzureWebJobsStorage__clientId"] == uami.state["clientId"]
    assert uami_app.inputs["identity"] == {
        "type": "UserAssigned",
        "userAssignedIdentities": [uami.id],
    }
    sami_app = any_run.named("function-sami-app")
    assert sami_app.inputs["identity"] == {"type": "SystemAssigned"}
    sami_auth = sami_app.inputs["functionAppConfig"]["deployment"]["storage"]["authentication"]
    assert sami_auth == {"type": "SystemAssignedIdentity"}


def test_function_settings_follow_the_contract(any_run, extended_run):
    (role,) = any_run.of_type("aws:iam/role:Role")
    data = any_run.named("data-storage-account")
    uami = any_run.named("function-uami-identity")
    for kind in ("sami", "uami"):
        settings = settings_of(any_run.named(f"function-{kind}-app"))
        crosscloud = {k: v for k, v in settings.items() if k.startswith("CROSSCLOUD_")}
        expected = {
            "CROSSCLOUD_AUDIENCE": any_run.outputs["audience"],
            "CROSSCLOUD_AWS_ROLE_ARN": role.state["arn"],
            "CROSSCLOUD_AWS_REGION": "eu-west-1",
            "CROSSCLOUD_S3_BUCKET": any_run.outputs["bucketName"],
            "CROSSCLOUD_BLOB_ACCOUNT_URL": data.state["primaryEndpoints"]["blob"],
            "CROSSCLOUD_BLOB_CONTAINER": "mycontainer",
            # The front door (tests/infra/test_reader_api.py).
            "CROSSCLOUD_TENANT_ID": TENANT_ID,
            "CROSSCLOUD_CALLER_AUDIENCE": any_run.outputs["callerAudience"],
            "CROSSCLOUD_CALLER_CLIENT_ID": any_run.outputs["callerClientId"],
            "CROSSCLOUD_CALLER_ROLE": "CrossCloud.Read",
        }
        if kind == "uami":
            expected["CROSSCLOUD_IDENTITY_CLIENT_ID"] = uami.state["clientId"]
        if any_run is extended_run:
            expected["CROSSCLOUD_S3_KEY_PREFIX"] = "reports/"
        assert crosscloud == expected


# --- Whole program ----------------------------------------------------------------------------


def test_no_secret_bearing_resource_types(any_run):
    assert not {r.type for r in any_run.resources} & SECRET_BEARING_TYPES


def test_no_input_anywhere_looks_like_a_key_or_sas(any_run):
    for resource in any_run.resources:
        text = json.dumps(resource.inputs, default=str)
        assert not any(marker in text for marker in SECRET_MARKERS), resource.name


def test_outputs(default_run):
    outputs = default_run.outputs
    (role,) = default_run.of_type("aws:iam/role:Role")
    app = default_run.named("federation-app")
    assert outputs["tenantId"] == TENANT_ID
    assert outputs["awsRoleArn"] == role.state["arn"]
    assert outputs["federationAppClientId"] == app.state["clientId"]
    assert outputs["uamiClientId"] == default_run.named("function-uami-identity").state["clientId"]
    assert outputs["dataBlobUrl"].startswith("https://") and outputs["dataBlobUrl"].endswith(
        ".blob.core.windows.net/"
    )
    for kind in ("sami", "uami"):
        host = default_run.named(f"function-{kind}-app").state["defaultHostName"]
        assert outputs[f"{kind}FunctionHostname"] == host
    assert outputs["awsRegion"] == "eu-west-1"
    assert outputs["trustedPrincipalIds"] == sorted(principal_ids(default_run).values())


def test_every_resource_belongs_to_a_component_named_after_it(default_run):
    components = {r.urn: r for r in default_run.resources if not r.custom}
    top_level = {"group", "aws"}  # the resource group and the explicit AWS provider
    for resource in default_run.resources:
        if resource.custom and resource.name not in top_level:
            parent = components.get(resource.parent)
            assert parent is not None, f"{resource.name} has no component parent"
            assert resource.name.startswith(f"{parent.name}-"), resource.name
    for urn, component in components.items():
        assert component.type.startswith("crosscloud:")
        assert default_run.component_outputs.get(urn), f"{component.name} registered no outputs"


def test_physical_names_obey_service_rules(default_run):
    for account in default_run.of_type("azure-native:storage:StorageAccount"):
        name = account.inputs["accountName"]
        assert 3 <= len(name) <= 24 and name.isalnum() and name.islower()
    bucket = default_run.named("aws-access-bucket")
    assert 3 <= len(bucket.inputs["bucket"]) <= 63
