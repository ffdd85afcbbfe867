"""The declared `_min_copier_version` writes exactly the files the file map says.

Copier releases before it failed or, worse, silently wrote a wrong file set
(9.5 ignored templated `_exclude` entries). The minimum runs through
`uv tool run`, from the package registry.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests import filemap, helpers

MINIMUM = filemap.copier_config()["_min_copier_version"]


@pytest.mark.parametrize(
    "answers",
    [{"level": 1}, {"level": 2, "ci": "gitlab"}, {"level": 2, "ci": "none"}],
    ids=["l1-github", "l2-gitlab", "l2-none"],
)
def test_the_declared_minimum_copier_writes_the_mapped_files(
    template: Path, tmp_path: Path, answers: dict
):
    destination = tmp_path / "project"
    data = [arg for key, value in answers.items() for arg in ("--data", f"{key}={value}")]
    result = subprocess.run(
        ["uv", "tool", "run", "--from", f"copier=={MINIMUM}", "copier", "copy", "--trust",
         "--defaults", "--quiet", "--vcs-ref", "HEAD", *data, str(template), str(destination)],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    expected = filemap.expected_files(helpers.recorded_answers(destination))
    assert helpers.project_files(destination) == expected
