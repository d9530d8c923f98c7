"""The configuration reference is made from the code and cannot drift: every key is described, `polyir config`
prints YAML that reads back as the defaults, and docs/configuration.md is what the code generates now."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic_core import PydanticUndefined

from polyir.reference import CONFIGS, keys, markdown
from tests.helpers import polyir

ROOT = Path(__file__).resolve().parents[1]


def test_configuration_page_is_up_to_date():
    page = ROOT / "docs" / "configuration.md"
    assert page.read_text() == markdown(), "regenerate it: polyir config --markdown > docs/configuration.md"


@pytest.mark.parametrize("name", list(CONFIGS))
def test_every_key_and_section_is_described(name):
    undescribed = [key.path for key in keys(CONFIGS[name]) if len(key.description.split()) < 2]
    assert undescribed == []
    sections = {key.section for key in keys(CONFIGS[name]) if key.section is not None}
    assert all(section.__doc__ for section in sections)


def _lookup(document: dict, path: str):
    node = document
    for part in path.split("."):
        name, _, _ = part.partition("[]")
        node = node[name][0] if part.endswith("[]") else node[name]
    return node


@pytest.mark.parametrize("name", list(CONFIGS))
def test_printed_yaml_reads_back_as_every_default(name):
    result = polyir("config", name)
    assert result.returncode == 0, result.stderr
    document = yaml.safe_load(result.stdout)
    for key in keys(CONFIGS[name]):
        if key.section is not None or any(part.partition("[]")[0] in ("dataset", "translate", "distill", "lora")
                                          for part in key.path.split(".")[:-1]):
            continue  # sections are checked key by key; optional sections are printed commented out
        value = _lookup(document, key.path)
        if key.default is PydanticUndefined:
            assert value is None, key.path
        else:
            expected = key.default if not isinstance(key.default, Path) else str(key.default)
            assert value == expected, key.path
    assert "# dataset:" in result.stdout if name == "compare" else "dataset" not in result.stdout


def test_both_configurations_and_the_page_from_the_command_line():
    both = polyir("config")
    assert both.returncode == 0, both.stderr
    train, compare = list(yaml.safe_load_all(both.stdout))
    assert set(train) >= {"output_dir", "data", "step"} and set(compare) >= {"grid", "budget", "test"}
    page = polyir("config", "--markdown")
    assert page.returncode == 0 and page.stdout == markdown()


def test_unknown_configuration_name_exits_2():
    result = polyir("config", "trian")
    assert result.returncode == 2
    assert "expected train or compare, got 'trian'" in result.stderr
