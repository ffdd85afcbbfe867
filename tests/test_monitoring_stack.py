"""Level 4's metrics: decision 0009's table is the list the API exports and the stack reads.

The generated project's `check-monitoring` checks its dashboards and alerts
against metrics.py's API_METRICS (its CI runs it with REQUIRE_PROMTOOL=1);
these tests keep that list and the decision's table the same, and run the
alert rules' unit tests on the template's files directly (no project needed).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from types import ModuleType

import pytest
import yaml

from tests import helpers

DECISION = helpers.REPO_ROOT / "docs" / "decisions" / "0009-level-4-monitoring.md"
TEMPLATE = helpers.REPO_ROOT / "template"
METRICS_MODULE = TEMPLATE / "src" / "{{ package_name }}" / "monitoring" / "metrics.py"
STACK = TEMPLATE / "monitoring"


def template_metrics() -> ModuleType:
    """The template's metrics.py, plain Python that needs no package to import."""
    spec = importlib.util.spec_from_file_location("template_monitoring_metrics", METRICS_MODULE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def decision_metrics() -> dict[str, tuple[str, tuple[str, ...]]]:
    """{name: (type, labels)} of the decision's table; parenthesised remarks are not labels."""
    found = {}
    for line in DECISION.read_text(encoding="utf-8").splitlines():
        if not line.startswith("| `model_api_"):
            continue
        name_cell, type_cell, labels_cell = (cell.strip() for cell in line.strip("|").split("|"))
        labels = re.findall(r"`(\w+)`", re.sub(r"\([^)]*\)", "", labels_cell))
        found[name_cell.strip("`")] = (type_cell.split()[0], tuple(labels))
    return found


def test_the_api_exports_exactly_the_metrics_of_the_decision():
    exported = {spec.name: (spec.kind, spec.labels) for spec in template_metrics().API_METRICS}

    assert exported == decision_metrics()


def test_prometheus_scrapes_the_job_the_decision_names():
    config = yaml.safe_load((STACK / "prometheus.yml").read_text(encoding="utf-8"))

    assert [job["job_name"] for job in config["scrape_configs"]] == ["model-api"]
    assert "The Prometheus job is `model-api`" in DECISION.read_text(encoding="utf-8")


def promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    if os.environ.get("REQUIRE_PROMTOOL") == "1":
        pytest.fail("promtool is not on PATH and REQUIRE_PROMTOOL=1 (apt-get install prometheus)")
    pytest.skip("promtool is not installed (apt-get install prometheus; macOS: brew install)")


def test_the_alert_rules_pass_their_unit_tests():
    result = subprocess.run(
        [promtool(), "test", "rules", str(STACK / "alerts.test.yml")],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_test_that_fires_it():
    rules = yaml.safe_load((STACK / "alerts.yml").read_text(encoding="utf-8"))
    tests = yaml.safe_load((STACK / "alerts.test.yml").read_text(encoding="utf-8"))
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    fired = {
        case["alertname"]
        for test in tests["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    quiet = {
        case["alertname"]
        for test in tests["tests"]
        for case in test.get("alert_rule_test", [])
        if not case.get("exp_alerts")
    }

    assert fired == alerts
    assert quiet == alerts
