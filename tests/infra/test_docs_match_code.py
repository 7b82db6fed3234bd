"""The README and docs/*.md say what the code does: config keys, defaults and ranges, stack
outputs, the function's app settings and error codes, make targets, benchmark figures, file paths
and in-page links. Each list in the docs is compared with the code it describes, so a key, output
or error code added to (or renamed in) the code fails here until the docs name it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from components import settings as settings_module
from components import shared_federation
from components.settings import ALLOWED_KEYS, Settings

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
DOCS = {path.name: path.read_text() for path in sorted((REPO / "docs").glob("*.md"))}
TROUBLESHOOTING = DOCS["troubleshooting.md"]


def section(text: str, heading: str) -> str:
    """The body of the `## heading` section of a Markdown text."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"no section '## {heading}'"
    return match.group(1)


def table_rows(text: str) -> list[list[str]]:
    """Cells of every Markdown table row in `text`, header and separator rows left out."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows[1:] if rows else rows


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def config_table() -> dict[str, list[str]]:
    rows = table_rows(section(README, "Configuration"))
    keys = [ticked(row[0])[0] for row in rows]
    assert len(keys) == len(set(keys)), "a config key appears twice in the README table"
    return {key.removeprefix("crosscloud:"): row[1:] for key, row in zip(keys, rows, strict=True)}


def test_the_readme_config_table_lists_exactly_the_keys_settings_accepts() -> None:
    assert sorted(config_table()) == sorted(ALLOWED_KEYS)


def test_the_readme_config_defaults_are_the_code_defaults() -> None:
    defaults = Settings()
    compared = 0
    for key, (default, _rule) in config_table().items():
        literals = ticked(default)
        field = re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()
        value = getattr(defaults, field)
        value = getattr(value, "kind", value)  # audience: the kind of choice
        if len(literals) != 1 or not isinstance(value, str | int) or value == "":
            continue
        # Booleans are written as Pulumi config spells them: true / false.
        assert literals[0] == (str(value).lower() if isinstance(value, bool) else str(value)), key
        compared += 1
    assert compared >= 10, "the README table lost its default column"


@pytest.mark.parametrize(
    ("key", "allowed"),
    [
        ("maximumInstanceCount", settings_module.MAXIMUM_INSTANCE_COUNT),
        ("auditRetentionDays", settings_module.AUDIT_RETENTION_DAYS),
        ("alwaysReadyInstances", settings_module.ALWAYS_READY_INSTANCES),
    ],
)
def test_the_readme_config_ranges_are_the_code_ranges(key: str, allowed: tuple[int, int]) -> None:
    rule = config_table()[key][1]
    assert rule.startswith(f"{allowed[0]}-{allowed[1]}"), (key, rule)


def test_the_readme_lists_the_allowed_instance_sizes_and_python_versions() -> None:
    table = config_table()
    assert set(ticked(table["instanceMemoryMb"][1])) == {
        str(size) for size in settings_module.INSTANCE_MEMORY_MB
    }
    assert set(settings_module.PYTHON_VERSIONS) <= set(ticked(table["pythonVersion"][1]))
    assert set(settings_module.DEPLOYER_PRINCIPAL_TYPES) <= set(
        ticked(table["deployerPrincipalType"][1])
    )


def exported_names(program: Path) -> set[str]:
    """First arguments of `pulumi.export(...)` in `program`, constants of shared_federation
    resolved (the foundation exports through them)."""
    names = set()
    for node in ast.walk(ast.parse(program.read_text())):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "export"
        ):
            continue
        first = node.args[0]
        if isinstance(first, ast.Constant):
            names.add(first.value)
        else:
            assert isinstance(first, ast.Attribute), ast.dump(first)
            names.add(getattr(shared_federation, first.attr))
    return names


def test_the_readme_outputs_table_is_what_the_program_exports() -> None:
    documented = {name for row in table_rows(section(README, "Outputs")) for name in ticked(row[0])}
    assert documented == exported_names(REPO / "__main__.py")


def test_the_readme_foundation_outputs_are_what_the_foundation_exports() -> None:
    match = re.search(r"Foundation outputs \(exactly these\):(.*?)\n\n", README, re.S)
    assert match, "README lost its list of foundation outputs"
    documented = set(re.findall(r"`(\w+)`", match.group(1)))
    assert documented == exported_names(REPO / "foundation" / "__main__.py")


def function_app_settings() -> set[str]:
    source = (REPO / "function_src" / "crosscloud_fn" / "settings.py").read_text()
    return set(re.findall(r'^[A-Z0-9_]+ = "(CROSSCLOUD_[A-Z0-9_]+)"', source, re.M))


def test_the_readme_app_settings_table_is_what_the_function_reads() -> None:
    rows = table_rows(section(README, "The function").split("| route")[0])
    documented = {name for row in rows for name in ticked(row[0])}
    assert documented == function_app_settings()


FUNCTION_LIB = REPO / "function_src" / "crosscloud_fn"


def dependencies() -> list[str]:
    """The keys of `DESCRIPTIONS` in crosscloud_fn/dependencies.py: what `*_unavailable` names."""
    tree = ast.parse((FUNCTION_LIB / "dependencies.py").read_text())
    constants = {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
    }
    (table,) = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id == "DESCRIPTIONS"
    ]
    assert isinstance(table, ast.Dict)
    return [constants[key.id] for key in table.keys if isinstance(key, ast.Name)]


def error_codes() -> dict[str, int]:
    """Every code `function_src/crosscloud_fn/errors.py` answers, with its HTTP status."""
    codes = {}
    for node in ast.walk(ast.parse((FUNCTION_LIB / "errors.py").read_text())):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "CrossCloudError"
        ):
            continue
        status, code = node.args[0], node.args[1]
        assert isinstance(status, ast.Constant), ast.dump(node)
        if isinstance(code, ast.Constant):
            codes[code.value] = status.value
        else:  # f"{exc.dependency}_unavailable": one code per dependency
            assert isinstance(code, ast.JoinedStr), ast.dump(code)
            suffix = code.values[-1].value
            codes.update({f"{dependency}{suffix}": status.value for dependency in dependencies()})
    return codes


def test_troubleshooting_lists_every_error_code_with_its_status() -> None:
    codes = error_codes()
    assert len(codes) >= 20 and codes["timeout"] == 504
    documented = {}
    for row in table_rows(section(TROUBLESHOOTING, "The function's error codes")):
        for code in ticked(row[0]):
            documented[code] = int(row[1])
    assert documented == codes


def test_every_make_target_the_docs_name_exists() -> None:
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, re.M))
    named = set()
    for text in (README, *DOCS.values()):
        named |= set(re.findall(r"`make ([a-z][\w-]*)", text))
        for block in re.findall(r"```(?:bash|sh)\n(.*?)```", text, re.S):
            named |= set(re.findall(r"^make ([a-z][\w-]*)", block, re.M))
    assert named and named <= targets, named - targets


def test_every_benchmark_figure_in_the_readme_is_one_a_bench_prints() -> None:
    printed = set()
    for path in (REPO / "bench").glob("*.py"):
        printed |= set(re.findall(r'"([a-z0-9_]+)"', path.read_text()))
    documented = {
        name for row in table_rows(section(README, "Benchmarks")) for name in ticked(row[0])
    }
    assert len(documented) >= 10 and documented <= printed, documented - printed


REPO_PATH = re.compile(
    r"(?<![\w./:-])((?:components|localcloud|shipping|policy|bench|function_src|tests|foundation"
    r"|verify|docs|sample_data)/[\w./-]*\w)"
)


@pytest.mark.parametrize("doc", ["README.md", *(f"docs/{name}" for name in DOCS)])
def test_every_repository_path_the_docs_name_exists(doc: str) -> None:
    text = (REPO / doc).read_text()
    paths = set(REPO_PATH.findall(text)) - {"foundation/shared"}  # a stack name, not a path
    missing = sorted(path for path in paths if not (REPO / path).exists())
    assert not missing
    assert doc != "README.md" or len(paths) >= 20, "README's paths no longer found"


def github_anchor(heading: str) -> str:
    """GitHub's heading id: lowercase, punctuation other than `-` and `_` dropped, spaces to `-`."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", ["README.md", *(f"docs/{name}" for name in DOCS)])
def test_every_in_page_link_has_its_heading(doc: str) -> None:
    text = (REPO / doc).read_text()
    anchors = {github_anchor(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.M)}
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links <= anchors, links - anchors
