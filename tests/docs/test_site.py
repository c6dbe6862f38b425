"""The documentation site: `mkdocs build --strict` passes (no broken link, no missing page), the configuration
reference is generated from `Settings` (a new setting appears without anyone writing it down) and the CLI
reference from the click commands; the README stays a front page."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import click
import pytest
from pydantic import Field

from streams.cli import cli
from streams.settings import Settings
from support.processes import ROOT


def hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "_hooks" / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_new_setting_appears_in_the_configuration_reference():
    class Tomorrow(Settings):
        brand_new_knob: int = Field(3, ge=1, description="A knob added tomorrow.")

    table = hooks().settings_reference(Tomorrow)
    row = next(line for line in table.splitlines() if "PAIRSTREAM_BRAND_NEW_KNOB" in line)
    assert "`--brand-new-knob`" in row and "int" in row and "`3`" in row and "A knob added tomorrow." in row
    assert "PAIRSTREAM_BRAND_NEW_KNOB" not in hooks().settings_reference(Settings)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300, env={"NO_MKDOCS_2_WARNING": "1",
                                                                              "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_every_setting_is_on_the_built_configuration_page(site):
    page = (site / "reference" / "configuration" / "index.html").read_text()
    missing = [name for name in Settings.model_fields if f"PAIRSTREAM_{name.upper()}" not in page]
    assert missing == []


def test_every_command_is_on_the_built_cli_page(site):
    page = (site / "reference" / "cli" / "index.html").read_text()
    commands = click.Context(cli).command.commands if isinstance(cli, click.Group) else {}
    assert commands and [name for name in commands if f"pairstream {name}" not in page] == []


def test_the_wire_contracts_json_schemas_are_published(site):
    assert sorted(p.name for p in (site / "schemas").glob("*.json")) == sorted(
        p.name for p in (ROOT / "schemas" / "json").glob("*.json"))


def test_the_readme_is_a_front_page_that_links_into_the_docs():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 150
    linked = {page.split("#")[0] for page in __import__("re").findall(r"\]\((docs/[^)\s]+\.md[^)\s]*)\)", readme)}
    assert {"docs/getting-started.md", "docs/reference/configuration.md"} <= linked
    assert all((ROOT / page).exists() for page in linked), linked


def test_the_home_page_is_the_readme_with_its_links_made_relative(site):
    page = (site / "index.html").read_text()
    assert "Read the records before you train on them" in page or "read the records before you train" in page.lower()
    assert 'href="getting-started/' in page and 'href="docs/' not in page
    assert "make docs-serve" not in page
