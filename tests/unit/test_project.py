"""A psiTurk project folder: what stops start-up, and how the message reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from turnout.config import ConfigError
from turnout.project import REQUIRED_TEMPLATES, ProjectError, load_project


def error_of(root: Path) -> str:
    with pytest.raises(ProjectError) as caught:
        load_project(root, with_custom=False)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_project_without_templates_folder_is_refused_with_a_hint(tmp_path: Path) -> None:
    message = error_of(tmp_path)
    assert str(tmp_path / "templates") in message
    assert "turnout init" in message


@pytest.mark.parametrize("missing", REQUIRED_TEMPLATES)
def test_missing_required_template_is_named(project_dir: Path, missing: str) -> None:
    (project_dir / "templates" / missing).unlink()
    message = error_of(project_dir)
    assert missing in message
    assert str(project_dir / "templates") in message


def test_every_missing_template_is_named_at_once(project_dir: Path) -> None:
    (project_dir / "templates" / "closepopup.html").unlink()
    (project_dir / "templates" / "thanks-mturksubmit.html").unlink()
    message = error_of(project_dir)
    assert "thanks-mturksubmit.html" in message and "closepopup.html" in message


def test_project_errors_are_configuration_errors(project_dir: Path) -> None:
    # So every entry point (create_app, turnout serve) stops the same way.
    (project_dir / "templates" / "ad.html").unlink()
    with pytest.raises(ConfigError):
        load_project(project_dir)


def test_conditions_json_names_the_conditions(project_dir: Path) -> None:
    (project_dir / "conditions.json").write_text('{"congruent": {}, "incongruent": {}}')
    assert load_project(project_dir, with_custom=False).conditions == ["congruent", "incongruent"]


@pytest.mark.parametrize("text", ['{"a": 1', "[]", "{}", '"x"'])
def test_bad_conditions_json_is_refused_naming_the_file(project_dir: Path, text: str) -> None:
    (project_dir / "conditions.json").write_text(text)
    assert str(project_dir / "conditions.json") in error_of(project_dir)


def test_create_app_stops_on_a_missing_template(make_app, project_dir: Path) -> None:
    (project_dir / "templates" / "consent.html").unlink()
    with pytest.raises(ConfigError, match="consent.html"):
        make_app()
