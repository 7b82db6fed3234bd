"""`make diagram`: the README's trust-chain picture is what the program would deploy for the fixed
example configuration (docs/examples/Pulumi.example.yaml, never the user's own Pulumi.dev.yaml),
and the picture follows the program (a change of trust changes the drawing)."""

from __future__ import annotations

import pytest

from localcloud import diagram
from localcloud.mocked_program import REPO, run_program

EXTRA = "0f0e0d0c-0b0a-4909-8807-060504030201"


@pytest.fixture(scope="module")
def dev_diagram() -> str:
    return diagram.draw(run_program(diagram.stack_config(diagram.EXAMPLE_STACK)))


def test_readme_embeds_what_make_diagram_draws_for_the_example_stack(dev_diagram: str) -> None:
    embedded = diagram.embedded((REPO / "README.md").read_text())
    assert embedded is not None, "README.md lost its trust-diagram block"
    assert embedded == dev_diagram, "README.md's diagram is stale: run `make readme-diagram`"


def test_the_readme_diagram_does_not_depend_on_the_users_stack_file(
    tmp_path, monkeypatch: pytest.MonkeyPatch, dev_diagram: str
) -> None:
    # A user's edited Pulumi.dev.yaml (here: another prefix and region) is what `make diagram`
    # prints, while the README's copy is refreshed from the fixed example only.
    edited = tmp_path / "Pulumi.dev.yaml"
    edited.write_text("config:\n  crosscloud:prefix: mine\n  crosscloud:awsRegion: us-east-2\n")
    monkeypatch.setattr(diagram, "REPO", tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(f"{diagram.BEGIN}\nold\n{diagram.END}\n")
    assert diagram.main(["--readme", str(readme)]) == 0
    assert diagram.embedded(readme.read_text()) == dev_diagram


def test_make_diagram_prints_the_users_own_stack(tmp_path, capsys, dev_diagram: str) -> None:
    edited = tmp_path / "Pulumi.dev.yaml"
    edited.write_text("config:\n  crosscloud:prefix: mine\n")
    assert diagram.main(["--stack-config", str(edited)]) == 0
    printed = capsys.readouterr().out
    assert printed != dev_diagram and "mine-dev" in printed


def test_drawing_is_deterministic(dev_diagram: str) -> None:
    again = diagram.draw(run_program(diagram.stack_config(diagram.EXAMPLE_STACK)))
    assert again == dev_diagram


def test_the_dev_diagram_shows_each_link_of_the_chain(dev_diagram: str) -> None:
    lines = dev_diagram.splitlines()
    for identity in ("id1", "id2"):
        assert f'  {identity} -->|"holds AssumeAWSRole"| fed' in lines
        assert f'  {identity} -->|"token sub trusted"| role' in lines
        assert f'  {identity} -->|"Blob Data Reader"| blob1' in lines
        assert f'  {identity} -.->|"telemetry"| appi' in lines
    assert '  role -->|"List + GetObject"| s3_1' in lines
    assert '  s3_1 -.->|"server access logs"| s3log1' in lines
    assert any(line.startswith("  blob1 -.->") and "StorageRead" in line for line in lines)


def test_an_extra_trusted_identity_appears_with_its_grants() -> None:
    drawn = diagram.draw(run_program({"extraPrincipalIds": [EXTRA]}))
    (node,) = [line for line in drawn.splitlines() if EXTRA[:8] in line]
    extra = node.split("(", 1)[0].strip()
    assert f'  {extra} -->|"token sub trusted"| role' in drawn.splitlines()
    assert f'  {extra} -->|"holds AssumeAWSRole"| fed' in drawn.splitlines()
    # Extra ids get the app role and the trust, not the Blob reader role or telemetry.
    assert f'  {extra} -->|"Blob Data Reader"| blob1' not in drawn.splitlines()


def test_readme_update_rewrites_only_the_block(tmp_path, dev_diagram: str) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{diagram.BEGIN}\nold\n{diagram.END}\nafter\n")
    assert diagram.main(["--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("before\n") and text.endswith("after\n")
    assert diagram.embedded(text) == dev_diagram


def test_the_dev_diagram_shows_the_aws_readers(dev_diagram: str) -> None:
    lines = dev_diagram.splitlines()
    assert '  awsid1 -->|"Blob Data Reader (container only)"| awsblob1' in lines
    assert '  lambda -->|"AWS token = client assertion"| awsid1' in lines
    assert any("container mycontainer" in line for line in lines)


def test_without_aws_readers_no_lambda_is_drawn() -> None:
    assert "lambda" not in diagram.draw(run_program())
