"""The README and docs/*.md say what the code does: config keys, defaults and ranges, stack
outputs, the function's app settings and error codes, make targets, benchmark figures, file paths
and in-page links. Each list in the docs is compared with the code it describes, so a key, output
or error code added to (or renamed in) the code fails here until the docs name it. Each fact lives
in one document: config and outputs in docs/configuration.md, the function's contract and the
benchmarks in docs/design.md, foundation outputs in docs/teams.md, error codes in
docs/troubleshooting.md. The README stays short and points there.
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
CONFIGURATION = DOCS["configuration.md"]
DESIGN = DOCS["design.md"]
TEAMS = DOCS["teams.md"]
README_MAX_BYTES = 12 * 1024


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
    rows = table_rows(section(CONFIGURATION, "Keys"))
    keys = [ticked(row[0])[0] for row in rows]
    assert len(keys) == len(set(keys)), "a config key appears twice in the configuration table"
    return {key.removeprefix("crosscloud:"): row[1:] for key, row in zip(keys, rows, strict=True)}


def test_the_config_table_lists_exactly_the_keys_settings_accepts() -> None:
    assert sorted(config_table()) == sorted(ALLOWED_KEYS)


def test_the_config_defaults_are_the_code_defaults() -> None:
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
    assert compared >= 10, "the configuration table lost its default column"


@pytest.mark.parametrize(
    ("key", "allowed"),
    [
        ("maximumInstanceCount", settings_module.MAXIMUM_INSTANCE_COUNT),
        ("auditRetentionDays", settings_module.AUDIT_RETENTION_DAYS),
        ("alwaysReadyInstances", settings_module.ALWAYS_READY_INSTANCES),
    ],
)
def test_the_config_ranges_are_the_code_ranges(key: str, allowed: tuple[int, int]) -> None:
    rule = config_table()[key][1]
    assert rule.startswith(f"{allowed[0]}-{allowed[1]}"), (key, rule)


def test_the_config_table_lists_the_allowed_instance_sizes_and_python_versions() -> None:
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


def test_the_outputs_table_is_what_the_program_exports() -> None:
    documented = {
        name for row in table_rows(section(CONFIGURATION, "Outputs")) for name in ticked(row[0])
    }
    assert documented == exported_names(REPO / "__main__.py")


def test_the_foundation_outputs_are_what_the_foundation_exports() -> None:
    match = re.search(r"Foundation outputs \(exactly these\):(.*?)\n\n", TEAMS, re.S)
    assert match, "docs/teams.md lost its list of foundation outputs"
    documented = set(re.findall(r"`(\w+)`", match.group(1)))
    assert documented == exported_names(REPO / "foundation" / "__main__.py")


def function_app_settings() -> set[str]:
    source = (REPO / "function_src" / "crosscloud_fn" / "settings.py").read_text()
    return set(re.findall(r'^[A-Z0-9_]+ = "(CROSSCLOUD_[A-Z0-9_]+)"', source, re.M))


def test_the_app_settings_table_is_what_the_function_reads() -> None:
    rows = table_rows(section(DESIGN, "The function's contract").split("| route")[0])
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


def test_every_benchmark_figure_in_the_design_is_one_a_bench_prints() -> None:
    printed = set()
    for path in (REPO / "bench").glob("*.py"):
        printed |= set(re.findall(r'"([a-z0-9_]+)"', path.read_text()))
    documented = {
        name for row in table_rows(section(DESIGN, "Benchmarks")) for name in ticked(row[0])
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
    assert doc != "docs/design.md" or len(paths) >= 20, "design.md's paths no longer found"


def github_anchor(heading: str) -> str:
    """GitHub's heading id: lowercase, punctuation other than `-` and `_` dropped, spaces to `-`."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", ["README.md", *(f"docs/{name}" for name in DOCS)])
def test_every_in_page_link_has_its_heading(doc: str) -> None:
    text = (REPO / doc).read_text()
    anchors = {github_anchor(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.M)}
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links <= anchors, links - anchors


def markdown_links(text: str) -> list[str]:
    """Targets of the relative Markdown links in `text` (not web addresses, not in-page)."""
    return [
        target
        for target in re.findall(r"\]\(([^)\s]+)\)", text)
        if not re.match(r"[a-z]+:", target) and not target.startswith("#")
    ]


@pytest.mark.parametrize("doc", ["README.md", *(f"docs/{name}" for name in DOCS)])
def test_every_link_to_another_document_finds_it_and_its_heading(doc: str) -> None:
    source = REPO / doc
    for target in markdown_links(source.read_text()):
        path, _, anchor = target.partition("#")
        linked = (source.parent / path).resolve()
        assert linked.exists(), f"{doc}: {target}"
        if anchor:
            headings = re.findall(r"^#{1,6} (.+)$", linked.read_text(), re.M)
            assert anchor in {github_anchor(h) for h in headings}, f"{doc}: {target}"


def test_the_readme_is_short_and_starts_with_the_two_commands() -> None:
    assert len(README.encode()) <= README_MAX_BYTES, f"README.md is {len(README.encode())} bytes"
    first_screen = "\n".join(README.splitlines()[:25])
    for command in ("make test", "make demo"):
        assert re.search(rf"^{command}\b", first_screen, re.M), command
    assert re.search(r"make test.*~\d+ min", first_screen), "say how long `make test` takes"
    linked = {Path(target.partition("#")[0]).name for target in markdown_links(README)}
    assert set(DOCS) <= linked, sorted(set(DOCS) - linked)


# Text files of the repository (what git tracks), for checks over every reference.
TEXT_SUFFIXES = {".py", ".md", ".txt", ".yaml", ".yml", ".toml", ".json", ".cfg", ""}
SKIPPED = {".git", ".venv", "node_modules", ".build", ".pytest_cache", ".ruff_cache"}


def repository_texts() -> dict[str, str]:
    texts = {}
    for path in REPO.rglob("*"):
        relative = path.relative_to(REPO)
        if SKIPPED & set(relative.parts) or not path.is_file():
            continue
        if path.suffix in TEXT_SUFFIXES and path.stat().st_size < 1_000_000:
            texts[str(relative)] = path.read_text(errors="replace")
    return texts


def test_no_reference_to_a_design_document_outside_the_repository() -> None:
    # The design document is docs/design.md; the team's brief it grew from is not in the
    # repository, so a reference to it helps no reader.
    gone = "DESIGN" + ".md"
    offenders = sorted(path for path, text in repository_texts().items() if gone in text)
    assert offenders == []


def test_every_quoted_design_section_exists() -> None:
    # Code cites a section as the document's path, an optional comma, the heading in quotes.
    headings = {h.strip() for h in re.findall(r"^#{1,6} (.+)$", DESIGN, re.M)}
    cited = 0
    for path, text in repository_texts().items():
        for quoted in re.findall(r'docs/design\.md,? "([^"]+)"', text):
            cited += 1
            assert quoted in headings, f"{path}: docs/design.md has no section {quoted!r}"
    assert cited >= 10, "the code stopped citing docs/design.md sections"


PERMISSION_NAMES = re.compile(
    r"\b(?:iam|s3|sts):[A-Z][A-Za-z*]+|Application\.ReadWrite\.\w+|AppRoleAssignment\.\w+\.\w+"
)


# What the deployed role itself does and is granted: the design and the error messages name these.
RUNTIME_ACTIONS = {"sts:AssumeRoleWithWebIdentity", "s3:ListBucket", "s3:GetObject"} | {
    # The AWS readers' Lambda role: its one action and the condition keys that bound it.
    "sts:GetWebIdentityToken",
    "sts:IdentityTokenAudience",
    "sts:SigningAlgorithm",
    "sts:DurationSeconds",
}


def test_permissions_are_listed_in_one_document() -> None:
    # What a deployer, CI identity or operator needs is in docs/permissions.md only; elsewhere a
    # document links there (shell commands that grant a permission may name it).
    for name, text in {"README.md": README, **DOCS}.items():
        if name == "permissions.md":
            continue
        prose = re.sub(r"```.*?```", "", text, flags=re.S)
        assert set(PERMISSION_NAMES.findall(prose)) - RUNTIME_ACTIONS == set(), name
    assert len(set(PERMISSION_NAMES.findall(DOCS["permissions.md"]))) >= 40


def test_the_route_table_is_what_the_function_serves() -> None:
    source = (REPO / "function_src" / "function_app.py").read_text()
    served = set(re.findall(r'@app\.route\(route="([^"]+)"', source))
    table = "| route" + section(DESIGN, "The function's contract").split("| route", 1)[1]
    documented = {
        re.match(r"GET /api/(\w+)", ticked(row[0])[0]).group(1) for row in table_rows(table)
    }
    assert served and documented == served
