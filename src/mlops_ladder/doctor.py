"""The level doctor: which maturity level a generated project meets, check by check.

    mlops-ladder doctor                  # the report, as a table (in the project's folder)
    mlops-ladder doctor --json           # the same report, machine-readable
    mlops-ladder doctor --url http://127.0.0.1:8000   # also ask a running API
    mlops-ladder doctor --strict         # exit 1 when the claimed level is not met

A generated project runs it with `uv run poe doctor`, which calls
`uvx --from <template source>@<its version> mlops-ladder doctor`: the doctor is
versioned with the template, not copied into every project.

.copier-answers.yml claims a level; the doctor checks what each level asks
(files present, hooks installed, DVC remote, pipeline up to date, CI wired,
a champion registered, the API healthy, monitoring configured), names the
command that fixes each failure, and shows what the next level would ask.

It is a report, not a CI gate: it exits 0 whatever it finds, unless --strict.
Checks that only make sense on a developer's machine (git hooks, a local DVC
remote folder) are skipped when CI=true. It reads files and runs `git`,
`dvc status` (the project's own) and, from level 2, the package's own reading
of canvas.yaml: no network, unless --url is given. Standard library and pyyaml.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

PASS, FAIL, SKIP, INFO = "pass", "fail", "skip", "info"
LEVEL_NAMES = {
    1: "notebook POC",
    2: "tracked experiments",
    3: "CI/CD deployment",
    4: "monitoring and retraining",
}
# The part each level adds: tasks/<part>.toml, checks-<part>.yml, .gitlab/ci/<part>.yml.
LEVEL_PARTS = {1: "notebook", 2: "pipeline", 3: "delivery", 4: "monitoring"}
ANSWERS_FILE = ".copier-answers.yml"
DATASET = "data/raw/dataset.csv"
METRIC_NAMES = ("roc_auc", "accuracy", "f1", "precision", "recall")
COLUMN_TYPES = ("float", "int", "category")
# The hooks `uv run pre-commit install` writes (default_install_hook_types).
GIT_HOOKS = ("pre-commit", "pre-push", "post-checkout")
# Set on Cloud Run and in Kubernetes pods: there the prediction log goes to stdout.
PLATFORM_VARIABLES = ("K_SERVICE", "KUBERNETES_SERVICE_HOST")
MONITORING_STACK = ("monitoring/prometheus.yml", "monitoring/alerts.yml")
SUBPROCESS_TIMEOUT_SECONDS = 30
URL_TIMEOUT_SECONDS = 5
CI_VALUES = {"true", "1", "yes"}


class Unreadable(Exception):
    """A file that is missing or cannot be parsed, said in one line."""


# --- The project under examination ---------------------------------------------


@dataclass
class Project:
    """The repository, what its answers claim, and how the doctor was asked to look."""

    root: Path
    answers: dict[str, Any]
    claimed_level: int
    claim_source: str
    url: str | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def path(self, relative: str) -> Path:
        return self.root / relative

    @property
    def package(self) -> str:
        return str(self.answers.get("package_name") or "")

    @property
    def ci_provider(self) -> str:
        return str(self.answers.get("ci", "none"))

    @property
    def on_ci(self) -> bool:
        """CI=true: GitHub Actions and GitLab CI set it; a fresh clone has no hooks there."""
        return self.environ.get("CI", "").strip().lower() in CI_VALUES

    def answer(self, key: str, default: str) -> str:
        """An answer, or the template's default for a question not asked at this level."""
        return str(self.answers.get(key) or default)


def read_answers(root: Path) -> tuple[dict[str, Any], int, str]:
    """The recorded answers, the claimed level, and where the claim comes from."""
    path = root / ANSWERS_FILE
    try:
        answers = load_yaml(path)
    except Unreadable as error:
        return {}, 1, f"no readable {ANSWERS_FILE} ({error}): level 1 assumed"
    if not isinstance(answers, dict):
        return {}, 1, f"{ANSWERS_FILE} is not a mapping: level 1 assumed"
    level = answers.get("level")
    if not isinstance(level, int) or level not in LEVEL_NAMES:
        return answers, 1, f"{ANSWERS_FILE} records no level 1-4 (got {level!r}): level 1 assumed"
    return answers, level, f"from {ANSWERS_FILE}"


def load_yaml(path: Path) -> Any:
    """A YAML file's content; Unreadable names the file and the line of a syntax error."""
    if not path.is_file():
        raise Unreadable(f"{path.name} is missing")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise Unreadable(f"{path.name} is not valid YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise Unreadable(f"{path.name} cannot be read: {error}") from None


def dig(data: Any, dotted: str, default: Any = None) -> Any:
    """data["a"]["b"] for "a.b", or the default when a level is missing or not a mapping."""
    for key in dotted.split("."):
        if not isinstance(data, dict) or key not in data:
            return default
        data = data[key]
    return data


def settings_of(project: Project, relative: str) -> dict:
    """A settings file's mapping; {} when it is missing, unreadable or not a mapping."""
    with contextlib.suppress(Unreadable):
        data = load_yaml(project.path(relative))
        return data if isinstance(data, dict) else {}
    return {}


def run_tool(project: Project, *command: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """A tool run in the project, bounded in time; OSError when it cannot start."""
    env = {**project.environ, "DVC_NO_ANALYTICS": "1", **extra}
    return subprocess.run(
        list(command),
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_SECONDS,
        check=False,
    )


# --- Outcomes and the fixes they name ------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one check found: a status, one line of detail, the fixing command on failure."""

    status: str
    detail: str
    fix: str | None = None


def passed(detail: str) -> Outcome:
    return Outcome(PASS, detail)


def failed(detail: str, fix: str) -> Outcome:
    return Outcome(FAIL, detail, fix)


def skipped(detail: str) -> Outcome:
    return Outcome(SKIP, detail)


def informed(detail: str) -> Outcome:
    return Outcome(INFO, detail)


def climb_command(level: int) -> str:
    """The README's command to climb: it brings the files a level adds."""
    return f"uvx copier update --trust --defaults --data level={level}"


def restore_command(project: Project, relative: str) -> str:
    """How to get back a file the template wrote: from git if committed, else re-render it."""
    try:
        known = run_tool(project, "git", "cat-file", "-e", f"HEAD:{relative}").returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        known = False
    if known:
        return f"git restore --source=HEAD -- {relative}"
    return "uvx copier recopy --trust --skip-answered --vcs-ref=:current: (keep your edited files)"


def missing_file_fix(project: Project, level: int, relative: str) -> str:
    """A file of a level above the claim comes with the climb; one of the claim, restored."""
    if level > project.claimed_level:
        return climb_command(level)
    return restore_command(project, relative)


def files_present(project: Project, level: int, relatives: list[str]) -> Outcome:
    """Pass when every file exists; else name the missing ones and how to get them."""
    missing = [relative for relative in relatives if not project.path(relative).exists()]
    if not missing:
        return passed(", ".join(relatives))
    return failed(f"missing: {', '.join(missing)}", missing_file_fix(project, level, missing[0]))


def yaml_mapping(project: Project, level: int, relative: str) -> tuple[dict | None, Outcome]:
    """A YAML file that must hold a mapping, or the failing outcome that says why not."""
    path = project.path(relative)
    if not path.exists():
        return None, failed(f"{relative} is missing", missing_file_fix(project, level, relative))
    try:
        data = load_yaml(path)
    except Unreadable as error:
        return None, failed(str(error), f"correct {relative} there (`git diff {relative}`)")
    if not isinstance(data, dict):
        return None, failed(f"{relative} is not a mapping of settings", f"edit {relative}")
    return data, passed(relative)


def readable_mapping(relative: str) -> Callable[[Project, int], Outcome]:
    """A check that a settings file is there and holds a mapping."""
    return lambda project, level: yaml_mapping(project, level, relative)[1]


def present(*relatives: str) -> Callable[[Project, int], Outcome]:
    """A check that files are there."""
    return lambda project, level: files_present(project, level, list(relatives))


def data_fix(project: Project) -> str:
    """The data first: pulled when DVC versions it, else the offline sample."""
    if project.path(f"{DATASET}.dvc").is_file():
        return "uv run poe pull"
    return "uv run poe sample-data"


# --- Level 1: notebook POC -----------------------------------------------------


def canvas_problem(canvas: Any) -> str | None:
    """The first thing wrong with the canvas, in the words of its keys; None when valid.

    Level 1 has no package: this minimal reading checks the keys the notebook
    uses. From level 2 the package's own reading decides (own_canvas_reading).
    """
    if not isinstance(canvas, dict):
        return "must be a mapping of keys (business_question, success_metric, ...)"
    if not isinstance(canvas.get("prediction_target"), str) or not canvas["prediction_target"]:
        return "prediction_target: must name the column to predict"
    metric = canvas.get("success_metric")
    if not isinstance(metric, dict):
        return "success_metric: must be a mapping {name, threshold, higher_is_better}"
    if metric.get("name") not in METRIC_NAMES:
        return f"success_metric.name: must be one of {', '.join(METRIC_NAMES)}"
    if not is_number(metric.get("threshold")):
        return f"success_metric.threshold: must be a number (got {metric.get('threshold')!r})"
    latency = canvas.get("latency_budget_ms")
    if latency is not None and (not is_number(latency) or latency <= 0):
        return f"latency_budget_ms: must be a positive number (got {latency!r})"
    columns = dig(canvas, "data_contract.columns")
    if not isinstance(columns, dict) or not columns:
        return "data_contract.columns: must describe at least one column"
    for name, rule in columns.items():
        if not isinstance(rule, dict) or rule.get("type") not in COLUMN_TYPES:
            return f"data_contract.columns.{name}.type: must be one of {', '.join(COLUMN_TYPES)}"
    return None


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# Run with src/ first on the path: the package's own reading of canvas.yaml
# (core/canvas.py, standard library and pyyaml only). Exit 4: the canvas is
# wrong (the package's one-line message on stdout); 0: its summary as JSON.
OWN_CANVAS_READING = """
import importlib, json, sys
from pathlib import Path
try:
    load_canvas = importlib.import_module(sys.argv[1] + ".core.canvas").load_canvas
    error_type = importlib.import_module(sys.argv[1] + ".core.errors").PipelineError
except (ImportError, AttributeError) as error:
    print(error)
    sys.exit(3)
try:
    canvas = load_canvas(Path("canvas.yaml"))
except error_type as error:
    print(" ".join(str(error).split()))
    sys.exit(4)
metric = canvas.success_metric
columns = len(canvas.data_contract.columns)
print(json.dumps([metric.name, metric.threshold, metric.higher_is_better, columns]))
"""
CANVAS_FIX = "edit canvas.yaml (docs/canvas.md explains it)"


def venv_tool(project: Project, name: str) -> str | None:
    """A program of the project's own environment (.venv, made by `uv sync`)."""
    for relative in (f".venv/bin/{name}", f".venv/Scripts/{name}.exe"):
        if project.path(relative).is_file():
            return str(project.path(relative))
    return None


def own_canvas_reading(project: Project) -> Outcome | None:
    """The package's verdict on canvas.yaml; None when it has no canvas reader to ask."""
    if not project.package or not project.path(f"src/{project.package}/core/canvas.py").is_file():
        return None
    src = str(project.path("src"))
    path = os.pathsep.join(filter(None, [src, project.environ.get("PYTHONPATH")]))
    python = venv_tool(project, "python") or sys.executable
    try:
        result = run_tool(
            project, python, "-c", OWN_CANVAS_READING, project.package, PYTHONPATH=path
        )
        said = (result.stdout.strip().splitlines() or [""])[-1]
        if result.returncode == 4:
            return failed(said, CANVAS_FIX)
        name, threshold, higher_is_better, columns = json.loads(said)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        # Not importable here (or broken): the minimal reading decides.
        return None
    return canvas_summary(name, threshold, higher_is_better, columns, f"src/{project.package}")


def canvas_summary(name: str, threshold: Any, higher_is_better: Any, columns: int, by: str):
    direction = "<=" if higher_is_better is False else ">="
    return passed(f"{name} {direction} {threshold}, {columns} columns (read by {by})")


def check_canvas(project: Project, level: int) -> Outcome:
    canvas, outcome = yaml_mapping(project, level, "canvas.yaml")
    if canvas is None:
        return outcome
    own = own_canvas_reading(project)
    if own is not None:
        return own
    problem = canvas_problem(canvas)
    if problem:
        return failed(f"canvas.yaml: {problem}", CANVAS_FIX)
    metric = canvas["success_metric"]
    columns = len(canvas["data_contract"]["columns"])
    return canvas_summary(
        metric["name"], metric["threshold"], metric.get("higher_is_better"), columns, "the doctor"
    )


def check_notebook(project: Project, level: int) -> Outcome:
    notebooks = sorted(project.path("notebooks").glob("*.ipynb"))
    if not notebooks:
        return failed(
            "no notebook in notebooks/",
            missing_file_fix(project, level, "notebooks/01-baseline.ipynb"),
        )
    for notebook in notebooks:
        try:
            json.loads(notebook.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            relative = f"notebooks/{notebook.name}"
            return failed(
                f"{relative} is not a readable notebook: {error}",
                restore_command(project, relative),
            )
    return passed(", ".join(f"notebooks/{notebook.name}" for notebook in notebooks))


def check_data_versioned(project: Project, level: int) -> Outcome:
    pointer = project.path(f"{DATASET}.dvc")
    if not pointer.is_file():
        return failed(f"no {DATASET}.dvc: the data is not versioned", "uv run poe sample-data")
    try:
        outs = dig(load_yaml(pointer), "outs")
    except Unreadable as error:
        return failed(str(error), "uv run poe track-data")
    if not isinstance(outs, list) or not outs:
        return failed(f"{DATASET}.dvc lists no data", "uv run poe track-data")
    if not project.path(DATASET).is_file():
        return passed(f"{DATASET}.dvc (the data itself is not here: `uv run poe pull`)")
    return passed(f"{DATASET}.dvc")


REMOTE_SECTION = re.compile(r"""^'?remote\s+"(?P<name>[^"]+)"'?$""")


def url_scheme(url: str) -> str:
    match = re.match(r"^([a-z0-9]+)://", url)
    return match.group(1) if match else "local"


def default_remote(dvc_folder: Path) -> tuple[str, str] | None:
    """The default remote of .dvc/config and .dvc/config.local, the way DVC merges them."""
    config = configparser.ConfigParser(interpolation=None)
    try:
        config.read([dvc_folder / "config", dvc_folder / "config.local"], encoding="utf-8")
    except configparser.Error:
        return None
    name = config.get("core", "remote", fallback=None)
    for section in config.sections():
        match = REMOTE_SECTION.match(section)
        if name and match and match["name"] == name and config.get(section, "url", fallback=""):
            return name, config.get(section, "url")
    return None


def check_dvc_remote(project: Project, level: int) -> Outcome:
    if not project.path(".dvc").is_dir():
        return failed("no .dvc/ folder: DVC is not set up", "uv run dvc init")
    remote = default_remote(project.path(".dvc"))
    if remote is None:
        return failed("no default DVC remote", "uv run dvc remote add -d storage <url>")
    (name, url), answered = remote, project.answer("data_remote", "local")
    if ANSWERED_SCHEMES.get(answered, answered) != url_scheme(url):
        return passed(f"{name}: {url} (the answers say data_remote: {answered})")
    return passed(f"{name}: {url}")


# The answers' data_remote, as the URL scheme of the remote it configures.
ANSWERED_SCHEMES = {"local": "local", "s3": "s3", "gcs": "gs"}
CREDENTIAL_VARIABLES = {
    "s3": ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE"),
    "gs": ("GOOGLE_APPLICATION_CREDENTIALS",),
}


def check_dvc_remote_reachable(project: Project, level: int) -> Outcome:
    """A local folder is looked at; a cloud remote is not tried (network and credentials)."""
    remote = default_remote(project.path(".dvc"))
    if remote is None:
        return skipped("needs a DVC remote (see above)")
    url = remote[1]
    if url_scheme(url) != "local":
        variables = CREDENTIAL_VARIABLES.get(url_scheme(url), ())
        found = [name for name in variables if project.environ.get(name)]
        credentials = f"{found[0]} is set" if found else "no credential variable set"
        return informed(
            f"{url}: not tried (no network here; {credentials}); `uv run poe pull` tries it"
        )
    folder = Path(url).expanduser()
    if not folder.is_absolute():
        folder = (project.path(".dvc") / folder).resolve()
    if folder.is_dir():
        return passed(f"the folder {folder} exists")
    return failed(f"the folder {folder} does not exist yet", "uv run poe push")


def hooks_folder(project: Project) -> Path | None:
    """Where git looks for hooks (core.hooksPath honoured); None outside a git repository."""
    try:
        result = run_tool(project, "git", "rev-parse", "--git-path", "hooks")
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    folder = Path(result.stdout.strip())
    return folder if folder.is_absolute() else project.root / folder


def check_git_hooks(project: Project, level: int) -> Outcome:
    folder = hooks_folder(project)
    if folder is None:
        return failed(
            "not a git repository (or git is missing)", "git init && uv run pre-commit install"
        )
    missing = [hook for hook in GIT_HOOKS if not hook_runs_pre_commit(folder / hook)]
    if missing:
        return failed(f"hooks not installed: {', '.join(missing)}", "uv run pre-commit install")
    return passed(", ".join(GIT_HOOKS))


def hook_runs_pre_commit(hook: Path) -> bool:
    try:
        return "pre-commit" in hook.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def ci_files(project: Project, level: int) -> list[str]:
    """The CI files the answers' `ci` implies for one level (copier.yml's file map)."""
    part = LEVEL_PARTS[level]
    target = project.answer("deploy_target", "container")
    train = "train" if project.answer("orchestrator", "local") == "local" else "train-on-cluster"
    if project.ci_provider == "github":
        folder = ".github/workflows"
        files = [f"{folder}/checks-{part}.yml"]
        if level == 1:
            files.append(".github/actions/setup/action.yml")
        if level == 3:
            files += [f"{folder}/{train}.yml", f"{folder}/deploy-{target}.yml"]
        return files
    files = [".gitlab-ci.yml", f".gitlab/ci/{part}.yml"]
    if level == 3:
        files += [f".gitlab/ci/{train}.yml", f".gitlab/ci/deploy-{target}.yml"]
    return files


def check_ci(project: Project, level: int) -> Outcome:
    if project.ci_provider not in ("github", "gitlab"):
        return skipped(f"no CI service (ci: {project.ci_provider}): run `uv run poe ci` yourself")
    outcome = files_present(project, level, ci_files(project, level))
    if outcome.status != PASS or project.ci_provider != "gitlab":
        return outcome
    included = f".gitlab/ci/{LEVEL_PARTS[level]}.yml"
    if included not in project.path(".gitlab-ci.yml").read_text(encoding="utf-8"):
        return failed(f".gitlab-ci.yml does not include {included}", f"add `- local: {included}`")
    return outcome


# --- Level 2: tracked experiments ----------------------------------------------


def check_package(project: Project, level: int) -> Outcome:
    """The package the answers name; without that answer, any package under src/."""
    if project.package:
        return files_present(project, level, [f"src/{project.package}/__init__.py"])
    found = sorted(project.path("src").glob("*/__init__.py"))
    if found:
        return passed(", ".join(path.parent.relative_to(project.root).as_posix() for path in found))
    return failed("no package under src/", missing_file_fix(project, level, "src"))


def check_dvc_yaml(project: Project, level: int) -> Outcome:
    pipeline, outcome = yaml_mapping(project, level, "dvc.yaml")
    if pipeline is None:
        return outcome
    stages = pipeline.get("stages")
    if not isinstance(stages, dict) or not stages:
        return failed("dvc.yaml declares no stages", restore_command(project, "dvc.yaml"))
    return passed(f"{len(stages)} stages: {', '.join(stages)}")


def check_tests(project: Project, level: int) -> Outcome:
    tests = list(project.path("tests").rglob("test_*.py")) if project.path("tests").is_dir() else []
    if not tests:
        return failed("no test_*.py under tests/", missing_file_fix(project, level, "tests"))
    return passed(f"{len(tests)} test files under tests/")


def check_pipeline_up_to_date(project: Project, level: int) -> Outcome:
    """`dvc status` of the project's own DVC (its .venv, else the one on PATH)."""
    if not project.path("dvc.yaml").is_file():
        return skipped("needs dvc.yaml (see above)")
    dvc = venv_tool(project, "dvc") or shutil.which("dvc", path=project.environ.get("PATH"))
    if dvc is None:
        return failed("DVC is not installed in the project's environment", "uv sync")
    try:
        result = run_tool(project, dvc, "status", "--json")
    except subprocess.TimeoutExpired:
        return failed("`dvc status` took too long", "uv run dvc status")
    if result.returncode != 0:
        last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return failed(f"`dvc status` failed: {last_line}", "uv sync && uv run dvc status")
    try:
        changes = json.loads(result.stdout or "{}")
    except json.JSONDecodeError:
        return failed("`dvc status --json` printed no JSON", "uv run dvc status")
    if not changes:
        return passed("dvc status: data and pipelines are up to date")
    stale = [name.removesuffix(".dvc").split(":")[-1] for name in changes]
    fix = "uv run poe pipeline"
    if not project.path(DATASET).is_file():
        fix = f"{data_fix(project)} && {fix}"
    return failed(f"out of date: {', '.join(stale)} (`uv run dvc status` says why)", fix)


def tracking_database(project: Project) -> tuple[Path | None, str]:
    """The SQLite file of the tracking store, or None and the store's URI when it is not one."""
    uri = project.environ.get("MLFLOW_TRACKING_URI") or str(
        dig(settings_of(project, "params.yaml"), "tracking.uri", "sqlite:///mlflow.db")
    )
    if not uri.startswith("sqlite:///"):
        return None, uri
    path = Path(uri.removeprefix("sqlite:///"))
    return (path if path.is_absolute() else project.root / path), uri


def query_database(path: Path, sql: str, *parameters: str) -> list[tuple]:
    """Rows of a read-only query: the doctor never writes, never creates, never migrates."""
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=2)
    try:
        return connection.execute(sql, parameters).fetchall()
    finally:
        connection.close()


def check_tracked_runs(project: Project, level: int) -> Outcome:
    if dig(settings_of(project, "params.yaml"), "tracking.enabled") is False:
        return informed("tracking is off (params.yaml's tracking.enabled: false)")
    database, uri = tracking_database(project)
    if database is None:
        return informed(f"tracking store {uri}: not queried (no network here)")
    if not database.is_file():
        return failed(f"no tracking store yet ({uri})", "uv run poe pipeline")
    try:
        rows = query_database(
            database, "SELECT COUNT(*) FROM runs WHERE lifecycle_stage = 'active'"
        )
    except sqlite3.Error as error:
        return failed(f"{database.name} cannot be read: {error}", "uv run poe pipeline")
    count = rows[0][0]
    if not count:
        return failed(f"{database.name} holds no run", "uv run poe pipeline")
    return passed(f"{count} run{'s' if count > 1 else ''} in {database.name}")


# --- Level 3: CI/CD deployment -------------------------------------------------


def check_deploy_yaml(project: Project, level: int) -> Outcome:
    settings, outcome = yaml_mapping(project, level, "deploy.yaml")
    if settings is None:
        return outcome
    for section in ("delivery", "gate", "registry", "serving"):
        if section in settings and not isinstance(settings[section], dict | None):
            return failed(f"deploy.yaml: {section} must be a mapping", "edit deploy.yaml")
    target = dig(settings, "delivery.target", "?")
    return passed(f"deploy.yaml (delivery target: {target})")


def check_champion(project: Project, level: int) -> Outcome:
    database, uri = tracking_database(project)
    if database is None:
        return informed(f"registry {uri}: not queried (no network here); `uv run poe models`")
    name = dig(settings_of(project, "deploy.yaml"), "registry.model_name") or project.package
    promote = "uv run poe release --promote"
    if not database.is_file():
        return failed(f"no registry yet ({uri})", f"uv run poe pipeline && {promote}")
    try:
        rows = query_database(
            database,
            "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = 'champion'",
            name,
        )
    except sqlite3.Error as error:
        return failed(f"{database.name} cannot be read: {error}", promote)
    if not rows:
        return failed(f"no champion for the model {name!r}", promote)
    return passed(f"{name} version {rows[0][0]} is the champion")


def check_model_folder(project: Project, level: int) -> Outcome:
    folder = project.environ.get("MODEL_DIR") or str(
        dig(settings_of(project, "deploy.yaml"), "serving.model_dir", "models/serving")
    )
    metadata = Path(folder) if Path(folder).is_absolute() else project.root / folder
    metadata = metadata / "metadata.json"
    shown = f"{folder.rstrip('/')}/metadata.json"
    if not metadata.is_file():
        return failed(f"no {shown}: no model folder exported", "uv run poe export")
    try:
        content = json.loads(metadata.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return failed(f"{shown} cannot be read: {error}", "uv run poe export")
    version = content.get("version", "?") if isinstance(content, dict) else "?"
    return passed(f"{shown} (model version {version})")


def check_api(project: Project, level: int) -> Outcome:
    if not project.url:
        return skipped("give --url http://127.0.0.1:8000 to ask a running API")
    ready = project.url.rstrip("/") + "/ready"
    try:
        with urllib.request.urlopen(ready, timeout=URL_TIMEOUT_SECONDS) as response:
            return passed(f"GET {ready}: {response.status}")
    except urllib.error.HTTPError as error:
        return failed(
            f"GET {ready}: {error.code}, not ready", "uv run poe export && uv run poe serve"
        )
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return failed(f"GET {ready}: no answer ({reason})", "uv run poe serve")


# --- Level 4: monitoring -------------------------------------------------------


def check_prediction_log(project: Project, level: int) -> Outcome:
    settings = settings_of(project, "monitoring.yaml")
    sink = dig(settings, "prediction_log.sink", "auto")
    on_platform = any(project.environ.get(name) for name in PLATFORM_VARIABLES)
    if sink not in ("auto", "sqlite") or (sink == "auto" and on_platform):
        return skipped("the prediction log does not go to SQLite here (prediction_log.sink)")
    relative = project.environ.get("PREDICTION_LOG_PATH") or str(
        dig(settings, "prediction_log.path", "logs/predictions.db")
    )
    path = Path(relative) if Path(relative).is_absolute() else project.root / relative
    # No row yet is not a gap: the API writes the log when it serves (uv run poe serve).
    if not path.is_file():
        return informed(f"no prediction logged at {relative} yet: the API writes it as it serves")
    try:
        count = prediction_rows(path)
    except sqlite3.Error as error:
        return failed(f"{relative} cannot be read: {error}", f"move {relative} aside")
    if not count:
        return informed(f"{relative} holds no prediction yet: the API writes it as it serves")
    return passed(f"{count} prediction row{'s' if count > 1 else ''} in {relative}")


def prediction_rows(path: Path) -> int:
    """Rows of the log's `predictions` table (one per /predict row, answered or refused)."""
    return int(query_database(path, "SELECT COUNT(*) FROM predictions")[0][0])


def check_promtool(project: Project, level: int) -> Outcome:
    found = shutil.which("promtool")
    if found:
        return informed(f"promtool at {found}: the check-monitoring hook runs it")
    return informed(
        "promtool not found: check-monitoring skips its checks (apt install prometheus)"
    )


# --- The checks, by level -------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One thing a level asks; machine-only checks are skipped under CI=true."""

    level: int
    name: str
    title: str
    run: Callable[[Project, int], Outcome]
    machine_only: bool = False


CHECKS = (
    Check(1, "canvas", "canvas.yaml is a valid problem canvas", check_canvas),
    Check(1, "notebook", "a notebook in notebooks/", check_notebook),
    Check(1, "data-versioned", "the raw data versioned by DVC", check_data_versioned),
    Check(1, "dvc-remote", "a default DVC remote configured", check_dvc_remote),
    Check(1, "dvc-remote-reachable", "the DVC remote reachable", check_dvc_remote_reachable,
          machine_only=True),
    Check(1, "git-hooks", "pre-commit hooks installed", check_git_hooks, machine_only=True),
    Check(1, "ci-notebook", "CI runs the level-1 checks", check_ci),
    Check(2, "package", "the Python package under src/", check_package),
    Check(2, "params", "params.yaml readable", readable_mapping("params.yaml")),
    Check(2, "dvc-yaml", "dvc.yaml declares the pipeline", check_dvc_yaml),
    Check(2, "tests", "tests under tests/", check_tests),
    Check(2, "pipeline-up-to-date", "the pipeline reproduced and up to date",
          check_pipeline_up_to_date),
    Check(2, "tracked-runs", "runs in the tracking store", check_tracked_runs),
    Check(2, "ci-pipeline", "CI runs the level-2 checks", check_ci),
    Check(3, "deploy-yaml", "deploy.yaml readable", check_deploy_yaml),
    Check(3, "dockerfile", "a Dockerfile for the API image", present("Dockerfile")),
    Check(3, "champion", "a champion in the model registry", check_champion),
    Check(3, "model-folder", "the model folder exported", check_model_folder),
    Check(3, "api-ready", "the API answers GET /ready", check_api),
    Check(3, "ci-delivery", "CI runs the level-3 checks and deploys", check_ci),
    Check(4, "monitoring-yaml", "monitoring.yaml readable", readable_mapping("monitoring.yaml")),
    Check(4, "monitoring-stack", "Prometheus config and alert rules", present(*MONITORING_STACK)),
    Check(4, "prediction-log", "the prediction log readable", check_prediction_log),
    Check(4, "promtool", "promtool available", check_promtool),
    Check(4, "ci-monitoring", "CI runs the level-4 checks", check_ci),
)  # fmt: skip


@dataclass(frozen=True)
class Result:
    check: Check
    outcome: Outcome
    next_level: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "level": self.check.level,
            "name": self.check.name,
            "title": self.check.title,
            "status": self.outcome.status,
            "detail": self.outcome.detail,
            "fix": self.outcome.fix,
            "machine_only": self.check.machine_only,
            "next_level": self.next_level,
        }


def run_check(check: Check, project: Project) -> Outcome:
    """One check's outcome; a check that breaks is a failure to report, never a traceback."""
    if check.machine_only and project.on_ci:
        return skipped("machine-only check: skipped under CI=true")
    try:
        return check.run(project, check.level)
    except Exception as error:  # the report goes on; the error is its detail
        return failed(
            f"the check itself failed: {type(error).__name__}: {error}", "report this bug"
        )


def after_the_climb(outcome: Outcome, level: int) -> Outcome:
    """A next level's fix uses that level's tasks and files: the climb comes first."""
    climb = climb_command(level)
    if outcome.status != FAIL or not outcome.fix or outcome.fix.startswith(climb):
        return outcome
    return replace(outcome, fix=f"{climb}, then {outcome.fix}")


def examine(project: Project) -> list[Result]:
    """The checks of every level up to the claimed one, and those of the next level."""
    results = []
    for check in CHECKS:
        if check.level > min(project.claimed_level + 1, max(LEVEL_NAMES)):
            continue
        outcome = run_check(check, project)
        next_level = check.level > project.claimed_level
        if next_level:
            outcome = after_the_climb(outcome, check.level)
        results.append(Result(check, outcome, next_level))
    return results


def met_level(results: list[Result]) -> int:
    """The highest level whose checks, and those of every level below, have no failure."""
    met = 0
    for level in sorted({result.check.level for result in results}):
        if any(r.outcome.status == FAIL for r in results if r.check.level == level):
            break
        met = level
    return met


@dataclass(frozen=True)
class Report:
    project: Project
    results: list[Result]

    @property
    def met_level(self) -> int:
        return met_level(self.results)

    @property
    def meets_claim(self) -> bool:
        return self.met_level >= self.project.claimed_level

    @property
    def missing(self) -> list[Result]:
        """The failures of the claimed level and below: what stands between claim and truth."""
        return [r for r in self.results if not r.next_level and r.outcome.status == FAIL]

    @property
    def next_asks(self) -> list[Result]:
        return [r for r in self.results if r.next_level and r.outcome.status == FAIL]

    def verdict(self) -> str:
        claimed = self.project.claimed_level
        met = f"meets level {self.met_level}" if self.met_level else "meets no level yet"
        return f"claimed level {claimed} ({self.project.claim_source}); {met}"

    def as_json(self) -> dict[str, Any]:
        claimed = self.project.claimed_level
        return {
            "claimed_level": claimed,
            "claim_source": self.project.claim_source,
            "met_level": self.met_level,
            "meets_claim": self.meets_claim,
            "verdict": self.verdict(),
            "on_ci": self.project.on_ci,
            "next_level": claimed + 1 if claimed < max(LEVEL_NAMES) else None,
            "missing": [r.check.name for r in self.missing],
            "next_level_asks": [r.check.name for r in self.next_asks],
            "checks": [r.as_json() for r in self.results],
        }


# --- Output ----------------------------------------------------------------------

STATUS_LABELS = {PASS: "PASS", FAIL: "FAIL", SKIP: "skip", INFO: "info"}


def status_label(result: Result) -> str:
    """A next-level failure is work to do, not a failure: shown as `todo`."""
    if result.next_level and result.outcome.status == FAIL:
        return "todo"
    return STATUS_LABELS[result.outcome.status]


def level_heading(level: int, claimed: int) -> str:
    heading = f"Level {level}: {LEVEL_NAMES[level]}"
    if level > claimed:
        heading += " (next level: what climbing would ask; nothing here fails)"
    return heading


def render_text(report: Report) -> str:
    """A table per level: status, check, detail; the fix under each failure."""
    width = max(len(r.check.title) for r in report.results)
    lines = [f"Level doctor: {report.verdict()}"]
    for level in sorted({r.check.level for r in report.results}):
        lines += ["", level_heading(level, report.project.claimed_level)]
        for result in (r for r in report.results if r.check.level == level):
            title = result.check.title.ljust(width)
            lines.append(f"  {status_label(result)}  {title}  {result.outcome.detail}")
            if result.outcome.fix:
                lines.append(f"        {'':{width}}  fix: {result.outcome.fix}")
    lines += ["", *verdict_lines(report)]
    return "\n".join(lines)


def one_command(results: list[Result]) -> str:
    """The fixes of these failures as one command line, each step once, in check order."""
    steps: list[str] = []
    for result in results:
        for step in (result.outcome.fix or "").split(" && "):
            if step and step not in steps:
                steps.append(step)
    return " && ".join(steps)


def verdict_lines(report: Report) -> list[str]:
    claimed = report.project.claimed_level
    lines = [f"Verdict: {report.verdict()}."]
    if report.missing:
        names = ", ".join(r.check.name for r in report.missing)
        lines.append(f"Missing for level {claimed}: {names} (each with its fix above).")
        lines.append(f"To meet level {claimed}, run: {one_command(report.missing)}")
    if claimed >= max(LEVEL_NAMES):
        lines.append("Level 4 is the highest level the template offers.")
    elif report.next_asks:
        names = ", ".join(r.check.name for r in report.next_asks)
        lines.append(f"Level {claimed + 1} would also ask: {names}.")
    else:
        lines.append(f"Level {claimed + 1}'s checks pass already: {climb_command(claimed + 1)}")
    if report.project.on_ci:
        lines.append("CI=true: machine-only checks (hooks, a local DVC remote) were skipped.")
    return lines


# --- Command line ------------------------------------------------------------------

DESCRIPTION = "Report which maturity level a project meets, check by check."
EPILOG = (
    "Exit code: 0 (a report, not a gate); with --strict, 1 when the level "
    f"claimed by {ANSWERS_FILE} is not met."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--url", help="also check a running API: GET <url>/ready")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when the claimed level is not met"
    )
    parser.add_argument(
        "--project", type=Path, default=Path("."), help="the project's folder (default: .)"
    )


def build_project(arguments: argparse.Namespace, environ: Mapping[str, str]) -> Project:
    root = arguments.project.resolve()
    answers, level, source = read_answers(root)
    return Project(root, answers, level, source, arguments.url, dict(environ))


def tolerate_any_console() -> None:
    """A path with accents must not crash the report on a console that cannot show it."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="replace")


def run(arguments: argparse.Namespace) -> int:
    """The report on the project the arguments name; the exit code."""
    tolerate_any_console()
    project = build_project(arguments, os.environ)
    report = Report(project, examine(project))
    if arguments.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        print(render_text(report))
    return 1 if arguments.strict and not report.meets_claim else 0
