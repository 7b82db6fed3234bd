"""The pack's metadata: mandatory policies, project file, pinned requirements."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

import policy
from policy import rules

PACK = Path(policy.__file__).parent
REPO = PACK.parent
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;]+)$")


def pins(path: Path) -> dict[str, str]:
    """`name==version` lines of a requirements file (other lines: comments, -r includes)."""
    found = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line.strip())
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def test_every_policy_is_mandatory_and_uniquely_named() -> None:
    names = [p.name for p in rules.POLICIES]
    assert len(names) == len(set(names))
    assert all(p.enforcement_level is EnforcementLevel.MANDATORY for p in rules.POLICIES)
    assert {type(p) for p in rules.POLICIES} == {ResourceValidationPolicy, StackValidationPolicy}


def test_project_file_runs_the_pack_with_python_in_its_own_virtualenv() -> None:
    project = yaml.safe_load((PACK / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    # `.venv` is what the repository's .gitignore already keeps out of git.
    assert project["runtime"]["options"]["virtualenv"] == ".venv"
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])


def test_requirements_are_exact_pins_matching_the_program() -> None:
    pack = pins(PACK / "requirements.txt")
    assert set(pack) == {"pulumi", "pulumi-policy"}
    program = pins(REPO / "requirements.txt") | pins(REPO / "requirements-dev.txt")
    assert pack == {name: program[name] for name in pack}
