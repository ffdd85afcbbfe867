"""check-monitoring and the stack's files: Prometheus, the alerts, Grafana, Compose.

The promtool checks need promtool (Debian/Ubuntu `apt-get install
prometheus`, macOS `brew install prometheus`): without it they are skipped
here, and the CI, which installs it, runs them. The metric-name checks and the
Compose schema need nothing but this environment.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..package import PipelineError, load

checks = load("monitoring.checks")
metrics = load("monitoring.metrics")
cli = load("cli")

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = PROJECT_ROOT / "monitoring"
COMPOSE_OVERRIDE = PROJECT_ROOT / "compose.monitoring.yaml"
DASHBOARD = Path("grafana/dashboards/model-api.json")
BIN = str(Path(sys.executable).parent)

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool is not installed (apt-get install prometheus, or brew install prometheus)",
)


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped monitoring folder, to break; REQUIRE_PROMTOOL unset."""
    monkeypatch.delenv(checks.REQUIRE_VARIABLE, raising=False)
    return Path(shutil.copytree(SHIPPED, tmp_path / "monitoring"))


def edit_dashboard(stack: Path, title: str, expr: str) -> None:
    path = stack / DASHBOARD
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    [panel] = [panel for panel in dashboard["panels"] if panel["title"] == title]
    panel["targets"][0]["expr"] = expr
    path.write_text(json.dumps(dashboard), encoding="utf-8")


def edit_alert(stack: Path, name: str, **changes: Any) -> None:
    path = stack / "alerts.yml"
    rules = yaml.safe_load(path.read_text(encoding="utf-8"))
    [rule] = [rule for rule in rules["groups"][0]["rules"] if rule.get("alert") == name]
    rule.update(changes)
    path.write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")


def without_promtool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks.shutil, "which", lambda name, *args, **kwargs: None)


# ---------------------------------------------------------------------------
# The shipped files


@needs_promtool
def test_the_shipped_stack_passes_every_check(stack, capsys):
    checks.run(stack)

    out = capsys.readouterr().out
    assert "6 alert rules" in out
    assert "OK (promtool and metric names)" in out


def test_the_shipped_queries_read_only_metrics_the_api_exports(stack, monkeypatch, capsys):
    without_promtool(monkeypatch)

    checks.run(stack)

    assert "OK (metric names only)" in capsys.readouterr().out


def test_every_metric_of_the_contract_is_on_the_dashboard():
    used = set().union(
        *(
            checks.metric_names(query.expr)
            for query in checks.dashboard_queries(SHIPPED / DASHBOARD)
        )
    )
    unused = {
        name
        for name in metrics.series_names()
        if name.startswith("model_api_") and name not in used
    }

    # The histogram's sum and count have no panel of their own (its buckets do).
    assert unused == {
        "model_api_request_duration_seconds_sum",
        "model_api_request_duration_seconds_count",
    }


def test_the_alerts_read_canvas_numbers_from_the_api_not_from_the_rules():
    rules = {
        query.where.rpartition(" ")[2]: query.expr
        for query in checks.alert_queries(SHIPPED / "alerts.yml")
    }

    assert set(rules) == {
        "ModelApiDown",
        "ModelApiSlowP95",
        "ModelApiErrors",
        "ModelLiveMetricBelowGoal",
        "PredictionLogDropping",
        "PredictionLogUnhealthy",
    }
    assert "model_api_latency_budget_seconds" in rules["ModelApiSlowP95"]
    assert "model_api_live_metric_meets_goal" in rules["ModelLiveMetricBelowGoal"]
    assert "0.2" not in rules["ModelApiSlowP95"]


# ---------------------------------------------------------------------------
# What the checks report


@needs_promtool
def test_a_rule_that_is_not_promql_is_reported_with_its_file(stack):
    edit_alert(stack, "ModelApiErrors", expr="sum(rate(model_api_errors_total[5m])")

    with pytest.raises(PipelineError, match=r"alerts\.yml.*promtool check rules.*parse error"):
        checks.run(stack)


@needs_promtool
def test_a_failing_alert_test_is_reported_by_name(stack, capsys):
    edit_alert(stack, "ModelApiDown", **{"for": "10m"})

    with pytest.raises(
        PipelineError, match=r"alerts\.test\.yml.*ModelApiDown fires after a minute"
    ):
        checks.run(stack)

    assert "exp:" in capsys.readouterr().err  # promtool's report, in full


@needs_promtool
def test_a_panel_query_that_is_not_promql_names_the_panel(stack):
    edit_dashboard(stack, "Requests per second by status", "sum by (status (rate(x[5m]))")

    with pytest.raises(PipelineError, match=r"panel 'Requests per second by status' query A"):
        checks.run(stack)


def test_an_unknown_metric_in_a_panel_is_reported(stack, monkeypatch):
    without_promtool(monkeypatch)
    edit_dashboard(stack, "Error share (5xx)", "sum(rate(model_api_error_total[5m]))")

    with pytest.raises(PipelineError, match=r"panel 'Error share \(5xx\)'.*model_api_error_total"):
        checks.run(stack)


def test_an_unknown_metric_in_an_alert_is_reported(stack, monkeypatch):
    without_promtool(monkeypatch)
    edit_alert(stack, "PredictionLogUnhealthy", expr="model_api_log_healthy == 0")

    with pytest.raises(
        PipelineError, match=r"rule PredictionLogUnhealthy reads model_api_log_healthy"
    ):
        checks.run(stack)


def test_a_missing_file_is_an_error(stack):
    (stack / "alerts.test.yml").unlink()

    with pytest.raises(PipelineError, match=r"alerts\.test\.yml is missing"):
        checks.run(stack)


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            "histogram_quantile(0.95, sum by (le) (rate(model_api_request_duration_seconds_bucket"
            '{job="model-api", handler="/predict"}[$__rate_interval])))'
            " > on () max(model_api_latency_budget_seconds)",
            {"model_api_request_duration_seconds_bucket", "model_api_latency_budget_seconds"},
        ),
        (
            "model_api_live_metric and on (job, instance, metric) "
            "(model_api_live_metric_meets_goal == 0)",
            {"model_api_live_metric", "model_api_live_metric_meets_goal"},
        ),
        ("sum(rate(x[5m] offset 1h)) * 60 > bool 1e3", {"x"}),
        ('count without (instance) (up{job=~"model.*"}) or vector(0)', {"up"}),
    ],
)
def test_metric_names_are_read_from_promql_without_labels_or_functions(expr, names):
    assert checks.metric_names(expr) == names


# ---------------------------------------------------------------------------
# Without promtool


def test_without_promtool_the_checks_are_skipped_in_one_line(stack, monkeypatch, capsys):
    without_promtool(monkeypatch)

    assert cli.main(["check-monitoring", "--folder", str(stack)]) == 0

    skipped = capsys.readouterr().out.splitlines()[0]
    assert "promtool not found" in skipped
    assert "apt-get install prometheus" in skipped
    assert "brew install prometheus" in skipped


def test_without_promtool_the_ci_fails(stack, monkeypatch, capsys):
    without_promtool(monkeypatch)
    monkeypatch.setenv(checks.REQUIRE_VARIABLE, "1")

    assert cli.main(["check-monitoring", "--folder", str(stack)]) == 1

    error = capsys.readouterr().err.strip()
    assert error.startswith("error: promtool is not on PATH and REQUIRE_PROMTOOL=1")
    assert "apt-get install prometheus" in error


# ---------------------------------------------------------------------------
# Docker Compose


def compose_override() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_OVERRIDE.read_text(encoding="utf-8"))


def test_the_compose_override_follows_the_compose_schema():
    found = shutil.which("check-jsonschema", path=BIN)
    assert found, "check-jsonschema is not installed in this environment (release group)"

    result = subprocess.run(
        [found, "--builtin-schema", "vendor.compose-spec", str(COMPOSE_OVERRIDE)],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_override_pins_images_and_binds_ports_to_this_machine():
    services = compose_override()["services"]

    for name in ("prometheus", "grafana"):
        image = services[name]["image"]
        assert ":" in image and not image.endswith(":latest"), image
        assert all(port.startswith("127.0.0.1:") for port in services[name]["ports"])
        config_mounts = [mount for mount in services[name]["volumes"] if mount.startswith("./")]
        assert config_mounts and all(mount.endswith(":ro") for mount in config_mounts)


def test_grafana_needs_a_password_and_shows_nothing_anonymously_by_default():
    environment = compose_override()["services"]["grafana"]["environment"]

    assert environment["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "${GRAFANA_ANONYMOUS:-false}"


def test_the_api_logs_to_a_volume_and_keeps_worker_metrics_under_tmp():
    override = compose_override()
    api = override["services"]["api"]
    settings = load("monitoring.settings")

    log_path = Path(api["environment"][settings.LOG_PATH_VARIABLE])
    volume, _, mounted = api["volumes"][0].partition(":")
    assert volume in override["volumes"]
    assert log_path.parent == Path(mounted)
    assert api["environment"][metrics.MULTIPROCESS_VARIABLE].startswith("/tmp/")


def test_prometheus_mounts_the_files_its_config_names():
    prometheus = compose_override()["services"]["prometheus"]
    [config_mount] = [mount for mount in prometheus["volumes"] if mount.startswith("./")]
    source, target, _ = config_mount.split(":")
    [config_flag] = [flag for flag in prometheus["command"] if flag.startswith("--config.file=")]

    assert (PROJECT_ROOT / source).resolve() == SHIPPED.resolve()
    assert config_flag == f"--config.file={target}/prometheus.yml"
