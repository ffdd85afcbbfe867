from pathlib import Path

import joblib
import pandas as pd
import pytest

from ..package import PipelineError, load

preprocess = load("pipeline.preprocess")
read = load("pipeline.read")
train = load("pipeline.train")


@pytest.fixture
def processed(project):
    read.run()
    preprocess.run()
    return project


@pytest.mark.parametrize(
    "architecture", ["logistic_regression", "random_forest", "gradient_boosting"]
)
def test_each_architecture_trains_a_model_that_predicts(processed, architecture):
    processed.set("params", "model.architecture", architecture)

    train.run()

    model = joblib.load(Path("models/model.joblib"))
    test = pd.read_csv("data/processed/test.csv")
    probabilities = model.predict_proba(test.drop(columns=["malignant"]))
    assert probabilities.shape == (len(test), 2)
    assert type(model.named_steps["model"]).__name__ in {
        "LogisticRegression",
        "RandomForestClassifier",
        "HistGradientBoostingClassifier",
    }


def test_hyperparameters_reach_the_estimator(processed):
    processed.set("params", "model.architecture", "random_forest")

    model = train.run()

    estimator = model.named_steps["model"]
    assert (estimator.n_estimators, estimator.max_depth, estimator.random_state) == (10, 3, 0)


def test_bad_hyperparameter_value_is_a_clear_error(processed):
    processed.set("params", "model.hyperparameters.logistic_regression", {"C": -1.0})

    with pytest.raises(PipelineError, match="training logistic_regression failed"):
        train.run()
    assert not Path("models/model.joblib").exists()
