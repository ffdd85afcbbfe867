from pathlib import Path

import pytest

from ..package import PipelineError, load

preprocess = load("pipeline.preprocess")
read = load("pipeline.read")
train = load("pipeline.train")
canvas_file = load("core.canvas")
params_file = load("core.params")

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_the_project_params_and_canvas_load_and_agree():
    params = params_file.load_params(PROJECT_ROOT / "params.yaml")
    canvas = canvas_file.load_canvas(PROJECT_ROOT / "canvas.yaml")

    assert params.features.target == canvas.prediction_target
    assert params.model.architecture in train.ARCHITECTURES
    unknown = set(params.features.columns) - set(canvas.data_contract.columns)
    assert not unknown, f"features missing from canvas.yaml's data_contract: {unknown}"
    train.build_model(params)  # known architecture and hyperparameter names


def test_malformed_yaml_names_the_line(project):
    Path("params.yaml").write_text("features:\n  numeric: [radius\nsplit:\n  seed: 1\n")

    with pytest.raises(PipelineError, match=r"params.yaml is not valid YAML at line \d+"):
        params_file.load_params(Path("params.yaml"))


def test_missing_key_is_named(project):
    del project.params["split"]["seed"]
    project.write_config()

    with pytest.raises(PipelineError, match=r"`split.seed` is missing"):
        params_file.load_params(Path("params.yaml"))


def test_wrong_type_is_named(project):
    project.set("params", "split.test_size", "a lot")

    with pytest.raises(PipelineError, match=r"`split.test_size` must be a number"):
        params_file.load_params(Path("params.yaml"))


def test_missing_params_file(project):
    Path("params.yaml").unlink()

    with pytest.raises(PipelineError, match=r"params\.yaml is missing"):
        params_file.load_params(Path("params.yaml"))


def test_unknown_feature_is_named_with_the_valid_columns(project):
    project.set("params", "features.numeric", ["radius", "radios"])
    read.run()

    with pytest.raises(PipelineError) as caught:
        preprocess.run()

    message = str(caught.value)
    assert "'radios'" in message
    assert "valid columns: radius, texture, area, smoothness, clinic, malignant" in message
    assert not Path("data/processed/train.csv").exists()


def test_unknown_architecture_lists_the_valid_ones(project):
    project.set("params", "model.architecture", "deep_magic")
    params = params_file.load_params(Path("params.yaml"))

    with pytest.raises(PipelineError, match=r"'deep_magic'.*logistic_regression, random_forest"):
        train.build_model(params)


def test_unknown_hyperparameter_is_named(project):
    project.set("params", "model.hyperparameters.logistic_regression", {"Cee": 1.0})
    params = params_file.load_params(Path("params.yaml"))

    with pytest.raises(PipelineError, match="unknown name Cee; LogisticRegression accepts: C,"):
        train.build_model(params)


def test_target_must_match_the_canvas(project):
    project.set("params", "features.target", "radius")
    project.set("params", "features.numeric", ["area"])
    read.run()

    with pytest.raises(PipelineError, match=r"`features.target` is 'radius'"):
        preprocess.run()


def test_canvas_metric_must_be_known(project):
    project.set("canvas", "success_metric.name", "happiness")

    with pytest.raises(PipelineError, match=r"`success_metric.name` must be one of roc_auc"):
        canvas_file.load_canvas(Path("canvas.yaml"))


def test_an_unknown_key_is_refused_by_name(project):
    project.set("params", "split.seeed", 7)  # a typo would otherwise keep the default silently

    with pytest.raises(PipelineError, match=r"params\.yaml: `split\.seeed` is not a known key"):
        params_file.load_params(Path("params.yaml"))
