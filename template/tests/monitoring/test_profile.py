"""The reference profile: what the training data looked like, written at training time.

The `profile` stage reads data/processed/train.csv and writes
models/reference-profile.json; `export` copies it into the model folder when
it profiles the model's training data.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from ..conftest import TEST_CANVAS, TEST_PARAMS, make_frame
from ..package import PipelineError, load

canvas_file = load("core.canvas")
files = load("core.files")
params_file = load("core.params")
profile_module = load("monitoring.profile")
drift_stats = load("monitoring.drift_stats")
export = load("release.export")
model_folder = load("serving.model_folder")
train = load("pipeline.train")


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    root = tmp_path_factory.mktemp("config")
    (root / "params.yaml").write_text(yaml.safe_dump(TEST_PARAMS))
    (root / "canvas.yaml").write_text(yaml.safe_dump(TEST_CANVAS))
    return params_file.load_params(root / "params.yaml"), canvas_file.load_canvas(
        root / "canvas.yaml"
    )


def build(frame: pd.DataFrame, config: tuple[Any, Any]) -> dict[str, Any]:
    params, canvas = config
    return profile_module.build_profile(frame, params, canvas, "data-v1")


def test_numbers_get_ten_quantile_bins_of_a_tenth_each(config: tuple[Any, Any]):
    radius = build(make_frame(10_000), config)["features"]["radius"]

    assert len(radius["edges"]) == 9  # the two outer bins are open-ended
    assert sum(radius["counts"]) == 10_000
    assert radius["shares"] == pytest.approx([0.1] * 10, abs=0.001)


def test_values_beyond_the_training_range_fall_in_the_open_outer_bins():
    edges = np.array([1.0, 2.0, 3.0])

    counts = drift_stats.bin_counts(np.array([-100.0, 1.0, 1.5, 3.0, 100.0]), edges)

    assert counts.tolist() == [2, 1, 1, 1]  # bins are closed on the right


def test_a_feature_with_few_distinct_values_gets_fewer_bins(config: tuple[Any, Any]):
    frame = make_frame(1_000)
    frame["radius"] = np.arange(1_000) % 3 + 10.0

    radius = build(frame, config)["features"]["radius"]

    assert radius["edges"] == [10.0, 11.0, 12.0]
    assert radius["counts"] == [334, 333, 333, 0]  # nothing above the largest value


def test_numbers_record_their_mean_and_standard_deviation(config: tuple[Any, Any]):
    frame = make_frame(2_000)

    area = build(frame, config)["features"]["area"]

    assert area["mean"] == pytest.approx(frame["area"].mean())
    assert area["std"] == pytest.approx(frame["area"].std(), rel=1e-3)


def test_the_sample_holds_at_most_5000_training_values_the_same_each_time(
    config: tuple[Any, Any],
):
    frame = make_frame(20_000)

    first = build(frame, config)["features"]["texture"]["sample"]
    again = build(frame, config)["features"]["texture"]["sample"]

    assert len(first) == profile_module.SAMPLE_ROWS == 5_000
    assert first == again
    drawn, available = Counter(first), Counter(frame["texture"].dropna())
    assert all(drawn[value] <= available[value] for value in drawn)  # without replacement


def test_a_small_training_set_is_its_own_sample(config: tuple[Any, Any]):
    frame = make_frame(80)

    texture = build(frame, config)["features"]["texture"]

    assert sorted(texture["sample"]) == sorted(frame["texture"].dropna())


def test_categories_record_their_counts_and_shares(config: tuple[Any, Any]):
    clinic = build(make_frame(80), config)["features"]["clinic"]

    assert clinic["counts"] == {"north": 20, "south": 20, "east": 20, "west": 20}
    assert clinic["shares"] == {"north": 0.25, "south": 0.25, "east": 0.25, "west": 0.25}


def test_categories_coded_as_numbers_are_named_without_a_decimal_point():
    """A CSV column with a missing value reads 1 as 1.0; JSON sends 1: both are "1"."""
    assert [profile_module.category_key(v) for v in (1.0, 1, np.int64(1), "1")] == ["1"] * 4
    assert profile_module.category_key(float("nan")) is None


def test_every_feature_records_its_missing_rate(config: tuple[Any, Any]):
    features = build(make_frame(80), config)["features"]

    assert features["texture"]["missing"] == 1  # make_frame leaves one texture out
    assert features["texture"]["missing_rate"] == pytest.approx(1 / 80)
    assert features["radius"]["missing_rate"] == 0.0


def test_a_feature_the_training_data_lacks_is_an_error(config: tuple[Any, Any]):
    with pytest.raises(PipelineError, match="the training data lacks clinic"):
        build(make_frame(80).drop(columns=["clinic"]), config)


def test_the_stage_writes_the_profile_with_the_data_version(project: Any):
    project.write_data(make_frame(200), "data/processed/train.csv")

    written = profile_module.run()

    profile = json.loads(written.read_text())
    assert written == Path("models/reference-profile.json")
    assert profile["data_version"] == files.md5_of(Path("data/raw/dataset.csv"))
    assert profile["rows"] == 200
    assert list(profile["features"]) == ["radius", "texture", "area", "smoothness", "clinic"]


def test_the_stage_without_a_training_split_is_an_error(project: Any):
    with pytest.raises(PipelineError, match=r"data/processed/train.csv is missing: run the earl"):
        profile_module.run()


# --- Export ---------------------------------------------------------------------------------------


def test_export_looks_for_the_profile_where_the_stage_writes_it():
    assert export.REFERENCE_PROFILE == profile_module.REFERENCE_PROFILE


def test_export_takes_the_profile_of_the_models_training_data(tmp_path: Path):
    profile = tmp_path / "reference-profile.json"
    profile.write_text(json.dumps({"data_version": "data-v1", "features": {}}))

    assert export.profile_for({"data_version": "data-v1"}, profile) == (profile,)


def test_export_leaves_out_a_profile_of_other_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    profile = tmp_path / "reference-profile.json"
    profile.write_text(json.dumps({"data_version": "data-v2", "features": {}}))

    assert export.profile_for({"data_version": "data-v1"}, profile) == ()
    assert "profiles data data-v2, not the model's (data-v1)" in capsys.readouterr().out


def test_export_without_a_profile_exports_the_model_alone(tmp_path: Path):
    assert export.profile_for({"data_version": "data-v1"}, tmp_path / "absent.json") == ()


def test_the_model_folder_holds_the_profile_with_its_checksum(
    project: Any, config: tuple[Any, Any]
):
    params, canvas = config
    frame = make_frame()
    profile = profile_module.REFERENCE_PROFILE
    files.write_json(profile, build(frame, config))
    metadata = model_folder.describe_model(
        params, canvas, version="1", run_id="run", git_commit="abc", data_version="data-v1"
    )
    folder = Path("models/serving")

    model_folder.write_model_folder(
        folder, train.fit(params, frame), metadata, frame, fast=False, extra_files=(profile,)
    )

    opened = model_folder.open_model_folder(folder)
    copied = folder / profile.name
    assert copied.read_bytes() == profile.read_bytes()
    assert opened.metadata["files"][profile.name] == model_folder.sha256_of(copied)


def test_the_profile_travels_with_the_registered_model(project: Any, tmp_path: Path):
    """A runner with the registry but neither the data nor the profile exports it."""
    cli = load("cli")
    store = {"enabled": True, "uri": f"sqlite:///{tmp_path}/mlflow.db", "experiment": "profile"}
    project.set("params", "tracking", store)
    stages = ("read", "preprocess", "train", "profile", "evaluate")
    for command in (*stages, "gate", "register", "promote"):
        assert cli.main([command]) == 0
    written = profile_module.REFERENCE_PROFILE.read_bytes()
    profile_module.REFERENCE_PROFILE.unlink()
    shutil.rmtree("data")

    assert cli.main(["export", "--out", "served"]) == 0

    assert (Path("served") / profile_module.REFERENCE_PROFILE.name).read_bytes() == written
