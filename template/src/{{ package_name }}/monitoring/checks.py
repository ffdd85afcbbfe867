"""Command `check-monitoring`: the monitoring stack's files, checked before they ship.

    uv run <package> check-monitoring [--folder monitoring]

With promtool (Prometheus' checker): the Prometheus config and the rule files
it names, the alert rules, their unit tests (alerts.test.yml), and every query
of the Grafana dashboards, written as recording rules to a temporary file so
that promtool parses them as Prometheus would. Then, with or without promtool,
every metric the alerts and the dashboards read must be one the API exports
(metrics.API_METRICS, or Prometheus' own `up`): a renamed metric breaks a
dashboard silently, never an error anywhere else.

Without promtool the promtool checks are skipped with one line saying how to
install it, unless REQUIRE_PROMTOOL=1 (the CI sets it): then it is an error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import PipelineError
from .metrics import series_names

MONITORING_FOLDER = Path("monitoring")
REQUIRE_VARIABLE = "REQUIRE_PROMTOOL"
INSTALL_HINT = (
    "install it with `apt-get install prometheus` (Debian, Ubuntu) or "
    "`brew install prometheus` (macOS)"
)
# Series Prometheus itself adds to every scrape job.
PROMETHEUS_SERIES = frozenset({"up"})
PROMTOOL_TIMEOUT_SECONDS = 120
# Grafana's interval variables, replaced by a duration so that promtool parses the query.
GRAFANA_VARIABLE = re.compile(r"\$\{?__\w+\}?")
DASHBOARD_RULE = "dashboard:query_{}"
# promtool names a broken recording rule in quotes, then gives its error.
RULE_ERROR = '"' + DASHBOARD_RULE.format(r"(\d+)") + r'": (.*)$'


@dataclass(frozen=True)
class Query:
    """One PromQL expression, and where it is written (for messages)."""

    where: str
    expr: str


@dataclass(frozen=True)
class StackFiles:
    """The files of the monitoring folder that the checks read."""

    folder: Path

    @property
    def config(self) -> Path:
        return self.folder / "prometheus.yml"

    @property
    def alerts(self) -> Path:
        return self.folder / "alerts.yml"

    @property
    def alert_tests(self) -> Path:
        return self.folder / "alerts.test.yml"

    @property
    def dashboards(self) -> list[Path]:
        return sorted((self.folder / "grafana" / "dashboards").glob("*.json"))

    def require(self) -> None:
        for path in (self.config, self.alerts, self.alert_tests):
            if not path.is_file():
                raise PipelineError(f"{path} is missing: the monitoring stack needs it.")
        if not self.dashboards:
            raise PipelineError(f"{self.folder / 'grafana' / 'dashboards'} holds no dashboard.")


# ---------------------------------------------------------------------------
# The queries of the alerts and the dashboards


def alert_queries(path: Path) -> list[Query]:
    """The `expr` of every rule of a Prometheus rule file."""
    import yaml

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise PipelineError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise PipelineError(f"{path} must be a mapping with `groups` (Prometheus rules).")
    queries = []
    for group in document.get("groups") or []:
        for rule in group.get("rules") or []:
            name = rule.get("alert") or rule.get("record") or "?"
            queries.append(Query(f"{path}: rule {name}", str(rule.get("expr", ""))))
    return queries


def dashboard_queries(path: Path) -> list[Query]:
    """The PromQL of every panel of a Grafana dashboard, rows' panels included."""
    try:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise PipelineError(f"{path} is not valid JSON: {error}") from None
    queries = []
    for panel in _panels(dashboard.get("panels") or []):
        for target in panel.get("targets") or []:
            expr = target.get("expr")
            if expr:
                where = (
                    f"{path}: panel {panel.get('title', '?')!r} query {target.get('refId', '?')}"
                )
                queries.append(Query(where, str(expr)))
    return queries


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])


def as_prometheus_query(expr: str) -> str:
    """Grafana's $__rate_interval and the like become 5m: the query Prometheus would get."""
    return GRAFANA_VARIABLE.sub("5m", expr)


# What is not a metric name in PromQL, removed before reading the names left.
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_LABEL_LISTS = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_FUNCTION_CALLS = re.compile(r"\b[a-zA-Z_]\w*\s*(?=\()")
_NUMBERS = re.compile(r"(?<![\w:])(?:0x[0-9a-fA-F]+|\d[\w.]*)")
_NAMES = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan", "start", "end"}
)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (labels, functions, keywords removed)."""
    text = as_prometheus_query(expr)
    for pattern in (_QUOTED, _MATCHERS, _RANGES, _LABEL_LISTS, _FUNCTION_CALLS, _NUMBERS):
        text = pattern.sub(" ", text)
    return {name for name in _NAMES.findall(text) if name.lower() not in _KEYWORDS}


def check_metric_names(queries: list[Query]) -> None:
    """Every metric a query reads must be one the API exports (or `up`)."""
    known = series_names() | PROMETHEUS_SERIES
    unknown = [
        f"{query.where} reads {name}"
        for query in queries
        for name in sorted(metric_names(query.expr) - known)
    ]
    if unknown:
        raise PipelineError(
            f"not a metric the API exports (monitoring/metrics.py, API_METRICS): "
            f"{'; '.join(unknown)}."
        )


# ---------------------------------------------------------------------------
# promtool


def find_promtool() -> str | None:
    """promtool's path; None (said, and skipped) unless REQUIRE_PROMTOOL=1 requires it."""
    promtool = shutil.which("promtool")
    if promtool:
        return promtool
    if os.environ.get(REQUIRE_VARIABLE) == "1":
        raise PipelineError(f"promtool is not on PATH and {REQUIRE_VARIABLE}=1: {INSTALL_HINT}.")
    print(
        f"check-monitoring: promtool not found, Prometheus checks skipped: {INSTALL_HINT} "
        f"({REQUIRE_VARIABLE}=1 makes this an error)",
        flush=True,
    )
    return None


def run_promtool(promtool: str, *arguments: str) -> tuple[bool, str]:
    """(succeeded, promtool's output, stdout and stderr together)."""
    try:
        result = subprocess.run(
            [promtool, *arguments],
            capture_output=True,
            text=True,
            timeout=PROMTOOL_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise PipelineError(
            f"`promtool {' '.join(arguments)}` took over {PROMTOOL_TIMEOUT_SECONDS} s."
        ) from None
    return result.returncode == 0, f"{result.stdout}\n{result.stderr}"


def promtool_problems(output: str) -> str:
    """promtool's complaints without its progress lines; failing tests by name."""
    lines = [line.strip() for line in output.splitlines()]
    skipped = ("Checking ", "Unit Testing:", "SUCCESS", "FAILED:")
    lines = [line for line in lines if line and not line.startswith(skipped)]
    tests = [
        line.removeprefix("name:").strip().rstrip(",") for line in lines if line.startswith("name:")
    ]
    if tests:
        return "failing test(s): " + "; ".join(tests)
    return "; ".join(lines) or "promtool gave no reason"


def promtool_check(promtool: str, path: Path, *arguments: str) -> None:
    """Run promtool on a file; on failure a PipelineError naming it, the details on stderr."""
    succeeded, output = run_promtool(promtool, *arguments, str(path))
    if succeeded:
        return
    print(output.strip(), file=sys.stderr, flush=True)
    raise PipelineError(
        f"{path}: `promtool {' '.join(arguments)}` fails: {promtool_problems(output)}"
    )


def check_dashboard_queries(promtool: str, queries: list[Query]) -> None:
    """Each dashboard query as a recording rule, so promtool parses it as Prometheus would."""
    import yaml

    rules = [
        {"record": DASHBOARD_RULE.format(number), "expr": as_prometheus_query(query.expr)}
        for number, query in enumerate(queries, start=1)
    ]
    document = {"groups": [{"name": "dashboard-queries", "rules": rules}]}
    with tempfile.TemporaryDirectory(prefix="check-monitoring-") as folder:
        path = Path(folder) / "dashboard-queries.yml"
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        succeeded, output = run_promtool(promtool, "check", "rules", str(path))
    if succeeded:
        return
    problems = []
    for line in output.splitlines():
        found = re.search(RULE_ERROR, line)
        if found:
            problems.append(f"{queries[int(found[1]) - 1].where}: {found[2]}")
    raise PipelineError(
        "a dashboard query is not valid PromQL: " + ("; ".join(problems) or output.strip())
    )


def run(folder: Path = MONITORING_FOLDER) -> None:
    files = StackFiles(folder)
    files.require()
    alerts = alert_queries(files.alerts)
    panels = [query for path in files.dashboards for query in dashboard_queries(path)]
    promtool = find_promtool()
    if promtool:
        # The rules first: `check config` checks them too, but under its own name.
        promtool_check(promtool, files.alerts, "check", "rules")
        promtool_check(promtool, files.config, "check", "config")
        promtool_check(promtool, files.alert_tests, "test", "rules")
        check_dashboard_queries(promtool, panels)
    check_metric_names([*alerts, *panels])
    checked = "promtool and metric names" if promtool else "metric names only"
    print(
        f"check-monitoring: {files.config.name}, {len(alerts)} alert rules and their tests, "
        f"{len(panels)} dashboard queries: OK ({checked})",
        flush=True,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--folder",
        type=Path,
        default=MONITORING_FOLDER,
        help="the monitoring stack's folder (default: monitoring)",
    )
