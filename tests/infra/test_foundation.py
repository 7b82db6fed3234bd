"""The foundation project (foundation/__main__.py) under mocks, and its configuration rules."""

from __future__ import annotations

import ast
import json
import re
import sys
from importlib import metadata
from pathlib import Path

import pulumi
import pytest
import yaml

from components.foundation_settings import (
    AwsAccount,
    FoundationSettings,
    parse_foundation_settings,
)
from components.settings import SettingsError
from components.shared_federation import OUTPUTS
from localcloud.mocked_program import (
    AWS_ACCOUNT_ID,
    DEPLOYER_OBJECT_ID,
    TENANT_ID,
    ProgramRun,
    run_foundation,
)

FOUNDATION = Path(__file__).resolve().parents[2] / "foundation"
APPLICATION = "azuread:index/application:Application"
SERVICE_PRINCIPAL = "azuread:index/servicePrincipal:ServicePrincipal"
OIDC_PROVIDER = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
AWS_PROVIDER = "pulumi:providers:aws"
ISSUER = f"https://sts.windows.net/{TENANT_ID}/"


# The example stack's placeholder accounts, and the accounts a team would put in their place.
OWN_ACCOUNTS = {"111111111111": "210987654321", "222222222222": "345678901234"}


def example_config(*, as_shipped: bool = False) -> dict:
    """The `crosscloud:*` values of the example stack foundation/Pulumi.shared.yaml, with its
    placeholder accounts replaced by a team's own (unless `as_shipped`)."""
    text = (FOUNDATION / "Pulumi.shared.yaml").read_text()
    for placeholder, own in () if as_shipped else OWN_ACCOUNTS.items():
        assert placeholder in text
        text = text.replace(placeholder, own)
    stack = yaml.safe_load(text)
    return {key.split(":", 1)[1]: value for key, value in stack["config"].items()}


@pytest.fixture(scope="module")
def example_run() -> ProgramRun:
    return run_foundation(example_config())


@pytest.fixture(scope="module")
def ambient_run() -> ProgramRun:
    return run_foundation({"awsAccounts": []})


def test_the_project_uses_the_repository_virtualenv():
    project = yaml.safe_load((FOUNDATION / "Pulumi.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == "../.venv"


def test_example_stack_creates_one_app_one_sp_and_a_provider_per_listed_account(example_run):
    accounts = [a["accountId"] for a in example_config()["awsAccounts"]]
    assert len(accounts) == 2
    assert len(example_run.of_type(APPLICATION)) == 1
    assert len(example_run.of_type(SERVICE_PRINCIPAL)) == 1
    providers = example_run.of_type(OIDC_PROVIDER)
    assert len(providers) == len(accounts)
    # Each provider is created through its own account's explicit AWS provider (the mocks put a
    # resource in the account of the role its provider assumes, else the ambient account).
    assert sorted(p.state["arn"].split(":")[4] for p in providers) == sorted(accounts)
    for provider in providers:
        assert provider.inputs["url"] == ISSUER
        assert provider.inputs["clientIdLists"] == [example_run.outputs["audience"]]
        assert not provider.inputs.get("thumbprintLists")


def test_each_account_provider_assumes_its_own_deployment_role(example_run):
    by_name = {p.name: p for p in example_run.of_type(AWS_PROVIDER)}
    for account in example_config()["awsAccounts"]:
        provider = by_name[f"aws-{account['accountId']}"]
        roles = json.loads(provider.inputs["assumeRoles"])
        assert [r["roleArn"] for r in roles] == [account["roleArn"]]
        assert json.loads(provider.inputs["allowedAccountIds"]) == [account["accountId"]]


def test_example_stack_exports_exactly_the_six_outputs(example_run):
    outputs = example_run.outputs
    assert set(outputs) == set(OUTPUTS)
    (app,) = example_run.of_type(APPLICATION)
    (sp,) = example_run.of_type(SERVICE_PRINCIPAL)
    assert outputs["tenantId"] == TENANT_ID
    assert outputs["audience"] == f"api://{TENANT_ID}/AWS-Federation-App"
    assert outputs["federationAppClientId"] == app.state["clientId"]
    assert outputs["appRoleId"] == app.inputs["appRoles"][0]["id"]
    assert outputs["servicePrincipalObjectId"] == sp.state["objectId"]
    arns = {
        p.state["arn"].split(":")[4]: p.state["arn"] for p in example_run.of_type(OIDC_PROVIDER)
    }
    assert outputs["awsOidcProviderArns"] == arns


def test_the_app_is_the_hardened_federation_app(example_run):
    (app,) = example_run.of_type(APPLICATION)
    (sp,) = example_run.of_type(SERVICE_PRINCIPAL)
    (role,) = app.inputs["appRoles"]
    assert role["value"] == "AssumeAWSRole"
    assert role["allowedMemberTypes"] == ["Application"]
    assert app.inputs["api"].get("requestedAccessTokenVersion") == 1
    assert sp.inputs["appRoleAssignmentRequired"] is True
    assert app.inputs["owners"] == [DEPLOYER_OBJECT_ID]


def test_the_app_role_id_is_stable_per_stack():
    first = run_foundation({"awsAccounts": []}).outputs["appRoleId"]
    assert run_foundation({"awsAccounts": []}).outputs["appRoleId"] == first
    assert run_foundation({"awsAccounts": []}, stack="other").outputs["appRoleId"] != first


def test_an_app_role_id_from_config_is_kept():
    kept = "0f0e0d0c-0b0a-4909-8807-060504030201"
    run = run_foundation({"awsAccounts": [], "appRoleId": kept})
    (app,) = run.of_type(APPLICATION)
    assert [role["id"] for role in app.inputs["appRoles"]] == [kept]
    assert run.outputs["appRoleId"] == kept


def test_no_accounts_means_one_provider_in_the_ambient_account(ambient_run):
    (provider,) = ambient_run.of_type(OIDC_PROVIDER)
    assert provider.state["arn"].split(":")[4] == AWS_ACCOUNT_ID
    assert ambient_run.outputs["awsOidcProviderArns"] == {AWS_ACCOUNT_ID: provider.state["arn"]}


def test_foundation_creates_no_role_bucket_or_app(example_run):
    kinds = {r.type for r in example_run.resources}
    assert not {t for t in kinds if t.startswith(("azure-native:", "aws:s3", "aws:iam/role"))}


# --- configuration ---------------------------------------------------------------------------


def test_example_config_parses():
    settings = parse_foundation_settings(example_config())
    assert settings.aws_accounts == (
        AwsAccount("210987654321", "arn:aws:iam::210987654321:role/crosscloud-foundation-deployer"),
        AwsAccount("345678901234", "arn:aws:iam::345678901234:role/crosscloud-foundation-deployer"),
    )
    assert parse_foundation_settings({}) == FoundationSettings()


ROLE = "arn:aws:iam::210987654321:role/deployer"


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [
        ("awsAccounts", "not json", "structured"),
        ("awsAccounts", '{"accountId": "210987654321"}', "a list of"),
        ("awsAccounts", '[{"accountId": "1111", "roleArn": "' + ROLE + '"}]', "12 digits"),
        ("awsAccounts", '[{"accountId": "210987654321"}]', "roleArn"),
        ("awsAccounts", '[{"accountId": "210987654321", "roleArn": "deployer"}]', "roleArn"),
        (
            "awsAccounts",
            '[{"accountId": "345678901234", "roleArn": "' + ROLE + '"}]',
            "a role in account 345678901234",
        ),
        (
            "awsAccounts",
            json.dumps([{"accountId": "210987654321", "roleArn": ROLE}] * 2),
            "only once",
        ),
        ("audience", "api://x/", "trailing slash"),
        ("appDisplayName", "-x", "starting with a letter or digit"),
        ("awsRegion", "europe", "AWS region"),
        ("tags", '["a"]', "map of tag names"),
        ("appRoleId", "not-a-guid", "GUID"),
    ],
)
def test_each_bad_value_is_refused_naming_the_key(key, value, rule):
    with pytest.raises(SettingsError) as error:
        parse_foundation_settings({key: value})
    message = str(error.value)
    assert f"crosscloud:{key}" in message
    assert rule in message


def test_environment_keys_are_refused_by_the_foundation():
    with pytest.raises(SettingsError, match=r"crosscloud:bucketName is not a setting of the found"):
        parse_foundation_settings({"bucketName": "b"})


def test_bad_config_fails_the_foundation_program_before_any_resource():
    with pytest.raises(SettingsError, match="crosscloud:awsAccounts"):
        run_foundation({"awsAccounts": '[{"accountId": "1"}]'})


def test_the_example_stack_as_shipped_refuses_its_placeholder_accounts():
    with pytest.raises(SettingsError) as error:
        run_foundation(example_config(as_shipped=True))
    assert isinstance(error.value, pulumi.RunError)  # printed without a traceback
    message = str(error.value)
    assert "crosscloud:awsAccounts" in message
    assert "'111111111111' is a placeholder" in message


def test_an_unquoted_account_id_is_refused_with_a_hint_to_quote_it():
    role = "arn:aws:iam::012345678901:role/deployer"
    # `accountId: 012345678901` unquoted: YAML makes it the number 12345678901.
    with pytest.raises(SettingsError) as error:
        parse_foundation_settings({"awsAccounts": [{"accountId": 12345678901, "roleArn": role}]})
    message = str(error.value)
    assert "crosscloud:awsAccounts" in message
    assert "12345678901 is a number" in message
    assert 'accountId: "12345678901"' in message


CN_ROLE = "arn:aws-cn:iam::210987654321:role/deployer"
GOV_ROLE = "arn:aws-us-gov:iam::345678901234:role/deployer"


@pytest.mark.parametrize(
    ("region", "roles", "refused"),
    [
        ("eu-west-1", [CN_ROLE], "'aws-cn'"),
        ("cn-north-1", [ROLE], "'aws'"),
        ("us-gov-west-1", [GOV_ROLE, CN_ROLE], "'aws-cn'"),
    ],
)
def test_a_role_from_another_partition_than_the_region_is_refused(region, roles, refused):
    accounts = [{"accountId": arn.split(":")[4], "roleArn": arn} for arn in roles]
    with pytest.raises(SettingsError) as error:
        parse_foundation_settings({"awsRegion": region, "awsAccounts": accounts})
    message = str(error.value)
    assert "crosscloud:awsAccounts" in message
    assert f"roleArn is in partition {refused}" in message
    assert f"crosscloud:awsRegion '{region}'" in message


def test_roles_of_the_region_partition_are_accepted():
    accounts = [{"accountId": "210987654321", "roleArn": CN_ROLE}]
    settings = parse_foundation_settings({"awsRegion": "cn-north-1", "awsAccounts": accounts})
    assert settings.aws_accounts == (AwsAccount("210987654321", CN_ROLE),)


@pytest.mark.parametrize(
    ("region", "rule"),
    [("eu-wst-1", "did you mean 'eu-west-1'"), ("eu-west-9", "allowUnlistedAwsRegion")],
)
def test_a_region_botocore_does_not_list_is_refused(region, rule):
    with pytest.raises(SettingsError) as error:
        parse_foundation_settings({"awsRegion": region})
    assert f"crosscloud:awsRegion = '{region}'" in str(error.value)
    assert rule in str(error.value)


def test_the_override_admits_an_unlisted_region_of_a_known_partition():
    settings = parse_foundation_settings(
        {"awsRegion": "eu-west-9", "allowUnlistedAwsRegion": "true"}
    )
    assert settings.aws_region == "eu-west-9"
    with pytest.raises(SettingsError, match="crosscloud:awsRegion"):
        parse_foundation_settings({"awsRegion": "zz-west-9", "allowUnlistedAwsRegion": "true"})


def test_a_key_in_the_foundation_projects_own_namespace_is_refused():
    """Without `crosscloud:`, Pulumi puts a key in the project's namespace, which nothing reads."""
    with pytest.raises(SettingsError) as error:
        parse_foundation_settings(
            {},
            other_keys=["crosscloud-foundation:awsRegion", "aws:region"],
            project="crosscloud-foundation",
        )
    message = str(error.value)
    assert "crosscloud-foundation:awsRegion is in namespace" in message
    assert "did you mean crosscloud:awsRegion?" in message
    assert "aws:region" not in message


def test_a_typo_names_the_nearest_foundation_key():
    with pytest.raises(SettingsError) as error:
        parse_foundation_settings({"awsAcounts": "[]"})
    assert "crosscloud:awsAcounts is not a setting of the foundation" in str(error.value)
    assert "did you mean crosscloud:awsAccounts?" in str(error.value)


def test_the_example_stack_and_the_permissions_document_ask_for_the_same_graph_permission():
    """Application.ReadWrite.OwnedBy suffices because the deployer is made owner of the app
    (see test_the_app_is_the_hardened_federation_app): the azuread provider's
    azuread_application docs require exactly that for OwnedBy. ReadWrite.All would be more."""
    example = (FOUNDATION / "Pulumi.shared.yaml").read_text()
    readme = (FOUNDATION.parent / "docs" / "permissions.md").read_text()
    assert "Application.ReadWrite.OwnedBy" in example
    assert "Application.ReadWrite.All" not in example
    assert "Application.ReadWrite.OwnedBy" in readme
    assert "Application.ReadWrite.All" not in readme


def test_the_example_stack_explains_the_local_backend_organization():
    example = (FOUNDATION / "Pulumi.shared.yaml").read_text()
    assert "organization/crosscloud-foundation/shared" in example


# --- dependencies on a fresh checkout ----------------------------------------------------------

REPO = FOUNDATION.parent


def _requirements(path: Path) -> set[str]:
    """Distribution names a requirements file installs, following `-r` (relative to the file)."""
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            names |= _requirements((path.parent / line[3:].strip()).resolve())
        elif line:
            names.add(re.split(r"[\[=<>~! ;]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def _closure(names: set[str]) -> list[metadata.Distribution]:
    """The installed distributions `names` pull in (their `Requires-Dist`, extras left out)."""
    found: dict[str, metadata.Distribution] = {}
    todo = list(names)
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in found:
            continue
        found[name] = dist = metadata.distribution(name)
        for requirement in dist.requires or []:
            if "extra ==" not in requirement:
                todo.append(re.split(r"[\[=<>~! ;(]", requirement, maxsplit=1)[0])
    return list(found.values())


def _third_party_imports(program: Path) -> set[str]:
    """Dotted names of the non-standard, non-repository modules `program` imports, following
    the repository's own modules it imports."""
    seen: set[Path] = set()
    todo, imports = [program], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if (REPO / top).is_dir():
                    module = REPO.joinpath(*name.split("."))
                    todo += [
                        p for p in (module.with_suffix(".py"), module / "__init__.py") if p.exists()
                    ]
                elif top not in sys.stdlib_module_names and top != "__future__":
                    imports.add(name)
    return imports


@pytest.mark.parametrize(
    ("program", "requirements"),
    [
        (FOUNDATION / "__main__.py", FOUNDATION / "requirements.txt"),
        (REPO / "__main__.py", REPO / "requirements.txt"),
    ],
)
def test_a_fresh_checkout_installs_every_package_the_program_imports(program, requirements):
    """Pulumi's pip toolchain installs the project directory's requirements.txt into a new
    virtualenv (sdk/python/toolchain/pip.go) and nothing else."""
    # Installed top-level modules and their first-level submodules ("azure/core", "pulumi").
    files = {
        "/".join(file.parts[:depth]).removesuffix(".py")
        for dist in _closure(_requirements(requirements))
        for file in dist.files or []
        for depth in (1, 2)
        if len(file.parts) > depth or file.suffix == ".py"
    }
    missing = set()
    for name in _third_party_imports(program):
        parts = name.split(".")
        # `from a.b import c` is also listed as `a.b.c`: c may be a name in a.b.
        if "/".join(parts[:2]) not in files and not (len(parts) > 2 and parts[0] in files):
            missing.add(name)
    assert not missing, f"{requirements} does not install {sorted(missing)}"
