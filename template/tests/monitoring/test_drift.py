"""The drift check: calibrated at a window of 5,000 rows, judged on effect sizes.

The data is the tests' own frame (conftest.make_frame: four numbers and the
`clinic` category), with clinics drawn at random so that categories vary
from sample to sample like numbers do. The reference profiles 20,000 rows
of it. Prediction logs are SQLite files written here from the schema of
docs/monitoring.md.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from ..conftest import TEST_CANVAS, TEST_PARAMS, make_frame
from ..package import PipelineError, load

canvas_file = load("core.canvas")
params_file = load("core.params")
profile_module = load("monitoring.profile")
drift = load("monitoring.drift")
settings_module = load("monitoring.settings")

WINDOW = 5_000
REFERENCE_ROWS = 20_000
NUMERIC = TEST_PARAMS["features"]["numeric"]
CLINICS = ["north", "south", "east", "west"]
SETTINGS = settings_module.DriftSettings()
LOG = Path("logs/predictions.db")
SCHEMA = """CREATE TABLE IF NOT EXISTS predictions (
    request_id TEXT NOT NULL, row INTEGER NOT NULL, time TEXT NOT NULL, model_version TEXT,
    status INTEGER NOT NULL, latency_ms REAL NOT NULL, input TEXT, prediction TEXT,
    probability REAL, refused_rule TEXT, PRIMARY KEY (request_id, row))"""


def training_like(rows: int, seed: int) -> pd.DataFrame:
    """Fresh rows of the training distribution: make_frame, clinics drawn at random."""
    frame = make_frame(rows, seed=seed)
    frame["clinic"] = np.random.default_rng(seed + 1_000_000).choice(CLINICS, rows)
    return frame


def shifted(frame: pd.DataFrame, name: str, sds: float, reference: pd.DataFrame) -> pd.DataFrame:
    """The frame with one numeric feature's mean moved by `sds` reference standard deviations."""
    moved = frame.copy()
    moved[name] = moved[name] + sds * reference[name].std()
    return moved


def more_of(frame: pd.DataFrame, category: str, points: float, seed: int) -> pd.DataFrame:
    """The frame with `points` of its rows, taken from other clinics, moved to `category`."""
    moved = frame.copy()
    others = np.flatnonzero(moved["clinic"].to_numpy() != category)
    chosen = np.random.default_rng(seed).choice(others, int(points * len(moved)), replace=False)
    moved.loc[chosen, "clinic"] = category
    return moved


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    root = tmp_path_factory.mktemp("config")
    (root / "params.yaml").write_text(yaml.safe_dump(TEST_PARAMS))
    (root / "canvas.yaml").write_text(yaml.safe_dump(TEST_CANVAS))
    return params_file.load_params(root / "params.yaml"), canvas_file.load_canvas(
        root / "canvas.yaml"
    )


@pytest.fixture(scope="module")
def training() -> pd.DataFrame:
    return training_like(REFERENCE_ROWS, seed=0)


@pytest.fixture(scope="module")
def large_reference(config: tuple[Any, Any]) -> dict[str, Any]:
    """200,000 training rows, all kept as the sample: both sides large, p-values tiny."""
    params, canvas = config
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(profile_module, "SAMPLE_ROWS", 200_000)
        return profile_module.build_profile(training_like(200_000, 0), params, canvas, "large")


@pytest.fixture(scope="module")
def reference(training: pd.DataFrame, config: tuple[Any, Any]) -> dict[str, Any]:
    params, canvas = config
    return profile_module.build_profile(training, params, canvas, "data-v1")


def flagged(reference: dict[str, Any], current: pd.DataFrame) -> list[str]:
    verdicts = drift.check_features(reference, current, SETTINGS)
    return [name for name, verdict in verdicts.items() if verdict["drifted"]]


# --- Calibration at a window of 5,000 rows -------------------------------------------------------


@pytest.mark.parametrize("name", NUMERIC)
def test_a_quarter_sd_mean_shift_of_one_numeric_feature_is_flagged_alone(
    name: str, reference: dict[str, Any], training: pd.DataFrame
):
    current = shifted(training_like(WINDOW, seed=101), name, 0.25, training)

    assert flagged(reference, current) == [name]


@pytest.mark.parametrize("category", ["north", "west"])
def test_a_ten_point_rise_of_one_category_share_is_flagged_alone(
    category: str, reference: dict[str, Any]
):
    current = more_of(training_like(WINDOW, seed=102), category, 0.10, seed=1)

    assert flagged(reference, current) == ["clinic"]


def test_twenty_fresh_samples_of_the_training_distribution_give_at_most_one_false_alarm(
    reference: dict[str, Any],
):
    alarms = [seed for seed in range(1, 21) if flagged(reference, training_like(WINDOW, seed))]

    assert len(alarms) <= 1, f"false alarms at seeds {alarms}"


def test_a_small_training_set_does_not_make_its_noise_a_drift(config: tuple[Any, Any]):
    """455 training rows (the sample data's): the p-value guard keeps its noise out."""
    params, canvas = config
    small = profile_module.build_profile(training_like(455, seed=0), params, canvas, "small")

    alarms = [seed for seed in range(1, 11) if flagged(small, training_like(WINDOW, seed))]

    assert len(alarms) <= 1, f"false alarms at seeds {alarms}"


# --- Effect sizes ---------------------------------------------------------------------------------


def test_at_a_large_window_a_negligible_shift_is_significant_but_not_flagged(
    large_reference: dict[str, Any], training: pd.DataFrame
):
    current = shifted(training_like(200_000, seed=103), "radius", 0.03, training)

    verdict = drift.check_features(large_reference, current, SETTINGS)["radius"]

    assert verdict["ks_p_value"] < SETTINGS.p_value
    assert not verdict["drifted"]


def test_at_a_large_window_a_one_point_category_change_is_significant_but_not_flagged(
    large_reference: dict[str, Any],
):
    current = more_of(training_like(200_000, seed=104), "north", 0.01, seed=2)

    verdict = drift.check_features(large_reference, current, SETTINGS)["clinic"]

    assert verdict["p_value"] < SETTINGS.p_value
    assert not verdict["drifted"]


def test_the_statistics_measure_the_size_of_a_numeric_shift(
    reference: dict[str, Any], training: pd.DataFrame
):
    current = shifted(training_like(100_000, seed=105), "texture", 0.25, training)

    verdict = drift.check_features(reference, current, SETTINGS)["texture"]

    assert verdict["mean"]["shift_sd"] == pytest.approx(0.25, abs=0.03)
    assert verdict["ks_statistic"]["value"] == pytest.approx(0.10, abs=0.02)
    assert 0.02 < verdict["psi"]["value"] < SETTINGS.psi  # PSI alone would miss it


def test_the_largest_share_change_names_the_category_and_its_size(reference: dict[str, Any]):
    current = more_of(training_like(100_000, seed=106), "east", 0.10, seed=3)

    verdict = drift.check_features(reference, current, SETTINGS)["clinic"]

    change = verdict["largest_share_change"]
    assert change["category"] == "east"
    assert change["value"] == pytest.approx(0.10, abs=0.01)
    assert verdict["total_variation"] == pytest.approx(0.10, abs=0.01)


def test_a_rise_of_the_missing_rate_is_flagged(reference: dict[str, Any]):
    current = training_like(WINDOW, seed=107)
    current.loc[current.index[:600], "smoothness"] = np.nan  # 12% missing, 0% in training

    verdict = drift.check_features(reference, current, SETTINGS)["smoothness"]

    assert verdict["drifted"]
    assert verdict["missing_rate"]["value"] == pytest.approx(0.12)
    assert verdict["reasons"] == ["missing rate +0.120 > 0.05"]


def test_a_category_never_seen_in_training_counts_as_a_share_change(reference: dict[str, Any]):
    current = training_like(WINDOW, seed=108)
    current.loc[current.index[:500], "clinic"] = "central"

    verdict = drift.check_features(reference, current, SETTINGS)["clinic"]

    assert verdict["drifted"]
    assert verdict["largest_share_change"]["category"] == "central"


def test_categories_coded_as_numbers_compare_whatever_their_type():
    """1.0 (a CSV column with a missing value) and 1 (JSON) are the same category."""
    profile = {"kind": "categorical", "missing_rate": 0.0, "counts": {"1": 500, "2": 500}}

    verdict = drift.judge_categorical(profile, pd.Series([1, 2] * 2_500), SETTINGS)

    assert verdict["largest_share_change"]["value"] == pytest.approx(0.0)


# --- The command ----------------------------------------------------------------------------------


def log_record(number: int, time: str, sent: dict[str, Any], rule: str | None) -> tuple:
    """One row of the `predictions` table: answered (status 200), or refused with its rule."""
    answered = rule is None
    return (
        f"{number:032x}", 0, time, "3" if answered else None, 200 if answered else 422, 4.0,
        json.dumps(sent), "1" if answered else None, 0.8 if answered else None, rule,
    )  # fmt: skip


def write_log(
    path: Path, frame: pd.DataFrame, refused: list[str] | None = None, start: int = 0
) -> None:
    """A prediction log (created if need be): one answered row per frame row, 3,600 an hour
    from 2025-06-01T00:00, numbered from `start`; then the refused rows, one per rule."""
    inputs = frame.drop(columns=["malignant"], errors="ignore").to_dict("records")
    records = [
        log_record(
            start + i,
            f"2025-06-01T{(start + i) // 3_600:02d}:00:00.000+00:00",
            {str(name): None if pd.isna(value) else value for name, value in row.items()},
            None,
        )
        for i, row in enumerate(inputs)
    ]
    records += [
        log_record(start + len(inputs) + i, "2025-06-02T00:00:00.000+00:00", {"radius": 99.0}, rule)
        for i, rule in enumerate(refused or [])
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(SCHEMA)
        connection.executemany(f"INSERT INTO predictions VALUES ({', '.join('?' * 10)})", records)
    connection.close()


@pytest.fixture
def plotting_project(project: Any, reference: dict[str, Any]) -> Any:
    """The tmp project with the reference profile where the pipeline writes it."""
    profile_module.REFERENCE_PROFILE.parent.mkdir(parents=True, exist_ok=True)
    profile_module.REFERENCE_PROFILE.write_text(json.dumps(reference))
    return project


@pytest.fixture
def command_project(plotting_project: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The same, without the plots (a second each): the tests of the HTML report draw them."""
    monkeypatch.setattr(drift, "feature_plots", lambda *arguments: None)
    return plotting_project


def run_drift(**options: Any) -> tuple[dict[str, Any], int]:
    """The command's JSON report and its exit code (0, or 3 when drift is found)."""
    try:
        drift.run(**options)
        code = 0
    except SystemExit as stop:
        code = int(stop.code or 0)
    return json.loads(drift.DRIFT_JSON.read_text()), code


def test_the_command_passes_a_window_like_the_training_data(command_project: Any):
    write_log(LOG, training_like(WINDOW, seed=201))

    report, code = run_drift()

    assert code == 0
    assert not report["drifted"]
    assert report["drifted_features"] == []
    assert report["window"]["answered"] == WINDOW


def test_the_command_exits_3_and_names_what_drifted(
    command_project: Any, training: pd.DataFrame, capsys: pytest.CaptureFixture[str]
):
    current = more_of(shifted(training_like(WINDOW, 202), "area", 0.25, training), "south", 0.1, 4)
    write_log(LOG, current)

    report, code = run_drift()

    assert code == drift.DRIFT_EXIT_CODE == 3
    assert report["drifted_features"] == ["area", "clinic"]
    summary = capsys.readouterr().out.splitlines()[-1]
    assert summary.startswith("drift found: area (KS 0.")
    assert "clinic (share of 'south' +0.1" in summary  # +0.1xx > 0.05


def test_the_json_report_holds_each_statistic_its_threshold_and_the_verdict(
    command_project: Any,
):
    write_log(LOG, training_like(WINDOW, seed=203))

    report, _ = run_drift()

    radius, clinic = report["features"]["radius"], report["features"]["clinic"]
    assert set(radius["ks_statistic"]) == {"value", "threshold", "exceeded"}
    assert radius["psi"]["threshold"] == SETTINGS.psi
    assert radius["drifted"] is False
    assert clinic["largest_share_change"]["threshold"] == SETTINGS.share_change
    assert report["thresholds"]["ks_statistic"] == SETTINGS.ks_statistic


def test_the_html_report_is_self_contained_with_a_plot_per_feature(plotting_project: Any):
    write_log(LOG, training_like(WINDOW, seed=204))

    run_drift()

    page = drift.DRIFT_HTML.read_text()
    assert page.count("<img ") == len(TEST_PARAMS["features"]["numeric"]) + 1
    assert page.count("src='data:image/png;base64,") == page.count("<img ")
    assert "http" not in page


def test_without_matplotlib_the_html_report_says_why_it_has_no_plots(
    plotting_project: Any, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    write_log(LOG, training_like(WINDOW, seed=205))

    run_drift()

    page = drift.DRIFT_HTML.read_text()
    assert "<img " not in page
    assert "they need matplotlib" in page


def test_refused_rows_over_their_threshold_are_a_training_serving_skew(command_project: Any):
    rules = ["radius: Input should be less than or equal to 40"] * 150 + ["clinic: unknown"] * 50
    write_log(LOG, training_like(WINDOW, seed=206), refused=rules)

    report, code = run_drift(last=WINDOW + 200)

    assert code == 3
    assert report["drifted_features"] == []
    skew = report["skew"]
    assert skew["refused_share"]["value"] == pytest.approx(200 / 5_200)
    assert skew["by_rule"]["radius: Input should be less than or equal to 40"] == pytest.approx(
        150 / 5_200
    )


def test_the_window_is_the_last_rows_written(command_project: Any, training: pd.DataFrame):
    write_log(LOG, shifted(training_like(WINDOW, 207), "radius", 1.0, training))
    write_log(LOG, training_like(WINDOW, 208), start=WINDOW)

    report, code = run_drift(last=WINDOW)

    assert code == 0
    assert report["window"]["rows"] == WINDOW


def test_since_keeps_the_rows_logged_from_that_time(command_project: Any):
    write_log(LOG, training_like(7_200, seed=209))  # one hour of rows per 3,600

    report, _ = run_drift(since="2025-06-01T01:00")

    assert report["window"]["rows"] == 3_600
    assert report["window"]["first"] == "2025-06-01T01:00:00.000+00:00"


def test_the_model_folder_profile_comes_before_the_pipeline_one(
    command_project: Any, reference: dict[str, Any]
):
    exported = Path("models/serving/reference-profile.json")
    exported.parent.mkdir(parents=True)
    exported.write_text(json.dumps({**reference, "data_version": "exported"}))
    write_log(LOG, training_like(WINDOW, seed=210))

    report, _ = run_drift()

    assert report["reference"] == {
        "path": str(exported),
        "data_version": "exported",
        "rows": 20_000,
    }


def test_a_feature_that_is_never_logged_is_not_judged(command_project: Any):
    Path("monitoring.yaml").write_text(yaml.safe_dump({"prediction_log": {"never_log": ["area"]}}))
    write_log(LOG, training_like(WINDOW, seed=211).drop(columns=["area"]))

    report, _ = run_drift()

    assert "area" not in report["features"]
    assert report["not_judged"] == {"area": "not logged (prediction_log.never_log)"}


def test_the_thresholds_come_from_monitoring_yaml(command_project: Any):
    Path("monitoring.yaml").write_text(yaml.safe_dump({"drift": {"ks_statistic": 0.01}}))
    write_log(LOG, training_like(WINDOW, seed=212))

    report, _ = run_drift()

    assert report["features"]["radius"]["ks_statistic"]["threshold"] == 0.01


# --- Errors ---------------------------------------------------------------------------------------


def test_no_log_is_a_one_line_error(command_project: Any):
    with pytest.raises(PipelineError, match=r"predictions.db is missing \(no prediction log\)"):
        drift.run()


def test_no_reference_is_a_one_line_error(project: Any):
    write_log(LOG, training_like(100, seed=213))

    with pytest.raises(PipelineError, match=r"reference-profile.json is missing .*profile"):
        drift.run()


def test_a_reference_that_is_not_a_profile_is_an_error(command_project: Any):
    profile_module.REFERENCE_PROFILE.write_text("{not json")
    write_log(LOG, training_like(100, seed=219))

    with pytest.raises(PipelineError, match=r"reference-profile\.json is not a reference profile"):
        drift.run()


def test_a_logged_input_that_is_not_json_is_left_out():
    texts = ['{"radius": 12.0}', "not json", '{"radius": 13.0}', "[1, 2]"]

    assert drift.decode_inputs(texts) == [{"radius": 12.0}, {"radius": 13.0}]


def test_a_window_below_the_minimum_is_refused(command_project: Any):
    write_log(LOG, training_like(1_999, seed=214), refused=["radius: too large"] * 10)

    with pytest.raises(PipelineError, match=r"1,999 answered rows \(and 10 refused\), fewer than"):
        drift.run()


def test_the_minimum_window_can_be_lowered(command_project: Any):
    write_log(LOG, training_like(1_000, seed=215))

    report, _ = run_drift(window=1_000)

    assert report["window"]["answered"] == 1_000


def test_a_log_without_a_feature_of_the_reference_is_an_error(command_project: Any):
    write_log(LOG, training_like(WINDOW, seed=216).drop(columns=["texture"]))

    with pytest.raises(PipelineError, match=r"lack the feature 'texture' of models/"):
        drift.run()


def test_a_file_that_is_not_a_prediction_log_is_an_error(command_project: Any):
    LOG.parent.mkdir()
    LOG.write_text("not a database")

    with pytest.raises(PipelineError, match="is not a prediction log"):
        drift.run()


def test_a_since_that_is_not_a_time_is_an_error(command_project: Any):
    write_log(LOG, training_like(100, seed=217))

    with pytest.raises(PipelineError, match="--since 'yesterday' is not an ISO 8601 time"):
        drift.run(since="yesterday")


def test_the_command_line_exits_3_on_drift(command_project: Any, training: pd.DataFrame):
    cli = load("cli")
    write_log(LOG, shifted(training_like(WINDOW, seed=218), "radius", 0.5, training))

    with pytest.raises(SystemExit) as stop:
        cli.main(["drift"])

    assert stop.value.code == 3
