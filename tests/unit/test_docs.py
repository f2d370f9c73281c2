"""Every setting turnout reads is documented (the reference cannot drift from the defaults)."""

from __future__ import annotations

import configparser
from importlib import resources
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_default_setting_is_in_the_configuration_reference():
    defaults = configparser.ConfigParser(interpolation=None)
    defaults.read_string(resources.files("turnout.defaults").joinpath("defaults.txt").read_text())
    reference = (DOCS / "config.md").read_text()
    missing = [f"[{section}] {key}" for section in defaults.sections() for key in defaults.options(section)
               if f"`{key}`" not in reference]
    assert missing == []
    assert all(f"## [{section}]" in reference for section in defaults.sections())


def test_readme_gives_the_two_setup_commands():
    readme = (DOCS.parent / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
