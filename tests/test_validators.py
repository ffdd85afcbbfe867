"""Bad answers are refused with a clear message, and nothing is written."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests import filemap, helpers

BAD_ANSWERS = {
    "package-starts-with-digit": ({"package_name": "1abc"}, "not a valid package name"),
    "package-is-keyword": ({"package_name": "class"}, "is a Python keyword"),
    "package-has-dash": ({"package_name": "my-pkg"}, "not a valid package name"),
    "package-upper-case": ({"package_name": "MyPkg"}, "not a valid package name"),
    "package-shadows-dependency": ({"package_name": "pandas"}, "would shadow"),
    "package-shadows-sqlalchemy": ({"package_name": "sqlalchemy"}, "would shadow"),
    "package-shadows-alembic": ({"package_name": "alembic"}, "would shadow"),
    "package-shadows-stdlib-json": ({"package_name": "json"}, "standard library"),
    "package-shadows-stdlib-logging": ({"package_name": "logging"}, "standard library"),
    "project-name-empty": ({"project_name": "  "}, "must not be empty"),
    "project-name-quote": ({"project_name": 'My "best" model'}, "without double quotes"),
    "project-name-without-letters": ({"project_name": "!!!"}, "not a valid package name"),
    "level-out-of-range": ({"level": 7}, "level"),
    "level-zero": ({"level": 0}, "level"),
    "email-malformed": ({"author_email": "not-an-email"}, "not a valid e-mail"),
    "email-without-domain": ({"author_email": "me@localhost"}, "not a valid e-mail"),
    "description-multiline": ({"description": "one\ntwo"}, "must be one line"),
    "s3-url-wrong-scheme": ({"data_remote": "s3", "data_remote_url": "gs://b/p"}, "s3://"),
    "gcs-url-wrong-scheme": ({"data_remote": "gcs", "data_remote_url": "s3://b/p"}, "gs://"),
    "local-remote-is-url": ({"data_remote_url": "s3://b/p"}, "not a URL"),
    "ci-unknown": ({"ci": "jenkins"}, "ci"),
}


@pytest.mark.parametrize(("answers", "message"), list(BAD_ANSWERS.values()), ids=list(BAD_ANSWERS))
def test_bad_answer_refused(template: Path, tmp_path: Path, answers: dict, message: str):
    destination = tmp_path / "project"
    data = {"project_name": "Churn Prediction", **answers}
    with pytest.raises(ValueError) as refused:
        helpers.copy_template(template, destination, data)
    assert message in str(refused.value)
    assert not destination.exists() or not any(destination.iterdir())


GOOD_ANSWERS = {
    "accented-name": ({"project_name": "Détection de fraude"}, "detection_de_fraude"),
    "digits-first": ({"project_name": "2024 Forecast"}, "project_2024_forecast"),
    "punctuation": ({"project_name": "Sales (EU) -- v2"}, "sales_eu_v2"),
}


@pytest.mark.parametrize(
    ("answers", "package"), list(GOOD_ANSWERS.values()), ids=list(GOOD_ANSWERS)
)
def test_default_package_name(template: Path, tmp_path: Path, answers: dict, package: str):
    destination = tmp_path / "project"
    helpers.copy_template(template, destination, answers)
    assert f"package_name: {package}\n" in (destination / ".copier-answers.yml").read_text(
        encoding="utf-8"
    )


def test_every_standard_library_module_is_refused():
    """The list in copier.yml holds every public stdlib module of the running Python."""
    refused = set(json.loads(filemap.copier_config()["stdlib_module_names"]["default"]))
    public = {name for name in sys.stdlib_module_names if not name.startswith("_")}
    assert public <= refused
