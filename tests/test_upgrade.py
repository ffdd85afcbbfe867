"""Climbing a level, or updating from the previous release, keeps the team's work.

A project gets the edits a team makes in its first weeks (a rewritten data
contract with a new column and a loosened rule, notebook and README changes, an
own file, an added dependency; at level 2 also params (the new column as a
feature, random_forest chosen, C tuned), the ingestion code and a new model
architecture), is committed, then updated with `copier update`. The result
must keep every edit, contain no conflict, match a fresh copy at the target
level carrying the same edits, and pass its own CI on a fresh clone. Going
down a level is refused.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import helpers

PROJECT_NAME = "Churn Prediction"
PACKAGE = "churn_prediction"
OWN_FILES = {"docs/team-notes.md", "scripts/show_params.py", "uv.lock"}
ADDED_DEPENDENCY = "tabulate"
# A team adds a dependency to use it (deptry, from level 2, refuses unused ones).
OWN_SCRIPT = """\"\"\"Print params.yaml's features as a table.\"\"\"

from pathlib import Path

import yaml
from tabulate import tabulate

features = yaml.safe_load(Path("params.yaml").read_text(encoding="utf-8"))["features"]
print(tabulate(features.items(), headers=["kind", "columns"]))
"""

# Where the moved modules live, by layout (release 0.2.0 grouped the package).
MODULE_PATHS = {
    "0.1": {"read": f"src/{PACKAGE}/read.py", "train": f"src/{PACKAGE}/train.py"},
    "0.2": {"read": f"src/{PACKAGE}/pipeline/read.py", "train": f"src/{PACKAGE}/pipeline/train.py"},
}

NEW_CONTRACT = """data_contract:
  min_rows: 200
  columns:
    radius: {type: float, min: 5.0, max: 35.0, max_missing: 0.0}
    texture: {type: float, min: 5.0, max: 45.0, max_missing: 0.1}
    perimeter: {type: float, min: 30.0, max: 250.0, max_missing: 0.0}
    area: {type: float, min: 100.0, max: 3000.0, max_missing: 0.0}
    smoothness: {type: float, min: 0.0, max: 0.2, max_missing: 0.05}
    compactness: {type: float, min: 0.0, max: 0.4, max_missing: 0.0}
    concavity: {type: float, min: 0.0, max: 0.5, max_missing: 0.0}
    symmetry: {type: float, min: 0.0, max: 0.4, max_missing: 0.0}
    clinic: {type: category, allowed: [north, south, east, west], max_missing: 0.0}
    age: {type: int, min: 18, max: 100, max_missing: 0.0}
    malignant: {type: int, allowed: [0, 1], max_missing: 0.0}
"""


def replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} not found once in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def rewrite_data_contract(project: Path) -> None:
    """The team's own rules: other bounds and row count, a new `age` column."""
    canvas = project / "canvas.yaml"
    text = canvas.read_text(encoding="utf-8")
    start = text.index("data_contract:")
    canvas.write_text(text[:start] + NEW_CONTRACT, encoding="utf-8")
    replace_once(canvas, "threshold: 0.95", "threshold: 0.96")
    # Their data gains the column (the sample script stands in for their source).
    replace_once(
        project / "scripts" / "make_sample_data.py",
        '    frame["malignant"] = (source.target == 0).astype(int)\n',
        '    frame["age"] = rng.integers(30, 80, size=len(frame))\n'
        '    frame["malignant"] = (source.target == 0).astype(int)\n',
    )


def level1_edits(project: Path, layout: str) -> None:
    replace_once(project / "notebooks" / "01-baseline.ipynb", '\\"C\\": 1.0', '\\"C\\": 0.5')
    with (project / "README.md").open("a", encoding="utf-8") as readme:
        readme.write("\n## Team notes\n\nAsk Ana before changing the canvas threshold.\n")
    replace_once(
        project / "docs" / "canvas.md",
        "Who owns the source data, who to ask about a column?",
        "Pathology data team (Ana Lima).",
    )
    rewrite_data_contract(project)


def level2_edits(project: Path, layout: str) -> None:
    replace_once(
        project / "params.yaml",
        "  categorical: [clinic]\n",
        "  categorical: [clinic]\n  # age joined the features in week 3 (Ana)\n",
    )
    replace_once(project / "params.yaml", "symmetry]", "symmetry, age]")
    # Their own tuning: another architecture, and the regularisation tried before it.
    replace_once(
        project / "params.yaml", "architecture: logistic_regression", "architecture: random_forest"
    )
    replace_once(project / "params.yaml", "      C: 1.0\n", "      C: 0.5\n")
    modules = MODULE_PATHS[layout]
    replace_once(
        project / modules["read"],
        "    frame.columns = [str(column).strip() for column in frame.columns]\n",
        "    frame.columns = [str(column).strip() for column in frame.columns]\n"
        "    frame = frame.drop_duplicates()  # our export repeats rows\n",
    )
    replace_once(
        project / modules["train"],
        '    "gradient_boosting": _gradient_boosting,\n',
        '    "gradient_boosting": _gradient_boosting,\n'
        '    "shallow_forest": _random_forest,  # same builder, tuned in params.yaml\n',
    )


def level3_edits(project: Path, layout: str) -> None:
    replace_once(project / "deploy.yaml", "  margin: 0.005\n", "  margin: 0.01 # the team's bar\n")
    replace_once(
        project / f"src/{PACKAGE}/serving/app.py",
        '"""The model API (FastAPI): create_app() builds it from a model folder.\n',
        '"""The model API (FastAPI): create_app() builds it from a model folder.\n\n'
        "Team note: the clinic portal calls /predict in batches of 50.\n",
    )


def level4_edits(project: Path, layout: str) -> None:
    replace_once(
        project / "monitoring.yaml",
        "  retention_days: 90\n",
        "  retention_days: 30 # the clinics' privacy rule (Ana)\n",
    )


EDITS_BY_LEVEL: dict[int, Callable[[Path, str], None]] = {
    1: level1_edits,
    2: level2_edits,
    3: level3_edits,
    4: level4_edits,
}


def apply_team_edits(project: Path, level: int, layout: str) -> None:
    for edit_level, edit in EDITS_BY_LEVEL.items():
        if edit_level <= level:
            edit(project, layout)


def add_own_work(project: Path) -> None:
    subprocess.run(
        ["uv", "add", "--no-sync", ADDED_DEPENDENCY], cwd=project, check=True, capture_output=True
    )
    (project / "docs" / "team-notes.md").write_text("# Notes\n\nOur own file.\n", encoding="utf-8")
    (project / "scripts" / "show_params.py").write_text(OWN_SCRIPT, encoding="utf-8")


@dataclass(frozen=True)
class Update:
    start_version: str  # a release ("0.1.0") or "current"
    start_level: int
    end_level: int
    representative: bool  # runs on every .ci/run; the others in the full matrix

    @property
    def id(self) -> str:
        return f"{self.start_version}-l{self.start_level}-to-current-l{self.end_level}"

    @property
    def ref(self) -> str:
        return "HEAD" if self.start_version == "current" else f"v{self.start_version}"

    @property
    def layout(self) -> str:
        """Where the moved modules are in the start version."""
        return "0.1" if self.start_version == "0.1.0" else "0.2"

    def param(self) -> object:
        marks = [] if self.representative else [pytest.mark.full_matrix]
        return pytest.param(self, id=self.id, marks=marks)


PREVIOUS = helpers.PREVIOUS_RELEASE[0]
OLDEST = helpers.RELEASES[0][0]
UPDATES = [
    Update("current", 1, 2, representative=False),
    Update("current", 2, 3, representative=False),
    Update("current", 1, 3, representative=False),
    Update("current", 3, 4, representative=False),
    Update("current", 2, 4, representative=False),
    Update("current", 1, 4, representative=False),
    # From the previous release, climbing as well: both promises in one project.
    Update(PREVIOUS, 4, 4, representative=True),
    Update(PREVIOUS, 3, 4, representative=False),
    Update(PREVIOUS, 2, 2, representative=False),
    Update(PREVIOUS, 3, 3, representative=False),
    Update(PREVIOUS, 2, 3, representative=False),
    Update(OLDEST, 2, 2, representative=False),  # across the 0.2.0 move of modules
    Update(OLDEST, 1, 1, representative=False),
    Update(OLDEST, 1, 2, representative=False),
]


@pytest.fixture(scope="module", params=[update.param() for update in UPDATES])
def updated(request, template: Path, tmp_path_factory: pytest.TempPathFactory):
    update: Update = request.param
    project = tmp_path_factory.mktemp(update.id) / "project"
    helpers.copy_template(
        template,
        project,
        {"project_name": PROJECT_NAME, "level": update.start_level},
        vcs_ref=update.ref,
    )
    helpers.lock_and_commit(project, "Start")
    apply_team_edits(project, update.start_level, update.layout)
    add_own_work(project)
    helpers.commit_all(project, "Team work")

    helpers.update_project(project, {"level": update.end_level})

    fresh = tmp_path_factory.mktemp(f"{update.id}-fresh") / "project"
    # The same answers: an update keeps the recorded ones (releases before 0.6.0
    # named the default DVC remote after the package, not the folder).
    recorded_remote = helpers.recorded_answers(project)["data_remote_url"]
    helpers.copy_template(
        template,
        fresh,
        {"project_name": PROJECT_NAME, "level": update.end_level,
         "data_remote_url": recorded_remote},
    )  # fmt: skip
    apply_team_edits(fresh, update.start_level, "0.2")
    return update, project, fresh


def test_update_records_the_level_and_version(updated):
    update, project, _ = updated
    answers = helpers.recorded_answers(project)
    assert answers["level"] == update.end_level
    assert answers["_commit"] == f"v{helpers.current_version()}"


def test_update_leaves_no_conflict(updated):
    _, project, _ = updated
    status = helpers.git(project, "status", "--porcelain").splitlines()
    unmerged = [line for line in status if "U" in line[:2] or line[:2] in {"AA", "DD"}]
    assert unmerged == []
    for relative in helpers.project_files(project):
        text = (project / relative).read_text(encoding="utf-8", errors="replace")
        assert "<<<<<<<" not in text and ">>>>>>>" not in text, f"conflict markers in {relative}"
    assert not list(project.rglob("*.rej"))


def test_update_keeps_team_edits(updated):
    update, project, _ = updated
    assert '\\"C\\": 0.5' in (project / "notebooks" / "01-baseline.ipynb").read_text()
    assert "## Team notes" in (project / "README.md").read_text(encoding="utf-8")
    canvas = (project / "canvas.yaml").read_text(encoding="utf-8")
    assert NEW_CONTRACT in canvas and "threshold: 0.96" in canvas
    assert (project / "docs" / "team-notes.md").is_file()
    assert f'"{ADDED_DEPENDENCY}>=' in (project / "pyproject.toml").read_text(encoding="utf-8")
    if update.start_level >= 2:
        modules = MODULE_PATHS["0.2"]
        assert "drop_duplicates" in (project / modules["read"]).read_text(encoding="utf-8")
        assert "shallow_forest" in (project / modules["train"]).read_text(encoding="utf-8")
        params = (project / "params.yaml").read_text(encoding="utf-8")
        assert "symmetry, age]" in params
        assert "architecture: random_forest" in params and "C: 0.5" in params
    if update.start_level >= 3:
        assert "margin: 0.01 # the team's bar" in (project / "deploy.yaml").read_text()
        app = (project / f"src/{PACKAGE}/serving/app.py").read_text(encoding="utf-8")
        assert "Team note: the clinic portal" in app
    if update.start_level >= 4:
        monitoring = (project / "monitoring.yaml").read_text(encoding="utf-8")
        assert "retention_days: 30 # the clinics' privacy rule" in monitoring


def test_update_matches_a_fresh_copy_with_the_same_edits(updated):
    _, project, fresh = updated
    assert helpers.project_files(project) - OWN_FILES == helpers.project_files(fresh)
    for relative in sorted(helpers.project_files(fresh) - {"pyproject.toml"}):
        assert (project / relative).read_bytes() == (fresh / relative).read_bytes(), (
            f"{relative} differs from a fresh copy"
        )

    def without_added(path: Path) -> list[str]:
        lines = path.read_text(encoding="utf-8").splitlines()
        return [line for line in lines if ADDED_DEPENDENCY not in line]

    assert without_added(project / "pyproject.toml") == without_added(fresh / "pyproject.toml")


@pytest.mark.slow
def test_updated_project_ci_passes_on_fresh_clone(updated, tmp_path: Path):
    _, project, _ = updated
    helpers.lock_and_commit(project, "Update from the template")  # what the message says
    clone = helpers.clone(project, tmp_path / "clone")
    helpers.run_ci(clone)


def tree_digest(project: Path) -> dict[str, str]:
    return {
        relative: hashlib.sha256((project / relative).read_bytes()).hexdigest()
        for relative in helpers.project_files(project)
    }


def test_downgrade_is_refused_and_changes_nothing(template: Path, tmp_path: Path):
    project = tmp_path / "project"
    helpers.copy_template(template, project, {"project_name": PROJECT_NAME, "level": 2})
    helpers.git(project, "init", "-q")
    helpers.commit_all(project, "Start at level 2")
    before = tree_digest(project)

    with pytest.raises(ValueError) as refused:
        helpers.update_project(project, {"level": 1})

    assert "Refusing to lower the level from 2 to 1" in str(refused.value)
    assert tree_digest(project) == before
    assert helpers.git(project, "status", "--porcelain") == ""
