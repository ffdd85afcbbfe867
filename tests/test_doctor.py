"""The level doctor (`mlops-ladder doctor`, src/mlops_ladder/): what a project meets.

The doctor is a tool of the template, installed from its source: the template's
own environment has it (`uv sync` installs the mlops-ladder package), so most
tests run its `mlops-ladder` command on fresh copies at each level, examined as
a user would (`git init`, a commit, then the doctor). It runs the project's own
DVC (its .venv, else the one on PATH: the template's, here) and, from level 2,
the package's own reading of canvas.yaml. One slow test runs it the documented
way, `uv run poe doctor`, in a synced project: uvx installs it from the
template source and commit recorded in .copier-answers.yml.

The doctor's pure functions are tested on their own.
"""

from __future__ import annotations

import http.server
import json
import re
import shutil
import sqlite3
import subprocess
import threading
import tomllib
import zipfile
from pathlib import Path

import jinja2
import pytest
from jinja2_ansible_filters import AnsibleCoreFiltersExtension

from mlops_ladder import doctor
from tests import cases, helpers

# The command the template's package installs in its own environment.
DOCTOR_COMMAND = [str(helpers.TOOLS_BIN / "mlops-ladder"), "doctor"]
# One case a level: GitHub with a local remote, GitLab with S3, and the level-3
# and level-4 defaults.
CASE_BY_LEVEL = {
    1: "l1-github-py312-mit-local",
    2: "l2-gitlab-py313-mit-s3",
    3: "l3-github-py313-apache-local-container-local",
    4: "l4-github-py312-mit-local-container-local",
}
NO_CI_CASE = "l1-none-py313-proprietary-gcs"
CLIMB_TO_2 = "uvx copier update --trust --defaults --data level=2"
POE_TASK = re.compile(r"uv run poe ([\w-]+)")
DOCTOR_TIMEOUT_SECONDS = 120


# --- Running the doctor in generated projects ----------------------------------


def committed_copy(generate, case_id: str, destination: Path) -> Path:
    """A private copy of the generated project, made a git repository as the README says."""
    project = destination / "project"
    shutil.copytree(generate(cases.BY_ID[case_id]), project)
    helpers.git(project, "init", "-q")
    helpers.commit_all(project, "Start from mlops-ladder")
    return project


def run_doctor(project: Path, *arguments: str, **environment: str) -> subprocess.CompletedProcess:
    """`mlops-ladder doctor`, from the project's root, in a developer's shell."""
    return subprocess.run(
        [*DOCTOR_COMMAND, *arguments],
        cwd=project,
        env=helpers.user_environment(**environment),
        capture_output=True,
        text=True,
        timeout=DOCTOR_TIMEOUT_SECONDS,
    )


def json_report(project: Path, *arguments: str, **environment: str) -> dict:
    result = run_doctor(project, "--json", *arguments, **environment)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def by_name(report: dict) -> dict[str, dict]:
    return {check["name"]: check for check in report["checks"]}


@pytest.fixture(scope="module")
def fresh_reports(generate, tmp_path_factory) -> dict[int, tuple[Path, dict]]:
    """Each level's fresh committed copy and the doctor's JSON report on it."""
    examined = {}
    for level, case_id in CASE_BY_LEVEL.items():
        project = committed_copy(generate, case_id, tmp_path_factory.mktemp(f"doctor-l{level}"))
        examined[level] = (project, json_report(project))
    return examined


@pytest.mark.parametrize("level", sorted(CASE_BY_LEVEL))
def test_a_fresh_copy_claims_its_level_and_names_what_is_missing_with_fixes(fresh_reports, level):
    _, report = fresh_reports[level]
    assert report["claimed_level"] == level
    assert report["claim_source"] == "from .copier-answers.yml"
    # Nothing has run yet: no versioned data, no hooks.
    assert report["met_level"] < level and not report["meets_claim"]
    assert {"data-versioned", "git-hooks"} <= set(report["missing"])
    checks = by_name(report)
    assert checks["data-versioned"]["fix"] == "uv run poe sample-data"
    assert checks["git-hooks"]["fix"] == "uv run pre-commit install"
    for check in report["checks"]:
        assert check["status"] in {"pass", "fail", "skip", "info"}
        assert check["detail"] and "\n" not in check["detail"]
        assert bool(check["fix"]) == (check["status"] == "fail"), check


@pytest.mark.parametrize("level", sorted(CASE_BY_LEVEL))
def test_the_files_a_fresh_copy_was_given_pass(fresh_reports, level):
    """What Copier wrote meets every file check of its level, CI wiring included."""
    _, report = fresh_reports[level]
    files_of_the_claim = {
        1: ["canvas", "notebook", "dvc-remote", "ci-notebook"],
        2: ["package", "params", "dvc-yaml", "tests", "ci-pipeline"],
        3: ["deploy-yaml", "dockerfile", "ci-delivery"],
        4: ["monitoring-yaml", "monitoring-stack", "ci-monitoring"],
    }
    checks = by_name(report)
    for claimed in range(1, level + 1):
        for name in files_of_the_claim[claimed]:
            assert checks[name]["status"] == "pass", checks[name]


@pytest.mark.parametrize("level", [2, 3, 4])
def test_the_work_of_a_level_is_asked_with_the_task_that_does_it(fresh_reports, level):
    _, report = fresh_reports[level]
    checks = by_name(report)
    expected_fixes = {
        "pipeline-up-to-date": "uv run poe sample-data && uv run poe pipeline",
        "tracked-runs": "uv run poe pipeline",
        "champion": "uv run poe pipeline && uv run poe release --promote",
        "model-folder": "uv run poe export",
    }
    for name, fix in expected_fixes.items():
        if name in checks and checks[name]["level"] <= level:
            assert checks[name]["status"] == "fail" and checks[name]["fix"] == fix, checks[name]


@pytest.mark.parametrize("level", sorted(CASE_BY_LEVEL))
def test_every_fix_of_the_claim_names_a_task_the_project_has(fresh_reports, level):
    project, report = fresh_reports[level]
    tasks = helpers.poe_tasks(project)
    for check in report["checks"]:
        if check["status"] == "fail" and not check["next_level"]:
            for task in POE_TASK.findall(check["fix"]):
                assert task in tasks, f"{check['name']}: `{check['fix']}` names no task"


def test_a_level_1_project_shows_what_level_2_would_ask_as_next_level(fresh_reports):
    project, report = fresh_reports[1]
    assert report["next_level"] == 2
    level_2 = [check for check in report["checks"] if check["level"] == 2]
    assert level_2 and all(check["next_level"] for check in level_2)
    assert {"package", "params", "dvc-yaml", "tests", "ci-pipeline"} <= set(
        report["next_level_asks"]
    )
    # The next level does not count against the claim, and its fixes start with the climb.
    assert not {check["name"] for check in level_2} & set(report["missing"])
    for check in level_2:
        if check["status"] == "fail":
            assert check["fix"].startswith(CLIMB_TO_2), check
    assert not [check for check in report["checks"] if check["level"] > 2]
    text = run_doctor(project).stdout
    assert "Level 2: tracked experiments (next level" in text
    assert re.search(r"^  todo  the Python package under src/", text, re.MULTILINE)


def test_the_highest_level_has_no_next_level(fresh_reports):
    _, report = fresh_reports[4]
    assert report["next_level"] is None and report["next_level_asks"] == []


def test_the_text_report_is_a_table_with_the_verdict_and_the_fixes(fresh_reports):
    project, _ = fresh_reports[2]
    text = run_doctor(project).stdout
    assert text.startswith("Level doctor: claimed level 2 (from .copier-answers.yml); meets ")
    assert re.search(r"^  FAIL  pre-commit hooks installed +hooks not installed", text, re.M)
    assert re.search(r"^ +fix: uv run pre-commit install$", text, re.MULTILINE)
    assert re.search(r"^  PASS  dvc.yaml declares the pipeline +6 stages", text, re.MULTILINE)
    assert "Missing for level 2: " in text and "Level 3 would also ask: " in text


def test_machine_only_checks_are_skipped_under_ci(fresh_reports):
    project, on_a_machine = fresh_reports[1]
    on_ci = by_name(json_report(project, CI="true"))
    assert on_ci["git-hooks"]["status"] == "skip"
    assert on_ci["dvc-remote-reachable"]["status"] == "skip"
    assert "CI=true" in on_ci["git-hooks"]["detail"]
    # The same checks on a developer's machine: failures with their fix.
    assert by_name(on_a_machine)["git-hooks"]["status"] == "fail"
    assert by_name(on_a_machine)["dvc-remote-reachable"]["fix"] == "uv run poe push"


def test_strict_exits_1_only_when_the_claimed_level_is_not_met(generate, tmp_path):
    project = committed_copy(generate, CASE_BY_LEVEL[1], tmp_path)
    assert run_doctor(project).returncode == 0  # a report, not a gate
    assert run_doctor(project, "--strict").returncode == 1
    # Versioned data is all a fresh clone's CI lacks at level 1.
    pointer = project / "data" / "raw" / "dataset.csv.dvc"
    pointer.parent.mkdir(parents=True, exist_ok=True)
    pointer.write_text("outs:\n- md5: 0123456789abcdef\n  path: dataset.csv\n", encoding="utf-8")
    met = run_doctor(project, "--strict", "--json", CI="true")
    assert met.returncode == 0, met.stdout
    assert json.loads(met.stdout)["meets_claim"] is True


def test_a_broken_canvas_is_a_failing_check_not_a_traceback(generate, tmp_path):
    project = committed_copy(generate, CASE_BY_LEVEL[1], tmp_path)
    (project / "canvas.yaml").write_text("success_metric: [roc_auc\n", encoding="utf-8")
    result = run_doctor(project, "--json")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    canvas = by_name(json.loads(result.stdout))["canvas"]
    assert canvas["status"] == "fail"
    assert canvas["detail"].startswith("canvas.yaml is not valid YAML at line ")
    assert "canvas.yaml" in canvas["fix"]


def test_a_project_without_ci_service_and_with_a_cloud_remote(generate, tmp_path):
    """No CI file is asked for; the cloud remote is reported, never contacted."""
    project = committed_copy(generate, NO_CI_CASE, tmp_path)
    checks = by_name(json_report(project))
    assert checks["ci-notebook"]["status"] == "skip"
    assert "uv run poe ci" in checks["ci-notebook"]["detail"]
    assert checks["dvc-remote"]["detail"].startswith("storage: gs://")
    assert checks["dvc-remote-reachable"]["status"] == "info"
    assert "not tried" in checks["dvc-remote-reachable"]["detail"]


@pytest.mark.slow
def test_it_runs_as_documented_in_a_synced_level_2_project(generate, tmp_path):
    """`uv run poe doctor`: uvx installs the doctor from the recorded template source and
    commit; it reads the canvas with the package and runs the project's own DVC."""
    project = committed_copy(generate, CASE_BY_LEVEL[2], tmp_path)
    environment = helpers.user_environment()
    for command in (["uv", "lock", "--quiet"], ["uv", "sync", "--frozen", "--quiet"]):
        subprocess.run(command, cwd=project, env=environment, check=True, capture_output=True)
    result = subprocess.run(
        ["uv", "run", "--frozen", "poe", "doctor", "--json"],
        cwd=project, env=environment, capture_output=True, text=True,
        timeout=DOCTOR_TIMEOUT_SECONDS,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["claimed_level"] == 2
    checks = by_name(report)
    assert checks["canvas"]["detail"].endswith(f"(read by src/{project_package(project)})")
    # The project's DVC ran: the data is not there yet, the stages are out of date.
    assert checks["pipeline-up-to-date"]["fix"] == "uv run poe sample-data && uv run poe pipeline"


def project_package(project: Path) -> str:
    return helpers.recorded_answers(project)["package_name"]


# --- How a project finds the doctor: the template source, at its version --------


def test_the_doctor_task_runs_the_tool_of_the_recorded_template_version(generate, template):
    """The poe task names the source and commit of .copier-answers.yml (a git clone here)."""
    project = generate(cases.BY_ID[CASE_BY_LEVEL[1]])
    answers = helpers.recorded_answers(project)
    assert answers["_src_path"] == str(template) and answers["_commit"].startswith("v")
    task = helpers.poe_tasks(project)["doctor"]
    assert task["cmd"] == (
        f"uvx --from 'git+file://{template}@{answers['_commit']}' mlops-ladder doctor"
    )
    assert not (project / "scripts" / "doctor.py").exists()


def render_doctor_task(answers: dict) -> str:
    """tasks/notebook.toml's doctor command for recorded answers, with Copier's filters."""
    environment = jinja2.Environment(
        extensions=[AnsibleCoreFiltersExtension], trim_blocks=True, lstrip_blocks=True
    )
    source = (helpers.REPO_ROOT / "template" / "tasks" / "notebook.toml.jinja").read_text()
    rendered = environment.from_string(source).render(_copier_answers=answers)
    return tomllib.loads(rendered)["tool"]["poe"]["tasks"]["doctor"]["cmd"]


@pytest.mark.parametrize(
    ("src", "commit", "source"),
    [
        ("gh:acme/mlops-ladder", "v0.7.0", "git+https://github.com/acme/mlops-ladder.git@v0.7.0"),
        ("https://gitlab.com/acme/mlops-ladder.git", "v0.6.0-3-g66cb9ad",
         "git+https://gitlab.com/acme/mlops-ladder.git@66cb9ad"),
        ("git@github.com:acme/mlops-ladder.git", "v0.7.0",
         "git+ssh://git@github.com/acme/mlops-ladder.git@v0.7.0"),
        ("/home/ana/mlops ladder", "66cb9ad", "git+file:///home/ana/mlops%20ladder@66cb9ad"),
        ("C:\\Users\\ana\\mlops-ladder", "v0.7.0", "git+file:///C:/Users/ana/mlops-ladder@v0.7.0"),
        ("/srv/mlops-ladder", None, "/srv/mlops-ladder"),  # not a git repository
    ],
)  # fmt: skip
def test_the_recorded_source_becomes_what_uv_installs_from(src, commit, source):
    answers = {"_src_path": src, **({"_commit": commit} if commit else {})}
    assert render_doctor_task(answers) == f"uvx --from '{source}' mlops-ladder doctor"


def test_the_wheel_holds_only_the_tool(tmp_path):
    """The template repository is a package for its tools: template/ stays out of it."""
    subprocess.run(
        ["uv", "build", "--wheel", "--out-dir", str(tmp_path), str(helpers.REPO_ROOT)],
        check=True, capture_output=True, timeout=DOCTOR_TIMEOUT_SECONDS,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("mlops_ladder-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {
        "mlops_ladder",
        f"{wheel.name.rsplit('-', 3)[0]}.dist-info",
    }
    assert "mlops_ladder/doctor.py" in names
    entry_points = (
        zipfile.ZipFile(wheel)
        .read(f"{wheel.name.rsplit('-', 3)[0]}.dist-info/entry_points.txt")
        .decode()
    )
    assert "mlops-ladder = mlops_ladder.cli:main" in entry_points


@pytest.mark.parametrize("edited", [False, True], ids=["unedited", "edited"])
def test_an_update_from_the_last_release_with_scripts_doctor_removes_or_keeps_it(
    template, tmp_path, edited
):
    """Copier deletes the old doctor; the migration keeps a copy the team edited."""
    project = tmp_path / "project"
    # 0.6.0 is the last release that shipped scripts/doctor.py (0.6.1 made it a template tool).
    helpers.copy_template(template, project, {"level": 1}, vcs_ref="v0.6.0")
    old_doctor = project / "scripts" / "doctor.py"
    assert old_doctor.is_file()
    helpers.lock_and_commit(project)
    if edited:
        with old_doctor.open("a", encoding="utf-8") as script:
            script.write("# our own check of the model card, week 2\n")
        helpers.commit_all(project, "Team edit")

    helpers.update_project(project, {"level": 1})

    assert old_doctor.is_file() == edited
    if edited:
        assert "our own check of the model card" in old_doctor.read_text(encoding="utf-8")
    status = helpers.git(project, "status", "--porcelain")
    assert ("D  scripts/doctor.py" in status or " D scripts/doctor.py" in status) != edited
    assert "mlops-ladder doctor" in helpers.poe_tasks(project)["doctor"]["cmd"]


# --- Level 2 and up: the canvas as the package reads it ---------------------------


def test_from_level_2_the_package_reads_the_canvas(generate, tmp_path):
    """A rule only the package knows (min_rows a whole number) is the doctor's verdict too."""
    project = committed_copy(generate, CASE_BY_LEVEL[2], tmp_path)
    canvas = project / "canvas.yaml"
    text = canvas.read_text(encoding="utf-8")
    assert "min_rows:" in text
    canvas.write_text(re.sub(r"min_rows: .*", "min_rows: many", text), encoding="utf-8")
    check = by_name(json_report(project))["canvas"]
    assert check["status"] == "fail", check
    assert check["detail"] == (
        "canvas.yaml: `data_contract.min_rows` must be a whole number (got 'many')."
    )
    assert check["fix"] == "edit canvas.yaml (docs/canvas.md explains it)"
    # Level 1's minimal reading lets it pass: the package's reading decides.
    assert doctor.canvas_problem(doctor.load_yaml(canvas)) is None


# --- The doctor's functions, on their own ----------------------------------------


def a_project(root: Path, level: int = 3, env: dict | None = None, url: str | None = None):
    """A project at `root` claiming `level`, its package `churn`, in the given environment."""
    answers = {"level": level, "package_name": "churn", "ci": "github"}
    return doctor.Project(root, answers, level, "from a test", url=url, environ=env or {})


VALID_CANVAS = {
    "prediction_target": "churned",
    "success_metric": {"name": "roc_auc", "threshold": 0.8},
    "data_contract": {"columns": {"churned": {"type": "int"}}},
}


def test_a_valid_canvas_has_no_problem():
    assert doctor.canvas_problem(VALID_CANVAS) is None


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"success_metric": {"name": "rmse", "threshold": 1}}, "success_metric.name: must be"),
        ({"success_metric": {"name": "f1", "threshold": "high"}}, "threshold: must be a number"),
        ({"latency_budget_ms": -5}, "latency_budget_ms: must be a positive number"),
        ({"data_contract": {"columns": {}}}, "data_contract.columns: must describe"),
        ({"data_contract": {"columns": {"a": {"type": "text"}}}}, "columns.a.type: must be"),
        ({"prediction_target": None}, "prediction_target: must name"),
    ],
)
def test_a_wrong_canvas_key_is_named(change, problem):
    assert problem in doctor.canvas_problem({**VALID_CANVAS, **change})


def results(*statuses: str) -> list:
    """One result a level, level 1 first, with the given statuses."""
    return [
        doctor.Result(doctor.Check(level, f"check-{level}", "a check", None),
                      doctor.Outcome(status, "detail"), next_level=False)
        for level, status in enumerate(statuses, start=1)
    ]  # fmt: skip


def test_the_met_level_is_the_last_level_without_failure_from_level_1_up():
    assert doctor.met_level(results("pass", "skip", "fail")) == 2
    assert doctor.met_level(results("fail", "pass")) == 0
    assert doctor.met_level(results("info", "pass")) == 2


def test_a_broken_check_is_reported_as_a_failure(tmp_path):
    def broken(project, level):
        raise KeyError("oops")

    outcome = doctor.run_check(doctor.Check(1, "broken", "a check", broken), a_project(tmp_path))
    assert outcome.status == "fail" and "KeyError" in outcome.detail


def sqlite_file(path: Path, *statements: str) -> None:
    database = sqlite3.connect(path)
    with database:
        for statement in statements:
            database.execute(statement)
    database.close()


def mlflow_store(path: Path, runs: int = 1, champion_of: str = "churn") -> None:
    """The two tables of MLflow's SQLite store the doctor reads."""
    sqlite_file(
        path,
        "CREATE TABLE runs (run_uuid TEXT, lifecycle_stage TEXT)",
        *[f"INSERT INTO runs VALUES ('{number}', 'active')" for number in range(runs)],
        "CREATE TABLE registered_model_aliases (alias TEXT, version INT, name TEXT)",
        f"INSERT INTO registered_model_aliases VALUES ('champion', 3, '{champion_of}')",
    )


def test_the_champion_is_read_from_the_tracking_store(tmp_path):
    mlflow_store(tmp_path / "mlflow.db", runs=2)
    project = a_project(tmp_path)
    assert doctor.check_tracked_runs(project, 2) == doctor.Outcome("pass", "2 runs in mlflow.db")
    champion = doctor.check_champion(project, 3)
    assert champion.status == "pass" and "version 3" in champion.detail


def test_a_registry_without_champion_asks_for_a_promoted_release(tmp_path):
    mlflow_store(tmp_path / "mlflow.db", champion_of="another_model")
    outcome = doctor.check_champion(a_project(tmp_path), 3)
    assert outcome.status == "fail" and outcome.fix == "uv run poe release --promote"


def test_a_tracking_server_is_not_contacted(tmp_path):
    project = a_project(tmp_path, env={"MLFLOW_TRACKING_URI": "https://mlflow.example.com"})
    assert doctor.check_tracked_runs(project, 2).status == "info"
    assert doctor.check_champion(project, 3).status == "info"


def test_the_prediction_log_is_counted_where_prediction_log_path_says(tmp_path):
    log = tmp_path / "elsewhere.db"
    sqlite_file(
        log, "CREATE TABLE predictions (request_id TEXT)", "INSERT INTO predictions VALUES ('a')"
    )
    project = a_project(tmp_path, level=4, env={"PREDICTION_LOG_PATH": str(log)})
    assert doctor.check_prediction_log(project, 4).status == "pass"


def test_no_prediction_logged_yet_is_not_a_gap_but_an_unreadable_log_is(tmp_path):
    """The API writes the log when it serves: a project not serving yet meets level 4."""
    assert doctor.check_prediction_log(a_project(tmp_path, level=4), 4).status == "info"
    log = tmp_path / "broken.db"
    log.write_text("not a database")
    project = a_project(tmp_path, level=4, env={"PREDICTION_LOG_PATH": str(log)})
    assert doctor.check_prediction_log(project, 4).status == "fail"


def test_the_verdict_gives_one_command_for_every_gap(fresh_reports):
    project, _ = fresh_reports[3]
    text = run_doctor(project).stdout
    assert (
        "To meet level 3, run: uv run poe sample-data && uv run poe push"
        " && uv run pre-commit install && uv run poe pipeline && uv run poe release --promote"
        " && uv run poe export"
    ) in text, text


class ReadyHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/ready" else 404)
        self.end_headers()

    def log_message(self, *arguments):
        pass


def test_the_api_is_asked_only_with_a_url(tmp_path):
    assert doctor.check_api(a_project(tmp_path), 3).status == "skip"
    server = http.server.HTTPServer(("127.0.0.1", 0), ReadyHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        assert doctor.check_api(a_project(tmp_path, url=url), 3).status == "pass"
    finally:
        server.shutdown()
        server.server_close()
    stopped = doctor.check_api(a_project(tmp_path, url=url), 3)
    assert stopped.status == "fail" and stopped.fix == "uv run poe serve"


def test_a_local_remote_folder_is_reachable_when_it_exists(tmp_path):
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text(
        "[core]\n    remote = storage\n['remote \"storage\"']\n    url = ../store\n",
        encoding="utf-8",
    )
    project = a_project(tmp_path)
    assert doctor.check_dvc_remote_reachable(project, 1).status == "fail"
    (tmp_path / "store").mkdir()
    assert doctor.check_dvc_remote_reachable(project, 1).status == "pass"
