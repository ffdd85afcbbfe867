"""The template's docs say what copier.yml and the code do."""

from __future__ import annotations

import re

import pytest

from tests import filemap, helpers

QUESTIONS_DOC = helpers.REPO_ROOT / "docs" / "questions.md"


def question_row(key: str) -> str:
    text = QUESTIONS_DOC.read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith(f"| `{key}` |")]
    assert len(rows) == 1, f"docs/questions.md has {len(rows)} row(s) for `{key}`"
    return rows[0]


@pytest.mark.parametrize("key", list(filemap.questions()))
def test_every_question_is_documented_with_its_choices_and_default(key: str):
    spec = filemap.questions()[key]
    row = question_row(key)
    for value in (spec.get("choices") or {}).values():
        assert f"`{value}`" in row, f"choice {value!r} of `{key}` missing from docs/questions.md"
    default = spec.get("default")
    if default is not None and "{{" not in str(default) and "{%" not in str(default):
        assert f"`{default}`" in row, f"default of `{key}` missing from docs/questions.md"


def test_the_docs_list_no_question_that_does_not_exist():
    text = QUESTIONS_DOC.read_text(encoding="utf-8").split("## Computed values")[0]
    documented = set(re.findall(r"^\| `(\w+)` \|", text, flags=re.MULTILINE))
    assert documented == set(filemap.questions())


def test_the_docs_name_the_computed_values():
    text = QUESTIONS_DOC.read_text(encoding="utf-8")
    for key in filemap.internal_variables():
        if not key.endswith(("_names", "_keywords")):
            assert f"`{key}`" in text, f"computed value `{key}` not explained in questions.md"


def test_the_docs_state_the_current_version():
    version = helpers.current_version()
    changelog = (helpers.REPO_ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## [{version}]" in changelog
    assert f"v{version}" in (helpers.REPO_ROOT / "docs" / "upgrading.md").read_text(
        encoding="utf-8"
    )
