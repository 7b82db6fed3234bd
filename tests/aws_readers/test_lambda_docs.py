"""docs/aws-readers.md lists every error code the Lambda answers, with its status."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LIBRARY = REPO / "lambda_src" / "crosscloud_lambda"
# Codes the Lambda takes from the function's library as they are.
SHARED = {"bad_name": 400, "too_large": 413, "internal": 500}


def lambda_codes() -> dict[str, int]:
    codes = dict(SHARED)
    for path in (LIBRARY / "failures.py", LIBRARY / "app.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name == "CrossCloudError" and isinstance(node.args[1], ast.Constant):
                codes[node.args[1].value] = node.args[0].value
            elif name == "_unavailable" and isinstance(node.args[0], ast.Constant):
                codes[node.args[0].value] = 503
            elif isinstance(node.func, ast.Attribute) and node.func.attr == "timeout":
                codes["timeout"] = 504
    codes["misconfigured"] = 500
    return codes


def documented() -> dict[str, int]:
    text = (REPO / "docs" / "aws-readers.md").read_text()
    table = text.split("## Error codes", 1)[1].split("\n## ", 1)[0]
    found = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) >= 2 and cells[1].isdigit():
            for code in re.findall(r"`([a-z_]+)`", cells[0]):
                found[code] = int(cells[1])
    return found


def test_every_lambda_error_code_is_documented_with_its_status():
    codes, docs = lambda_codes(), documented()
    assert len(codes) >= 15
    assert {c: s for c, s in codes.items() if docs.get(c) != s} == {}


def test_the_documented_guard_for_the_reader_role_is_a_valid_deny_policy():
    # docs/aws-readers.md: the federated credential trusts the role ARN's text, so whoever may
    # pass the role, change the function or re-create the role becomes the reader; its sketch
    # of an SCP must parse and deny exactly those paths to everyone but the deployer.
    doc = (REPO / "docs" / "aws-readers.md").read_text()
    section = doc[doc.index("## What the trust does not cover") :]
    (block,) = re.findall(r"```json\n(.*?)```", section.split("\n## ")[0], flags=re.S)
    statements = json.loads(block)["Statement"]
    denied = {a for st in statements if st["Effect"] == "Deny" for a in st["Action"]}
    assert {
        "iam:PassRole",
        "iam:CreateRole",
        "iam:DeleteRole",
        "iam:UpdateAssumeRolePolicy",
        "lambda:UpdateFunctionCode",
        "lambda:UpdateFunctionConfiguration",
    } <= denied
    for statement in statements:
        assert statement["Condition"] == {
            "ArnNotEquals": {"aws:PrincipalArn": "<deployer role ARN>"}
        }
    assert "same name" in section and "lambda_source_function_arn" in section
