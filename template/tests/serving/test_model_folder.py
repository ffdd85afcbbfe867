import copy
import json
from pathlib import Path

import joblib
import numpy as np
import pytest

from ..conftest import TEST_CANVAS
from ..package import NAME, PipelineError, load
from .conftest import VERSION, build_folder

model_folder = load("serving.model_folder")
fast_path = load("serving.fast_path")

FEATURES = ["radius", "texture", "area", "smoothness", "clinic"]


def _metadata(folder: Path) -> dict:
    return json.loads((folder / "metadata.json").read_text())


def _edit_metadata(folder: Path, change) -> None:
    data = _metadata(folder)
    change(data)
    (folder / "metadata.json").write_text(json.dumps(data))


def test_the_folder_holds_what_the_api_needs(built_folder):
    metadata = _metadata(built_folder)

    assert sorted(p.name for p in built_folder.iterdir()) == [
        "examples.json",
        "metadata.json",
        "model.joblib",
        "model.onnx",
    ]
    assert (metadata["name"], metadata["version"], metadata["run_id"]) == (NAME, VERSION, "run-1")
    assert metadata["features"] == {
        "numeric": ["radius", "texture", "area", "smoothness"],
        "categorical": ["clinic"],
    }
    assert metadata["data_contract"]["columns"]["radius"]["max"] == 40.0
    assert metadata["classes"] == [0, 1]
    assert {"scikit-learn", "numpy", "onnxruntime"} <= set(metadata["libraries"])
    assert metadata["fast_path"]["used"] is True
    assert metadata["fast_path"]["max_difference"] <= fast_path.TOLERANCE
    assert set(metadata["files"]) == {"examples.json", "model.joblib", "model.onnx"}
    assert len(json.loads((built_folder / "examples.json").read_text())["rows"]) == 5


@pytest.mark.parametrize(
    "architecture", ["logistic_regression", "random_forest", "gradient_boosting"]
)
def test_each_architecture_gets_the_pipelines_answers_from_onnx(tmp_path, architecture, test_rows):
    folder = build_folder(tmp_path, architecture)
    pipeline = joblib.load(folder / "model.joblib")
    rows = test_rows[FEATURES].copy()
    rows.loc[0:3, "texture"] = np.nan  # missing values go through the imputers
    rows.loc[2:5, "clinic"] = np.nan
    rows.loc[6, "clinic"] = "a clinic never seen in training"

    model = model_folder.load_model_folder(folder)

    assert model.path_name == "onnx"
    expected = pipeline.predict_proba(rows)
    assert np.abs(model.predict_proba(rows) - expected).max() <= fast_path.TOLERANCE


def test_rows_as_dicts_with_none_work_in_both_paths(tmp_path, test_rows):
    onnx = model_folder.load_model_folder(build_folder(tmp_path / "a"))
    pipeline = model_folder.load_model_folder(build_folder(tmp_path / "b", fast=False))
    rows = test_rows[FEATURES].head(4).to_dict(orient="records")
    rows[0]["texture"] = None
    rows[1]["clinic"] = None
    rows[2]["smoothness"] = None

    assert pipeline.path_name == "joblib"
    assert np.abs(onnx.predict_proba(rows) - pipeline.predict_proba(rows)).max() <= 1e-5
    answers = onnx.answers(rows)
    assert [a["model_version"] for a in answers] == [VERSION] * 4
    assert all(0 <= a["probability"] <= 1 and a["prediction"] in (0, 1) for a in answers)


def test_categories_coded_as_numbers_are_served_by_the_pipeline(tmp_path, test_rows):
    folder = build_folder(tmp_path, coded_category=True)
    pipeline = joblib.load(folder / "model.joblib")
    rows = test_rows[FEATURES].assign(visits=[i % 3 for i in range(len(test_rows))])

    model = model_folder.load_model_folder(folder)

    reason = _metadata(folder)["fast_path"]["reason"]
    assert reason == "categorical features of a non-text type: visits"
    assert np.abs(model.predict_proba(rows) - pipeline.predict_proba(rows)).max() == 0
    as_dicts = rows.head(3).to_dict(orient="records")
    assert model.answers(as_dicts) == model.answers(rows.head(3))


def test_a_failed_conversion_falls_back_to_the_pipeline(tmp_path, monkeypatch):
    def cannot_convert(pipeline, features):
        raise fast_path.FastPathUnavailable("conversion failed: no converter for this model")

    monkeypatch.setattr(fast_path, "convert", cannot_convert)

    folder = build_folder(tmp_path)

    assert _metadata(folder)["fast_path"] == {
        "used": False,
        "reason": "conversion failed: no converter for this model",
    }
    assert not (folder / "model.onnx").exists()
    assert "onnxruntime" not in _metadata(folder)["libraries"]
    assert model_folder.load_model_folder(folder).path_name == "joblib"


def test_a_conversion_that_answers_differently_is_not_used(tmp_path, monkeypatch):
    original = fast_path.OnnxPredictor.__call__

    def slightly_off(self, columns):
        return original(self, columns) + 1e-3

    monkeypatch.setattr(fast_path.OnnxPredictor, "__call__", slightly_off)

    folder = build_folder(tmp_path)

    reason = _metadata(folder)["fast_path"]["reason"]
    assert reason.startswith("it differs from the pipeline on the check rows")
    assert not (folder / "model.onnx").exists()


def test_features_the_contract_does_not_cover_are_refused(tmp_path):
    canvas = copy.deepcopy(TEST_CANVAS)
    del canvas["data_contract"]["columns"]["area"]

    with pytest.raises(PipelineError, match="'area' has no rule in the data contract"):
        build_folder(tmp_path, canvas=canvas)
    assert not (tmp_path / "serving").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_numeric_feature_with_a_category_rule_is_refused(tmp_path):
    canvas = copy.deepcopy(TEST_CANVAS)
    canvas["data_contract"]["columns"]["radius"] = {"type": "category"}

    with pytest.raises(PipelineError, match="'radius' has type category"):
        build_folder(tmp_path, canvas=canvas)


def test_a_failed_write_keeps_the_previous_folder(tmp_path, monkeypatch):
    folder = build_folder(tmp_path)
    before = _metadata(folder)

    def disk_full(path, data):
        raise OSError("No space left on device")

    monkeypatch.setattr(model_folder, "_write_json", disk_full)
    with pytest.raises(OSError, match="No space left"):
        build_folder(tmp_path)

    assert _metadata(folder) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_folder_that_is_not_a_model_folder_is_not_replaced(tmp_path):
    (tmp_path / "serving").mkdir()
    (tmp_path / "serving" / "notes.txt").write_text("mine")

    with pytest.raises(PipelineError, match="exists and is not a model folder"):
        build_folder(tmp_path)
    assert (tmp_path / "serving" / "notes.txt").read_text() == "mine"


def _other_project(folder):
    _edit_metadata(folder, lambda m: m.update(name="someone_else"))


def _old_scikit_learn(folder):
    _edit_metadata(folder, lambda m: m["libraries"].update({"scikit-learn": "0.24.2"}))


def _newer_onnxruntime(folder):
    _edit_metadata(folder, lambda m: m["libraries"].update({"onnxruntime": "99.1.0"}))


def _changed_model(folder):
    with (folder / "model.onnx").open("ab") as stream:
        stream.write(b"\0")


def _corrupt_metadata(folder):
    (folder / "metadata.json").write_text('{"name": ')


def _future_format(folder):
    _edit_metadata(folder, lambda m: m.update(format=99))


def _examples_answered_differently(folder):
    examples = json.loads((folder / "examples.json").read_text())
    examples["probabilities"][0] = [0.5, 0.5]
    (folder / "examples.json").write_text(json.dumps(examples))
    checksum = model_folder.sha256_of(folder / "examples.json")
    _edit_metadata(folder, lambda m: m["files"].update({"examples.json": checksum}))


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (_other_project, "holds a model of project 'someone_else', not"),
        (_newer_onnxruntime, r"written with onnxruntime 99.1.0 but .* install onnxruntime>=99.1,"),
        (_changed_model, r"model.onnx is corrupt or was changed after export"),
        (_corrupt_metadata, r"metadata.json is corrupt"),
        (_future_format, r"has format 99, not one this code reads"),
        (_examples_answered_differently, r"answers to examples.json differ"),
    ],
)
def test_a_folder_that_cannot_be_served_safely_is_refused(tmp_path, built_folder, spoil, message):
    folder = tmp_path / "serving"
    folder.mkdir()
    for path in built_folder.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    spoil(folder)

    with pytest.raises(PipelineError, match=message):
        model_folder.load_model_folder(folder)


def test_a_pipeline_needs_the_scikit_learn_release_that_wrote_it(tmp_path):
    folder = build_folder(tmp_path, fast=False)
    _old_scikit_learn(folder)

    with pytest.raises(PipelineError, match=r"scikit-learn 0.24.2 but .* scikit-learn==0.24"):
        model_folder.load_model_folder(folder)


def test_a_missing_folder_says_how_to_get_one(tmp_path):
    with pytest.raises(PipelineError, match="is missing: export a model first"):
        model_folder.load_model_folder(tmp_path / "nowhere")
    with pytest.raises(PipelineError, match=r"is not a model folder \(metadata.json is missing\)"):
        model_folder.load_model_folder(tmp_path)
