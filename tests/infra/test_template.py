"""`pulumi new <repo URL>` works: Pulumi.yaml's template section prompts only for real settings,
and each default is one `components/settings.py` accepts (an invalid default would make every
new project fail its first preview).

Schema: https://www.pulumi.com/docs/iac/guides/building-extending/creating-templates/
"""

from __future__ import annotations

from pathlib import Path

import yaml

from components.settings import ALLOWED_KEYS, NAMESPACE, Settings, parse_settings

PROJECT_FILE = Path(__file__).resolve().parents[2] / "Pulumi.yaml"


def template() -> dict:
    return yaml.safe_load(PROJECT_FILE.read_text())["template"]


def test_template_has_a_description_and_prompts_for_region_prefix_and_aws_region() -> None:
    section = template()
    assert section["description"].strip()
    assert set(section["config"]) == {
        f"{NAMESPACE}:azureLocation",
        f"{NAMESPACE}:awsRegion",
        f"{NAMESPACE}:prefix",
    }


def test_each_prompt_is_a_known_setting_with_a_valid_default_and_a_description() -> None:
    prompts = template()["config"]
    raw = {}
    for key, prompt in prompts.items():
        namespace, name = key.split(":", 1)
        assert namespace == NAMESPACE and name in ALLOWED_KEYS, key
        assert prompt["description"].strip(), key
        raw[name] = prompt["default"]
    settings = parse_settings(raw)  # raises SettingsError naming the key if a default is bad
    assert settings.azure_location == prompts[f"{NAMESPACE}:azureLocation"]["default"]
    assert settings.aws_region == prompts[f"{NAMESPACE}:awsRegion"]["default"]
    assert settings.prefix == prompts[f"{NAMESPACE}:prefix"]["default"]
    # The prompts offer the program's own defaults, so accepting them all changes nothing.
    assert (settings.azure_location, settings.aws_region, settings.prefix) == (
        Settings().azure_location,
        Settings().aws_region,
        Settings().prefix,
    )
